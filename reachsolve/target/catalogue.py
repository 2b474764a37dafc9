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
    # TPREL(S+A) = S+A-TP: AAELF64 5.7.11; TP is the link-time thread pointer (see TP below).
    TPREL = "TPREL(S+A)"
    TLSIE_PAGE = "Page(G(GTPREL(S+A)))-Page(P)"
    TLSDESC_PAGE = "Page(G(GTLSDESC(S+A)))-Page(P)"

    @property
    def uses_got(self) -> bool:
        return self in (Formula.GOT_PAGE, Formula.GOT_PREL, Formula.TLSIE_PAGE, Formula.TLSDESC_PAGE)

    @property
    def got_kind(self) -> str:
        """Which GOT entry the formula names: "" (GDAT, an address), "tprel", "tlsdesc"."""
        return {Formula.TLSIE_PAGE: "tprel", Formula.TLSDESC_PAGE: "tlsdesc"}.get(self, "")

    @property
    def got_size(self) -> int:
        """Bytes of the GOT entry: a TLS descriptor is two words (AAELF64 5.7.11.3)."""
        return 16 if self is Formula.TLSDESC_PAGE else 8

    @property
    def paged(self) -> bool:
        return self in (Formula.PAGE, Formula.GOT_PAGE, Formula.TLSIE_PAGE, Formula.TLSDESC_PAGE)

    @property
    def pc_relative(self) -> bool:
        return self not in (Formula.ABS, Formula.TPREL)

    @property
    def tp_relative(self) -> bool:
        return self is Formula.TPREL

    def value(self, s, p, tp=None):
        """The relocation value from S+A (or the GOT slot), P and, for TPREL, the thread
        pointer TP, by this formula.

        Works on IR terms (a Lin, giving a Lin or PageDiff), on ints and on integer
        numpy columns, so the constraint builder, the re-check and the column-wise
        as-linked values share one definition."""
        if self.paged:
            return page_diff(s, p)
        if self is Formula.ABS:
            return s
        if self is Formula.TPREL:
            return s - tp
        return s - p


#: The TP variable of TPREL values. ld.lld (getTlsTpOffset, AArch64 = TLS variant 1)
#: computes TPREL(S) = S - p_vaddr + 16 + ((p_vaddr - 16) & (p_align - 1)) for the PT_TLS
#: segment (p_vaddr its first TLS section, .tdata before .tbss). That is S - TP with
#: TP = alignDown(p_vaddr - 16, p_align): the thread pointer is p_align-aligned and the
#: 16-byte TCB lies between it and the TLS block. GNU ld's tpoff_base agrees
#: (align_power(TCB_SIZE, tls alignment) below the segment start, for an aligned start).
TP_VAR = ("tp",)
TCB_SIZE = 16


def thread_pointer(p_vaddr: int, p_align: int) -> int:
    """TP for a TLS segment at ``p_vaddr`` aligned to ``p_align`` (a power of two)."""
    return (p_vaddr - TCB_SIZE) & -max(p_align, 1)


class Field(enum.Enum):
    """Where in the 16/32-bit container the value lands, and how it is scaled."""

    IMM19 = "imm19"          # bits 23:5, value >> 2  (b.cond, cbz, ldr literal)
    IMM14 = "imm14"          # bits 18:5, value >> 2  (tbz)
    IMM26 = "imm26"          # bits 25:0, value >> 2  (b, bl)
    ADR = "immhi:immlo"      # bits 23:5 and 30:29, value        (adr)
    ADRP = "immhi:immlo<<12"  # bits 23:5 and 30:29, value >> 12  (adrp)
    LO12 = "imm12"           # bits 21:10, (value & 0xfff) >> scale (ldr/str unsigned offset)
    MOVW = "imm16"           # bits 20:5, (value >> shift) & 0xffff (movz/movk)
    # bits 20:5 of movz/movn/movk for a signed value: a movz/movn becomes movn with the
    # group inverted when the value is negative, movz otherwise; a movk keeps its opcode
    # (lld's writeSMovWImm; AAELF64 5.7.8 "MOV[NZ]").
    SMOVW = "imm16 (movz/movn by sign)"
    HI12 = "imm12 of add, value >> 12"  # bits 21:10 (add #imm, lsl #12)
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
    """The overflow checks linkers apply (lld's checkInt/checkUInt/checkIntUInt).

    Every check reads the value as the linkers hold it: 64 bits, two's complement
    (lld's uint64_t val, GNU ld's bfd_vma, the module loader's s64 sval). So the
    interval below applies to ``wrap64(value)``; S+A in the top 2 GiB of the address
    space reads as a small negative number and passes lld's ABS32 check."""

    INT = "signed"
    UINT = "unsigned"
    INT_UINT = "signed or unsigned"
    NONE = "none"
    REJECTED = "type rejected"  # the linker refuses the type outright, whatever its value


WRAP = 1 << 64


def wrap64(v: int) -> int:
    """The 64-bit two's complement reading of an integer value (what every check sees)."""
    return ((v + (1 << 63)) % WRAP) - (1 << 63)


