"""The frozen result document that every renderer and library caller reads.

It holds data only: records and numbers for the sites decided one by one,
numpy columns for the sites proved column-wise. Nothing here decodes an
instruction or rebuilds a formula; a proof table is expanded into results by
the function its builder handed in.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable, Iterator

import numpy as np

from ..target.catalogue import BY_NUMBER, Formula, by_type
from .proofs import DEFAULT_FAIL_ON, TABLE_PROOF_KINDS, VERDICTS, Note, Reason, Verdict, pickled_by_fields

# How a site in a ProofTable was proved: the "proof" column holds ProofKind numbers.
PROOF_KINDS = TABLE_PROOF_KINDS


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Placement:
    section: str
    index: int
    address: int


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class SymbolPlacement:
    name: str
    address: int
    kind: str  # "undefined" | "got" | "script" (defined by the linker script)


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Counterexample:
    value: int
    image_base: int
    layout: tuple[Placement, ...]
    symbols: tuple[SymbolPlacement, ...]
    rejected_by: tuple[str, ...]   # linker profiles whose check the value fails
    problem: str                   # "out of range" | "improper alignment"
    place: int                     # address of the site in this layout
    target: int                    # S+A (or the GOT slot) in this layout
    encoded: str                   # the instruction/data as written, decoded back
    wanted: str                    # what it had to mean


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class SourceLine:
    """Where a site's instruction or data word was written, from the object's DWARF line table."""

    file: str                      # as DWARF gives it (comp_dir/dir/file), or relative to --source-root
    line: int
    column: int | None = None      # None where DWARF says 0, "not known"


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class SiteResult:
    file: str
    section: str
    section_index: int
    offset: int
    reloc: str
    symbol: str
    addend: int
    target_section: str | None
    instruction: str
    range: tuple[int, int] | None
    granule: int
    verdict: Verdict
    reason: str                    # the words of ``record`` (reasons.reason)
    expression: str
    counterexample: Counterexample | None = None
    notes: tuple[str, ...] = ()    # the words of ``note_records``
    as_linked: int | None = None   # the value in the as-linked layout (script models)
    margin: int | None = None      # least growth (bytes) that breaks a vulnerable site (script models)
    # The function (or nearest label) holding the site and the offset in it: for the sites
    # decided one by one (every finding); None for proof-table rows, whose expansion is lazy.
    function: tuple[str, int] | None = field(default=None, compare=False)
    # The source line of the site (DWARF .debug_line): for the findings (not robust) of ``listed``.
    source: SourceLine | None = field(default=None, compare=False)
    # The label written at the target, where the relocation names a section symbol plus an
    # addend and a function or label starts exactly at that place (``.rodata+25`` is ``msg``).
    target_label: str | None = field(default=None, compare=False)
    record: Reason | None = field(default=None, compare=False)      # the decision as data
    note_records: tuple[Note, ...] = field(default=(), compare=False)
    # What to write instead, decided under the same model (prove/fix.py); None: robust, or
    # nothing to say. A report.fixes.Fix.
    fix: object = field(default=None, compare=False)
    # The target's section index (None: undefined or absolute), for callers that must tell
    # apart sections of one name.
    target_section_index: int | None = field(default=None, compare=False)
    # Set by report.annotate after the decision: none of them changes a verdict.
    near: bool = field(default=False, compare=False)            # vulnerable with margin < min_margin
    fingerprint: str = field(default="", compare=False)         # stable identity (report.identity)
    baseline: "BaselineMark | None" = field(default=None, compare=False)
    suppression: str | None = field(default=None, compare=False)  # the written reason, if suppressed
    # Ids of the object's assumptions (FileSummary.assumption_ids) that the verdict rests on;
    # for the sites decided one by one.
    assumptions: tuple[str, ...] = field(default=(), compare=False)

    @property
    def key(self) -> tuple:
        return (self.file, self.section_index, self.offset, self.reloc)


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class BaselineMark:
    """A finding compared with the baseline report: "new", "unchanged" or "updated"
    (its verdict, margin or near flag changed; the old values are kept)."""

    state: str
    old_verdict: str | None = None
    old_margin: int | None = None
    old_near: bool | None = None


@dataclass(frozen=True)
class Comparison:
    """What the baseline held that this run did not find: ``absent`` findings (fixed) in
    files analyzed again, and ``not_compared`` ones, whose file is missing or failed now.
    Both hold the old report's site entries (dicts of its JSON)."""

    baseline: str
    absent: tuple[dict, ...]
    not_compared: tuple[dict, ...]


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class FileError:
    file: str
    message: str


