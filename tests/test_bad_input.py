"""Bad input: whatever is not a valid ELF64 AArch64 relocatable object is one
error line on stderr naming the file and the problem, exit status 2, no
traceback, and every other file of the same run is still analyzed.

Corrupt objects are the bundled demo object with bytes patched (located by
parsing its header and section headers here, with struct); foreign objects,
linked images and archives come from the real toolchain. The CLI runs in a
subprocess (``python -m reachsolve``) so that a traceback would be seen; the
property test calls ``reachsolve.cli.main`` in-process for speed.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from testsupport.toolchain import tool
from reachsolve import cli
from reachsolve.report.render import json_site_rows

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "reachsolve" / "data" / "demo.o"
DEMO_BYTES = DEMO.read_bytes()

# A tiny valid object: one TSTBR14 site inside one section (robust, no solver).
GOOD_S = "\t.text\n\t.globl f\nf:\ttbnz x0, #0, g\n\t.globl g\ng:\tret\n"

# -- ELF64 little-endian layout, parsed independently of reachsolve ------------------
EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
E_FIELDS = ("ident type machine version entry phoff shoff flags ehsize phentsize phnum "
            "shentsize shnum shstrndx").split()
SHDR = struct.Struct("<IIQQQQIIQQ")
S_FIELDS = "name type flags addr offset size link info addralign entsize".split()
SYM_SIZE = RELA_SIZE = 24
SHT_PROGBITS, SHT_SYMTAB, SHT_STRTAB, SHT_RELA, SHT_NOBITS = 1, 2, 3, 4, 8


class Elf:
    """Header and section headers of an ELF64 LE object, and patched copies of it."""

    def __init__(self, data: bytes):
        self.data = bytes(data)
        self.h = dict(zip(E_FIELDS, EHDR.unpack_from(self.data, 0)))
        self.sh = [dict(zip(S_FIELDS, SHDR.unpack_from(self.data, self.h["shoff"] + 64 * i)))
                   for i in range(self.h["shnum"])]
        names = self.sh[self.h["shstrndx"]]
        table = self.data[names["offset"]:names["offset"] + names["size"]]
        for s in self.sh:
            s["_name"] = table[s["name"]:table.index(b"\0", s["name"])].decode()

    def index(self, *, type: int | None = None, name: str | None = None) -> int:
        return next(i for i, s in enumerate(self.sh)
                    if (type is None or s["type"] == type) and (name is None or s["_name"] == name))

    @property
    def symtab(self) -> int:
        return self.index(type=SHT_SYMTAB)

    @property
    def rela(self) -> int:  # the first SHT_RELA section (.rela.hyp.text in the demo)
        return self.index(type=SHT_RELA)

    def with_header(self, **fields) -> bytes:
        h = {**self.h, **fields}
        out = bytearray(self.data)
        EHDR.pack_into(out, 0, *(h[k] for k in E_FIELDS))
        return bytes(out)

    def with_section(self, i: int, **fields) -> bytes:
        s = {**self.sh[i], **fields}
        out = bytearray(self.data)
        SHDR.pack_into(out, self.h["shoff"] + 64 * i, *(s[k] for k in S_FIELDS))
        return bytes(out)

    def with_bytes(self, offset: int, fmt: str, value: int) -> bytes:
        out = bytearray(self.data)
        struct.pack_into(fmt, out, offset, value)
        return bytes(out)

    def sym_offset(self, k: int) -> int:
        return self.sh[self.symtab]["offset"] + SYM_SIZE * k

    def nsyms(self) -> int:
        return self.sh[self.symtab]["size"] // SYM_SIZE


DEMO_ELF = Elf(DEMO_BYTES)


# -- toolchain products (built once) ------------------------------------------------
@dataclass
class Kit:
    dir: Path
    good: Path       # tiny valid AArch64 object
    clang: str
    lld: str
    ar: str

    def assemble(self, name: str, source: str, target: str) -> Path:
        src = self.dir / f"{name}.S"
        src.write_text(source)
        out = self.dir / f"{name}.o"
        subprocess.run([self.clang, f"--target={target}", "-c", str(src), "-o", str(out)],
                       check=True, capture_output=True, text=True)
        return out


@pytest.fixture(scope="session")
def kit(tmp_path_factory) -> Kit:
    d = tmp_path_factory.mktemp("badinput")
    k = Kit(d, d / "good.o", tool("clang"), tool("lld"), tool("ar"))
    k.good = k.assemble("good", GOOD_S, "aarch64-linux-gnu")
    return k


@pytest.fixture
def work(tmp_path: Path, kit: Kit) -> Path:
    """A fresh directory holding two copies of the valid object: first.o and last.o."""
    shutil.copy(kit.good, tmp_path / "first.o")
    shutil.copy(kit.good, tmp_path / "last.o")
    return tmp_path


# -- running the CLI ------------------------------------------------------------------
@dataclass
class Run:
    rc: int
    stdout: str
    stderr: str

    @property
    def report(self) -> dict:
        return json.loads(self.stdout)

    def site_files(self) -> set[str]:
        return {s["file"] for s in json_site_rows(self.report)}


def run_cli(cwd: Path, *files: str, fmt: str = "json") -> Run:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    every = ["--all-sites"] if fmt == "json" else []   # site_files() counts robust sites too
    p = subprocess.run([sys.executable, "-m", "reachsolve", "check", "--format", fmt, *every, *files],
                       cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
    return Run(p.returncode, p.stdout, p.stderr)


def assert_one_error(r: Run, name: str, pattern: str | None = None) -> str:
    """Exit 2, no traceback, exactly one stderr line, naming ``name`` (and matching ``pattern``)."""
    assert "Traceback" not in r.stderr, r.stderr
    assert "Traceback" not in r.stdout, r.stdout
    assert r.rc == 2, (r.rc, r.stderr)
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    line = lines[0]
    assert line.startswith("reachsolve: error: "), line
    assert name in line, line
    if pattern:
        assert re.search(pattern, line, re.I), line
    errors = r.report["errors"]
    assert [e["file"] for e in errors] == [name], errors
    assert errors[0]["message"] and "\n" not in errors[0]["message"]
    return line


def check_bad(work: Path, bad: str, pattern: str | None = None, *, named: str | None = None) -> Run:
    """Run first.o, ``bad``, last.o: one error, for ``named`` (default: ``bad``, else an archive
    member inside it); both valid objects are still analyzed."""
    r = run_cli(work, "first.o", bad, "last.o")
    assert_one_error(r, named or bad, pattern)
    assert {"first.o", "last.o"} <= r.site_files(), r.report
    return r


# -- ELF objects that are not valid ELF64 AArch64 relocatable objects -------------------------
def _sym_name_past_strtab(e: Elf) -> bytes:
    strtab = e.sh[e.sh[e.symtab]["link"]]
    return e.with_bytes(e.sym_offset(e.nsyms() - 1), "<I", strtab["size"] + 0x100)


def _reloc_symbol_past_symtab(e: Elf) -> bytes:
    entry = e.sh[e.rela]["offset"] + RELA_SIZE * 1
    info = struct.unpack_from("<Q", e.data, entry + 8)[0]
    return e.with_bytes(entry + 8, "<Q", ((e.nsyms() + 7) << 32) | (info & 0xFFFFFFFF))


def _xindex_without_table(e: Elf) -> bytes:
    return e.with_bytes(e.sym_offset(e.nsyms() - 1) + 6, "<H", 0xFFFF)  # st_shndx = SHN_XINDEX


def _text_section(e: Elf) -> int:
    return e.index(name=".hyp.text")


PATCHED = [
    # (id, builder(Elf) -> bytes, pattern the error line must match)
    ("text-file", lambda e: b"this is a text file, not an object\n", r"not an ELF"),
    ("empty", lambda e: b"", r"empty"),
    ("truncated-10", lambda e: e.data[:10], r"truncated"),
    ("truncated-63", lambda e: e.data[:63], r"truncated ELF header"),
    ("truncated-64", lambda e: e.data[:64], r"section header"),
    ("truncated-half", lambda e: e.data[:len(e.data) // 2], r"section header|past the end"),
    ("truncated-len-1", lambda e: e.data[:-1], r"past the end"),
    ("e_type-ET_DYN-patched", lambda e: e.with_header(type=3), r"ET_DYN"),
    ("e_type-ET_CORE-patched", lambda e: e.with_header(type=4), r"ET_CORE"),
    ("e_machine-patched", lambda e: e.with_header(machine=0x1234), r"EM_AARCH64"),
    ("shoff-past-end", lambda e: e.with_header(shoff=len(e.data) + 0x1000), r"section header table"),
    ("shoff-2^64-1", lambda e: e.with_header(shoff=2**64 - 1), r"section header table"),
    ("shoff-straddles-end", lambda e: e.with_header(shoff=len(e.data) - 100), r"past the end"),
    ("shnum-0xffff", lambda e: e.with_header(shnum=0xFFFF), r"section count 65535"),
    ("shstrndx-out-of-range", lambda e: e.with_header(shstrndx=e.h["shnum"] + 5), r"name table index"),
    ("shentsize-wrong", lambda e: e.with_header(shentsize=40), r"e_shentsize"),
    ("symtab-offset-past-end", lambda e: e.with_section(e.symtab, offset=len(e.data) - 8), r"past the end"),
    ("symtab-size-past-end", lambda e: e.with_section(e.symtab, size=SYM_SIZE * 10_000), r"past the end"),
    ("rela-offset-past-end", lambda e: e.with_section(e.rela, offset=2**64 - 16), r"past the end"),
    ("rela-size-huge-count", lambda e: e.with_section(e.rela, size=RELA_SIZE * 2**40), r"past the end"),
    ("section-size-2^63", lambda e: e.with_section(_text_section(e), size=2**63), r"past the end"),
    ("symbol-name-past-strtab", _sym_name_past_strtab, r"outside the string table"),
    ("reloc-symbol-past-symtab", _reloc_symbol_past_symtab, r"names symbol \d+, but the symbol table has"),
    ("rela-sh_info-nonsense", lambda e: e.with_section(e.rela, info=0x7777), r"sh_info"),
    ("rela-sh_info-zero", lambda e: e.with_section(e.rela, info=0), r"sh_info"),
    ("rela-sh_info-symtab", lambda e: e.with_section(e.rela, info=e.symtab), r"sh_info"),
    ("rela-sh_info-itself", lambda e: e.with_section(e.rela, info=e.rela), r"sh_info"),
    ("rela-sh_entsize", lambda e: e.with_section(e.rela, entsize=7), r"sh_entsize"),
    ("rela-sh_link-not-symtab", lambda e: e.with_section(e.rela, link=e.rela), r"sh_link \d+ is not the symbol table"),
    ("rela-size-not-multiple", lambda e: e.with_section(e.rela, size=RELA_SIZE * 2 + 5),
     r"size 0x[0-9a-f]+ is not a multiple of its entry size 24"),
    ("symtab-sh_entsize", lambda e: e.with_section(e.symtab, entsize=16), r"sh_entsize"),
    ("symtab-size-not-multiple", lambda e: e.with_section(e.symtab, size=SYM_SIZE * 2 + 5), r"multiple"),
    ("symtab-sh_link-not-strtab", lambda e: e.with_section(e.symtab, link=e.rela), r"sh_link"),
    ("shn_xindex-without-shndx-table", _xindex_without_table, r"SHN_XINDEX"),
    ("sh_addralign-3", lambda e: e.with_section(_text_section(e), addralign=3), r"power of two"),
    ("sh_addralign-0x30", lambda e: e.with_section(e.symtab, addralign=0x30), r"power of two"),
    ("section-name-past-table", lambda e: e.with_section(_text_section(e), name=0x10000), r"string offset"),
]


@pytest.mark.parametrize("build,pattern", [pytest.param(b, p, id=i) for i, b, p in PATCHED])
def test_corrupt_object(work: Path, build, pattern):
    (work / "bad.o").write_bytes(build(DEMO_ELF))
    check_bad(work, "bad.o", pattern)


def test_elf32_object(work: Path, kit: Kit):
    obj = kit.assemble("arm32", "\t.text\nf:\tbx lr\n", "arm-linux-gnueabi")
    assert obj.read_bytes()[4] == 1  # ELFCLASS32
    shutil.copy(obj, work / "arm32.o")
    check_bad(work, "arm32.o", r"ELF32")


def test_other_machine(work: Path, kit: Kit):
    shutil.copy(kit.assemble("x86", "\t.text\nf:\tret\n", "x86_64-linux-gnu"), work / "x86.o")
    check_bad(work, "x86.o", r"EM_X86_64")


@pytest.mark.parametrize("flags,pattern", [(["-e", "f"], r"ET_EXEC"), (["-shared"], r"ET_DYN")],
                         ids=["executable", "shared-object"])
def test_linked_image(work: Path, kit: Kit, flags, pattern):
    subprocess.run([kit.lld, *flags, str(kit.good), "-o", str(work / "image")],
                   check=True, capture_output=True, text=True)
    check_bad(work, "image", pattern)


def test_newline_in_section_name_stays_on_one_line(work: Path):
    """A name from the file that contains a newline must not split the error line."""
    e = DEMO_ELF
    names = e.sh[e.h["shstrndx"]]
    at = names["offset"] + e.sh[e.rela]["name"] + len(".rela")  # '.rela.hyp.text' -> '.rela\nhyp.text'
    patched = Elf(e.with_bytes(at, "<B", ord("\n")))
    (work / "bad.o").write_bytes(patched.with_section(patched.rela, entsize=7))
    r = check_bad(work, "bad.o", r"sh_entsize")
    assert ".rela\\nhyp.text" in r.stderr  # escaped, on the one error line


def test_nobits_section_of_size_2_63_is_only_too_big(work: Path):
    """A NOBITS section of 2**63 bytes is well-formed: no error, the sites are unknown."""
    e = DEMO_ELF
    empty_text = e.index(name=".text")  # size 0, nothing refers to it
    patched = Elf(e.with_section(empty_text, type=SHT_NOBITS, size=2**63))
    (work / "big.o").write_bytes(patched.data)
    r = run_cli(work, "big.o", "last.o")
    assert "Traceback" not in r.stderr and r.stderr == "", r.stderr
    assert r.rc in (0, 1) and r.report["errors"] == []
    big = [s for s in r.report["sites"] if s["file"] == "big.o"]
    assert not [t for t in r.report["proved"] if t["file"] == "big.o"]
    assert big and all(s["verdict"] == "unknown" and "cannot hold" in s["reason"] for s in big)
    assert "last.o" in r.site_files()


def test_empty_string_table_is_accepted(work: Path):
    """gABI: a string table may be empty, and then offset 0 names the empty string."""
    e = DEMO_ELF
    spare = e.index(name=".text")  # size 0, no symbol or relocation refers to it
    d = Elf(e.with_section(spare, type=SHT_STRTAB, flags=0, size=0, addralign=1))
    d = Elf(d.with_section(d.symtab, link=spare))
    for k in range(d.nsyms()):
        d = Elf(d.with_bytes(d.sym_offset(k), "<I", 0))
    (work / "nostr.o").write_bytes(d.data)
    r = run_cli(work, "nostr.o")
    assert r.stderr == "" and r.rc in (0, 1), r.stderr
    assert "nostr.o" in r.site_files()


# -- archives -----------------------------------------------------------------------------------------
def ar_member(name: bytes, data: bytes, size: int | None = None) -> bytes:
    """One ar member: 60-byte header (name field as given) and the data, padded to even."""
    size = len(data) if size is None else size
    hdr = (name.ljust(16) + b"0".ljust(12) + b"0".ljust(6) + b"0".ljust(6) + b"644".ljust(8)
           + str(size).encode().ljust(10) + b"`\n")
    assert len(hdr) == 60
    return hdr + data + (b"\n" if len(data) & 1 else b"")


def ar_headers(data: bytes) -> list[tuple[int, bytes, int]]:
    """(offset, name field, size) of every member of a regular archive."""
    out, pos = [], 8
    while pos + 60 <= len(data):
        size = int(data[pos + 48:pos + 58])
        out.append((pos, data[pos:pos + 16], size))
        pos += 60 + size + (size & 1)
    return out


def llvm_ar(kit: Kit, cwd: Path, *args: str) -> None:
    subprocess.run([kit.ar, *args], cwd=cwd, check=True, capture_output=True, text=True)


def test_archive_members_are_named_like_linkers_do(work: Path, kit: Kit):
    shutil.copy(kit.good, work / "a.o")
    shutil.copy(kit.good, work / "b.o")
    llvm_ar(kit, work, "rc", "lib.a", "a.o", "b.o")
    r = run_cli(work, "lib.a")
    assert r.rc in (0, 1) and r.stderr == "", r.stderr
    assert r.site_files() == {"lib.a(a.o)", "lib.a(b.o)"} and r.report["errors"] == []


def test_gnu_long_member_names(work: Path, kit: Kit):
    long = "a_member_name_longer_than_15.o"
    shutil.copy(kit.good, work / long)
    shutil.copy(kit.good, work / "b.o")
    llvm_ar(kit, work, "rc", "--format=gnu", "long.a", long, "b.o")
    assert b"//" in (work / "long.a").read_bytes()[:200]  # the GNU long-name table is there
    r = run_cli(work, "long.a")
    assert r.rc in (0, 1) and r.stderr == "", r.stderr
    assert r.site_files() == {f"long.a({long})", "long.a(b.o)"}


def test_bsd_archive_symbol_table_is_not_a_member(work: Path, kit: Kit):
    """BSD archives store __.SYMDEF under a #1/ long name: it is the symbol table, not an object."""
    long = "a_member_name_longer_than_15.o"
    shutil.copy(kit.good, work / long)
    llvm_ar(kit, work, "rcs", "--format=bsd", "bsd.a", long)
    r = run_cli(work, "bsd.a")
    assert r.rc in (0, 1) and r.stderr == "", r.stderr
    assert r.report["errors"] == [] and r.site_files() == {f"bsd.a({long})"}


