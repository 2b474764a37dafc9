"""--final-link: undefined weak references decided on the value each linker gives them.

Each fixture in tests/fixtures/final_link/ states, beside every site, its verdict under
ld.lld and GNU ld for a static, PIE and shared link ("open": the symbol is preemptible
there and stays open-world). The oracle is the linkers themselves, run with
-static, -pie and -shared on the same object: a broken site is reported by that
linker, a resolved robust one is not, and where the link succeeds the word it wrote
is the one this test predicts from the linkers' rules (worked out here: ld.lld S = P+4
for branches and MOVW_PREL, P otherwise, ADRP P or 0 when hidden; GNU ld S = P, ADRP Page(P), b/bl a NOP).
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from reachsolve import analyze
from reachsolve.objfile.elf import read_object
from reachsolve.target.catalogue import BY_NAME
from reachsolve.target.encoding import insert
from testsupport.oracle import linked_word, rejection
from testsupport.toolchain import assemble, tool

HERE = Path(__file__).parent / "fixtures" / "final_link"
FILES = sorted(HERE.glob("*.S"))
TYPES = ("static", "pie", "shared")
FLAG = {"static": "-static", "pie": "-pie", "shared": "-shared"}
SCRIPT = "SECTIONS { . = 0x10ff0; .text : { *(.text) } .data : { *(.data) } .dynamic : { *(.dynamic) } }\n"
EXPECT = re.compile(r"//\s*lld:\s*(\w+)\s+(\w+)\s+(\w+)\s+bfd:\s*(\w+)\s+(\w+)\s+(\w+)")
NOP = 0xD503201F
# ld.lld's S = P+4 types: the branches, and MOVW_PREL (its movz is written with A+4).
NEXT = {"R_AARCH64_CONDBR19", "R_AARCH64_TSTBR14", "R_AARCH64_JUMP26", "R_AARCH64_CALL26",
        "R_AARCH64_MOVW_PREL_G0", "R_AARCH64_MOVW_PREL_G1", "R_AARCH64_MOVW_PREL_G2"}


def expected(src: Path) -> list[dict]:
    """Per site line, in order: {(linker, type): verdict}."""
    out = []
    for line in src.read_text().splitlines():
        m = EXPECT.search(line)
        if m and not line.lstrip().startswith("//"):
            v = m.groups()
            out.append({(lk, ty): v[3 * j + i] for j, lk in enumerate(("lld", "bfd")) for i, ty in enumerate(TYPES)})
    return out


def _link(linker: str, ftype: str, obj: Path, work: Path) -> tuple[subprocess.CompletedProcess, Path]:
    lds = work / "fl.lds"
    lds.write_text(SCRIPT)
    out = work / f"{obj.stem}.{linker}.{ftype}.out"
    out.unlink(missing_ok=True)
    p = subprocess.run([tool(linker), FLAG[ftype], "-T", str(lds), str(obj), "-o", str(out)],
                       capture_output=True, text=True, timeout=120)
    return p, out


def _page(x: int) -> int:
    return x & ~0xFFF


def predicted_word(linker: str, reloc: str, word: int, place: int, addend: int, hidden: bool) -> int:
    """The word the linker writes for a resolved undefined weak reference at ``place``."""
    spec = BY_NAME[reloc]
    if linker == "bfd" and reloc in ("R_AARCH64_CALL26", "R_AARCH64_JUMP26"):
        return NOP
    if spec.formula.name == "ABS":
        v = addend
    elif spec.formula.name == "PAGE":
        s = (0 if hidden else place) if linker == "lld" else _page(place)
        v = _page(s + addend) - _page(place)
    else:
        v = addend + (4 if linker == "lld" and reloc in NEXT else 0)
    return insert(spec.field, spec.scale, word, v)


@pytest.mark.parametrize("ftype", TYPES)
@pytest.mark.parametrize("linker", ["lld", "bfd"])
@pytest.mark.parametrize("src", FILES, ids=[p.stem for p in FILES])
def test_final_link_against_the_linkers(src, linker, ftype, tmp_path):
    obj = assemble(src, tmp_path)
    want = expected(src)
    r = analyze([str(obj)], "free", image_base=0x10000, image_max=16 << 20, linker=linker, final_link=ftype)
    assert not r.errors
    sites = sorted(r.all_sites(), key=lambda s: (s.section_index, s.offset))
    assert len(sites) == len(want), [s.reloc for s in sites]
    o = read_object(str(obj), obj.read_bytes())
    hidden = {o.symbol_name(i) for i in range(1, len(o.symbols)) if int(o.symbols["other"][i]) & 3 == 2}
    p, out = _link(linker, ftype, obj, tmp_path)
    checked = []
    for s, w in zip(sites, want):
        verdict = w[(linker, ftype)]
        where = f"{src.name} {s.section}+{s.offset:#x} {s.reloc}: {s.reason}"
        reported = rejection(linker, s.section, s.offset, s.reloc).search(p.stderr) is not None
        if verdict == "open":
            assert "undefined weak" not in s.reason and "preemptible" in " ".join(r.files[0].assumptions), where
            continue
        assert "undefined weak" in s.reason and f"in a {ftype} link" in s.reason, where
        assert s.verdict == verdict, where
        if verdict == "broken":
            assert reported, f"{where}\n{p.stderr}"
        else:
            assert not reported and "undefined weak" in s.reason, f"{where}\n{p.stderr}"
            if p.returncode == 0 and s.section == ".text":   # .text lies at 0x10ff0: P is known
                sec = o.sections[s.section_index]
                size = BY_NAME[s.reloc].field.container
                word = int.from_bytes(obj.read_bytes()[sec.offset + s.offset:][:size], "little")
                place = 0x10ff0 + s.offset
                got = linked_word(out, ".text", place, size, False)
                assert got == predicted_word(linker, s.reloc, word, place, s.addend, s.symbol in hidden), where
                checked.append(s.offset)
    if src.stem == "weak_resolved" and ftype == "static":
        assert p.returncode == 0 and len(checked) == len(want), p.stderr   # every word compared


def test_open_world_is_the_default_and_module_refuses_a_final_link(tmp_path):
    obj = assemble(HERE / "weak_overflow.S", tmp_path)
    r = analyze([str(obj)])
    assert all("undefined weak" not in s.reason for s in r.all_sites())
    assert {s.verdict for s in r.all_sites()} <= {"vulnerable", "robust"}   # never broken: it may stay undefined
    from reachsolve import ModelError
    with pytest.raises(ModelError, match="final_link"):
        analyze([str(obj)], linker="module", final_link="static")
    with pytest.raises(ModelError, match="final link type"):
        analyze([str(obj)], final_link="dynamic")


def test_a_weak_symbol_the_script_defines_takes_the_script_value(tmp_path):
    """`wd = 0x10400;` in the script defines the symbol: it is not undefined, whatever the output type."""
    src = tmp_path / "sdef.S"
    src.write_text("\t.text\n\t.weak wd\n\t.globl _start\n_start:\n\tcbz x0, wd+0x100000\n")
    obj = assemble(src, tmp_path)
    lds = tmp_path / "sdef.lds"
    lds.write_text("SECTIONS { . = 0x10000; .text : { *(.text) } }\nwd = 0x10400;\n")
    p = subprocess.run([tool("lld"), "-static", "-T", str(lds), str(obj), "-o", str(tmp_path / "a.out")],
                       capture_output=True, text=True)
    assert p.returncode != 0 and "out of range" in p.stderr   # 0x10400 + 0x100000 - 0x10000
    (s,) = analyze([str(obj)], linker_script=str(lds), placement="as-linked", final_link="static").all_sites()
    assert s.verdict == "broken" and "undefined weak" not in s.reason and s.as_linked == 0x100400, s.reason


@pytest.mark.parametrize("linker", ["lld", "bfd"])
@pytest.mark.parametrize("src", FILES, ids=[p.stem for p in FILES])
def test_query_of_a_resolved_weak_site_agrees_with_its_verdict(src, linker, tmp_path):
    """The library's query() of such a site is over the value the linker gives it: its
    failure is satisfiable exactly when the site is not robust (GNU ld's b/bl NOP has none)."""
    from reachsolve import query
    from reachsolve.prove.backend import solve
    obj = assemble(src, tmp_path)
    r = analyze([str(obj)], "free", image_base=0x10000, image_max=16 << 20, linker=linker, final_link="static",
                keep_objects=True)
    for s in r.all_sites():
        if "undefined weak" not in s.reason:
            continue
        try:
            q = query(s, r)
        except ValueError as exc:
            assert linker == "bfd" and s.reloc in ("R_AARCH64_CALL26", "R_AARCH64_JUMP26"), exc
            assert "NOP" in str(exc)
            continue
        fails = solve(q.model + [q.violation])
        assert (type(fails).__name__ == "Proved") == (s.verdict == "robust"), (s.reloc, s.offset, s.verdict)


def test_query_refuses_a_weak_site_the_linkers_resolve_differently(tmp_path):
    from reachsolve import query
    obj = assemble(HERE / "weak_overflow.S", tmp_path)
    r = analyze([str(obj)], "free", image_base=0x10000, image_max=16 << 20, final_link="static")
    s = next(s for s in r.all_sites() if s.reloc == "R_AARCH64_CONDBR19")
    with pytest.raises(ValueError, match="resolve it differently .*ld.lld: S = next; GNU ld: S = place"):
        query(s, r)