@dataclass(frozen=True)
class FileSummary:
    file: str
    sections: int
    relocations: int
    not_range_checked: tuple[tuple[str, int], ...]
    skipped_nonalloc: int
    assumptions: tuple[str, ...]
    decisions: tuple[tuple[str, int], ...] = ()  # how groups and sites were decided (work done)

    @property
    def assumption_ids(self) -> tuple[str, ...]:
        """The id of each assumption, in order (A1, A2, ...); sites name these."""
        return tuple(assumption_id(k) for k in range(len(self.assumptions)))


def assumption_id(k: int) -> str:
    """The id of an object's assumption number ``k`` (0-based): its place in the list, from A1."""
    return f"A{k + 1}"


#: The columns of a ProofTable; JSON reports written with --all-sites list every one.
PROOF_COLUMNS = ("section_index", "offset", "reloc", "symbol", "addend", "target_section_index", "word",
                 "proof", "constant", "span_min", "span_max", "value_min", "value_max", "as_linked",
                 "veneered", "veneer_note")


@dataclass(frozen=True)
class ProofTable:
    """The sites of one object proved robust column-wise, kept as columns.

    Kernel objects have hundreds of thousands of such sites; a SiteResult for each
    would cost more than proving them. Rows are sorted like SiteResult.key.
    ``reloc`` holds type numbers, ``symbol`` symbol indices (``symbol_names`` names the
    ones used), ``target_section_index`` is -1 for an undefined symbol, ``as_linked`` is
    None unless the model has an as-linked layout, ``veneered`` says that a veneer
    repairs the branch out of range (so no range applies). ``expand`` (given by the
    prover that built the table) turns the rows into SiteResults.
    """

    file: str
    columns: dict                      # name (PROOF_COLUMNS) -> numpy array or None
    section_names: dict[int, str]      # every section a row refers to
    section_labels: dict[int, str]     # the same, as expressions name them ("name[index]" if ambiguous)
    symbol_names: dict[int, str]
    policy: object                     # the target.policy.LinkPolicy the rows were proved under
    image_max: int
    expand: Callable[["ProofTable"], Iterator["SiteResult"]] = field(repr=False, compare=False, default=None)

    def __len__(self) -> int:
        return len(self.columns["offset"])

    @cached_property
    def type_counts(self) -> dict[str, int]:
        """Rows per relocation type, by type number (np.unique's order, at a bincount's cost)."""
        n = np.bincount(self.columns["reloc"])
        t = np.flatnonzero(n)
        return {BY_NUMBER[a].name: c for a, c in zip(t.tolist(), n[t].tolist())}

    def __reduce__(self):
        # Across the process pool as one buffer of every column (an archive sends ten
        # thousand tables of a few rows: sixteen pickled arrays each cost more than the rows).
        layout = tuple((k, None if v is None else v.dtype.str) for k, v in self.columns.items())
        blob = b"".join(v.tobytes() for v in self.columns.values() if v is not None)
        return _table_from_buffer, (self.file, _LAYOUTS.setdefault(layout, layout), len(self), bytearray(blob),
                                    self.section_names, self.section_labels, self.symbol_names, self.policy,
                                    self.image_max, self.expand, self.__dict__.get("type_counts"))

    def as_linked(self) -> list[int] | None:
        """The as-linked values as integers: S+A is unsigned, differences are signed."""
        col = self.columns["as_linked"]
        if col is None:
            return None
        absolute = by_type(lambda spec: spec.formula is Formula.ABS, False, bool)
        signed = col.view(np.int64)
        out = signed.tolist()
        fix = np.nonzero(absolute[self.columns["reloc"]] & (signed < 0))[0]
        for i, u in zip(fix.tolist(), col[fix].tolist()):
            out[i] = u
        return out

    def results(self) -> Iterator["SiteResult"]:
        """Every row as a SiteResult, with the same texts a one-by-one decision gives."""
        return self.expand(self)