def test_thin_archive(work: Path, kit: Kit):
    long = "a_member_name_longer_than_15.o"
    shutil.copy(kit.good, work / "a.o")
    shutil.copy(kit.good, work / long)
    llvm_ar(kit, work, "rcT", "thin.a", "a.o", long)
    assert (work / "thin.a").read_bytes().startswith(b"!<thin>\n")
    r = run_cli(work, "thin.a")
    assert r.rc in (0, 1) and r.stderr == "", r.stderr
    assert r.site_files() == {"thin.a(a.o)", f"thin.a({long})"}


def test_thin_archive_missing_member(work: Path, kit: Kit):
    shutil.copy(kit.good, work / "a.o")
    shutil.copy(kit.good, work / "gone.o")
    llvm_ar(kit, work, "rcT", "thin.a", "a.o", "gone.o")
    (work / "gone.o").unlink()
    r = check_bad(work, "thin.a", r"No such file", named="thin.a(gone.o)")
    assert "thin.a(a.o)" in r.site_files()


def test_thin_archive_member_path_with_nul(work: Path, kit: Kit):
    names = b"a.o/\nb\0d.o/\n"
    data = b"!<thin>\n" + ar_member(b"//", names) + ar_member(b"/0", b"", size=552) + ar_member(b"/5", b"", size=8)
    shutil.copy(kit.good, work / "a.o")
    (work / "thin.a").write_bytes(data)
    r = check_bad(work, "thin.a", r"null", named="thin.a(b\\x00d.o)")
    assert "thin.a(a.o)" in r.site_files()


