"""Stable identities of findings across builds, for baselines, suppressions and SARIF.

Section offsets move whenever other code grows, and a vmlinux.o has thousands of
sections of one name, so neither names a site from one build to the next. A site
is named by what a source change leaves alone: the object, the function holding
it, the offset inside that function, the relocation type and the target symbol.
Static functions share names, so the source file (where DWARF gives it) and then
the occurrence index break ties. A site outside any function falls back to its
section name, target, type and instruction text.
"""
from __future__ import annotations

import hashlib
from collections import Counter
from typing import Iterable

#: The key of reachsolve's fingerprint in SARIF ``partialFingerprints``; the version
#: goes up when the identity below changes.
FINGERPRINT_KEY = "reachsolveSite/v1"


def identity(s) -> tuple[str, ...]:
    """The parts a site's fingerprint is made of (occurrence index excluded)."""
    target = s.symbol or (s.target_section or "")
    if s.function is not None:
        name, offset = s.function
        return ("function", s.file, name, f"{offset:#x}", s.reloc, target,
                s.source.file if s.source is not None else "")
    return ("section", s.file, s.section, target, s.reloc, s.instruction)


def fingerprints(sites: Iterable) -> list[str]:
    """One fingerprint per site, in the order given (key order: deterministic)."""
    seen: Counter = Counter()
    out = []
    for s in sites:
        ident = identity(s)
        n = seen[ident]
        seen[ident] += 1
        out.append(hashlib.sha256("\x1f".join((*ident, str(n))).encode()).hexdigest()[:32])
    return out