_LAYOUTS: dict[tuple, tuple] = {}   # one object per column layout: pickled once per batch
_DTYPES: dict[str, np.dtype] = {}


def _table_from_buffer(file, layout, n, blob, section_names, section_labels, symbol_names, policy, image_max,
                       expand, type_counts) -> ProofTable:
    """A ProofTable as ProofTable.__reduce__ sent it: each column a view of the one buffer."""
    columns, at = {}, 0
    for k, code in layout:
        if code is None:
            columns[k] = None
            continue
        dt = _DTYPES.get(code)
        if dt is None:
            dt = _DTYPES[code] = np.dtype(code)
        columns[k] = np.frombuffer(blob, dtype=dt, count=n, offset=at) if n else np.zeros(0, dtype=dt)
        at += n * dt.itemsize
    t = ProofTable(file, columns, section_names, section_labels, symbol_names, policy, image_max, expand)
    if type_counts is not None:
        t.__dict__["type_counts"] = type_counts
    return t


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Source:
    """Where an analyzed object came from: the path given, its member index, its contents' hash."""

    path: str
    member: int
    sha256: str


@dataclass(frozen=True)
class Report:
    """The result document. ``listed`` holds the sites decided one by one, ``proved``
    the column-wise proofs; ``sites`` is all of them as SiteResults, in key order.

    ``sources``, ``objects`` and ``layout_model`` serve library queries (reachsolve.query)
    and are not part of any rendering: where each object came from, the decision
    contexts kept by ``analyze(..., keep_objects=True)``, and the model used."""

    tool: str
    version: str
    model: tuple[tuple[str, object], ...]
    listed: tuple[SiteResult, ...]
    files: tuple[FileSummary, ...]
    errors: tuple[FileError, ...]
    solver_calls: int = 0
    proved: tuple[ProofTable, ...] = ()
    sources: dict = field(default_factory=dict, compare=False, repr=False)
    objects: dict = field(default_factory=dict, compare=False, repr=False)
    layout_model: object = field(default=None, compare=False, repr=False)
    comparison: Comparison | None = None       # set when a baseline was given (report.annotate)
    min_margin: int | None = None              # the "near" threshold applied, if any
    source_root: str | None = None             # --source-root: source paths are relative to it

    @cached_property
    def sites(self) -> tuple[SiteResult, ...]:
        if not self.proved:
            return self.listed
        return tuple(heapq.merge(self.listed, *(t.results() for t in self.proved), key=lambda s: s.key))

    def all_sites(self) -> Iterator[SiteResult]:
        """Every site, the proof tables' rows included, lazily and in key order."""
        if not self.proved:
            return iter(self.listed)
        return heapq.merge(self.listed, *(t.results() for t in self.proved), key=lambda s: s.key)

    def findings(self) -> Iterator[SiteResult]:
        """The sites that need attention: vulnerable, broken and unknown, in key order."""
        return (s for s in self.listed if s.verdict != Verdict.ROBUST)

    @cached_property
    def summary(self) -> dict[str, int]:
        counts = {v: 0 for v in VERDICTS}
        for s in self.listed:
            counts[s.verdict] += 1
        counts[Verdict.ROBUST] += sum(len(t) for t in self.proved)
        return counts

    def failing_sites(self, fail_on=DEFAULT_FAIL_ON) -> list[SiteResult]:
        """The findings that fail a gate of ``fail_on`` kinds (FAIL_KINDS: the verdicts, "near"
        and "new"). An unknown site fails by default: undecided is never passed as robust.
        A suppressed finding is still reported but fails no gate."""
        kinds = {str(k) for k in fail_on}
        return [s for s in self.listed if s.verdict != Verdict.ROBUST and s.suppression is None and (
            s.verdict in kinds or ("near" in kinds and s.near)
            or ("new" in kinds and s.baseline is not None and s.baseline.state == "new"))]

    def failing(self, fail_on=DEFAULT_FAIL_ON) -> bool:
        """Does a finding of a kind in ``fail_on`` exist?"""
        return bool(self.failing_sites(fail_on))

    def exit_status(self, fail_on=DEFAULT_FAIL_ON) -> int:
        """2 on input errors (it wins: the errors' files were not analyzed), else 1 when a
        site fails ``fail_on``, else 0."""
        if self.errors:
            return 2
        return 1 if self.failing(fail_on) else 0