def test_archive_member_not_elf(work: Path, kit: Kit):
    shutil.copy(kit.good, work / "a.o")
    shutil.copy(kit.good, work / "b.o")
    (work / "notes.txt").write_text("not an object\n")
    llvm_ar(kit, work, "rc", "mixed.a", "a.o", "notes.txt", "b.o")
    r = check_bad(work, "mixed.a", r"not an ELF", named="mixed.a(notes.txt)")
    assert {"mixed.a(a.o)", "mixed.a(b.o)"} <= r.site_files()


def test_archive_member_name_with_newline(work: Path, kit: Kit):
    good = kit.good.read_bytes()
    name = b"bad\nname.o"
    data = (b"!<arch>\n" + ar_member(b"a.o/", good)
            + ar_member(b"#1/%d" % len(name), name + b"garbage, not ELF\n"))
    (work / "nl.a").write_bytes(data)
    r = check_bad(work, "nl.a", r"not an ELF", named="nl.a(bad\\nname.o)")
    assert "nl.a(a.o)" in r.site_files()


@pytest.fixture
def lib_a(work: Path, kit: Kit) -> bytes:
    shutil.copy(kit.good, work / "a.o")
    shutil.copy(kit.good, work / "b.o")
    llvm_ar(kit, work, "rc", "lib.a", "a.o", "b.o")
    return (work / "lib.a").read_bytes()


