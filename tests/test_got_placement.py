"""The linker's .got goes where the script's `*(.got)` puts it.

Each case links a fixture of tests/fixtures/got/ with the script, by each linker
that knows its types, and compares: a GOT-relative site is broken as linked
exactly when that linker rejects it, and the adr to data after the .got has the
as-linked value the linker gave it (ld.lld's .got is 8 bytes per entry; GNU
ld's starts with an 8-byte header and adds a 24-byte .got.plt). GNU ld does
not range-check ADR_GOT_PAGE, so a page out of reach there is broken with "no
linker reports it". Under --linker both the two builds differ: that value has
no one as-linked address, a broken site is one some linker rejects, and a
robust one neither does.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from reachsolve import analyze
from testsupport.oracle import rejection, unsupported
from testsupport.toolchain import assemble, tool

HERE = Path(__file__).parent / "fixtures" / "got"
SCRIPTS = {
    # the entry at 0xffff8 + GNU ld's header = 0x100000: the ldr's value 0xffffc is the largest
    "fixed": "SECTIONS { . = 0; .text : { *(.text) } .got 0xffff8 : { *(.got) } .got.plt : { *(.got.plt) } "
             ".data : { *(.data) } }\n",
    "over": "SECTIONS { . = 0; .text : { *(.text) } .got 0x100000 : { *(.got) } .got.plt : { *(.got.plt) } "
            ".data : { *(.data) } }\n",
    # as arm64's vmlinux.lds has it: the .got inside .text, after an ALIGN(16)
    "in_text": "SECTIONS { . = 0x10000; .text : { *(.text) . = ALIGN(16); *(.got) } .got.plt : { *(.got.plt) } "
               ".data : { *(.data) } }\n",
    # far pages: the adrp reaches, the data section lies 4 GiB away
    "far": "SECTIONS { . = 0x10000; .text : { *(.text) } .got 0x100010000 : { *(.got) } .got.plt : { *(.got.plt) } "
           ".data : { *(.data) } }\n",
}
CASES = [(f, s) for f in ("got_page", "got_prel19") for s in SCRIPTS]


def _link(linker: str, obj: Path, lds: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([tool(linker), "-static", "-T", str(lds), str(obj), "-o", str(out)],
                          capture_output=True, text=True, timeout=120)


def _symbols(out: Path) -> dict[str, int]:
    with open(out, "rb") as f:
        tab = ELFFile(f).get_section_by_name(".symtab")
        return {s.name: s["st_value"] for s in tab.iter_symbols() if s.name}


@pytest.mark.parametrize("fixture,script", CASES, ids=[f"{f}-{s}" for f, s in CASES])
@pytest.mark.parametrize("linker", ["lld", "bfd"])
def test_got_where_the_script_puts_it(fixture, script, linker, tmp_path):
    obj = assemble(HERE / f"{fixture}.S", tmp_path)
    lds = tmp_path / f"{script}.lds"
    lds.write_text(SCRIPTS[script])
    r = analyze([str(obj)], linker_script=str(lds), placement="as-linked", linker=linker,
                image_max=1 << 34)
    assert not r.errors, r.errors
    sites = list(r.all_sites())
    assert any("lie in the linker's .got" in a for a in r.files[0].assumptions), r.files[0].assumptions
    refused = unsupported(linker, {s.reloc for s in sites})
    if refused:
        pytest.skip(f"{linker}: {refused}")
    out = tmp_path / f"{linker}.out"
    p = _link(linker, obj, lds, out)
    for s in sites:
        where = f"{fixture}/{script} {s.section}+{s.offset:#x} {s.reloc}: {s.verdict} {s.reason}"
        rejected = rejection(linker, s.section, s.offset, s.reloc).search(p.stderr) is not None
        assert s.verdict in ("robust", "broken"), where   # one linker, this build: decided
        if "no linker reports it" in s.reason:   # GNU ld does not check ADR_GOT_PAGE: it wraps
            assert not rejected and s.reloc == "R_AARCH64_ADR_GOT_PAGE", where
            continue
        assert (s.verdict == "broken") == rejected, f"{where}\n{p.stderr}"
    if p.returncode == 0:
        syms = _symbols(out)
        for adr in (s for s in sites if s.reloc == "R_AARCH64_ADR_PREL_LO21"):
            assert adr.as_linked == syms["dsym"] - (syms["_start"] + adr.offset), (adr, hex(syms["dsym"]))
    else:
        assert any(s.verdict == "broken" for s in sites), p.stderr



@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_both_linkers_break_nothing_either_links(script, tmp_path):
    obj = assemble(HERE / "got_page.S", tmp_path)
    lds = tmp_path / f"{script}.lds"
    lds.write_text(SCRIPTS[script])
    links = {lk: _link(lk, obj, lds, tmp_path / f"{lk}.out") for lk in ("lld", "bfd")}
    for placement in ("as-linked", "ordered"):
        r = analyze([str(obj)], linker_script=str(lds), placement=placement, linker="both", image_max=1 << 34)
        for s in r.all_sites():
            rejected = [lk for lk, p in links.items()
                        if rejection(lk, s.section, s.offset, s.reloc).search(p.stderr)]
            if s.verdict == "broken":
                assert rejected, (placement, s.reloc, s.reason)   # a site must fit both
            if s.verdict == "robust":
                assert not rejected, (placement, s.reloc, s.reason)
            if s.reloc == "R_AARCH64_ADR_PREL_LO21":   # the GOT header moves .data under GNU ld
                assert s.as_linked is None, s


def test_a_script_without_got_keeps_entries_anywhere(tmp_path):
    obj = assemble(HERE / "got_page.S", tmp_path)
    lds = tmp_path / "plain.lds"
    lds.write_text("SECTIONS { . = 0x10000; .text : { *(.text) } .data : { *(.data) } }\n")
    r = analyze([str(obj)], linker_script=str(lds), placement="as-linked", linker="lld")
    assert any("does not place the linker's .got" in a for a in r.files[0].assumptions)
    assert all(s.verdict != "broken" for s in r.all_sites())
