"""A copy of an ELF64 relocatable object whose chosen sections carry new names.

A linker script places input sections by name, so sections that share a name
(one `.text` per comdat group, `-ffunction-sections` duplicates after `ld -r`)
cannot be placed apart. For a repro link, a copy renames them: the section-name
string table (e_shstrndx) gets a successor appended at the end of the file,
holding the old table's bytes followed by the new names, and only that table's
section header (sh_offset, sh_size) and the renamed sections' sh_name change.
Every other byte stays as it was: section contents, symbols, relocations (which
refer to sections by index, not name) and every old sh_name offset, which still
points at the same bytes of the new table. Written with struct, after the ELF
header layout of the gABI ("Sections", "Extended section numbering").
"""
from __future__ import annotations

import struct

from ..errors import InputError

_EHDR = {"<": "<16sHHIQQQIHHHHHH", ">": ">16sHHIQQQIHHHHHH"}  # ELF64 header
_SHN_XINDEX = 0xFFFF
_SHDR_SIZE = 64


def _header(data: bytes, name: str):
    if len(data) < 64 or data[:4] != b"\x7fELF" or data[4] != 2:
        raise InputError(name, "not an ELF64 object; cannot write a renamed copy")
    order = "<" if data[5] == 1 else ">"
    f = struct.unpack_from(_EHDR[order], data, 0)
    shoff, shentsize, shnum, shstrndx = f[6], f[11], f[12], f[13]
    if shentsize != _SHDR_SIZE or shoff + _SHDR_SIZE > len(data):
        raise InputError(name, "section header table out of bounds")
    if shnum == 0:  # extended numbering: the count is section 0's sh_size
        shnum = struct.unpack_from(order + "Q", data, shoff + 32)[0]
    if shstrndx == _SHN_XINDEX:  # and the string table's index its sh_link
        shstrndx = struct.unpack_from(order + "I", data, shoff + 40)[0]
    if shoff + shnum * _SHDR_SIZE > len(data) or not 0 < shstrndx < shnum:
        raise InputError(name, "section header table out of bounds")
    return order, shoff, shnum, shstrndx


def unique_names(sections: list[tuple[int, str]], taken: set[str]) -> dict[int, str]:
    """New names for the sections (index, name) that share a name with another of the list:
    ``name.rs<index>``, lengthened until no section of the object (``taken``) has it."""
    count: dict[str, int] = {}
    for _, n in sections:
        count[n] = count.get(n, 0) + 1
    out, used = {}, set(taken)
    for i, n in sections:
        if count[n] > 1:
            new = f"{n}.rs{i}"
            while new in used:
                new += "_"
            used.add(new)
            out[i] = new
    return out


def renamed_copy(data: bytes, names: dict[int, str], name: str = "object") -> bytes:
    """``data`` with section ``i`` named ``names[i]``; byte-identical otherwise, plus the new
    string table at the end (8-aligned, so the appended bytes never touch old ones)."""
    order, shoff, shnum, shstrndx = _header(data, name)
    if not names:
        return bytes(data)
    if any(not 0 < i < shnum for i in names):
        raise InputError(name, "renamed section index out of range")
    strhdr = shoff + shstrndx * _SHDR_SIZE
    old_off, old_size = struct.unpack_from(order + "QQ", data, strhdr + 24)
    if old_off + old_size > len(data):
        raise InputError(name, "section name table out of bounds")
    table = bytearray(data[old_off:old_off + old_size])
    if table and table[-1] != 0:
        table.append(0)
    where = {}
    for i in sorted(names):
        enc = names[i].encode()
        if b"\0" in enc:
            raise InputError(name, f"section name {names[i]!r} holds a NUL byte")
        where[i] = len(table)
        table += enc + b"\0"
    out = bytearray(data)
    out += b"\0" * (-len(out) % 8)
    new_off = len(out)
    out += table
    struct.pack_into(order + "QQ", out, strhdr + 24, new_off, len(table))
    for i, at in where.items():
        struct.pack_into(order + "I", out, shoff + i * _SHDR_SIZE, at)
    return bytes(out)