@pytest.mark.parametrize("size", [b"9999999999", b"-5", b"0x40", b"          "])
def test_archive_absurd_member_size(work: Path, lib_a: bytes, size: bytes):
    pos = next(p for p, name, _ in ar_headers(lib_a) if name.startswith(b"a.o/"))
    data = bytearray(lib_a)
    data[pos + 48:pos + 58] = size.ljust(10)
    (work / "lib.a").write_bytes(bytes(data))
    check_bad(work, "lib.a", r"archive member at offset")


def test_archive_truncated_member_header(work: Path, lib_a: bytes):
    pos = next(p for p, name, _ in ar_headers(lib_a) if name.startswith(b"b.o/"))
    (work / "lib.a").write_bytes(lib_a[:pos + 30])
    r = check_bad(work, "lib.a", r"truncated archive member header")
    assert "lib.a(a.o)" in r.site_files()  # the member before the damage is still analyzed


def test_archive_bad_member_header_magic(work: Path, lib_a: bytes):
    pos = next(p for p, name, _ in ar_headers(lib_a) if name.startswith(b"b.o/"))
    data = bytearray(lib_a)
    data[pos + 58:pos + 60] = b"xx"
    (work / "lib.a").write_bytes(bytes(data))
    check_bad(work, "lib.a", r"bad archive member header")


