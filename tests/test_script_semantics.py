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


# -- --defsym ------------------------------------------------------------------------

def _defsym_link(ld: str, obj: Path, defs: list[str], work: Path):
    return link(ld, obj, (HERE / "defsym.lds").read_text(), work, extra=[f"--defsym={d}" for d in defs])


@pytest.mark.parametrize("defs, fits, grown", [
    (["EFI_SUBSYSTEM=0xa", "IMAGE_WORDS=_edata-_stext"], True, "robust"),
    (["EFI_SUBSYSTEM=0x10000", "IMAGE_WORDS=(_edata-_stext)/4"], False, "broken"),
    # A size over 4 plus 2 fits this build's ABS16, but not an image grown by 256 KiB.
    (["EFI_SUBSYSTEM=IMAGE_WORDS+2", "IMAGE_WORDS=(_edata-_stext)>>2"], True, "vulnerable"),
])
def test_defsym_values_are_the_linkers(objdir, tmp_path, defs, fits, grown):
    obj = assemble(HERE / "defsym.S", objdir)
    for ld in ("lld", "bfd"):
        p = _defsym_link(ld, obj, defs, tmp_path / ld)
        assert (p.returncode == 0) == fits, (ld, p.stderr)
        if fits:
            got = nm(tmp_path / ld / f"{ld}.out")
    for placement in ("as-linked", "ordered"):
        r = analyze([str(obj)], linker_script=str(HERE / "defsym.lds"), placement=placement, defsym=defs)
        assert not r.errors, r.errors
        by = {s.offset: s for s in r.all_sites()}
        sub, size = by[0], by[4]
        want = grown if placement == "ordered" else ("robust" if fits else "broken")
        assert sub.verdict == want, (placement, sub.reason)
        assert size.verdict == "robust"
        if fits and placement == "as-linked":
            assert sub.as_linked == got["EFI_SUBSYSTEM"] and size.as_linked == got["IMAGE_WORDS"]
    # The keyword form and the model-file form mean the same.
    kw = {d.split("=", 1)[0]: d.split("=", 1)[1] for d in defs}
    m = tmp_path / "m.toml"
    m.write_text('placement = "as-linked"\nscript_file = "%s"\n[defsym]\n%s\n'
                 % (HERE / "defsym.lds", "\n".join(f'{k} = "{v}"' for k, v in kw.items())))
    a = analyze([str(obj)], str(m))
    b = analyze([str(obj)], linker_script=str(HERE / "defsym.lds"), placement="as-linked", defsym=kw)
    assert [(s.offset, s.verdict, s.as_linked) for s in a.all_sites()] == \
        [(s.offset, s.verdict, s.as_linked) for s in b.all_sites()]


def test_defsym_wins_over_the_script(objdir, tmp_path):
    """Both linkers let --defsym replace a script's own definition of the name."""
    obj = assemble(HERE / "defsym.S", objdir)
    text = (HERE / "defsym.lds").read_text().replace("_edata = .;", "_edata = .; EFI_SUBSYSTEM = 0x10000;")
    lds = tmp_path / "s.lds"
    lds.write_text(text)
    defs = ["EFI_SUBSYSTEM=0xb", "IMAGE_WORDS=1"]
    for ld in ("lld", "bfd"):
        p = link(ld, obj, text, tmp_path / ld, extra=[f"--defsym={d}" for d in defs])
        assert p.returncode == 0, p.stderr
        assert nm(tmp_path / ld / f"{ld}.out")["EFI_SUBSYSTEM"] == 0xb
    r = analyze([str(obj)], linker_script=str(lds), placement="as-linked", defsym=defs)
    assert {s.offset: s.as_linked for s in r.all_sites()}[0] == 0xb
    # Without --defsym the script's definition settles it: 0x10000 overflows the ABS16.
    r = analyze([str(obj)], linker_script=str(lds), placement="as-linked", defsym=["IMAGE_WORDS=1"])
    assert {s.offset: s.verdict for s in r.all_sites()}[0] == "broken"


