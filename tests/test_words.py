"""Words a person reads (issue 10): only a broken site is an error, in the linker's words.

- a broken site's headline is ld.lld's own line (``ld.lld: `` + headline), checked by
  linking the fixture at the counterexample's layout; where only GNU ld rejects it,
  GNU ld's "relocation truncated to fit" line for that site;
- a vulnerable headline is a warning and never says "error"; an unknown one a
  warning that says it is undecided;
- one number base per line; the instruction shown relocated.
"""
from __future__ import annotations

import re

import pytest

from reachsolve import analyze
from reachsolve.report.render import headline, text
from reachsolve.report.repro import linker_script
from testsupport.oracle import unsupported
from testsupport.toolchain import FIXTURES, assemble, link

SOURCES = sorted(FIXTURES.glob("*.S"))


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_broken_headlines_are_the_linkers_own_lines(src, objdir, tmp_path):
    obj = assemble(src, objdir)
    report = analyze([str(obj)])
    relocs = {s.reloc for s in report.sites}
    compared = 0
    for s in report.listed:
        head = headline(s)
        if s.verdict == "broken":
            assert head.startswith("error: "), head
            ce = s.counterexample
            ld = "lld" if "lld" in ce.rejected_by else "bfd" if "bfd" in ce.rejected_by else None
            if ld is None or unsupported(ld, relocs):
                continue
            proc = link(ld, obj, linker_script(s, ld), tmp_path / f"{s.offset:x}")
            if ld == "lld":
                assert "ld.lld: " + head in proc.stderr.splitlines(), (head, proc.stderr)
            else:
                gnu = head.split(f"{s.file}:", 1)[1].split("; ", 1)[0]
                assert gnu in proc.stderr, (gnu, proc.stderr)
            compared += 1
        elif s.verdict == "vulnerable":
            assert head.startswith("warning: ") and "error" not in head, head
        elif s.verdict == "unknown":
            assert head.startswith("warning: ") and "undecided" in head, head
    if any(s.verdict == "broken" and s.counterexample.rejected_by for s in report.listed) and not (
            {"R_AARCH64_PLT32", "R_AARCH64_GOT_LD_PREL19"} & relocs):
        assert compared


def test_broken_as_linked_reads_like_ld_lld_with_the_same_script(objdir, tmp_path):
    obj = assemble(FIXTURES / "ordered" / "far.S", objdir)
    lds = FIXTURES / "ordered" / "ordered.lds"
    report = analyze([str(obj)], linker_script=str(lds))
    (s,) = [s for s in report.listed if s.verdict == "broken"]
    proc = link("lld", obj, lds.read_text(), tmp_path)
    assert "ld.lld: " + headline(s) in proc.stderr.splitlines(), proc.stderr


def _values(line: str) -> str:
    """A line without its names (R_AARCH64_..., symbols) and the granule's count of bytes."""
    return re.sub(r"\d+ bytes|multiple of \d+|(?<![0-9])[A-Za-z_`.][\w.`']*", "", line)


def test_the_base_check_can_fail():
    mixed = _values(": relocation R_AARCH64_CONDBR19 out of range: 1048576 is not in [-0x100000, 0xffffc]")
    assert re.search(r"0x[0-9a-fA-F]+", mixed) and re.search(r"(?<![0-9a-fA-Fx])-?\d+(?![0-9a-fA-Fx])", mixed)


def test_one_number_base_per_line(objdir):
    for src in SOURCES:
        report = analyze([str(assemble(src, objdir))])
        for s in report.listed:
            head = headline(s).split(")", 1)[1]  # after the (section+offset)
            # values only: not names (R_AARCH64_..., symbols), nor the granule's count of bytes
            head = _values(head)
            decimal = re.search(r"(?<![0-9a-fA-Fx])-?\d+(?![0-9a-fA-Fx])", head)
            hexa = re.search(r"0x[0-9a-fA-F]+", head)
            assert not (decimal and hexa), head


def test_instruction_is_shown_relocated(objdir):
    report = analyze([str(assemble(FIXTURES / "condbr19.S", objdir))])
    out = text(report)
    assert "cbz x0, far_fn" in out and "b.hs undefined_fn" in out and "#0x14" not in out.split("encodes")[0]


def test_assumptions_have_ids_and_each_site_names_the_ones_it_rests_on(objdir):
    import json

    from reachsolve.report.render import to_json
    report = analyze([str(assemble(FIXTURES / "condbr19.S", objdir))])
    doc = json.loads(to_json(report))
    (f,) = doc["files"]
    assert f["assumption_ids"] == ["A1"] and "undefined_fn" in f["assumptions"][0]
    by = {s["offset"]: s for s in doc["sites"]}
    assert by[0x18]["assumptions"] == ["A1"]          # b.hs undefined_fn
    assert by[0x14]["assumptions"] == []              # cbz x0, far_fn: a section of the object
    out = text(report)
    assert out.count("verdicts rest on these assumptions") == 1 and out.count("rests on: A1") == 1