def test_archive_long_name_offset_outside_table(work: Path, kit: Kit):
    good = kit.good.read_bytes()
    data = b"!<arch>\n" + ar_member(b"//", b"x.o/\n") + ar_member(b"/999", good) + ar_member(b"a.o/", good)
    (work / "lib.a").write_bytes(data)
    r = check_bad(work, "lib.a", r"long name offset 999")
    assert "lib.a(a.o)" in r.site_files()


# -- paths that are not regular, readable files --------------------------------------------------------
def test_missing_file(work: Path):
    check_bad(work, "missing.o", r"No such file")


def test_directory(work: Path):
    (work / "dir.o").mkdir()
    check_bad(work, "dir.o", r"directory")


def test_fifo_is_refused_without_blocking(work: Path):
    os.mkfifo(work / "fifo.o")
    check_bad(work, "fifo.o", r"not a regular file")  # run_cli's timeout fails a hang


def test_symlink_loop(work: Path):
    os.symlink("loop2.o", work / "loop1.o")
    os.symlink("loop1.o", work / "loop2.o")
    check_bad(work, "loop1.o", r"symbolic links")


def test_unreadable_file(work: Path, kit: Kit):
    if os.geteuid() == 0:
        pytest.skip("running as root: root reads a chmod 000 file, so it cannot be made unreadable")
    shutil.copy(kit.good, work / "secret.o")
    os.chmod(work / "secret.o", 0)
    try:
        check_bad(work, "secret.o", r"Permission denied")
    finally:
        os.chmod(work / "secret.o", 0o644)


