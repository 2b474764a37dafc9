"""Fixes: every rewrite reachsolve proposes is what clang assembles from its text, links
with ld.lld and GNU ld at the counterexample layout where the original site fails, and
reaches the site's target there; the rewritten object is decided like any other."""
from __future__ import annotations

import json

import pytest

from reachsolve import LayoutModel, analyze
from reachsolve.cli import demo_object
from reachsolve.objfile.elf import read_object
from reachsolve.objfile.patch import Edit, patch_object
from reachsolve.objfile.sites import SiteColumns
from reachsolve.report.render import text, to_json
from reachsolve.report.repro import linker_script
from reachsolve.target.decode import access_size, decode, decode_uncached, operands
from reachsolve.target.rewrite import rewrite
from testsupport.oracle import linked_word, rejection
from testsupport.toolchain import FIXTURES, assemble, assemble_text, link

PAGE = 4096
# fixture -> the model whose findings have rewrites (b/bl need a section without veneers)
CASES = {"condbr19": LayoutModel(), "tstbr14": LayoutModel(), "adr": LayoutModel(),
         "ld_prel_lo19": LayoutModel(), "fixes": LayoutModel(), "branch26": LayoutModel(veneers=False)}


def _rewrites(report):
    return [s for s in report.listed if s.fix is not None and s.fix.verdict != "none"]


def _snippet_relocs(path):
    """(offset, type, symbol, addend) of every relocation in a snippet, read with pyelftools."""
    from elftools.elf.elffile import ELFFile
    from elftools.elf.relocation import RelocationSection

    with open(path, "rb") as f:
        elf = ELFFile(f)
        syms = list(elf.get_section_by_name(".symtab").iter_symbols())
        out = []
        for rs in elf.iter_sections():
            if isinstance(rs, RelocationSection):
                out += [(r["r_offset"], r["r_info_type"], syms[r["r_info_sym"]].name, r["r_addend"])
                        for r in rs.iter_relocations()]
        return sorted(out)


def _section_bytes(path, name):
    from elftools.elf.elffile import ELFFile

    with open(path, "rb") as f:
        return ELFFile(f).get_section_by_name(name).data()


def _lo12(word: int) -> int:
    """The byte offset an add/ldr/prfm (unsigned immediate) adds: imm12, scaled for loads."""
    imm = (word >> 10) & 0xFFF
    return imm if (word & 0x7F800000) == 0x11000000 else imm * access_size(word)


