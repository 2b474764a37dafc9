"""Every fixture site gets the verdict written next to it in its .S source, in
both byte orders, and the linkers agree: each counterexample is rejected by the
linker whose limit it crosses, and robust sites link cleanly."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import FIXTURES, assemble, link
from reachsolve import LayoutModel, analyze
from reachsolve.elf import read_object
from reachsolve.script import linker_script

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


def _rejection(linker: str, site) -> re.Pattern:
    where = re.escape(f"({site.section}+{site.offset:#x})")
    name = re.escape(site.reloc)
    if linker == "lld":
        return re.compile(where + rf": (relocation {name} out of range|improper alignment for relocation {name})")
    return re.compile(where + rf": relocation truncated to fit: {name}\b")


def _oracle_cases():
    for mode in ORACLE_MODES:
        for src in FILES:
            for be in (False, True):
                yield pytest.param(src, be, mode, id=f"{src.stem}-{'be' if be else 'le'}-{mode}")


# Types the installed linkers do not implement at all: they refuse the whole object.
UNSUPPORTED = {("bfd", "R_AARCH64_PLT32"): "unrecognized relocation type 0x13a",      # GNU ld 2.40
               ("lld", "R_AARCH64_GOT_LD_PREL19"): "unknown relocation (309)"}       # ld.lld 14


def _unsupported(ld: str, report) -> str | None:
    for s in report.sites:
        msg = UNSUPPORTED.get((ld, s.reloc))
        if msg:
            return msg
    return None


def _linked_word(out: Path, section: str, address: int, size: int, big_endian: bool) -> int | None:
    """The instruction word at ``address`` in a linked file (instructions are little-endian)."""
    from elftools.elf.elffile import ELFFile

    if not out.exists():
        return None
    with open(out, "rb") as f:
        for sec in ELFFile(f).iter_sections():
            if (sec.name == section and sec["sh_addr"] <= address < sec["sh_addr"] + sec["sh_size"]
                    and sec["sh_type"] != "SHT_NOBITS"):
                raw = sec.data()[address - sec["sh_addr"]:address - sec["sh_addr"] + size]
                return int.from_bytes(raw, "big" if big_endian else "little")
    return None


@pytest.mark.parametrize("src,big_endian,mode", list(_oracle_cases()))
def test_counterexamples_rejected_by_linkers(src, big_endian, mode, objdir, tmp_path):
    """The linker whose limit a counterexample crosses rejects that same site; a
    linker that does not check writes exactly the garbled encoding we predicted."""
    from reachsolve.disasm import decode

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
                assert _rejection(ld, s).search(proc.stderr), proc.stderr
                checked += 1
            elif ld == "bfd":
                # This linker does not check: it must stay silent about the site and
                # write the very encoding the checker predicted.
                proc = link(ld, obj, linker_script(s, ld), work, big_endian, keep_going=True)
                assert f"({s.section}+{s.offset:#x})" not in proc.stderr
                if s.instruction.startswith("."):
                    continue
                word = _linked_word(work / f"{ld}.out", s.section, ce.place, 4, False)
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
