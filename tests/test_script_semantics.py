"""Linker-script semantics checked against ld.lld and GNU ld on as-linked addresses:
SORT* keywords, archive:member file patterns, --defsym.

Each case links a fixture with a small script and compares every label's address
in the output with reachsolve's as-linked placement under that linker's profile.
Where the two linkers lay the object out differently, the default profile (both)
refuses the script with one line naming the input description."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from testsupport.toolchain import FIXTURES, assemble, link, tool
from reachsolve import LayoutModel, ModelError, analyze
from reachsolve.model.files import with_script
from reachsolve.objfile.elf import read_object
from reachsolve.prove.context import ObjectContext

HERE = FIXTURES / "ordered"


def nm(path: Path) -> dict[str, int]:
    out = subprocess.run([tool("clang").replace("clang", "llvm-nm"), str(path)], capture_output=True, text=True,
                         check=True).stdout
    return {name: int(addr, 16) for addr, _, name in (ln.split() for ln in out.splitlines() if ln.count(" ") == 2)}


def placed(obj: Path, script: Path, linker: str) -> dict[str, int]:
    """Each global label's as-linked address under reachsolve's model of ``linker``."""
    o = read_object(obj.name, obj.read_bytes())
    ob = ObjectContext(o, with_script(LayoutModel(linker=linker), str(script), "as-linked"))
    env = ob.feasible
    out = {}
    for i in range(1, len(o.symbols)):
        sec = int(o.symbol_section[i])
        name = o.symbol_name(i)
        if name and ("sec", sec) in env and (o.symbols["info"][i] >> 4) == 1:
            out[name] = env[("sec", sec)] + int(o.symbols["value"][i])
    return out


SORTS = {
    "init": "*(SORT_BY_INIT_PRIORITY(.init_array*))",
    "ctors": "*(SORT_BY_INIT_PRIORITY(.ctors*))",
    "align": "*(SORT_BY_ALIGNMENT(.b.*))",
    "name": "*(SORT_BY_NAME(.b.*))",
    "name_align": "*(SORT_BY_NAME(SORT_BY_ALIGNMENT(.n.*)))",
    "align_name": "*(SORT_BY_ALIGNMENT(SORT_BY_NAME(.b.*)))",
    "mixed": "*(.a.* SORT(.b.*) .c.*)",
    "sorted_first": "*(SORT(.b.*) .c.* .a.*)",
    "two_blocks": "*(SORT(.a.*) SORT_BY_ALIGNMENT(.b.*))",
    "none": "*(SORT_NONE(.b.*))",
}
# The linkers agree on these; on the others (names without a priority, sorted blocks
# among unsorted patterns) they differ, and the default profile refuses the script.
AGREE = {"align", "name", "name_align", "align_name", "sorted_first", "two_blocks", "none"}


def script_for(body: str) -> str:
    return ("SECTIONS { . = 0x10000; .text : { *(.text) } .o 0x20000 : { " + body + " } "
            ".rest : { *(.init_array* .ctors* .a.* .b.* .c.* .n.*) } }\n")


@pytest.fixture(scope="module")
def sort_obj(objdir):
    return assemble(HERE / "sort.S", objdir)


@pytest.mark.parametrize("case", sorted(SORTS))
def test_sort_keywords_place_sections_as_each_linker_does(sort_obj, tmp_path, case):
    text = script_for(SORTS[case])
    lds = tmp_path / "t.lds"
    lds.write_text(text)
    linked = {}
    for ld in ("lld", "bfd"):
        p = link(ld, sort_obj, text, tmp_path / ld)
        assert p.returncode == 0, p.stderr
        got = nm(tmp_path / ld / f"{ld}.out")
        ours = placed(sort_obj, lds, ld)
        assert ours == {k: v for k, v in got.items() if k in ours}, (case, ld)
        linked[ld] = got
    labels = placed(sort_obj, lds, "lld").keys()
    same = all(linked["lld"][k] == linked["bfd"][k] for k in labels)
    assert same == (case in AGREE), case
    if same:
        assert placed(sort_obj, lds, "both") == placed(sort_obj, lds, "lld")
    else:
        with pytest.raises(ModelError, match=r"t\.lds:1:\d+: ld\.lld and GNU ld order the sections of .* by this "
                                             r"input description .*choose --linker lld or bfd"):
            placed(sort_obj, lds, "both")


def test_init_priority_is_numeric_not_by_name(sort_obj, tmp_path):
    """.init_array.5 comes before .init_array.100 (a name sort puts it after)."""
    lds = tmp_path / "t.lds"
    lds.write_text(script_for(SORTS["init"]))
    for ld in ("lld", "bfd"):
        at = placed(sort_obj, lds, ld)
        assert at["ia_5"] < at["ia_100"] and at["ct_100"] < at["ct_5"], ld


# -- archive members -------------------------------------------------------------------

# pattern -> (ld.lld takes lib.a(foo.o), GNU ld takes it), as both linkers were seen to do
MEMBER_PATTERNS = {"*foo.o": (True, True), "lib.a:foo.o": (True, True), "*lib.a:foo.o": (True, True),
                   "lib.a:": (False, True), ":foo.o": (False, False), "f*": (False, True), "*:": (False, True),
                   "lib.a*": (True, False), "*.a:f*": (True, True)}
# (A plain name such as foo.o is also a file GNU ld opens, so it is not a pattern test.)


@pytest.fixture(scope="module")
def archive(objdir, tmp_path_factory):
    """lib.a holding foo.o twice (different contents), made with llvm-ar."""
    d = tmp_path_factory.mktemp("ar")
    for i, src in enumerate(("member_foo.S", "member_foo2.S")):
        (d / f"v{i}").mkdir()
        o = assemble(HERE / src, objdir)
        (d / f"v{i}" / "foo.o").write_bytes(o.read_bytes())
    subprocess.run([tool("ar"), "rc", str(d / "lib.a"), str(d / "v0" / "foo.o"), str(d / "v1" / "foo.o")],
                   check=True)
    return d / "lib.a"


def _member_link(ld: str, lib: Path, pattern: str, pull: str, work: Path) -> dict[str, int]:
    """Link the one member defining ``pull`` from lib.a, named as in its directory."""
    work.mkdir(parents=True, exist_ok=True)
    lds = work / "t.lds"
    lds.write_text(f"SECTIONS {{ . = 0x10000; .first : {{ {pattern}(.text.m) }} .rest 0x20000 : {{ *(.text*) }} }}\n")
    cmd = [tool(ld), "-m", "aarch64linux", "-T", str(lds), "-u", pull, "lib.a", "-o", str(work / "out"), "-e", "0"]
    if ld == "bfd":
        cmd.append("--no-warn-rwx-segments")
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=lib.parent, timeout=120)
    assert p.returncode == 0, p.stderr
    return nm(work / "out")


@pytest.mark.parametrize("pattern", sorted(MEMBER_PATTERNS))
def test_archive_member_file_patterns(archive, tmp_path, pattern):
    from reachsolve.objfile.inputs import load
    blobs = load(str(archive))
    assert [b.name for b in blobs] == [f"{archive}(foo.o)", f"{archive}(foo.o)#2"]
    for k, (blob, label) in enumerate(zip(blobs, ("foo_a", "foo_b"))):
        obj = tmp_path / f"m{k}.o"
        obj.write_bytes(blob.data)
        o = read_object(blob.name, blob.data)
        lds = tmp_path / f"{k}.lds"
        lds.write_text(f"SECTIONS {{ . = 0x10000; .first : {{ {pattern}(.text.m) }} "
                       f".rest 0x20000 : {{ *(.text*) }} }}\n")
        for ld, takes in zip(("lld", "bfd"), MEMBER_PATTERNS[pattern]):
            got = _member_link(ld, archive, pattern, label, tmp_path / f"{ld}{k}")
            assert (got[label] < 0x20000) == takes, (pattern, ld, label)
            ob = ObjectContext(o, with_script(LayoutModel(linker=ld), str(lds), "as-linked"))
            sec = next(s.index for s in o.sections if s.name == ".text.m")
            assert ob.feasible[("sec", sec)] == got[label], (pattern, ld, label)
        lld_takes, bfd_takes = MEMBER_PATTERNS[pattern]
        if lld_takes != bfd_takes:
            with pytest.raises(ModelError, match="take different sections of .*lib.a\\(foo.o\\)"):
                ObjectContext(o, with_script(LayoutModel(), str(lds), "as-linked"))
