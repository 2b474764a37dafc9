"""The link policy: whose limits apply, which overflows a veneer repairs, who reports what.

One object answers every question that depends on the selected linkers rather
than on the relocation alone: the range a site must meet, whether an
out-of-range branch is repaired by a veneer in this section, and which linkers
reject a given value. The veneer rule is written here and nowhere else.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field

from .catalogue import PROFILES, RelocSpec

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

    def section_veneers(self, name: str) -> bool:
        """May out-of-range branches placed in section ``name`` rely on veneers?"""
        return self.veneers and not any(fnmatch.fnmatchcase(name, g) for g in self.no_veneers)

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
            if iv is not None and not iv[0] <= value <= iv[1] and lim.reports and not (
                    section_veneers and _repairs(p, spec, same_section)):
                out.append(p)
            elif lim.aligns and value % spec.granule and not spec.formula.paged:
                out.append(p)
        return tuple(out)

    def silent_on_misalignment(self, spec: RelocSpec) -> tuple[str, ...]:
        """Linkers that drop a misaligned value's low bits without a word."""
        return tuple(p for p in self.profiles if not spec.limits[p].aligns)


def label(profile: str) -> str:
    return PROFILE_LABEL[profile]
