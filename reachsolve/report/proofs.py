"""Decisions as data: verdicts, proof kinds and the records a decision produces.

A decision path (column-wise or one by one) says *why* with a record of a
kind and its operands; :mod:`reachsolve.report.reasons` alone turns records
into words, so both paths and every renderer say the same thing.
"""
from __future__ import annotations

import enum
import operator
from dataclasses import dataclass, fields


def pickled_by_fields(cls):
    """Pickle a frozen slots dataclass as its constructor call: ``cls(*fields)``.

    What dataclasses give such a class (__getstate__/__setstate__ walking fields() in
    Python) costs several times more; results cross the process pool by the thousand
    (an archive of ten thousand small members). The object read back is equal, field
    for field: every field is an __init__ argument, in order."""
    names = tuple(f.name for f in fields(cls))
    assert all(f.init for f in fields(cls)), cls
    get = operator.attrgetter(*names)
    if len(names) == 1:
        def __reduce__(self):
            return cls, (get(self),)
    else:
        def __reduce__(self):
            return cls, get(self)
    cls.__reduce__ = __reduce__
    return cls


class Verdict(enum.StrEnum):
    """A site's one verdict (a str: compares and serializes as its value)."""

    ROBUST = "robust"          # proved for every layout of the model
    VULNERABLE = "vulnerable"  # some layouts fail; a re-checked counterexample is given
    BROKEN = "broken"          # no layout fits, or the as-linked one fails
    UNKNOWN = "unknown"        # undecided, with the reason; never counted as robust


VERDICTS = tuple(v.value for v in Verdict)
#: The verdicts that fail a run (exit 1) unless --fail-on says otherwise.
DEFAULT_FAIL_ON = frozenset({Verdict.VULNERABLE, Verdict.BROKEN, Verdict.UNKNOWN})
#: What --fail-on can name: the verdicts of findings, "near" (a vulnerable site whose margin
#: is below --min-margin) and "new" (a finding the --baseline report did not have).
FAIL_KINDS = ("vulnerable", "near", "broken", "unknown", "new")


class ProofKind(enum.IntEnum):
    """How a robust site was proved. The first six appear in proof tables ("proof" column)."""

    SPAN = 0         # both ends inside the image bound the value
    FIXED = 1        # same section: the value is a constant
    PAGE_SPAN = 2    # the same two, for a page delta
    PAGE_FIXED = 3
    ALIGNED = 4      # no range; the value is always a multiple of the granule
    AS_LINKED = 5    # the single as-linked layout
    SOLVER = 6       # the solver's proved optimum bounds the value
    PAGE_SOLVER = 7  # the same, for a page delta
    ABSOLUTE = 8     # no layout variable: an absolute value
    PAGE_QUERY = 9   # the solver found no layout with the page delta out of range
    WRAP_QUERY = 10  # the solver found no layout whose 64-bit value reading fails the range


#: Names of the kinds a proof table can hold, by number.
TABLE_PROOF_KINDS = ("span", "fixed", "page-span", "page-fixed", "aligned", "as-linked")


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Proof:
    """Why a site is robust. ``dependent`` is the layout-dependent part of the value
    (as text), ``span`` its bounds, ``value`` the value's bounds (the page delta's for
    page kinds), ``range`` the range checked (None: none, e.g. repaired by a veneer)."""

    kind: ProofKind
    image_max: int = 0
    dependent: str = ""
    const: int = 0
    span: tuple[int, int] = (0, 0)
    value: tuple[int, int] = (0, 0)
    range: tuple[int, int] | None = None
    granule: int = 1
    veneered: bool = False


class Problem(enum.Enum):
    RANGE = "out of range"
    ALIGN = "improper alignment"


class FailureKind(enum.Enum):
    SOME_LAYOUTS = "some"   # vulnerable
    NO_LAYOUT = "none"      # broken: no layout of the model fits
    AS_LINKED = "as-linked"  # broken: this build fails


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Margin:
    """The least growth that breaks a site, and where that growth would have to lie."""

    amount: int
    between: tuple[str, str] | None = None   # the two chain items the growth lies between
    descriptions: tuple[str, ...] = ()       # input descriptions whose input may lie there
    more: int = 0                            # further descriptions not listed


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Failure:
    """Why a site is vulnerable or broken: ``value`` fails ``range`` or the granule."""

    kind: FailureKind
    problem: Problem
    value: int
    range: tuple[int, int] | None
    granule: int
    rejected_by: tuple[str, ...] = ()   # linker profiles that report it
    silent: tuple[str, ...] = ()        # profiles that drop a misaligned value's low bits
    margin: Margin | None = None


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class TypeRejected:
    """Broken whatever the layout: a selected linker refuses the relocation type itself
    (the arm64 module loader's "unsupported RELA relocation", -ENOEXEC)."""

    reloc: str
    rejected_by: tuple[str, ...]


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Undecided:
    """Why a site is unknown, in the words of the step that could not decide it."""

    why: str


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class VeneerNote:
    """A branch repaired by a veneer whose value reaches, or may reach, past the direct range."""

    value: tuple[int, int]
    direct: tuple[int, int]
    bounded_only: bool


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class FitUndecided:
    """A failing site where whether any layout fits at all was not decided."""

    why: str


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class WeakResolution:
    """One linker's decision on a non-preemptible undefined weak reference: ``rule`` says
    where the linker resolves S (target.policy WEAK_*), ``record`` is the decision on that
    value (a Proof, Failure or Undecided; None: the linker rewrites the instruction to a NOP)."""

    profile: str
    rule: str
    record: object = None


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class UndefinedWeak:
    """A site whose target is an undefined weak symbol in a ``final_link`` link: decided
    on the value each selected linker gives it (every one must fit)."""

    final_link: str
    symbol: str
    per: tuple[WeakResolution, ...]


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class MayStayUndefined:
    """A weak target that no layout fits while defined: it may also stay undefined, and the
    linkers then resolve it (see --final-link), so the site is not broken in the open world."""

    symbol: str


Reason = Proof | Failure | Undecided | UndefinedWeak | TypeRejected
Note = VeneerNote | FitUndecided | MayStayUndefined
