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


def _walk_item_by_item(items, extra, value):
    """The chain walked one item at a time from scratch, each pass reading later items from
    the pass before, until a pass repeats: the reference the shifted walk must equal."""
    prev: dict = {}
    for _ in range(12):
        env: dict = {}

        class Look(dict):  # placed items of this pass, else the pass before (KeyError on the first)
            def __contains__(self, k):
                return k in env or k in prev

            def __getitem__(self, k):
                return env[k] if k in env else prev[k]

        end = 0
        for k, it in enumerate(items):
            if it.fixed_term is not None:
                try:
                    start = value(it.fixed_term, Look())
                except KeyError:
                    start = end
            else:
                base = end + it.pre + extra.get(k, 0)
                if it.pre_term is not None:
                    try:
                        base += max(0, value(it.pre_term, Look()))
                    except KeyError:
                        pass
                start = -(-base // it.align) * it.align
            env[it.var] = start
            end = start + it.size
        if env == prev:
            return env
        prev = env
    raise AssertionError("the reference walk does not settle")


def test_shifted_walks_match_an_item_by_item_walk(objdir):
    """ChainShift (model/chainshift.py) places every item as a walk one item at a time does,
    with growth before random items, on a chain with ALIGN points, `. +=`, a fixed address
    and a forward reference; and its validation picks out every row a full check rejects."""
    import random
    from reachsolve.model.chainshift import ChainShift
    from reachsolve.prove.context import ObjectContext

    obj = assemble(HERE / "shift.S", objdir)
    ob = ObjectContext(read_object(str(obj), obj.read_bytes()), model("shift.lds"))
    L, fr = ob.layout, ob.frame
    items = L.items
    rows = [(it.var, it.pre, it.align, it.size, it.fixed_term, it.pre_term) for it in items]
    chain = ChainShift(rows, [it.gap for it in items], fr.as_linked, L.value, L.aux, L.pos)
    assert chain.ok and len(chain.terms) >= 3  # the fixed start, `. = _start + ...`, the `. +=` reading _end
    assert _walk_item_by_item(items, {}, L.value) == fr.as_linked
    rnd = random.Random(13)
    for _ in range(300):
        extra = {rnd.randrange(len(items)): rnd.choice([1, 2, 3, 8, 24, 0x40, 0x7ff, 0x1000, 0x12345])
                 for _ in range(rnd.choice([1, 1, 2, 4]))}
        got = chain.walk(extra)
        want = _walk_item_by_item(items, extra, L.value)
        assert got is not None and got[0].env() == want, extra
        assert [got[0].at(k) for k in range(len(items))] == [want[it.var] for it in items]
    # Validation: the as-linked layout needs only the rows placed by an expression (and the
    # first) checked one by one; a layout with one item moved needs that item's too.
    assert chain.suspects(fr.as_linked) == sorted({0, *chain.terms})
    seen = 0
    for _ in range(200):
        env = dict(fr.as_linked)
        k = rnd.randrange(1, len(items))
        env[items[k].var] += rnd.choice([-0x1000, -8, -1, 1, 4, 0x10])
        rejected = {j for j in range(1, len(items)) if items[j].fixed_term is None and items[j].pre_term is None
                    and (env[items[j].var] % items[j].align
                         or env[items[j].var] < env[items[j - 1].var] + items[j - 1].size + items[j].pre
                         or not items[j].gap and env[items[j].var] != -(-(env[items[j - 1].var] + items[j - 1].size
                                                                        + items[j].pre) // items[j].align)
                         * items[j].align)}
        assert rejected <= set(chain.suspects(env)), k
        seen += bool(rejected)
    assert seen > 100  # most moves break the layout somewhere (a move into a gap may not)
