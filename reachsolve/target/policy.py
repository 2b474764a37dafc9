"""The link policy: whose limits apply, which overflows a veneer repairs, who reports what.

One object answers every question that depends on the selected linkers rather
than on the relocation alone: the range a site must meet, whether an
out-of-range branch is repaired by a veneer in this section, and which linkers
reject a given value. The veneer rule is written here and nowhere else.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field

from .catalogue import PROFILES, WRAP, Formula, RelocSpec, wrap64

#: --linker / model ``linker`` choices and the profiles each selects ("both": a
#: site must satisfy ld.lld and GNU ld).
PROFILE_CHOICES = {"lld": ("lld",), "bfd": ("bfd",), "both": ("lld", "bfd"), "module": ("kmod",)}
PROFILE_LABEL = {"lld": "ld.lld", "bfd": "GNU ld", "kmod": "arm64 module loader"}
#: The release whose rules each profile's limits follow (the catalogue was checked against
#: ld.lld 14's AArch64.cpp, GNU ld 2.40's elfnn-aarch64.c and Linux 6.1's module.c).
PROFILE_VERSION = {"lld": "14", "bfd": "2.40", "kmod": "6.1"}
assert set(PROFILE_LABEL) == set(PROFILES) == set(PROFILE_VERSION)

# Which overflowing branches each linker repairs with a veneer. ld.lld adds a
# thunk for any b/bl out of range; GNU ld 2.40 reports "relocation truncated to
# fit" for a target in the branch's own section; the module loader routes any
# b/bl through a module PLT entry (CONFIG_ARM64_MODULE_PLTS; without it, a model
# says veneers = false).
VENEERS = {"lld": "any", "bfd": "other-section", "kmod": "any"}


def _repairs(profile: str, spec: RelocSpec, same_section: bool) -> bool:
    rule = VENEERS[profile]
    return spec.veneer and rule != "none" and not (rule == "other-section" and same_section)


_RANGES: dict[tuple[str, tuple[str, ...]], tuple[int, int] | None] = {}


def _range(spec: RelocSpec, profiles: tuple[str, ...]) -> tuple[int, int] | None:
    key = (spec.name, profiles)  # a type's name is unique in the catalogue
    if key not in _RANGES:
        _RANGES[key] = _compute_range(spec, profiles)
    return _RANGES[key]


def _compute_range(spec: RelocSpec, profiles: tuple[str, ...]) -> tuple[int, int] | None:
    lo, hi = None, None
    for p in profiles:
        iv = spec.limits[p].interval()
        if iv is None:
            continue
        lo = iv[0] if lo is None else max(lo, iv[0])
        hi = iv[1] if hi is None else min(hi, iv[1])
    if lo is None:
        return None
    g = spec.granule
    return -((-lo) // g) * g, (hi // g) * g


@dataclass(frozen=True)
class LinkPolicy:
    """The linkers a model selects and how branches may be repaired."""

    linker: str = "both"
    veneers: bool = True                      # may linkers add veneers at all?
    no_veneers: tuple[str, ...] = field(default=())  # section-name globs where they may not

    @property
    def profiles(self) -> tuple[str, ...]:
        return PROFILE_CHOICES[self.linker]

    def range(self, spec: RelocSpec) -> tuple[int, int] | None:
        """Closed range of values every selected linker accepts, trimmed to the granule."""
        return _range(spec, self.profiles)

    def rejects_type(self, spec: RelocSpec) -> tuple[str, ...]:
        """The selected linkers that refuse this relocation type outright (any value)."""
        return tuple(p for p in self.profiles if spec.limits[p].rejected)

    def accepts(self, spec: RelocSpec, value: int) -> bool:
        """Is ``value`` inside :meth:`range`, read as 64 bits as every linker reads it?"""
        rng = self.range(spec)
        return rng is None or rng[0] <= wrap64(value) <= rng[1]

    def wrapped_ranges(self, spec: RelocSpec, lo: int, hi: int) -> list[tuple[int, int]]:
        """The copies of :meth:`range`, shifted by multiples of 2^64, that meet [lo, hi]: a
        value v passes exactly when it lies in one (v and v + k*2^64 read alike)."""
        rng = self.range(spec)
        if rng is None:
            return []
        first, last = -((rng[1] - lo) // WRAP), (hi - rng[0]) // WRAP
        return [(rng[0] + k * WRAP, rng[1] + k * WRAP) for k in range(first, last + 1)]

    def section_veneers(self, name: str) -> bool:
        """May out-of-range branches placed in section ``name`` rely on veneers?"""
        return self.veneers and not any(fnmatch.fnmatchcase(name, g) for g in self.no_veneers)

    def sections_veneers(self, names: list[str]) -> list[bool]:
        """section_veneers of each name (a kernel's column-wise proofs ask for 10^5 sections)."""
        if not self.veneers or not self.no_veneers:
            return [self.veneers] * len(names)
        return [self.section_veneers(n) for n in names]

    def veneered(self, spec: RelocSpec, section_veneers: bool, same_section: bool) -> bool:
        """Would every selected linker repair an out-of-range ``spec`` site with a veneer?"""
        return section_veneers and all(_repairs(p, spec, same_section) for p in self.profiles)

    def checked_range(self, spec: RelocSpec, section_veneers: bool, same_section: bool):
        """The range a site must meet: none when a veneer repairs any overflow."""
        return None if self.veneered(spec, section_veneers, same_section) else self.range(spec)

    def rejecting(self, spec: RelocSpec, value: int, section_veneers: bool, same_section: bool
                  ) -> tuple[str, ...]:
        """The selected linkers that would report ``value`` at such a site."""
        out = []
        for p in self.profiles:
            lim = spec.limits[p]
            iv = lim.interval()
            if lim.rejected:
                out.append(p)
            elif iv is not None and not lim.accepts(value) and lim.reports and not (
                    section_veneers and _repairs(p, spec, same_section)):
                out.append(p)
            elif lim.aligns and value % spec.granule and not spec.formula.paged:
                out.append(p)
        return tuple(out)

    def weak_rules(self, spec: RelocSpec, final_link: str | None, visibility: int
                   ) -> tuple[tuple[str, str], ...] | None:
        """Each selected linker's resolution of a non-preemptible undefined weak reference
        in a ``final_link`` link, or None (open world: no final link, preemptible, or a
        linker that fixes no place for it)."""
        if final_link is None or weak_preemptible(final_link, visibility):
            return None
        rules = tuple((p, weak_rule(p, spec, final_link, visibility)) for p in self.profiles)
        return None if any(r is None for _, r in rules) else rules

    def single(self, profile: str) -> "LinkPolicy":
        """This policy with one of its linkers alone (per-linker decisions)."""
        return LinkPolicy(next(k for k, v in PROFILE_CHOICES.items() if v == (profile,)), self.veneers,
                          self.no_veneers)

    def silent_on_misalignment(self, spec: RelocSpec) -> tuple[str, ...]:
        """Linkers that drop a misaligned value's low bits without a word."""
        return tuple(p for p in self.profiles if not spec.limits[p].aligns)


#: --final-link / model ``final_link`` choices: the output type of the final link (None: open world,
#: another object may still define an undefined symbol).
FINAL_LINKS = ("static", "pie", "shared")

# How a linker resolves a non-preemptible undefined weak reference in a final link:
# S as a function of the place P (the addend is kept: the value is formula(S + A, P)).
WEAK_NEXT = "next"      # S = P + 4: the next instruction
WEAK_PLACE = "place"    # S = P
WEAK_PAGE = "page"      # S = Page(P)
WEAK_ZERO = "zero"      # S = 0
WEAK_NOP = "nop"        # the instruction is rewritten to a NOP: no value, nothing to check
_BRANCHES = frozenset({"R_AARCH64_CALL26", "R_AARCH64_JUMP26", "R_AARCH64_CONDBR19", "R_AARCH64_TSTBR14"})
_CALLS = frozenset({"R_AARCH64_CALL26", "R_AARCH64_JUMP26"})
STV_DEFAULT, STV_INTERNAL, STV_HIDDEN, STV_PROTECTED = 0, 1, 2, 3
_MOVW_PREL = frozenset({"R_AARCH64_MOVW_PREL_G0", "R_AARCH64_MOVW_PREL_G1", "R_AARCH64_MOVW_PREL_G2"})
#: Types whose value against an undefined weak symbol is not modelled: the TLS rows (an
#: undefined weak TLS symbol has no TLS block to be relative to) and PLT32 (ld.lld takes the
#: PLT or S = 0 there, not the place). Under --final-link such sites are unknown.
_WEAK_UNMODELLED = frozenset({"R_AARCH64_PLT32"})


def weak_modelled(spec: RelocSpec) -> bool:
    """Is this type's undefined-weak resolution in a final link modelled? GOT forms are: their
    value is the GOT slot's place, which does not depend on S (tests/test_final_link.py checks
    the others against both linkers)."""
    f = spec.formula
    return spec.name not in _WEAK_UNMODELLED and f in (Formula.PREL, Formula.PAGE, Formula.ABS,
                                                       Formula.GOT_PAGE, Formula.GOT_PREL)


def weak_preemptible(final_link: str, visibility: int) -> bool:
    """Does a link of this type leave an undefined weak symbol to the dynamic linker (a PLT/GOT
    entry, or an error for non-PIC relocations)? Only default visibility in a PIE or a shared
    object; both ld.lld 14 and GNU ld 2.40 treat it so (tests/test_final_link.py)."""
    return final_link in ("pie", "shared") and visibility == STV_DEFAULT


def weak_rule(profile: str, spec: RelocSpec, final_link: str, visibility: int) -> str | None:
    """S for a non-preemptible undefined weak reference of type ``spec`` under ``profile``
    (None: not resolved to a fixed place; the site stays open-world).

    ld.lld 14 (InputSection.cpp, getRelocTargetVA with getAArch64UndefinedRelativeWeakVA):
    R_PC types to P+4 for b/bl/b.cond/cbz/tbz and MOVW_PREL_G0-G2 (measured: lld 14 writes
    A+4 into a movz of :prel_g0:), and P otherwise; ADRP (R_AARCH64_PAGE_PC) to P when
    the symbol is still weak, and to 0 when hidden/internal visibility made its binding local.
    GNU ld 2.40 (elfnn-aarch64.c final_link_relocate, elfxx-aarch64.c resolve_relocation):
    PC-relative types to P, ADRP to Page(P), a b/bl to a NOP. Absolute types: S = 0, in a
    static link only (a PIE or shared object needs PIC relocations for them)."""
    f = spec.formula
    if not weak_modelled(spec) or f.uses_got:
        return None   # GOT forms: the slot's place decides; unmodelled types: see weak_modelled
    if f is Formula.ABS:
        return WEAK_ZERO if final_link == "static" and profile in ("lld", "bfd") else None
    if profile == "lld":
        if f is Formula.PREL:
            return WEAK_NEXT if spec.name in _BRANCHES or spec.name in _MOVW_PREL else WEAK_PLACE
        if f is Formula.PAGE:
            return WEAK_ZERO if visibility in (STV_HIDDEN, STV_INTERNAL) else WEAK_PLACE
    elif profile == "bfd":
        if f is Formula.PREL:
            return WEAK_NOP if spec.name in _CALLS else WEAK_PLACE
        if f is Formula.PAGE:
            return WEAK_PAGE
    return None


# The linker-made GOT of a link with no PLT entries, as each linker sizes it (measured with
# ld.lld 14 and GNU ld 2.40, static, PIE and shared alike): ld.lld's .got holds 8 bytes per
# address entry and no header, and it makes no .got.plt; GNU ld's .got starts with an 8-byte
# reserved entry (the address of _DYNAMIC) and its .got.plt with three reserved words. The
# order of the entries is neither linker's documented rule (GNU ld's follows its symbol hash
# table), so it is not modelled: an entry lies anywhere among the entries.
GOT_HEADER = {"lld": 0, "bfd": 8}
GOT_PLT_RESERVED = {"lld": 0, "bfd": 24}
GOT_ENTRY = 8


def got_sections(profile: str, entries: int) -> dict[str, int]:
    """Bytes of the linker-made input sections .got and .got.plt for ``entries`` address entries."""
    return {".got": GOT_HEADER[profile] + GOT_ENTRY * entries, ".got.plt": GOT_PLT_RESERVED[profile]}


def label(profile: str) -> str:
    return PROFILE_LABEL[profile]
