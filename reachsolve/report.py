"""The frozen result document that every renderer and library caller reads."""
from __future__ import annotations

import heapq
from dataclasses import dataclass
from functools import cached_property

import numpy as np

VERDICTS = ("robust", "vulnerable", "broken", "unknown")

# How a site in a ProofTable was proved (the "proof" column).
PROOF_KINDS = ("span", "fixed", "page-span", "page-fixed", "aligned", "as-linked")
SPAN, FIXED, PAGE_SPAN, PAGE_FIXED, ALIGNED, AS_LINKED = range(len(PROOF_KINDS))
# Proofs that only one-by-one decisions give (never in a table).
SOLVER, PAGE_SOLVER, ABSOLUTE = 6, 7, 8


def robust_reason(kind: int, image_max: int, dtext: str, const: int, lo: int, hi: int, vmin: int, vmax: int,
                  rng: tuple[int, int] | None, granule: int, veneered: bool) -> str:
    """Why a site is robust, in words; one text per kind of proof, whichever path found it.

    ``dtext`` is the layout-dependent part of the value, [lo, hi] its bounds, and
    [vmin, vmax] the bounds of the value (the page delta for page kinds)."""
    if kind == AS_LINKED:
        return f"as linked, the value is {vmin:#x}, which fits"
    if kind in (PAGE_SPAN, PAGE_FIXED, PAGE_SOLVER):
        if kind == PAGE_FIXED:
            head = f"same section: wherever it lies, the page delta is in [{vmin:#x}, {vmax:#x}]"
        elif kind == PAGE_SOLVER:
            head = (f"the solver bounds {dtext} to [{lo:#x}, {hi:#x}] over "
                    f"every layout, so the page delta lies in [{vmin:#x}, {vmax:#x}]")
        else:
            head = (f"both ends lie inside the {image_max:#x}-byte image, so {dtext} lies in "
                    f"[{lo:#x}, {hi:#x}] and the page delta in [{vmin:#x}, {vmax:#x}]")
        return f"{head}; within [{rng[0]:#x}, {rng[1]:#x}]"
    if kind == FIXED:
        head = f"same section: value fixed at {const:+#x}"
    elif kind == ABSOLUTE:
        head = f"absolute: value fixed at {const:#x}"
    elif kind == SOLVER:
        head = (f"the solver bounds {dtext} to [{lo:#x}, {hi:#x}] over every layout, "
                f"so the value lies in [{vmin:#x}, {vmax:#x}]")
    elif kind == ALIGNED:
        head = f"no range applies; {dtext} is always a multiple of {granule}, and so is the constant {const:#x}"
    else:
        head = (f"both ends lie inside the {image_max:#x}-byte image, so {dtext} lies in "
                f"[{lo:#x}, {hi:#x}] and the value in [{vmin:#x}, {vmax:#x}]")
    tail = []
    if rng is not None:
        tail.append(f"within [{rng[0]:#x}, {rng[1]:#x}]")
    elif veneered:
        tail.append("out-of-range branches are repaired by veneers")
    if granule > 1 and kind != ALIGNED:
        tail.append(f"always a multiple of {granule}")
    return head + ("; " + ", ".join(tail) if tail else "")


def veneer_note(vmin: int, vmax: int, raw: tuple[int, int], bounded_only: bool) -> str:
    how = "is bounded only by" if bounded_only else "reaches"
    return (f"may need a veneer: the value {how} [{vmin:#x}, {vmax:#x}], "
            f"beyond the direct range [{raw[0]:#x}, {raw[1]:#x}]")


@dataclass(frozen=True, slots=True)
class Placement:
    section: str
    index: int
    address: int


@dataclass(frozen=True, slots=True)
class SymbolPlacement:
    name: str
    address: int
    kind: str  # "undefined" | "got" | "script" (defined by the linker script)


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
    verdict: str
    reason: str
    expression: str
    counterexample: Counterexample | None = None
    notes: tuple[str, ...] = ()
    as_linked: int | None = None   # the value in the as-linked layout (script models)
    margin: int | None = None      # least growth (bytes) that breaks a vulnerable site (script models)

    @property
    def key(self) -> tuple:
        return (self.file, self.section_index, self.offset, self.reloc)


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


#: The columns of a ProofTable; the JSON report lists JSON_PROOF_COLUMNS of them.
PROOF_COLUMNS = ("section_index", "offset", "reloc", "symbol", "addend", "target_section_index", "word",
                 "proof", "constant", "span_min", "span_max", "value_min", "value_max", "as_linked",
                 "veneered", "veneer_note")
# value bounds follow from span + constant (page kinds: rounded to pages), and the
# instruction word is the object's: a reader has both.
JSON_PROOF_COLUMNS = tuple(c for c in PROOF_COLUMNS if c not in ("word", "value_min", "value_max"))