@dataclass(frozen=True)
class Limit:
    check: Check
    bits: int = 0
    aligns: bool = True   # does this linker report a value that violates the granule?
    reports: bool = True  # does it report a value outside the interval (or wrap it silently)?

    @property
    def rejected(self) -> bool:
        return self.check is Check.REJECTED

    def accepts(self, value: int) -> bool:
        """Does the value pass this range check (read as 64 bits, see Check)?"""
        iv = self.interval()
        return iv is None or iv[0] <= wrap64(value) <= iv[1]

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
    source: str = ""  # where the limits come from (lld, GNU ld, module loader, AAELF64)

    @property
    def tls(self) -> bool:
        """Does the value depend on the TLS segment's layout (TP or a TLS GOT entry)?"""
        return self.formula in (Formula.TPREL, Formula.TLSIE_PAGE, Formula.TLSDESC_PAGE)


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

# The arm64 module loader of Linux 6.1 (arch/arm64/kernel/module.c, apply_relocate_add)
# handles ABS/PREL data, MOVW_UABS/SABS/PREL, LD_PREL_LO19, ADR, ADRP, the lo12 forms,
# TSTBR14, CONDBR19, JUMP26/CALL26; any other type ends in "unsupported RELA relocation"
# and -ENOEXEC: the module does not load. That covers every GOT and TLS type and PLT32.
_KMOD_REJECTS = Limit(Check.REJECTED, aligns=False, reports=True)

# Signed MOVW groups G0/G1/G2: lld checkInt(val, 17/33/49) (AArch64::relocate), GNU ld
# complain_overflow_signed with bitsize 17/33/49 (elfNN-aarch64.c howtos), the module
# loader "imm > U16_MAX" after the movn inversion (reloc_insn_movw), the same interval.
def _smovw(group: int, kmod: bool = True) -> dict[str, Limit]:
    lim = Limit(Check.INT, 17 + 16 * group)
    return _same(lim, kmod=lim if kmod else _KMOD_REJECTS)


