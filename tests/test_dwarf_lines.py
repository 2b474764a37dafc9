"""Every listed site reports the source file and line DWARF gives for it (objfile/dwarf.py).

The fixtures (tests/fixtures/dwarf/) put sites in several sections that all start at
offset 0, in assembly and in C (-ffunction-sections); each site's line carries a
"SRC function+offset" marker, and that line of that file is the expected answer.
They are compiled with clang -g at test time, as DWARF 4 and DWARF 5, from a
subdirectory (so paths are comp_dir + directory + file), and also joined with
ld -r by ld.lld and by GNU ld, which places a sequence of the merged .text.one by
section symbol plus addend, and put in an archive.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from reachsolve import analyze
from reachsolve.cli import main
from reachsolve.objfile.dwarf import LineTable
from reachsolve.objfile.elf import read_object
from testsupport.toolchain import FIXTURES, tool

SRC = FIXTURES / "dwarf"
C_FLAGS = ["-O1", "-fno-pic", "-mcmodel=tiny", "-ffunction-sections", "-fno-asynchronous-unwind-tables"]
MARK = re.compile(r"SRC (\w+)\+(0x[0-9a-f]+)")


def _expected(*names: str) -> dict[tuple[str, int], tuple[str, int]]:
    """(function, offset) -> (path under the build directory, line), from the markers."""
    out = {}
    for name in names:
        for n, text in enumerate((SRC / name).read_text().splitlines(), 1):
            m = MARK.search(text)
            if m and not text.lstrip().startswith("//"):
                out[(m.group(1), int(m.group(2), 16))] = (f"sub/{name}", n)
    return out


def _cc(work: Path, src: str, out: str, dwarf: int) -> Path:
    flags = C_FLAGS if src.endswith(".c") else []
    subprocess.run([tool("clang"), "--target=aarch64-linux-gnu", "-g", f"-gdwarf-{dwarf}", *flags, "-c",
                    f"sub/{src}", "-o", out], cwd=work, check=True, capture_output=True, text=True)
    return work / out


@pytest.fixture(scope="module", params=[4, 5], ids=["dwarf4", "dwarf5"])
def build(request, tmp_path_factory):
    work = tmp_path_factory.mktemp(f"dwarf{request.param}")
    (work / "sub").mkdir()
    for name in ("lines.S", "lines_c.c", "more.S"):
        shutil.copy(SRC / name, work / "sub" / name)
    v = request.param
    objs = {n: _cc(work, n, f"{Path(n).stem}.o", v) for n in ("lines.S", "lines_c.c", "more.S")}
    return work, v, objs


def _check(report, expected, root=None):
    got = {}
    for s in report.listed:
        assert s.function is not None, s
        assert s.source is not None, (s.section, s.offset)
        path = s.source.file if root is None else str(Path(root) / s.source.file)
        got[s.function] = (path, s.source.line)
    assert got == expected


def test_sections_sharing_offset_zero(build):
    work, v, objs = build
    for name in ("lines.S", "lines_c.c"):
        r = analyze([str(objs[name])], source_root=str(work))
        assert not r.errors
        _check(r, _expected(name))
        assert len({s.section for s in r.listed}) >= 3  # several sections, all from offset 0
        assert sum(1 for s in r.listed if s.offset == 0) >= 2


def test_paths_are_comp_dir_dir_file_without_a_root(build):
    work, v, objs = build
    r = analyze([str(objs["lines.S"])])
    assert {s.source.file for s in r.listed} == {str(work / "sub" / "lines.S")}
    assert all(s.source.column is None for s in r.listed)  # the assembler gives no column (0)
    c = analyze([str(objs["lines_c.c"])])
    assert all(isinstance(s.source.column, int) and s.source.column > 0 for s in c.listed)


@pytest.mark.parametrize("linker", ["lld", "bfd"])
def test_ld_r_merged_sections_are_told_apart_by_addend(build, linker):
    work, v, objs = build
    out = work / f"merged.{linker}.o"
    subprocess.run([tool(linker), "-r", str(objs["lines.S"]), str(objs["lines_c.c"]), str(objs["more.S"]),
                    "-o", str(out)], check=True, capture_output=True, text=True)
    r = analyze([str(out)], source_root=str(work))
    _check(r, _expected("lines.S", "lines_c.c", "more.S"))
    again = [s for s in r.listed if s.function and s.function[0] == "again"]
    assert again and all(s.section == ".text.one" and s.offset > 0 for s in again)


def test_archive_members(build):
    work, v, objs = build
    lib = work / "lib.a"
    lib.unlink(missing_ok=True)
    subprocess.run([tool("ar"), "rcs", str(lib), str(objs["lines.S"]), str(objs["lines_c.c"])], check=True)
    r = analyze([str(lib)], source_root=str(work))
    assert sorted({s.file for s in r.listed}) == [f"{lib}(lines.o)", f"{lib}(lines_c.o)"]
    _check(r, _expected("lines.S", "lines_c.c"))


def test_local_label_names_the_target(build):
    work, v, objs = build
    (adr,) = [s for s in analyze([str(objs["lines.S"])]).listed if s.reloc == "R_AARCH64_ADR_PREL_LO21"]
    assert (adr.symbol, adr.addend, adr.target_label) == (".rodata", 25, "msg")
    others = [s for s in analyze([str(objs["lines.S"])]).listed if s is not adr and s.reloc != "R_AARCH64_ADR_PREL_LO21"]
    assert all(s.target_label is None for s in others)  # a named symbol needs no label


def test_json_and_text(build, tmp_path, capsys):
    work, v, objs = build
    out = tmp_path / "r.json"
    main(["check", str(objs["lines.S"]), "--json", str(out), "--source-root", str(work)])
    text = capsys.readouterr().out
    doc = json.loads(out.read_text())
    want = _expected("lines.S")
    for s in doc["sites"]:
        f = s["function"]
        assert s["source"] == {"file": want[(f["name"], f["offset"])][0], "line": want[(f["name"], f["offset"])][1],
                               "column": None}
    assert ">>> one+0x4 (sub/lines.S:12): cbz x0" in text
    assert "; references msg" in text
    (adr,) = [s for s in doc["sites"] if s["reloc"] == "R_AARCH64_ADR_PREL_LO21"]
    assert (adr["symbol"], adr["target_label"]) == (".rodata", "msg")


def test_source_lines_off_and_no_debug_info(build, tmp_path):
    work, v, objs = build
    r = analyze([str(objs["lines.S"])], source_lines=False)
    assert r.listed and all(s.source is None for s in r.listed)
    plain = tmp_path / "plain.o"
    subprocess.run([tool("clang"), "--target=aarch64-linux-gnu", "-c", str(SRC / "lines.S"), "-o", str(plain)],
                   check=True)
    assert all(s.source is None for s in analyze([str(plain)]).listed)


def test_same_report_whatever_the_jobs(build, tmp_path):
    work, v, objs = build
    paths = [str(objs[n]) for n in ("lines.S", "lines_c.c", "more.S")]
    outs = []
    for jobs in (1, 2):
        out = tmp_path / f"j{jobs}.json"
        main(["check", *paths, "--jobs", str(jobs), "--json", str(out), "--source-root", str(work)])
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]


def test_a_bad_source_root_is_one_line_exit_2(build, tmp_path, capsys):
    work, v, objs = build
    assert main(["check", str(objs["lines.S"]), "--source-root", str(tmp_path / "absent")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"reachsolve: error: --source-root {tmp_path / 'absent'}: not a directory"]


def test_a_path_outside_the_root_stays_as_dwarf_gives_it(build, tmp_path):
    work, v, objs = build
    r = analyze([str(objs["lines.S"])], source_root=str(tmp_path))
    assert {s.source.file for s in r.listed} == {str(work / "sub" / "lines.S")}


def _corrupt(data: bytearray, obj, name: str, seed: int) -> None:
    (sec,) = [s for s in obj.sections if s.name == name]
    for k in range(seed % 7, sec.size, 5 + seed % 3):
        data[sec.offset + k] ^= 0x5A + seed


@pytest.mark.parametrize("section", [".debug_line", ".debug_info", ".debug_abbrev"])
def test_corrupt_debug_sections_give_no_line_never_a_crash(build, tmp_path, section):
    work, v, objs = build
    data = bytearray(objs["lines_c.c"].read_bytes())
    _corrupt(data, read_object("x", bytes(data)), section, 1)
    bad = tmp_path / "bad.o"
    bad.write_bytes(bytes(data))
    r = analyze([str(bad)], source_root=str(work))
    assert not r.errors and len(r.listed) == 3
    want = _expected("lines_c.c")
    for s in r.listed:   # a line is either absent or, where the damage missed it, right
        assert s.source is None or (s.source.file, s.source.line) == want[s.function] or section == ".debug_line"


def test_only_the_line_programs_that_may_hold_a_site_are_decoded(build):
    work, v, objs = build
    out = work / "merged.lld.o"
    if not out.exists():
        subprocess.run([tool("lld"), "-r", str(objs["lines.S"]), str(objs["lines_c.c"]), str(objs["more.S"]),
                        "-o", str(out)], check=True, capture_output=True, text=True)
    obj = read_object(out.name, out.read_bytes())
    table = LineTable(obj)
    get_b = [s.index for s in obj.sections if s.name == ".text.get_b"][0]
    assert table.lookup(get_b, 0).line == _expected("lines_c.c")[("get_b", 0)][1]
    assert table.stats == {"decoded": 1, "refused": 0}   # lines_c.c's unit only, of three


def test_set_address_against_a_function_symbol_plus_addend(tmp_path):
    """handmade.S writes its own DWARF 4 line table: DW_LNE_set_address fn+8 (ABS64 against
    the global fn, addend 8); its "LINE path:n" markers are the expected answers, and a site
    no row covers has no source."""
    src = SRC / "handmade.S"
    obj = tmp_path / "handmade.o"
    subprocess.run([tool("clang"), "--target=aarch64-linux-gnu", "-c", str(src), "-o", str(obj)], check=True)
    want = {}
    for text in src.read_text().splitlines():
        m = re.search(r"cbz\s+x\d.*//\s*(?:LINE (\S+):(\d+)|no row)", text)
        if m:
            want[len(want) * 4 + 4] = (m.group(1), int(m.group(2))) if m.group(1) else None
    r = analyze([str(obj)])
    got = {s.offset: (s.source.file, s.source.line) if s.source else None for s in r.listed}
    assert got == want == {4: None, 8: ("/src/inc/hand.S", 100), 12: ("/src/inc/hand.S", 101)}


def test_a_root_given_through_a_symbolic_link(build, tmp_path):
    """A compiler records getcwd(), the real path; a root named through a link still applies."""
    work, v, objs = build
    link = tmp_path / "tree"
    link.symlink_to(work, target_is_directory=True)
    r = analyze([str(objs["lines.S"])], source_root=str(link))
    assert {s.source.file for s in r.listed} == {"sub/lines.S"}


@pytest.mark.parametrize("dwarf", [4, 5])
def test_big_endian_objects(tmp_path, dwarf):
    (tmp_path / "sub").mkdir()
    shutil.copy(SRC / "lines.S", tmp_path / "sub" / "lines.S")
    subprocess.run([tool("clang"), "--target=aarch64_be-linux-gnu", "-g", f"-gdwarf-{dwarf}", "-c", "sub/lines.S",
                    "-o", "be.o"], cwd=tmp_path, check=True)
    _check(analyze([str(tmp_path / "be.o")], source_root=str(tmp_path)), _expected("lines.S"))


def test_a_dwarf5_count_without_a_format_neither_hangs_nor_fills_memory(tmp_path):
    """directory_entry_format_count 0 with a directories_count of 2^21 - 1 (the field after
    it is relocated, so the LEB128 ends first): pyelftools would make that many empty
    entries; the header check refuses the unit (no source)."""
    (tmp_path / "sub").mkdir()
    shutil.copy(SRC / "lines.S", tmp_path / "sub" / "lines.S")
    subprocess.run([tool("clang"), "--target=aarch64-linux-gnu", "-g", "-gdwarf-5", "-c", "sub/lines.S",
                    "-o", "x.o"], cwd=tmp_path, check=True)
    data = bytearray((tmp_path / "x.o").read_bytes())
    (sec,) = [s for s in read_object("x", bytes(data)).sections if s.name == ".debug_line"]
    at = sec.offset + 4 + 2 + 1 + 1 + 4 + 6 + 12   # directory_entry_format_count (opcode_base 13)
    data[at:at + 4] = bytes([0, 0xFF, 0xFF, 0x7F])
    bad = tmp_path / "bad.o"
    bad.write_bytes(bytes(data))
    obj = read_object("bad", bytes(data))
    table = LineTable(obj)
    one = [x.index for x in obj.sections if x.name == ".text.one"][0]
    assert table.lookup(one, 4) is None
    assert table.stats == {"decoded": 0, "refused": 1}
    code = ("import sys; from reachsolve import analyze; r = analyze([sys.argv[1]]); "
            "print(len(r.listed), sum(s.source is not None for s in r.listed), len(r.errors))")
    proc = subprocess.run([sys.executable, "-c", code, str(bad)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["5", "0", "0"]


@pytest.mark.parametrize("dwarf", [4, 5])
def test_rows_out_of_address_order_after_a_subsection(tmp_path, dwarf):
    """A wrapping advance (address arithmetic is modulo 2^64) moves back over a subsection;
    the rows are sorted by address, not refused, and each site gets its own line."""
    (tmp_path / "sub").mkdir()
    shutil.copy(SRC / "subsection.S", tmp_path / "sub" / "subsection.S")
    obj = _cc(tmp_path, "subsection.S", "subsection.o", dwarf)
    r = analyze([str(obj)])
    got = {s.function: (s.source.file, s.source.line) for s in r.listed}
    want = {k: (str(tmp_path / v[0]), v[1]) for k, v in _expected("subsection.S").items()}
    assert got == want