@pytest.mark.parametrize("name", sorted(CASES))
def test_rewrites_assemble_link_and_reach(name, objdir, tmp_path):
    obj = assemble(FIXTURES / f"{name}.S", objdir)
    report = analyze([str(obj)], CASES[name])
    fixes = _rewrites(report)
    assert fixes, f"{name}.S has findings with a rewrite"
    linked = 0
    for s in fixes:
        d = s.fix.decision
        sym = s.symbol
        # 1. clang assembles the text into the very words and relocations that were decided.
        src = f'\t.section {s.section}, "ax", %progbits\n\t.space {s.offset}\n' + "".join(
            (f"{a}\n" if a.endswith(":") else f"\t{a}\n") for a in s.fix.asm)
        snip = assemble_text(src, tmp_path / f"{s.offset:x}.o")
        body = _section_bytes(snip, s.section)[s.offset:]
        assert body == b"".join(w.to_bytes(4, "little") for w in d.words), (s.fix.asm, body.hex())
        assert _snippet_relocs(snip) == sorted((s.offset + o, t, sym, s.addend) for o, t in d.relocs)
        ce = s.counterexample
        if ce is None or s.fix.verdict != "robust":
            continue
        # 2. The original site fails at its counterexample layout, with each linker that rejects it.
        # (ld.lld adds a thunk for any b/bl it cannot reach, which a no-veneer section must not
        # rely on: there the direct branch must not reach the target.)
        for ld in ce.rejected_by:
            work = tmp_path / f"orig-{s.offset:x}-{ld}"
            proc = link(ld, obj, linker_script(s, ld), work)
            if proc.returncode == 0 and s.reloc in ("R_AARCH64_JUMP26", "R_AARCH64_CALL26"):
                w = linked_word(work / f"{ld}.out", s.section, ce.place, 4, False)
                assert decode(w, ce.place).target != ce.target
                continue
            assert proc.returncode != 0 and rejection(ld, s.section, s.offset, s.reloc).search(proc.stderr)
        # 3. The rewrite links there with both linkers and reaches the same target. A :lo12:
        # rewrite rests on the stricter alignment it states (d.align): the target is put at the
        # next address so aligned (the counterexample's, the nearest failing one, need not be).
        base = ce.place - s.offset
        target = ce.target if d.align is None else -(-ce.target // d.align[0]) * d.align[0]
        script = (f"SECTIONS {{ {s.section} {base:#x} : {{ *({s.section}) }} }}\n"
                  f"{sym} = {target - s.addend:#x};\n")
        for ld in ("lld", "bfd"):
            work = tmp_path / f"fix-{s.offset:x}-{ld}"
            proc = link(ld, snip, script, work)
            assert proc.returncode == 0, (ld, s.fix.asm, proc.stderr)
            words = [linked_word(work / f"{ld}.out", s.section, ce.place + 4 * k, 4, False)
                     for k in range(len(d.words))]
            for off, t in d.relocs:
                w, at = words[off // 4], ce.place + off
                if t in (282, 283):                      # JUMP26/CALL26: the new b
                    assert decode(w, at).target == target, decode_uncached(w, at)
                elif t == 275:                           # ADR_PREL_PG_HI21: the page, then its lo12 user
                    page = decode(w, at).target
                    assert page == target & ~(PAGE - 1), decode_uncached(w, at)
                    assert page + _lo12(words[off // 4 + 1]) == target, decode_uncached(words[off // 4 + 1], at + 4)
            linked += 1
    assert linked, "some rewrite was linked at a counterexample layout"


def test_demo_fixes_proved_under_the_kernel_model():
    """The 2021 KVM pattern: the fix the kernel took, proved robust in the no-veneer .hyp.text."""
    report = analyze([demo_object()], "arm64-kernel")
    fix = {s.reloc: s.fix for s in report.findings()}
    cbz, adr = fix["R_AARCH64_CONDBR19"], fix["R_AARCH64_ADR_PREL_LO21"]
    assert cbz.asm == ("cbnz x0, 1f", "b hyp_panic", "1:") and cbz.verdict == "robust"
    assert adr.asm == ("adrp x1, hyp_panic", "add x1, x1, :lo12:hyp_panic") and adr.verdict == "robust"
    assert (cbz.reach, adr.reach) == ("±128 MiB", "±4 GiB")
    assert "robust under model arm64-kernel" in cbz.note and ".hyp.text grown by 0x8 bytes" in cbz.note
    out = text(report)
    assert "  >>> fix (robust, reach ±128 MiB): cbnz x0, 1f; b hyp_panic; 1:\n" in out
    assert "  >>> fix (robust, reach ±4 GiB): adrp x1, hyp_panic; add x1, x1, :lo12:hyp_panic\n" in out
    doc = json.loads(to_json(report))
    got = {s["reloc"]: s["fix"] for s in doc["sites"]}
    assert got["R_AARCH64_CONDBR19"] == {"asm": ["cbnz x0, 1f", "b hyp_panic", "1:"], "reach": "±128 MiB",
                                         "verdict": "robust", "note": cbz.note}
    assert all(s["fix"] is None for s in doc["sites"] if s["verdict"] == "robust")


def test_growth_that_changes_another_verdict_is_reported(objdir):
    """fixes.S: edge lies at the cbz's limit; the rewrites push it out of reach, and out of
    the reach of a cbz the assembler resolved."""
    report = analyze([str(assemble(FIXTURES / "fixes.S", objdir))])
    fixes = _rewrites(report)
    assert len(fixes) == 7
    for s in fixes:
        d = s.fix.decision
        assert d.grown == ((".text", 0x18),) and d.others == 6
        assert [(c.section, c.offset, c.reloc, c.before, c.after, c.assembler) for c in d.changed] == [
            (".text", 0, "R_AARCH64_CONDBR19", "robust", "broken", False),
            (".text", 4, "cbz", "robust", "broken", True)]
        assert ".text+0x0 R_AARCH64_CONDBR19 robust -> broken" in s.fix.note
        assert ".text+0x4 cbz out of reach (the assembler would reject it)" in s.fix.note
    by = {s.offset: s.fix for s in fixes}
    assert by[0xc].asm == ("b far_fn",) and "always taken" in by[0xc].note       # b.al
    assert by[0x14].asm == ("adrp x16, far_data", "prfm pldl1keep, [x16, :lo12:far_data]")
    assert "x16 stands for a free general register of your choice" in by[0x14].note
    assert "needs far_data aligned to 8 bytes; the literal needed 4" in by[0x14].note
    assert by[0x18].asm == ("adrp x16, far_data+0x4", "ldr s1, [x16, :lo12:far_data+0x4]")
    assert by[0x1c].asm == ("tbnz x3, #40, 1f", "b far_fn", "1:")
    assert by[0x20].asm == ("adrp x29, far_data+0x8", "ldr x29, [x29, :lo12:far_data+0x8]")


def test_advice_where_no_rewrite_applies(objdir):
    """Alignment faults and data words get the real remedy; nothing is claimed decided."""
    cases = {"condbr19": (0x10, "align x_broken_3+0x2 to 4 bytes (.balign 4"),
             "ldst": (0x14, "align var4 to 8 bytes (.balign 8 before it in assembly, __aligned(8) in C)"),
             "data": (0x20, "widen the word to R_AARCH64_ABS64"),
             "got": (0x8, ":got_lo12:undefined_var")}
    for name, (off, words) in cases.items():
        report = analyze([str(assemble(FIXTURES / f"{name}.S", objdir))])
        f = next(s.fix for s in report.listed if s.offset == off and s.verdict != "robust")
        assert f.verdict == "none" and f.asm == () and f.reach == "" and words in f.note, f.note
        assert f"  >>> fix (advice): {f.note}\n" in text(report)


def test_fixes_are_the_same_in_both_byte_orders(objdir):
    for name in ("condbr19", "ld_prel_lo19", "fixes"):
        le, be = (analyze([str(assemble(FIXTURES / f"{name}.S", objdir, big))]) for big in (False, True))
        assert [s.fix for s in le.listed] == [s.fix for s in be.listed]
        assert [s.fix.decision for s in le.listed if s.fix] == [s.fix.decision for s in be.listed if s.fix]


@pytest.mark.parametrize("big_endian", [False, True], ids=["le", "be"])
def test_patched_object_moves_what_follows_the_site(big_endian, objdir):
    """The rewritten demo object: sequences in place, later relocations, symbols and the
    function's size moved, the dropped relocations gone."""
    path = assemble(FIXTURES.parent.parent / "reachsolve" / "data" / "demo.S", objdir, big_endian)
    obj = read_object(str(path), path.read_bytes())
    cols = SiteColumns(obj)
    sites = {(obj.sections[s.section].name, s.offset): s for s in cols.sites()}
    edits = []
    for off in (0x0, 0x4):  # cbz, adr
        s = sites[(".hyp.text", off)]
        rw = rewrite(s.insn.klass, s.word, s.symbol_name, s.addend)
        edits.append(Edit(s.section, s.offset, s.spec.number, rw.words, rw.relocs))
    grown, growth = patch_object(obj, edits)
    assert growth.total(edits[0].section) == 8
    g = {(grown.sections[s.section].name, s.offset): (s.spec.name, s.insn.text) for s in SiteColumns(grown).sites()}
    assert g[(".hyp.text", 0x4)] == ("R_AARCH64_JUMP26", "b #4")
    assert g[(".hyp.text", 0x8)] == ("R_AARCH64_ADR_PREL_PG_HI21", "adrp x1, #0")
    assert g[(".hyp.text", 0x14)][0] == "R_AARCH64_JUMP26"             # was 0xc
    assert g[(".hyp.text", 0x20)][0] == "R_AARCH64_TSTBR14"            # was 0x18
    assert not any(t in ("R_AARCH64_CONDBR19", "R_AARCH64_ADR_PREL_LO21") for t, _ in g.values())
    hyp = grown.sections[edits[0].section]
    data = grown.section_data(hyp.index)
    assert int.from_bytes(data[0:4], "little") == edits[0].words[0]     # cbnz x0, 1f
    assert decode(int.from_bytes(data[0:4], "little")).text == "cbnz x0, #8"
    names = {grown.symbol_name(i): i for i in range(1, len(grown.symbols))}
    old = {obj.symbol_name(i): i for i in range(1, len(obj.symbols))}
    for sym, moved in (("__guest_exit_done", 8), ("__guest_exit_panic", 0), ("hyp_panic", 0)):
        assert int(grown.symbols["value"][names[sym]]) == int(obj.symbols["value"][old[sym]]) + moved
    assert int(grown.symbols["size"][names["__guest_exit_panic"]]) == \
        int(obj.symbols["size"][old["__guest_exit_panic"]]) + 8
    assert hyp.size == obj.sections[hyp.index].size + 8


def test_branches_the_assembler_resolved_move_with_the_growth(objdir):
    """demo.S: `cbnz x0, 1f` (no relocation) jumps over the b at 0xc; rewriting that b into
    three instructions moves its target by 8, and the copy re-encodes it."""
    path = assemble(FIXTURES.parent.parent / "reachsolve" / "data" / "demo.S", objdir)
    obj = read_object(str(path), path.read_bytes())
    s = next(s for s in SiteColumns(obj).sites() if s.offset == 0xc and obj.sections[s.section].name == ".hyp.text")
    before = int.from_bytes(obj.section_data(s.section)[8:12], "little")
    assert decode(before, 8).text == "cbnz x0, #0x10"
    rw = rewrite(s.insn.klass, s.word, s.symbol_name, s.addend)
    assert rw.growth == 8 and rw.asm[-1] == "br x16"
    grown, growth = patch_object(obj, [Edit(s.section, s.offset, s.spec.number, rw.words, rw.relocs)])
    after = int.from_bytes(grown.section_data(s.section)[8:12], "little")
    assert decode(after, 8).text == "cbnz x0, #0x18" and growth.unreachable == ()


def test_operands_from_the_encoding_agree_with_capstone(objdir):
    """Registers, conditions and bit numbers come from the bits; capstone's text agrees
    (it spells x29 and x30 fp and lr in some instructions and not in others)."""
    seen = 0
    for src in sorted(FIXTURES.glob("*.S")):
        obj = read_object(str(src), assemble(src, objdir).read_bytes())
        for s in SiteColumns(obj).sites():
            ops = operands(s.word)
            if ops is None or s.insn is None:
                continue
            words = decode_uncached(s.word, 0).replace(",", " ").split()
            assert words[0] == (ops.op if ops.op != "b.cond" else f"b.{words[0][2:]}")
            if ops.bank:
                assert words[1] in (ops.register, {"x29": "fp", "x30": "lr"}.get(ops.register)), (words, ops)
            if ops.bit is not None:
                assert int(words[2].lstrip("#"), 0) == ops.bit
            seen += 1
    assert seen > 40


@pytest.mark.corpus
@pytest.mark.parametrize("model", ["script", "arm64-kernel"])
def test_prefix_kernel_fixes_are_the_2021_fix(model):
    """The pre-fix KVM entry code in a real vmlinux.o: the fix the kernel took, proved robust."""
    from reachsolve.model.files import load_model, with_script
    from testsupport.corpora import corpus_path

    p = corpus_path("tiny-prefix")
    if p is None or not (p / "vmlinux.o").exists():
        pytest.skip("corpus tiny-prefix not built (python -m benchmarks.corpus tiny-prefix)")
    m = with_script(load_model("free"), str(p / "vmlinux.lds")) if model == "script" else load_model(model)
    report = analyze([str(p / "vmlinux.o")], m)
    fix = {s.reloc: s.fix for s in report.findings()}
    assert fix["R_AARCH64_CONDBR19"].asm == ("cbnz x0, 1f", "b hyp_panic", "1:")
    assert fix["R_AARCH64_ADR_PREL_LO21"].asm == ("adrp x1, hyp_panic", "add x1, x1, :lo12:hyp_panic")
    for f in fix.values():
        assert f.verdict == "robust" and not f.decision.changed, f.note
        assert f.decision.grown == ((".text", 8),)