@dataclass(frozen=True)
class ProofTable:
    """The sites of one object proved robust column-wise (screen.py), kept as columns.

    Kernel objects have hundreds of thousands of such sites; a SiteResult for each
    would cost more than proving them. Rows are sorted like SiteResult.key.
    ``reloc`` holds type numbers, ``symbol`` symbol indices (``symbol_names`` names the
    ones used), ``target_section_index`` is -1 for an undefined symbol, ``as_linked`` is
    None unless the model has an as-linked layout, ``veneered`` says that a veneer
    repairs the branch out of range (so no range applies). :meth:`results` expands the rows.
    """

    file: str
    columns: dict                      # name (PROOF_COLUMNS) -> numpy array or None
    section_names: dict[int, str]      # every section a row refers to
    section_labels: dict[int, str]     # the same, as expressions name them ("name[index]" if ambiguous)
    symbol_names: dict[int, str]
    profiles: tuple[str, ...]
    image_max: int

    def __len__(self) -> int:
        return len(self.columns["offset"])

    @cached_property
    def type_counts(self) -> dict[str, int]:
        from .relocs import BY_NUMBER
        t, n = np.unique(self.columns["reloc"], return_counts=True)
        return {BY_NUMBER[int(a)].name: int(b) for a, b in zip(t, n)}

    def as_linked(self) -> list[int] | None:
        """The as-linked values as integers: S+A is unsigned, differences are signed."""
        col = self.columns["as_linked"]
        if col is None:
            return None
        from .relocs import Formula, by_type
        absolute = by_type(lambda spec: spec.formula is Formula.ABS, False, bool)
        signed = col.view(np.int64)
        out = signed.tolist()
        fix = np.nonzero(absolute[self.columns["reloc"]] & (signed < 0))[0]
        for i, u in zip(fix.tolist(), col[fix].tolist()):
            out[i] = u
        return out

    def results(self):
        """Every row as a SiteResult, with the same texts a one-by-one decision gives."""
        from .algebra import render
        from .constraints import Lin, PageDiff
        from .disasm import decode
        from .relocs import BY_NUMBER
        c = {k: (v.tolist() if v is not None else None) for k, v in self.columns.items()}
        as_linked = self.as_linked()

        def name(v):
            return f"base({self.section_labels[v[1]]})" if v[0] == "sec" else f"addr({self.symbol_names[v[1]]})"

        memo: dict = {}
        for k in range(len(self)):
            sec, off, t, sym = c["section_index"][k], c["offset"][k], c["reloc"][k], c["symbol"][k]
            tsec, kind, const = c["target_section_index"][k], c["proof"][k], c["constant"][k]
            spec = BY_NUMBER[t]
            anchor = ("sec", tsec) if tsec >= 0 else ("sym", sym)
            veneered = c["veneered"][k]
            rng = None if veneered else spec.range(self.profiles)
            place = Lin.var(("sec", sec)) + off
            if spec.formula.paged:
                expr = PageDiff(Lin.var(anchor) + (const + off), place)
                d = Lin.var(anchor) - Lin.var(("sec", sec))
            elif spec.formula.pc_relative:
                expr = d = Lin.var(anchor) - place
                d = Lin(d.coeffs, 0)
                expr = expr + (const + off)
            else:
                expr = Lin.var(anchor) + const
                d = Lin.var(anchor)
            dtext = render(d, name, memo) if d.coeffs else ""
            al = as_linked[k] if as_linked is not None else None
            vmin, vmax = (al, al) if kind == AS_LINKED else (c["value_min"][k], c["value_max"][k])
            reason = robust_reason(kind, self.image_max, dtext, const, c["span_min"][k], c["span_max"][k],
                                   vmin, vmax, rng, spec.granule, veneered)
            notes = ()
            if c["veneer_note"][k]:
                notes = (veneer_note(c["value_min"][k], c["value_max"][k], spec.range(self.profiles), True),)
            insn = (decode(c["word"][k], off).text if not spec.field.is_data
                    else (".hword" if spec.field.container == 2 else ".word"))
            yield SiteResult(
                file=self.file, section=self.section_names[sec], section_index=sec, offset=off, reloc=spec.name,
                symbol=self.symbol_names.get(sym, ""), addend=c["addend"][k],
                target_section=self.section_names[tsec] if tsec >= 0 else None, instruction=insn,
                range=spec.range(self.profiles), granule=spec.granule, verdict="robust", reason=reason,
                expression=render(expr, name, memo), notes=notes,
                as_linked=al)


@dataclass(frozen=True)
class Report:
    """The result document. ``listed`` holds the sites decided one by one, ``proved``
    the column-wise proofs; ``sites`` is all of them as SiteResults, in key order."""

    tool: str
    version: str
    model: tuple[tuple[str, object], ...]
    listed: tuple[SiteResult, ...]
    files: tuple[FileSummary, ...]
    errors: tuple[FileError, ...]
    solver_calls: int = 0
    proved: tuple[ProofTable, ...] = ()

    @cached_property
    def sites(self) -> tuple[SiteResult, ...]:
        if not self.proved:
            return self.listed
        return tuple(heapq.merge(self.listed, *(t.results() for t in self.proved), key=lambda s: s.key))

    @cached_property
    def summary(self) -> dict[str, int]:
        counts = {v: 0 for v in VERDICTS}
        for s in self.listed:
            counts[s.verdict] += 1
        counts["robust"] += sum(len(t) for t in self.proved)
        return counts

    @property
    def failing(self) -> bool:
        c = self.summary
        return bool(c["vulnerable"] or c["broken"])

    @property
    def exit_status(self) -> int:
        if self.errors:
            return 2
        return 1 if self.failing else 0
