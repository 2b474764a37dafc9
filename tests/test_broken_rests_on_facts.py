"""'Broken as linked' only where the linked layout fixes the value.

An undefined symbol (weak or not) has no as-linked address: such sites are
decided over every place the model allows, vulnerable at worst, never broken by
a guessed address. A GOT entry lies in the .got where the script puts it. Both
cases come from the linkers' own range tests: ld.lld and GNU ld link the same
object with the same script without a word."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from reachsolve import analyze
from reachsolve.report.repro import linker_script

WEAK = """\t.text
\t.weak\twsym
\t.globl\t_start
_start:
\tcbz\tx0, wsym
\ttbz\tx0, #1, wsym
\tadr\tx1, wsym
\tldr\tx2, wsym
\t.fill\t0x200000, 1, 0
"""
GOT = """\t.text
\t.globl\t_start
_start:\tnop
\tldr\tx0, :got:gsym
\t.data
\t.globl\tgsym
gsym:\t.quad 0
"""
SCRIPTS = {"weak": "SECTIONS { . = 0x10000; .text : { *(.text) } }\n",
           "got": "SECTIONS { . = 0; .text : { *(.text) } .got 0xffff8 : { *(.got) } .data : { *(.data) } }\n"}


def _build(tmp_path, name, src):
    (tmp_path / f"{name}.S").write_text(src)
    (tmp_path / f"{name}.lds").write_text(SCRIPTS[name])
    subprocess.run([shutil.which("clang"), "--target=aarch64-linux-gnu", "-c", str(tmp_path / f"{name}.S"), "-o",
                    str(tmp_path / f"{name}.o")], check=True)
    return tmp_path / f"{name}.o", tmp_path / f"{name}.lds"


def _link(linker, obj, lds, out):
    exe = shutil.which("ld.lld" if linker == "lld" else "aarch64-linux-gnu-ld")
    return subprocess.run([exe, "-T", str(lds), str(obj), "-o", str(out)], capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("placement", ["as-linked", "ordered"])
def test_undefined_weak_targets_are_never_broken_as_linked(tmp_path, placement):
    obj, lds = _build(tmp_path, "weak", WEAK)
    for linker in ("lld", "bfd"):   # both link it: each reference resolves without a word
        p = _link(linker, obj, lds, tmp_path / f"{linker}.out")
        assert p.returncode == 0 and "out of range" not in p.stderr, p.stderr
    r = analyze([str(obj)], linker_script=str(lds), placement=placement)
    sites = list(r.all_sites())
    assert len(sites) == 4
    assert {s.verdict for s in sites} == {"vulnerable"}        # open world: a definition may lie far off
    assert any("undefined wsym lies in the image" in a for a in r.files[0].assumptions)
    # each counterexample is a real one: ld.lld rejects the site with wsym where the layout puts it
    s = sites[0]
    lay = tmp_path / "repro.lds"
    lay.write_text(linker_script(s, "lld"))
    p = _link("lld", obj, lay, tmp_path / "repro.out")
    assert p.returncode != 0 and "out of range" in p.stderr and s.reloc in p.stderr


def test_a_got_slot_the_script_places_is_not_judged_by_a_guessed_address(tmp_path):
    obj, lds = _build(tmp_path, "got", GOT)
    p = _link("bfd", obj, lds, tmp_path / "bfd.out")      # ld.lld 14 does not know GOT_LD_PREL19
    assert p.returncode == 0, p.stderr
    r = analyze([str(obj)], linker_script=str(lds), placement="as-linked", linker="bfd")
    (s,) = r.all_sites()
    # the entry follows GNU ld's 8-byte header at 0x100000: the value is exactly 0xffffc
    assert s.reloc == "R_AARCH64_GOT_LD_PREL19" and s.verdict == "robust", s.reason
    assert "[0xffffc, 0xffffc]" in s.reason, s.reason
    assert any("lie in the linker's .got" in a for a in r.files[0].assumptions)


MISALIGNED_BL = """\t.text
\t.weak\twsym
\t.globl\t_start
_start:
\t.byte\t0
\tbl\twsym
\t.fill\t0x200000, 1, 0
"""
STRONG = """\t.text
\t.globl\t_start
_start:
\tcbz\tx0, ssym
\tadr\tx1, ssym
\t.fill\t0x200000, 1, 0
"""
SCRIPTS["bl"] = SCRIPTS["strong"] = SCRIPTS["weak"]


@pytest.mark.parametrize("placement", ["as-linked", "ordered"])
def test_a_weak_bl_at_an_unaligned_place_is_not_broken(tmp_path, placement):
    """ld.lld and GNU ld link it without a word (the bl resolves to the next instruction, or a
    NOP). Open world: a definition of wsym could never be reached with an aligned value, but
    wsym may stay undefined, so the site is vulnerable, not broken; with --final-link static
    it is decided on the linkers' value and is robust."""
    obj, lds = _build(tmp_path, "bl", MISALIGNED_BL)
    for linker in ("lld", "bfd"):
        p = _link(linker, obj, lds, tmp_path / f"{linker}.out")
        assert p.returncode == 0 and not p.stderr.strip(), p.stderr
    (s,) = analyze([str(obj)], linker_script=str(lds), placement=placement).all_sites()
    assert s.verdict == "vulnerable" and any("may stay undefined" in n for n in s.notes), s.reason
    (s,) = analyze([str(obj)], linker_script=str(lds), placement=placement, final_link="static").all_sites()
    assert s.verdict == "robust" and "undefined weak wsym in a static link" in s.reason, s.reason


@pytest.mark.parametrize("placement", ["as-linked", "ordered"])
def test_weak_targets_under_final_link_static_are_robust_as_the_linkers_link_them(tmp_path, placement):
    obj, lds = _build(tmp_path, "weak", WEAK)
    for linker in ("lld", "bfd"):
        r = analyze([str(obj)], linker_script=str(lds), placement=placement, linker=linker, final_link="static")
        sites = list(r.all_sites())
        assert len(sites) == 4 and {s.verdict for s in sites} == {"robust"}, [s.reason for s in sites]
        assert any("final link static" in a for a in r.files[0].assumptions)


def test_a_strong_undefined_target_is_vulnerable_not_broken_as_linked(tmp_path):
    """No as-linked address: decided over every place the model allows; some fit."""
    obj, lds = _build(tmp_path, "strong", STRONG)
    r = analyze([str(obj)], linker_script=str(lds), placement="as-linked")
    sites = list(r.all_sites())
    assert len(sites) == 2 and {s.verdict for s in sites} == {"vulnerable"}
    assert all(s.as_linked is None for s in sites)