@pytest.mark.parametrize("args, message", [
    (["--defsym", "EFI_SUBSYSTEM=("], "--defsym EFI_SUBSYSTEM=(: expected an expression"),
    (["--defsym", "EFI_SUBSYSTEM"], "--defsym EFI_SUBSYSTEM: expected NAME=EXPRESSION"),
    (["--defsym", "X=1;SECTIONS{}"], "expected NAME=EXPRESSION"),
    (["--defsym", "EFI_SUBSYSTEM=1/0", "--defsym", "IMAGE_WORDS=1"], "--defsym:1:1: division by zero"),
    (["--defsym", "EFI_SUBSYSTEM=nowhere", "--defsym", "IMAGE_WORDS=1"], "symbol nowhere is used but defined"),
])
def test_bad_defsym_is_one_line_and_exit_2(objdir, args, message):
    obj = assemble(HERE / "defsym.S", objdir)
    p = subprocess.run([__import__("sys").executable, "-m", "reachsolve", "check", str(obj), "--linker-script",
                        str(HERE / "defsym.lds"), *args], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2, p.stderr
    lines = [ln for ln in p.stderr.splitlines() if "error" in ln]
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in p.stderr, p.stderr


@pytest.mark.parametrize("value, verdict", [("0xa", "robust"), ("0xffff", "robust"), ("0x10000", "broken"),
                                            ("sub_word+0x1000", "vulnerable")])
def test_defsym_under_free_placement(objdir, tmp_path, value, verdict):
    """With no script, --defsym still gives the symbol its value: a number is fixed (robust or
    broken, as both linkers find with any script), an object symbol plus a number moves with
    its section. IMAGE_WORDS=1 keeps the other word out of the way."""
    obj = assemble(HERE / "defsym.S", objdir)
    defs = [f"EFI_SUBSYSTEM={value}", "IMAGE_WORDS=1"]
    r = analyze([str(obj)], defsym=defs)
    assert not r.errors, r.errors
    sub = {s.offset: s for s in r.all_sites() if s.section == ".data"}[0]
    assert sub.verdict == verdict, sub.reason
    assert any("EFI_SUBSYSTEM has the value --defsym gives it" in a for a in r.files[0].assumptions)
    if "+" not in value:
        for ld in ("lld", "bfd"):
            p = link(ld, obj, "SECTIONS { . = 0x10000; .text : { *(.text) } .data : { *(.data) } }\n",
                     tmp_path / ld, extra=[f"--defsym={d}" for d in defs])
            assert (p.returncode != 0) == (verdict == "broken"), (ld, p.stderr)


def test_defsym_model_file_errors(tmp_path):
    r = analyze([str(assemble(HERE / "defsym.S", tmp_path))], defsym=["EFI_SUBSYSTEM=ALIGN(sub_word, 8)",
                                                                       "IMAGE_WORDS=1"])
    (e,) = r.errors   # the object's error: one line naming the option and the symbol
    assert "--defsym: EFI_SUBSYSTEM: under free placement" in e.message and "linker script" in e.message
    m = tmp_path / "m.toml"
    m.write_text('placement = "as-linked"\nscript = "SECTIONS { .text : { *(.text) } }"\n[defsym]\nX = "1 +"\n')
    with pytest.raises(ModelError, match=r"m\.toml:4: defsym X X=1 \+: expected an expression"):
        analyze([], str(m))
    m.write_text('placement = "as-linked"\nscript = "SECTIONS { .text : { *(.text) } }"\n[defsym]\nX = 1.5\n')
    with pytest.raises(ModelError, match=r"m\.toml:4: defsym X: expected an expression \(string\) or an integer"):
        analyze([], str(m))


def test_image_base_under_a_script_is_an_error(tmp_path):
    """A script sets the addresses: an image_base beside it is refused, never dropped."""
    m = tmp_path / "m.toml"
    m.write_text('placement = "ordered"\nimage_base = "0x40000000"\nscript = "SECTIONS { .text : { *(.text) } }"\n')
    with pytest.raises(ModelError, match=r"m\.toml: image_base applies to free placement"):
        analyze([], str(m))
    with pytest.raises(ModelError, match="image_base applies to free placement"):
        analyze([], linker_script=str(HERE / "defsym.lds"), image_base=0x40000000)


# -- margins under ALIGN -------------------------------------------------------------------

def test_margin_is_input_growth_through_an_align(objdir, tmp_path):
    """The margin is the least input that breaks the site: 0xfeffc bytes after .text.a,
    not the 0xff000 the distance grows by. Both linkers: a padding section of the
    margin's size after .text.a breaks the cbz, one of 4 bytes less does not."""
    from testsupport.toolchain import assemble_text
    obj = assemble(HERE / "align_gap.S", objdir)
    r = analyze([str(obj)], linker_script=str(HERE / "align_gap.lds"))
    (s,) = [x for x in r.all_sites() if x.offset == 0 and x.section == ".text.a"]
    assert s.verdict == "vulnerable" and s.as_linked == 0x1000
    assert s.margin == 0xfeffc, hex(s.margin or 0)
    assert "breaks once 0xfeffc more bytes lie between .text.a and .text.c" in s.reason
    text = (HERE / "align_gap.lds").read_text()
    for pad, fails in ((s.margin, True), (s.margin - 4, False)):
        padobj = assemble_text(f'\t.section .text.a, "ax", %progbits\n\t.p2align 2\n\t.space {pad:#x}\n',
                               tmp_path / f"pad{pad:x}.o")
        for ld in ("lld", "bfd"):
            p = link(ld, obj, text, tmp_path / f"{ld}{pad:x}", extra=[str(padobj)])
            broke = p.returncode != 0 and "R_AARCH64_CONDBR19" in p.stderr
            assert broke == fails, (ld, hex(pad), p.stderr[-300:])


def test_margin_counts_padding_an_alignment_absorbs(objdir):
    """Input that only fills the padding before ALIGN(0x1000) moves nothing after it:
    moving .text.c by anything up to 0x1000 takes the same input, 0xff9 bytes (0xffc
    in 4-byte units), and one byte more of distance takes another 0x1000."""
    from reachsolve.prove.context import ObjectContext
    obj = assemble(HERE / "align_gap.S", objdir)
    ob = ObjectContext(read_object(obj.name, obj.read_bytes()),
                       with_script(LayoutModel(), str(HERE / "align_gap.lds"), "ordered"))
    L = ob.layout
    a = next(it.var for it in L.items if it.label == ".text.a")
    c = next(it.var for it in L.items if it.label == ".text.c")
    # Moving .text.c by 1..0x1000 takes 0x1000 - 8 + 1 bytes, rounded to 4: 0xffc.
    for need in (1, 4, 0x1000):
        assert ob.frame.input_margin(a, c, need) == 0xffc
    assert ob.frame.input_margin(a, c, 0x1001) == 0x1ffc


TBSS = """\t.text
\t.globl\t_start
_start:\tmovz\tx0, #:tprel_g0:b
\tadr\tx0, d
\t.section .tbss.a,"awT",%nobits
\t.p2align 8
\t.zero\t0x100
\t.section .tbss.b,"awT",%nobits
\t.p2align 4
b:\t.zero\t16
\t.data
d:\t.quad\t0
"""


@pytest.mark.parametrize("script, message", [
    ("SECTIONS { . = 0x40000000; .text : { *(.text) } .tbss : { *(.tbss.a) *(.data) } }",
     "cannot follow .data after the TLS NOBITS input .tbss.a in .tbss"),
    ("SECTIONS { . = 0x40000000; .text : { *(.text) } .tbss : { *(.tbss.a) } .data : { *(.data) } }",
     "cannot follow what comes after the .tbss output section .tbss"),
    ("SECTIONS { . = 0x40000000; .text : { *(.text) } .data : { *(.data) } .tbss 0x50000000 : { *(.tbss.a) } }",
     "cannot follow the address of the .tbss output section .tbss: ld.lld ignores it"),
])
def test_tbss_layouts_the_chain_cannot_follow_are_errors(tmp_path, script, message):
    """ld.lld 14 lays TLS NOBITS out apart from the location counter: .data after a .tbss
    output section starts where .text ends, not after the .tbss and its 256-byte alignment;
    two .tbss inputs lie one after the other; a .tbss address is ignored. Where the chain
    would place things elsewhere, the object gets a one-line error instead of a verdict."""
    src = tmp_path / "t.S"
    src.write_text(TBSS)
    obj = assemble(src, tmp_path)
    lds = tmp_path / "t.lds"
    lds.write_text(script + "\n")
    r = analyze([str(obj)], linker_script=str(lds), placement="as-linked", linker="lld")
    (e,) = r.errors
    assert message in e.message and "t.lds:1:" in e.message, e.message
    if "comes after" in message:   # the measured fact behind it
        p = link("lld", obj, script + "\n", tmp_path / "lld")
        assert p.returncode == 0, p.stderr
        syms = nm(tmp_path / "lld" / "lld.out")
        assert syms["d"] == 0x40000008, hex(syms["d"])   # .text is 8 bytes; the .tbss moves nothing


def test_a_second_tbss_input_of_an_output_section_is_unknown(tmp_path):
    """ld.lld lays .tbss.a and .tbss.b out one after the other (b at TLS offset 0x100 past
    a's); the chain gives TLS NOBITS input no room, so a site that uses .tbss.b is unknown."""
    src = tmp_path / "t.S"
    src.write_text(TBSS)
    obj = assemble(src, tmp_path)
    lds = tmp_path / "t.lds"
    lds.write_text("SECTIONS { . = 0x40000000; .text : { *(.text) } .data : { *(.data) } "
                   ".tbss : { *(.tbss.a) *(.tbss.b) } }\n")
    r = analyze([str(obj)], linker_script=str(lds), placement="as-linked", linker="lld")
    assert not r.errors, r.errors
    site = {s.offset: s for s in r.all_sites()}[0]
    assert site.verdict == "unknown" and "follows another TLS NOBITS input section" in site.reason, site.reason


def test_first_match_by_stem_is_the_first_description_in_order():
    """The stem filter of script/match.py keeps the linkers' first-match rule: compared
    with trying every pattern in script order, on names and globs that share and split
    stems (literal prefixes shorter and longer than a stem, wildcards, classes, no dot)."""
    import fnmatch
    import random
    from types import SimpleNamespace
    from reachsolve.script.match import first_match, glob
    rnd = random.Random(5)
    parts = [".text", ".text.", ".text.unlikely.", ".rodata", ".data", ".bss.", "__ksymtab", ".init", "foo",
             ".te", "."]
    tails = ["", "*", "?", "[a-c]*", ".*", "x", "*.o", "[!.]*"]
    names = [rnd.choice(parts) + rnd.choice(["", "a", "b.c", ".x", "unlikely.f", ".hot", "z"]) for _ in range(400)]
    for trial in range(40):
        compiled = []
        for _ in range(rnd.randint(1, 12)):
            if rnd.random() < 0.15:
                compiled.append(None)  # a description whose file pattern does not take the input
                continue
            if rnd.random() < 0.08:
                compiled.append([(".*", None)])  # no section patterns
                continue
            pats = [SimpleNamespace(glob=rnd.choice(parts + [""]) + rnd.choice(tails))
                    for _ in range(rnd.randint(1, 3))]
            compiled.append([(glob(p.glob).pattern, p) for p in pats])
        find = first_match(compiled)
        for name in names:
            want = next(((k, p) for k, pats in enumerate(compiled) for _, p in pats or ()
                         if p is None or fnmatch.fnmatchcase(name, p.glob)), None)
            assert find(name) == want, (name, compiled)