def test_text_format_also_one_line(work: Path):
    (work / "bad.o").write_text("plain text\n")
    r = run_cli(work, "first.o", "bad.o", fmt="text")
    assert r.rc == 2 and "Traceback" not in r.stderr
    assert r.stderr.splitlines() == ["reachsolve: error: bad.o: not an ELF file (bad magic)"]


# -- in-process property test -------------------------------------------------------------------------
_EDITS = st.lists(st.tuples(st.integers(0, len(DEMO_BYTES) - 1), st.integers(0, 255)), min_size=1, max_size=8)


@settings(max_examples=200, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(edits=_EDITS, cut=st.one_of(st.none(), st.integers(0, len(DEMO_BYTES))))
def test_mutated_demo_never_crashes(tmp_path: Path, capsys, edits, cut):
    data = bytearray(DEMO_BYTES)
    for at, value in edits:
        data[at] = value
    if cut is not None:
        data = data[:cut]
    path = tmp_path / "mutant.o"
    path.write_bytes(bytes(data))
    capsys.readouterr()
    try:
        rc = cli.main(["check", "--format", "json", "--all-sites", "--timeout", "5", str(path)])
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - any escape is the bug under test
        pytest.fail(f"{type(exc).__name__} escaped cli.main: {exc!r}")
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    report = json.loads(out)
    if rc in (0, 1):
        assert err == "" and report["errors"] == [], err
        assert all(s["file"] == str(path) for s in json_site_rows(report))
    else:
        assert rc == 2, rc
        lines = err.splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"reachsolve: error: {path}: "), err
        assert [e["file"] for e in report["errors"]] == [str(path)]


