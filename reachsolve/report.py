"""The frozen result document that every renderer and library caller reads."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

VERDICTS = ("robust", "vulnerable", "broken", "unknown")


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


@dataclass(frozen=True)
class Report:
    tool: str
    version: str
    model: tuple[tuple[str, object], ...]
    sites: tuple[SiteResult, ...]
    files: tuple[FileSummary, ...]
    errors: tuple[FileError, ...]
    solver_calls: int = 0

    @cached_property
    def summary(self) -> dict[str, int]:
        counts = {v: 0 for v in VERDICTS}
        for s in self.sites:
            counts[s.verdict] += 1
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
