"""Ordered and as-linked placement from a linker script, on fixtures whose margins
are worked out by hand, checked against what ld.lld and GNU ld really do."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from testsupport.toolchain import FIXTURES, assemble, link, tool
from reachsolve import LayoutModel, analyze
from reachsolve.objfile.elf import read_object
from reachsolve.model.files import with_script
from reachsolve.report.repro import linker_script

HERE = FIXTURES / "ordered"
MIB = 1 << 20


def model(script: str, placement: str = "ordered") -> LayoutModel:
    return with_script(LayoutModel(), str(HERE / script), placement)


def by_symbol(report, obj: Path) -> dict:
    o = read_object(str(obj), obj.read_bytes())
    where = {}
    for i in range(1, len(o.symbols)):
        where[(int(o.symbol_section[i]), int(o.symbols["value"][i]))] = o.symbol_name(i)
    return {where.get((s.section_index, s.offset), f"{s.section}+{s.offset:#x}"): s for s in report.sites}


@pytest.fixture(scope="module")
def near(objdir):
    return assemble(HERE / "near.S", objdir)


def test_margins_worked_out_by_hand(near):
    sites = by_symbol(analyze([str(near)], model("ordered.lds")), near)
    cbz, adr, word = sites["site_cbz"], sites["site_adr"], sites["size_word"]
    # As linked: .text.a (12 bytes) at 0x40000000, .text.b (0x40000) right after, then .text.c.
    assert cbz.as_linked == 12 + 0x40000
    assert adr.as_linked == 12 + 0x40000 - 4
    # cbz reaches 2^20 - 4: one more word is 2^20, so it breaks after 2^20 - (12 + 0x40000) bytes.
    assert cbz.verdict == "vulnerable" and cbz.margin == MIB - (12 + 0x40000)
    assert adr.verdict == "vulnerable" and adr.margin == MIB - (12 + 0x40000 - 4)
    assert "more bytes lie between .text.a and .text.c" in cbz.reason
    assert "`*(.text.a)`" in cbz.reason and "`*(.text.b)`" in cbz.reason and "`*(.text.c)`" not in cbz.reason
    # The counterexample is exactly that much growth.
    assert cbz.counterexample.value == MIB
    # A 32-bit size computed by the script fits whatever grows: the image is at most 128 MiB.
    assert word.verdict == "robust" and word.as_linked == 0x40010 + 4


def test_assert_caps_growth(near):
    sites = by_symbol(analyze([str(near)], model("capped.lds")), near)
    assert sites["site_cbz"].verdict == "robust"
    assert sites["site_adr"].verdict == "robust"
    assert "solver" in sites["site_cbz"].reason


def test_as_linked_placement_and_free_model(near):
    sites = by_symbol(analyze([str(near)], model("ordered.lds", "as-linked")), near)
    assert sites["site_cbz"].verdict == "robust" and "as linked" in sites["site_cbz"].reason
    free = by_symbol(analyze([str(near)], LayoutModel()), near)
    assert free["site_cbz"].verdict == "vulnerable" and free["site_cbz"].margin is None


def test_broken_as_linked(objdir):
    far = assemble(HERE / "far.S", objdir)
    sites = by_symbol(analyze([str(far)], model("ordered.lds")), far)
    s = sites["site_cbz"]
    assert s.verdict == "broken" and s.reason.startswith("fails as linked")
    assert s.as_linked == 8 + 0x100000
    assert s.counterexample is not None and s.counterexample.value == 8 + 0x100000


@pytest.mark.parametrize("ld", ["lld", "bfd"])
def test_as_linked_layout_is_what_the_linker_builds(near, tmp_path, ld):
    """Link with the real script: every address and script symbol we predict is the linker's."""
    from reachsolve.prove.context import ObjectContext
    m = model("ordered.lds")
    ob = ObjectContext(read_object(str(near), near.read_bytes()), m)
    env = ob.feasible
    proc = link(ld, near, (HERE / "ordered.lds").read_text(), tmp_path)
    assert proc.returncode == 0, proc.stderr
    nm = subprocess.run([tool("clang").replace("clang", "llvm-nm"), str(tmp_path / f"{ld}.out")],
                        capture_output=True, text=True, check=True).stdout
    got = {name: int(addr, 16) for addr, _, name in (line.split() for line in nm.splitlines() if line.count(" ") == 2)}
    o = ob.obj
    secs = {s.name: s.index for s in o.sections}
    assert got["site_cbz"] == env[("sec", secs[".text.a"])]
    assert got["far_fn"] == env[("sec", secs[".text.c"])]
    assert got["size_word"] == env[("sec", secs[".data"])]
    for name in ("_start", "_end", "image_size"):
        assert got[name] == ob.frame.value(ob.layout.symbol_term(name), env), name


@pytest.mark.parametrize("ld", ["lld", "bfd"])
def test_ordered_counterexample_rejected_by_linkers(near, tmp_path, ld):
    report = analyze([str(near)], model("ordered.lds"))
    failing = [s for s in report.sites if s.counterexample]
    assert len(failing) == 2
    for s in failing:
        proc = link(ld, near, linker_script(s, ld), tmp_path / f"{s.offset:x}")
        assert proc.returncode != 0
        assert f"(.text.a+{s.offset:#x})" in proc.stderr and s.reloc in proc.stderr


def test_library_query_follows_the_script(near):
    """query asks the same question as the report: under ordered.lds the cbz can
    break, under capped.lds (an ASSERT caps growth) it cannot."""
    from reachsolve import Proved, Witness, query
    for script, want in (("ordered.lds", Witness), ("capped.lds", Proved)):
        report = analyze([str(near)], model(script), keep_objects=False)  # query reads the file again
        site = next(s for s in report.all_sites() if s.section == ".text.a" and s.offset == 0)
        q = query(site, report)
        assert isinstance(q.solve(q.violation), want), script


def test_column_proofs_agree_with_one_by_one_decisions(near, objdir):
    """Script models too: the column path proves what the one-by-one path proves, in the same words."""
    far = assemble(HERE / "far.S", objdir)
    for script in ("ordered.lds", "capped.lds"):
        for placement in ("ordered", "as-linked"):
            m = model(script, placement)
            fast, slow = analyze([str(near), str(far)], m), analyze([str(near), str(far)], m, columns=False)
            assert fast.sites == slow.sites, (script, placement)
