"""The relocation catalogue: the single source of every formula, field and limit.

Each range-checked AArch64 relocation type is one row of ``CATALOGUE``. A row
says how the value is computed (AAELF64 section 5.7, "Relocation codes"),
which instruction field receives it, what granule the value must have and,
per linker profile, which overflow check the linker applies. Everything else
in reachsolve (constraints, the independent checker, the encoder, the
renderers) reads limits from here, so no limit is ever written twice.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Mapping

from ..ir import PAGE, page_diff


class Formula(enum.Enum):
    """Value formulas of AAELF64 table 5-x, written with its symbols."""

    PREL = "S+A-P"
    PAGE = "Page(S+A)-Page(P)"
    ABS = "S+A"
    GOT_PAGE = "Page(G(GDAT(S+A)))-Page(P)"
    GOT_PREL = "G(GDAT(S+A))-P"

    @property
    def uses_got(self) -> bool:
        return self in (Formula.GOT_PAGE, Formula.GOT_PREL)

    @property
    def paged(self) -> bool:
        return self in (Formula.PAGE, Formula.GOT_PAGE)

    @property
    def pc_relative(self) -> bool:
        return self is not Formula.ABS

    def value(self, s, p):
        """The relocation value from S+A (or the GOT slot) and P, by this formula.

        Works on IR terms (a Lin, giving a Lin or PageDiff), on ints and on integer
        numpy columns, so the constraint builder, the re-check and the column-wise
        as-linked values share one definition."""
        if self.paged:
            return page_diff(s, p)
        if self is Formula.ABS:
            return s
        return s - p


class Field(enum.Enum):
    """Where in the 16/32-bit container the value lands, and how it is scaled."""

    IMM19 = "imm19"          # bits 23:5, value >> 2  (b.cond, cbz, ldr literal)
    IMM14 = "imm14"          # bits 18:5, value >> 2  (tbz)
    IMM26 = "imm26"          # bits 25:0, value >> 2  (b, bl)
    ADR = "immhi:immlo"      # bits 23:5 and 30:29, value        (adr)
    ADRP = "immhi:immlo<<12"  # bits 23:5 and 30:29, value >> 12  (adrp)
    LO12 = "imm12"           # bits 21:10, (value & 0xfff) >> scale (ldr/str unsigned offset)
    MOVW = "imm16"           # bits 20:5, (value >> shift) & 0xffff (movz/movk)
    DATA16 = "data16"
    DATA32 = "data32"

    @property
    def container(self) -> int:
        """Bytes that the relocation writes at the place."""
        return 2 if self is Field.DATA16 else 4

    @property
    def is_data(self) -> bool:
        return self in (Field.DATA16, Field.DATA32)


class Check(enum.Enum):
    """The overflow checks linkers apply (lld's checkInt/checkUInt/checkIntUInt)."""

    INT = "signed"
    UINT = "unsigned"
    INT_UINT = "signed or unsigned"
    NONE = "none"


@dataclass(frozen=True)
class Limit:
    check: Check
    bits: int = 0
    aligns: bool = True   # does this linker report a value that violates the granule?
    reports: bool = True  # does it report a value outside the interval (or wrap it silently)?

    def interval(self) -> tuple[int, int] | None:
        b = self.bits
        if self.check is Check.INT:
            return -(1 << (b - 1)), (1 << (b - 1)) - 1
        if self.check is Check.UINT:
            return 0, (1 << b) - 1
        if self.check is Check.INT_UINT:
            return -(1 << (b - 1)), (1 << b) - 1
        return None


# Linker profiles whose rules the catalogue records; reachsolve.target.policy
# says which apply and what each does with an overflowing branch.
PROFILES = ("lld", "bfd", "kmod")


@dataclass(frozen=True)
class RelocSpec:
    name: str
    number: int
    formula: Formula
    field: Field
    insns: frozenset[str]
    limits: Mapping[str, Limit]
    granule: int = 1  # the value must be a multiple of this
    scale: int = 0    # LO12: access-size shift; MOVW: group shift
    veneer: bool = False  # linkers may repair an overflow with a veneer (target.policy)


def _same(limit: Limit, **over: Limit) -> dict[str, Limit]:
    d = {p: limit for p in PROFILES}
    d.update(over)
    return d


def _branch(bits: int, lld_aligns: bool = True) -> dict[str, Limit]:
    # GNU ld and the module loader shift the low bits out without a word; so
    # does ld.lld 14 for b/bl and tbz (it checks alignment on the 19-bit forms only).
    return _same(Limit(Check.INT, bits, aligns=lld_aligns), bfd=Limit(Check.INT, bits, aligns=False),
                 kmod=Limit(Check.INT, bits, aligns=False))


# Both linkers report a misaligned :lo12: load/store offset (GNU ld as "relocation
# truncated to fit"); the module loader writes it silently.
_LO12_NOCHECK = _same(Limit(Check.NONE), kmod=Limit(Check.NONE, aligns=False))

_B19 = frozenset({"b.cond", "cbz"})
_LIT = frozenset({"ldr-literal"})
_LDST = frozenset({"ldst"})

CATALOGUE: tuple[RelocSpec, ...] = (
    RelocSpec("R_AARCH64_ABS32", 258, Formula.ABS, Field.DATA32, frozenset({"data"}),
              _same(Limit(Check.INT_UINT, 32), bfd=Limit(Check.UINT, 32), kmod=Limit(Check.UINT, 32))),
    RelocSpec("R_AARCH64_ABS16", 259, Formula.ABS, Field.DATA16, frozenset({"data"}),
              _same(Limit(Check.INT_UINT, 16), bfd=Limit(Check.UINT, 16), kmod=Limit(Check.UINT, 16))),
    RelocSpec("R_AARCH64_PREL32", 261, Formula.PREL, Field.DATA32, frozenset({"data"}),
              _same(Limit(Check.INT_UINT, 32), bfd=Limit(Check.INT, 32), kmod=Limit(Check.INT, 32))),
    RelocSpec("R_AARCH64_PREL16", 262, Formula.PREL, Field.DATA16, frozenset({"data"}),
              _same(Limit(Check.INT_UINT, 16), bfd=Limit(Check.INT, 16), kmod=Limit(Check.INT, 16))),
    RelocSpec("R_AARCH64_PLT32", 314, Formula.PREL, Field.DATA32, frozenset({"data"}),
              _same(Limit(Check.INT, 32))),
    RelocSpec("R_AARCH64_MOVW_UABS_G0", 263, Formula.ABS, Field.MOVW, frozenset({"movw"}),
              _same(Limit(Check.UINT, 16)), scale=0),
    RelocSpec("R_AARCH64_MOVW_UABS_G1", 265, Formula.ABS, Field.MOVW, frozenset({"movw"}),
              _same(Limit(Check.UINT, 32)), scale=16),
    RelocSpec("R_AARCH64_MOVW_UABS_G2", 267, Formula.ABS, Field.MOVW, frozenset({"movw"}),
              _same(Limit(Check.UINT, 48)), scale=32),
    RelocSpec("R_AARCH64_LD_PREL_LO19", 273, Formula.PREL, Field.IMM19, _LIT,
              {**_branch(21), "bfd": Limit(Check.INT, 21)}, granule=4),  # GNU ld checks literal alignment
    RelocSpec("R_AARCH64_ADR_PREL_LO21", 274, Formula.PREL, Field.ADR, frozenset({"adr"}),
              _same(Limit(Check.INT, 21))),
    RelocSpec("R_AARCH64_ADR_PREL_PG_HI21", 275, Formula.PAGE, Field.ADRP, frozenset({"adrp"}),
              _same(Limit(Check.INT, 33)), granule=PAGE),
    RelocSpec("R_AARCH64_TSTBR14", 279, Formula.PREL, Field.IMM14, frozenset({"tbz"}), _branch(16, False),
              granule=4),
    RelocSpec("R_AARCH64_CONDBR19", 280, Formula.PREL, Field.IMM19, _B19, _branch(21), granule=4),
    RelocSpec("R_AARCH64_JUMP26", 282, Formula.PREL, Field.IMM26, frozenset({"b"}), _branch(28, False),
              granule=4, veneer=True),
    RelocSpec("R_AARCH64_CALL26", 283, Formula.PREL, Field.IMM26, frozenset({"bl"}), _branch(28, False),
              granule=4, veneer=True),
    RelocSpec("R_AARCH64_LDST16_ABS_LO12_NC", 284, Formula.ABS, Field.LO12, _LDST, _LO12_NOCHECK,
              granule=2, scale=1),
    RelocSpec("R_AARCH64_LDST32_ABS_LO12_NC", 285, Formula.ABS, Field.LO12, _LDST, _LO12_NOCHECK,
              granule=4, scale=2),
    RelocSpec("R_AARCH64_LDST64_ABS_LO12_NC", 286, Formula.ABS, Field.LO12, _LDST, _LO12_NOCHECK,
              granule=8, scale=3),
    RelocSpec("R_AARCH64_LDST128_ABS_LO12_NC", 299, Formula.ABS, Field.LO12, _LDST, _LO12_NOCHECK,
              granule=16, scale=4),
    RelocSpec("R_AARCH64_GOT_LD_PREL19", 309, Formula.GOT_PREL, Field.IMM19, _LIT, _branch(21), granule=4),
    # GNU ld 2.40 writes an out-of-range GOT page delta without a word (it wraps modulo 2^33).
    RelocSpec("R_AARCH64_ADR_GOT_PAGE", 311, Formula.GOT_PAGE, Field.ADRP, frozenset({"adrp"}),
              _same(Limit(Check.INT, 33), bfd=Limit(Check.INT, 33, reports=False)), granule=PAGE),
)

BY_NUMBER: Mapping[int, RelocSpec] = {s.number: s for s in CATALOGUE}
BY_NAME: Mapping[str, RelocSpec] = {s.name: s for s in CATALOGUE}

# Types that carry no range check but are worth naming when a table holds them.
_OTHER_NAMES = {0: "R_AARCH64_NONE", 256: "R_AARCH64_NONE", 299: "R_AARCH64_LDST128_ABS_LO12_NC",
                314: "R_AARCH64_PLT32", 1024: "R_AARCH64_COPY", 1025: "R_AARCH64_GLOB_DAT",
                1026: "R_AARCH64_JUMP_SLOT", 1027: "R_AARCH64_RELATIVE", 1032: "R_AARCH64_IRELATIVE"}


def type_name(number: int) -> str | None:
    """The catalogue's name for a type number: its rows, and unchecked types it knows."""
    spec = BY_NUMBER.get(number)
    return spec.name if spec is not None else _OTHER_NAMES.get(number)


def by_type(fact, fill=0, dtype=None):
    """A numpy array indexed by type number: ``fact(spec)`` for catalogue types, ``fill`` for
    the rest. Column-wise code reads the catalogue through these (never its own copy)."""
    import numpy as np
    out = np.full(max(BY_NUMBER) + 1, fill, dtype=dtype)
    for spec in CATALOGUE:
        out[spec.number] = fact(spec)
    return out


def value_alignment(spec: RelocSpec) -> int:
    """Alignment that S+A must have for this type's value to meet its granule.

    Page-relative types get their granule from Page(), not from S+A.
    """
    return 1 if spec.formula.paged else spec.granule