_TLS_LO12 = _same(Limit(Check.NONE), kmod=_KMOD_REJECTS)

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
              _same(Limit(Check.INT, 32), kmod=_KMOD_REJECTS)),
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
    # -- signed MOVW: AAELF64 5.7.8, "Set a MOV[NZ] immediate field"; checks in _smovw --
    RelocSpec("R_AARCH64_MOVW_SABS_G0", 270, Formula.ABS, Field.SMOVW, frozenset({"movw"}), _smovw(0),
              scale=0, source="lld checkInt 17; bfd signed 17; module.c MOVNZ"),
    RelocSpec("R_AARCH64_MOVW_SABS_G1", 271, Formula.ABS, Field.SMOVW, frozenset({"movw"}), _smovw(1),
              scale=16, source="lld checkInt 33; bfd signed 33; module.c MOVNZ"),
    RelocSpec("R_AARCH64_MOVW_SABS_G2", 272, Formula.ABS, Field.SMOVW, frozenset({"movw"}), _smovw(2),
              scale=32, source="lld checkInt 49; bfd signed 49; module.c MOVNZ"),
    # MOVW_PREL_G3 carries no check anywhere (lld writes val >> 48), so it is no row.
    RelocSpec("R_AARCH64_MOVW_PREL_G0", 287, Formula.PREL, Field.SMOVW, frozenset({"movw"}), _smovw(0),
              scale=0, source="lld checkInt 17; bfd signed 17; module.c MOVNZ"),
    RelocSpec("R_AARCH64_MOVW_PREL_G1", 289, Formula.PREL, Field.SMOVW, frozenset({"movw"}), _smovw(1),
              scale=16, source="lld checkInt 33; bfd signed 33; module.c MOVNZ"),
    RelocSpec("R_AARCH64_MOVW_PREL_G2", 291, Formula.PREL, Field.SMOVW, frozenset({"movw"}), _smovw(2),
              scale=32, source="lld checkInt 49; bfd signed 49; module.c MOVNZ"),
    # GOTPCREL32 (AAELF64 5.7.6, G(GDAT(S+A))-P, checked as signed 32 bits: lld >= 18
    # checkInt 32); ld.lld 14 and GNU ld 2.40 do not implement it (no oracle).
    RelocSpec("R_AARCH64_GOTPCREL32", 315, Formula.GOT_PREL, Field.DATA32, frozenset({"data"}),
              _same(Limit(Check.INT, 32), kmod=_KMOD_REJECTS), source="lld checkInt 32; ABI"),
    # -- TLS (AAELF64 5.7.11); TPREL values depend on the TLS segment, see TP_VAR --------
    # GNU ld 2.40's howtos (elfnn-aarch64.c) check TPREL_G2 as unsigned 48 bits and HI12 as
    # unsigned 24; TPREL_G1/G0, the lo12 forms and both TLS pages are complain_overflow_dont:
    # it writes an overflowing value without a word (the verdict range still applies).
    RelocSpec("R_AARCH64_TLSLE_MOVW_TPREL_G2", 544, Formula.TPREL, Field.SMOVW, frozenset({"movw"}),
              {**_smovw(2, kmod=False), "bfd": Limit(Check.UINT, 48)}, scale=32,
              source="lld checkInt 49; bfd unsigned 48"),
    RelocSpec("R_AARCH64_TLSLE_MOVW_TPREL_G1", 545, Formula.TPREL, Field.SMOVW, frozenset({"movw"}),
              {**_smovw(1, kmod=False), "bfd": Limit(Check.INT, 33, reports=False)}, scale=16,
              source="lld checkInt 33; bfd no check"),
    RelocSpec("R_AARCH64_TLSLE_MOVW_TPREL_G0", 547, Formula.TPREL, Field.SMOVW, frozenset({"movw"}),
              {**_smovw(0, kmod=False), "bfd": Limit(Check.INT, 17, reports=False)}, scale=0,
              source="lld checkInt 17; bfd no check"),
    RelocSpec("R_AARCH64_TLSLE_ADD_TPREL_HI12", 549, Formula.TPREL, Field.HI12, frozenset({"add-imm"}),
              _same(Limit(Check.UINT, 24), kmod=_KMOD_REJECTS), source="lld checkUInt 24; bfd unsigned 24"),
    # The lo12 TLSLE forms check only alignment (lld checkAlignment 2/4/8/16; the 8-bit one
    # checks nothing and is no row; GNU ld reports misalignment as "truncated to fit"). lld 14
    # implements only the _NC spellings; GNU ld 2.40 does not implement LDST128 at all.
    RelocSpec("R_AARCH64_TLSLE_LDST16_TPREL_LO12_NC", 555, Formula.TPREL, Field.LO12, _LDST, _TLS_LO12,
              granule=2, scale=1, source="lld checkAlignment 2"),
    RelocSpec("R_AARCH64_TLSLE_LDST32_TPREL_LO12_NC", 557, Formula.TPREL, Field.LO12, _LDST, _TLS_LO12,
              granule=4, scale=2, source="lld checkAlignment 4"),
    RelocSpec("R_AARCH64_TLSLE_LDST64_TPREL_LO12_NC", 559, Formula.TPREL, Field.LO12, _LDST, _TLS_LO12,
              granule=8, scale=3, source="lld checkAlignment 8"),
    RelocSpec("R_AARCH64_TLSLE_LDST128_TPREL_LO12_NC", 571, Formula.TPREL, Field.LO12, _LDST, _TLS_LO12,
              granule=16, scale=4, source="lld checkAlignment 16; not in GNU ld 2.40"),
    # Initial-exec and descriptor pages: an ADRP to the symbol's GOT entry, lld checkInt 33.
    RelocSpec("R_AARCH64_TLSIE_ADR_GOTTPREL_PAGE21", 541, Formula.TLSIE_PAGE, Field.ADRP, frozenset({"adrp"}),
              _same(Limit(Check.INT, 33), bfd=Limit(Check.INT, 33, reports=False), kmod=_KMOD_REJECTS),
              granule=PAGE, source="lld checkInt 33; bfd no check"),
    RelocSpec("R_AARCH64_TLSDESC_ADR_PAGE21", 562, Formula.TLSDESC_PAGE, Field.ADRP, frozenset({"adrp"}),
              _same(Limit(Check.INT, 33), bfd=Limit(Check.INT, 33, reports=False), kmod=_KMOD_REJECTS),
              granule=PAGE, source="lld checkInt 33; bfd no check"),
)

BY_NUMBER: Mapping[int, RelocSpec] = {s.number: s for s in CATALOGUE}
BY_NAME: Mapping[str, RelocSpec] = {s.name: s for s in CATALOGUE}

# Types that carry no range check but are worth naming when a table holds them.
_OTHER_NAMES = {0: "R_AARCH64_NONE", 256: "R_AARCH64_NONE", 299: "R_AARCH64_LDST128_ABS_LO12_NC",
                314: "R_AARCH64_PLT32", 1024: "R_AARCH64_COPY", 1025: "R_AARCH64_GLOB_DAT",
                1026: "R_AARCH64_JUMP_SLOT", 1027: "R_AARCH64_RELATIVE", 1032: "R_AARCH64_IRELATIVE",
                # the TLS descriptor sequence's other members (AAELF64 table 5-24)
                560: "R_AARCH64_TLSDESC_LD_PREL19", 561: "R_AARCH64_TLSDESC_ADR_PREL21",
                563: "R_AARCH64_TLSDESC_LD64_LO12", 564: "R_AARCH64_TLSDESC_ADD_LO12",
                565: "R_AARCH64_TLSDESC_OFF_G1", 566: "R_AARCH64_TLSDESC_OFF_G0_NC",
                567: "R_AARCH64_TLSDESC_LDR", 568: "R_AARCH64_TLSDESC_ADD", 569: "R_AARCH64_TLSDESC_CALL"}


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
