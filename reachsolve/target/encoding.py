"""Writing a relocation value into its field, and reading an implicit addend back.

This mirrors what a linker's relocation writer does, without any range check:
the bits that do not fit are simply lost. The independent checker uses it to
show what an overflowing value really turns into (AAELF64 5.7, the "Check"
and "Instruction" columns; Arm ARM C4 for the field positions).
"""
from __future__ import annotations

from .catalogue import Field


def _sext(v: int, bits: int) -> int:
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


def _adr_bits(word: int, imm: int) -> int:
    imm &= (1 << 21) - 1
    word &= ~((0x3 << 29) | (0x7FFFF << 5)) & 0xFFFFFFFF
    return word | ((imm & 0x3) << 29) | ((imm >> 2) << 5)


def insert(field: Field, scale: int, word: int, value: int) -> int:
    """The container after writing ``value`` the way a linker does (truncating)."""
    if field is Field.DATA16:
        return value & 0xFFFF
    if field is Field.DATA32:
        return value & 0xFFFFFFFF
    if field is Field.IMM19:
        return (word & ~(0x7FFFF << 5) & 0xFFFFFFFF) | (((value >> 2) & 0x7FFFF) << 5)
    if field is Field.IMM14:
        return (word & ~(0x3FFF << 5) & 0xFFFFFFFF) | (((value >> 2) & 0x3FFF) << 5)
    if field is Field.IMM26:
        return (word & ~0x3FFFFFF & 0xFFFFFFFF) | ((value >> 2) & 0x3FFFFFF)
    if field is Field.ADR:
        return _adr_bits(word, value)
    if field is Field.ADRP:
        return _adr_bits(word, value >> 12)
    if field is Field.LO12:
        return (word & ~(0xFFF << 10) & 0xFFFFFFFF) | ((((value & 0xFFF) >> scale) & 0xFFF) << 10)
    if field is Field.MOVW:
        return (word & ~(0xFFFF << 5) & 0xFFFFFFFF) | (((value >> scale) & 0xFFFF) << 5)
    raise ValueError(field)


def extract(field: Field, scale: int, word: int) -> int:
    """The addend a SHT_REL entry keeps in its place (the field, sign-extended)."""
    if field is Field.DATA16:
        return _sext(word, 16)
    if field is Field.DATA32:
        return _sext(word, 32)
    if field is Field.IMM19:
        return _sext(word >> 5, 19) << 2
    if field is Field.IMM14:
        return _sext(word >> 5, 14) << 2
    if field is Field.IMM26:
        return _sext(word, 26) << 2
    if field in (Field.ADR, Field.ADRP):
        imm = _sext((((word >> 5) & 0x7FFFF) << 2) | ((word >> 29) & 0x3), 21)
        return imm << 12 if field is Field.ADRP else imm
    if field is Field.LO12:
        return ((word >> 10) & 0xFFF) << scale
    if field is Field.MOVW:
        return ((word >> 5) & 0xFFFF) << scale
    raise ValueError(field)
