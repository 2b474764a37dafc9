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


def to_rel(data: bytes, which=lambda k: True) -> tuple[bytes, set]:
    """The object with RELA tables rewritten as REL (those whose rank among the RELA tables
    ``which`` accepts); also the sites whose addend fits."""
    o = read_object("x", data)
    out = bytearray(data)
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    fits = set()
    for rank, s in enumerate(t for t in o.sections if t.type == SHT_RELA):
        if not which(rank):
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


def _columns(data: bytes) -> dict:
    r = read_object("x", data).read_relocations()
    return {k: getattr(r, k).tolist() for k in ("target", "offset", "type", "symbol", "addend", "rel")}


def test_mixed_rel_and_rela_tables_keep_section_order(objdir):
    """Rows come in section order whatever mix of table kinds an object has."""
    data = assemble(FIXTURES / "tables" / "sections.S", objdir).read_bytes()
    mixed, _ = to_rel(data, which=lambda k: k % 2 == 1)
    a, b = _columns(data), _columns(mixed)
    assert 0 < sum(b["rel"]) < len(b["rel"])
    for k in ("target", "offset", "type", "symbol"):
        assert b[k] == a[k], k
    assert [x for x, rel in zip(b["addend"], b["rel"]) if not rel] == \
        [x for x, rel in zip(a["addend"], b["rel"]) if not rel]
    assert all(x == 0 for x, rel in zip(b["addend"], b["rel"]) if rel)


def test_tables_at_unaligned_file_offsets_read_the_same(objdir):
    """The gABI does not make a relocation table 8-byte aligned in the file: tables moved
    to an offset of 4 mod 8 read as before (the bytes are joined rather than gathered)."""
    data = assemble(FIXTURES / "tables" / "sections.S", objdir).read_bytes()
    o = read_object("x", data)
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    out = bytearray(data)
    moved = 0
    for s in o.sections:
        if s.type == SHT_RELA and s.size:
            out += bytes((-len(out)) % 8 + 4)
            struct.pack_into("<Q", out, shoff + 64 * s.index + 0x18, len(out))  # sh_offset
            out += data[s.offset:s.offset + s.size]
            moved += 1
    assert moved
    assert _columns(bytes(out)) == _columns(data)
