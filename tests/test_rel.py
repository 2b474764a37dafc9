"""SHT_REL tables (addends kept in the place, AAELF64 5.7.1) give the same verdicts as
SHT_RELA. clang only writes RELA, so the test rewrites each fixture's tables as REL,
storing every addend in its field the way the ABI says."""
from __future__ import annotations

import struct

import pytest

from testsupport.toolchain import FIXTURES, assemble
from reachsolve import LayoutModel, analyze
from reachsolve.objfile.elf import SHT_RELA, SHT_REL, read_object
from reachsolve.target.encoding import extract, insert
from reachsolve.target.catalogue import BY_NUMBER

FILES = sorted(FIXTURES.glob("*.S"))


def to_rel(data: bytes) -> tuple[bytes, set]:
    """The object with RELA tables rewritten as REL; also the sites whose addend fits."""
    o = read_object("x", data)
    out = bytearray(data)
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    fits = set()
    for s in o.sections:
        if s.type != SHT_RELA:
            continue
        target = o.sections[s.info]
        n = s.size // 24
        for k in range(n):
            off, info, addend = struct.unpack_from("<QQq", data, s.offset + 24 * k)
            struct.pack_into("<QQ", out, s.offset + 16 * k, off, info)
            spec = BY_NUMBER.get(info & 0xFFFFFFFF)
            if spec is None:
                continue
            at = target.offset + off
            size = spec.field.container
            word = int.from_bytes(out[at:at + size], "little")
            word = insert(spec.field, spec.scale, word, addend)
            out[at:at + size] = word.to_bytes(size, "little")
            if extract(spec.field, spec.scale, word) == addend:
                fits.add((target.index, off))
        hdr = shoff + 64 * s.index
        struct.pack_into("<I", out, hdr + 4, SHT_REL)           # sh_type
        struct.pack_into("<Q", out, hdr + 0x20, 16 * n)         # sh_size
        struct.pack_into("<Q", out, hdr + 0x38, 16)             # sh_entsize
    return bytes(out), fits


@pytest.mark.parametrize("src", FILES, ids=[p.stem for p in FILES])
def test_rel_tables_give_the_same_verdicts(src, objdir, tmp_path):
    obj = assemble(src, objdir)
    rel_bytes, fits = to_rel(obj.read_bytes())
    rel = tmp_path / f"{src.stem}.rel.o"
    rel.write_bytes(rel_bytes)
    a = {(s.section_index, s.offset): s for s in analyze([str(obj)], LayoutModel()).sites}
    b = {(s.section_index, s.offset): s for s in analyze([str(rel)], LayoutModel()).sites}
    assert set(a) == set(b)
    compared = 0
    for k in fits & set(a):
        assert (b[k].addend, b[k].verdict) == (a[k].addend, a[k].verdict), k
        compared += 1
    assert compared >= 1
