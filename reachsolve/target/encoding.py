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
    if field is Field.SMOVW:
        imm = (value >> scale) & 0x1FFFF  # the group and the bit above it (the sign)
        if not word & (1 << 29):          # movn/movz (opc 00/10), not movk (11)
            if imm & 0x10000:
                imm ^= 0xFFFF
                word &= ~(1 << 30)          # movn, which writes the inverted group
            else:
                word |= 1 << 30             # movz
        return (word & ~(0xFFFF << 5) & 0xFFFFFFFF) | ((imm & 0xFFFF) << 5)
    if field is Field.HI12:
        return (word & ~(0xFFF << 10) & 0xFFFFFFFF) | (((value >> 12) & 0xFFF) << 10)
    raise ValueError(field)


def movw_reading(word: int) -> tuple[str, int]:
    """What a move-wide instruction puts in its register, as a signed 64-bit value
    (Arm ARM C6.2 MOVN/MOVZ/MOVK): ("movz"|"movn"|"movk", value); for movk only the
    16 bits it inserts, shifted into place."""
    opc, hw, imm = (word >> 29) & 3, (word >> 21) & 3, (word >> 5) & 0xFFFF
    v = imm << (16 * hw)
    if opc == 0:
        return "movn", ~v
    return ("movz" if opc == 2 else "movk"), v


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
    if field in (Field.MOVW, Field.SMOVW):
        return ((word >> 5) & 0xFFFF) << scale
    if field is Field.HI12:
        return ((word >> 10) & 0xFFF) << 12
    raise ValueError(field)