# -- a relocation whose target lies in a non-allocated section is unknown, not a crash ------------
def test_relocation_to_symbol_in_non_allocated_section(kit: Kit, capsys):
    obj = kit.assemble("nonalloc", '\t.text\n\tadr x0, nd\n\t.section .nonalloc,"",%progbits\nnd:\t.word 0\n',
                       "aarch64-linux-gnu")
    rc = cli.main(["check", "--format", "json", str(obj)])
    out, err = capsys.readouterr()
    assert rc in (0, 1) and err == ""
    sites = list(json_site_rows(json.loads(out)))
    assert sites and all(s["verdict"] == "unknown" for s in sites)


def test_names_read_in_batches_are_the_names_read_one_by_one():
    """Section and symbol names are read in batches (an ASCII table is decoded once); each
    must be what reading that one string gives: control bytes escaped, other bytes kept."""
    import random
    from reachsolve.errors import InputError
    from reachsolve.objfile.strtab import StringTable
    rnd = random.Random(3)
    alphabet = [b"a", b".", b"_", b" ", b"~", b"\n", b"\x7f", b"\x01", b"\xc3\xa9", b"\xff"]
    for t in range(300):
        letters = alphabet[:5] if t % 3 == 0 else alphabet[:8] if t % 3 == 1 else alphabet
        parts = [b"".join(rnd.choice(letters) for _ in range(rnd.randint(0, 6))) for _ in range(60)]
        table = b"\0" + b"\0".join(parts) + b"\0"
        offsets = [rnd.randrange(len(table)) for _ in range(50)]
        t = StringTable(table, lambda message: InputError("x.o", message))
        assert t.names(offsets, "name {}") == [t.name(x, "name") for x in offsets], table
