"""Fixes as data: what to write instead of a failing site, and how that was decided.

prove/fix.py decides a rewrite by building the rewritten object and proving its new
sites; the outcome is a :class:`FixDecision`. reasons.fix() alone turns it into the
:class:`Fix` a report shows (its words), as reasons.reason() does for verdicts.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field

from .proofs import Verdict


class FixKind(enum.Enum):
    REWRITE = "rewrite"  # a longer-range sequence, decided under the site's model
    ADVICE = "advice"    # no rewrite of the instruction helps: the remedy in words


class Remedy(enum.Enum):
    """What an advice asks for (no instruction rewrite reaches further)."""

    ALIGN = "align the target"               # an alignment fault: no reach helps
    WIDEN = "widen the word"                 # a data word out of range: a 64-bit word
    MOVW = "add the next move-wide group"    # movz/movk group overflow
    LITERAL = "load the address from a literal pool"  # adrp beyond +-4 GiB
    GOT = "use the adrp/ldr GOT pair"        # ldr :got: literal out of reach
    NO_REGISTER = "nothing to rewrite"       # adr into the zero register


@dataclass(frozen=True, slots=True)
class FixSite:
    """One range-checked relocation of a rewrite, as the prover decided it in the grown object."""

    reloc: str
    section: str
    offset: int          # in the grown section
    verdict: Verdict
    reason: str          # the words of the decision (reasons.reason)


@dataclass(frozen=True, slots=True)
class Changed:
    """Another site whose verdict the growth changes (or, ``assembler``, an instruction the
    assembler resolved that the growth puts out of reach)."""

    section: str
    offset: int          # in the original section
    reloc: str
    before: Verdict
    after: Verdict
    assembler: bool = False  # no relocation: the assembler resolved it, and would now reject it


@dataclass(frozen=True, slots=True)
class FixDecision:
    kind: FixKind
    form: str = ""                         # target.rewrite.FORMS key
    asm: tuple[str, ...] = ()
    reach: tuple[int, int] | None = None   # the range of the new branch or page delta
    verdict: Verdict | None = None         # None: advice only, nothing was decided
    model: str = ""
    sites: tuple[FixSite, ...] = ()
    grown: tuple[tuple[str, int], ...] = ()  # every section the object's fixes grow, and by how much
    others: int = 0                        # other rewrites of this object decided with this one
    scratch: str = ""                      # a general register the engineer chooses (the one used)
    clobbers: str = ""
    align: tuple[int, int] | None = None   # (alignment the :lo12: access needs, the literal's)
    target: str = ""                       # sym+addend as written in the asm
    remedy: Remedy | None = None
    granule: int = 0                       # ALIGN: the alignment needed
    wider: str = ""                        # WIDEN / MOVW: the wider relocation
    changed: tuple[Changed, ...] = ()
    more_changed: int = 0                  # changed sites not listed
    assumptions: tuple[str, ...] = ()      # assumptions the grown object adds
    why: str = ""                          # why the rewrite could not be decided
    words: tuple[int, ...] = ()            # the rewrite as assembled (little-endian instructions)
    relocs: tuple[tuple[int, int], ...] = ()  # its relocations: (offset from the site, type number)


@dataclass(frozen=True, slots=True)
class Fix:
    """A fix as reports show it (JSON "fix"): ``verdict`` is the rewrite's verdict, or
    "none" for an advice, where nothing was decided."""

    asm: tuple[str, ...]
    reach: str
    verdict: str
    note: str
    decision: FixDecision = field(compare=False, repr=False)
