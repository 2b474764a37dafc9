"""Every fixture site gets the verdict written next to it in its .S source, in
both byte orders, and the linkers agree: each counterexample is rejected by the
linker whose limit it crosses, and robust sites link cleanly."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from reachsolve import LayoutModel, analyze
from reachsolve.objfile.elf import read_object
from reachsolve.report.repro import linker_script
from testsupport.oracle import linked_word, rejection, unsupported
from testsupport.toolchain import FIXTURES, assemble, link

FILES = sorted(p for p in FIXTURES.glob("*.S"))
LABEL = re.compile(r"^(x|nv|lld|big)_(robust|vulnerable|broken|unknown)_\d+$")
MODES = {  # mode -> (model, label prefixes in order of preference)
    "default": (LayoutModel(), ("x",)),
    "no-veneers": (LayoutModel(veneers=False), ("nv", "x")),
    "lld": (LayoutModel(linker="lld"), ("lld", "x")),
    "big-image": (LayoutModel(image_max=8 << 30), ("big", "x")),
}
ORACLE_MODES = ("default", "big-image")


def expectations(obj: Path, prefixes: tuple[str, ...]) -> dict[tuple[int, int], str]:
    o = read_object(str(obj), obj.read_bytes())
    found: dict[tuple[int, int], dict[str, str]] = {}
    for i in range(1, len(o.symbols)):
        m = LABEL.match(o.symbol_name(i))
        if m:
            where = (int(o.symbol_section[i]), int(o.symbols["value"][i]))
            found.setdefault(where, {})[m.group(1)] = m.group(2)
    out = {}
    for where, by in found.items():
        for p in prefixes:
            if p in by:
                out[where] = by[p]
                break
    return out


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("big_endian", [False, True], ids=["le", "be"])
@pytest.mark.parametrize("src", FILES, ids=[p.stem for p in FILES])
def test_verdicts(src, big_endian, mode, objdir):
    obj = assemble(src, objdir, big_endian)
    model, prefixes = MODES[mode]
    want = expectations(obj, prefixes)
    assert want, f"{src.name} has no SITE() labels"
    report = analyze([str(obj)], model)
    assert not report.errors
    got = {(s.section_index, s.offset): s for s in report.sites}
    assert set(got) == set(want), "every labelled site is range-checked and nothing else is"
    wrong = {f"{s.section}+{s.offset:#x}": (want[k], s.verdict, s.reason) for k, s in got.items()
             if s.verdict != want[k]}
    assert not wrong
    for s in report.sites:
        if s.verdict in ("vulnerable", "broken"):
            assert s.counterexample is not None and s.counterexample.layout
        else:
            assert s.counterexample is None
        assert s.reason


def _oracle_cases():
    for mode in ORACLE_MODES:
        for src in FILES:
            for be in (False, True):
                yield pytest.param(src, be, mode, id=f"{src.stem}-{'be' if be else 'le'}-{mode}")


def _unsupported(ld: str, report) -> str | None:
    """What ``ld`` prints when it refuses the whole object (a relocation type it lacks)."""
    return unsupported(ld, [s.reloc for s in report.sites])


@pytest.mark.parametrize("src,big_endian,mode", list(_oracle_cases()))
def test_counterexamples_rejected_by_linkers(src, big_endian, mode, objdir, tmp_path):
    """The linker whose limit a counterexample crosses rejects that same site; a
    linker that does not check writes exactly the garbled encoding we predicted."""
    from reachsolve.target.decode import decode

    obj = assemble(src, objdir, big_endian)
    report = analyze([str(obj)], MODES[mode][0])
    checked = silent = 0
    for s in report.sites:
        ce = s.counterexample
        if ce is None:
            continue
        if ce.problem == "out of range":
            assert set(ce.rejected_by) & {"lld", "bfd"}, "an out-of-range value is rejected by some linker"
        for ld in ("lld", "bfd"):
            work = tmp_path / f"{s.section_index}-{s.offset:x}-{ld}"
            refusal = _unsupported(ld, report)
            if refusal:
                proc = link(ld, obj, linker_script(s, ld), work, big_endian)
                assert proc.returncode != 0 and refusal in proc.stderr
                continue
            if ld in ce.rejected_by:
                proc = link(ld, obj, linker_script(s, ld), work, big_endian)
                assert proc.returncode != 0, f"{ld} accepted {s.section}+{s.offset:#x} at {ce}"
                assert rejection(ld, s.section, s.offset, s.reloc).search(proc.stderr), proc.stderr
                checked += 1
            elif ld == "bfd":
                # This linker does not check: it must stay silent about the site and
                # write the very encoding the checker predicted.
                proc = link(ld, obj, linker_script(s, ld), work, big_endian, keep_going=True)
                assert f"({s.section}+{s.offset:#x})" not in proc.stderr
                if s.instruction.startswith("."):
                    continue
                word = linked_word(work / f"{ld}.out", s.section, ce.place, 4, False)
                if word is not None:
                    assert decode(word, ce.place).text == ce.encoded
                    silent += 1
    if any(s.verdict in ("vulnerable", "broken") for s in report.sites):
        assert checked or silent


@pytest.mark.parametrize("src,big_endian,mode", list(_oracle_cases()))
def test_robust_sites_link_cleanly(src, big_endian, mode, objdir, tmp_path):
    """Both linkers accept every robust site in the layouts the counterexamples use
    (and, when there is none, in a plain packed layout)."""
    obj = assemble(src, objdir, big_endian)
    report = analyze([str(obj)], MODES[mode][0])
    robust = [s for s in report.sites if s.verdict == "robust"]
    for ld in ("lld", "bfd"):
        if _unsupported(ld, report):
            continue
        scripts = {linker_script(s, ld) for s in report.sites if s.counterexample} or {_packed_script(obj)}
        for n, script in enumerate(sorted(scripts)):
            proc = link(ld, obj, script, tmp_path / f"{ld}{n}", big_endian)
            for s in robust:
                where = f"({s.section}+{s.offset:#x})"
                assert where not in proc.stderr, f"{ld} rejects robust site {where}:\n{proc.stderr}"


def _packed_script(obj: Path) -> str:
    o = read_object(str(obj), obj.read_bytes())
    addr, lines = 0x40000000, ["SECTIONS", "{"]
    for s in o.sections:
        if s.alloc:
            addr = -(-addr // s.align) * s.align
            lines.append(f"  {s.name} {addr:#x} : {{ *({s.name}) }}")
            addr += s.size
    return "\n".join(lines + ["}", "undefined_fn = 0x40100000;", "undefined_var = 0x40100000;",
                              "undefined_const = 0x40100000;", "undefined_data = 0x40100000;"]) + "\n"
