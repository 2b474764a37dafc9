"""The syntax tree of a linker script: frozen, hashable dataclasses and nothing else.

Kept apart from the lexer and parser so that consumers (the chain walk, the
layout models) import the node types without the grammar.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

__all__ = [
    "Num", "Sym", "Dot", "Unary", "Binary", "Cond", "Call", "SectionRef", "Const", "RegionRef", "Str", "Expr",
    "Assign", "Assert", "Pattern", "InputSpec", "Data", "Fill", "Constructors", "CreateObjectSymbols",
    "OutputSection", "OverlaySection", "Overlay", "Sections", "Entry", "OutputArch", "OutputFormat",
    "Include", "MemoryRegion", "Memory", "Phdr", "Phdrs", "InputList", "Command", "Script",
]


# ---------------------------------------------------------------- expressions

@dataclass(frozen=True)
class Num:
    value: int


@dataclass(frozen=True)
class Sym:
    name: str


@dataclass(frozen=True)
class Dot:
    """The location counter ``.``."""


@dataclass(frozen=True)
class Unary:
    op: str  # '-', '~' or '!'; unary '+' is the identity and leaves no node
    arg: "Expr"


@dataclass(frozen=True)
class Binary:
    op: str
    left: "Expr"
    right: "Expr"


@dataclass(frozen=True)
class Cond:
    cond: "Expr"
    then: "Expr"
    other: "Expr"


@dataclass(frozen=True)
class Call:
    """A builtin; SIZEOF_HEADERS has no arguments, BLOCK is ld's old ALIGN."""

    name: str
    args: tuple


@dataclass(frozen=True)
class SectionRef:
    """Output section named by SIZEOF/ADDR/LOADADDR/ALIGNOF (not a symbol)."""

    name: str


@dataclass(frozen=True)
class Const:
    """CONSTANT(MAXPAGESIZE) or CONSTANT(COMMONPAGESIZE): the target's page sizes."""

    name: str


@dataclass(frozen=True)
class RegionRef:
    """Memory region named by ORIGIN/LENGTH."""

    name: str


@dataclass(frozen=True)
class Str:
    """A literal name: SEGMENT_START's segment, ASSERT's message, ASCIZ's text."""

    value: str


Expr = Union[Num, Sym, Dot, Unary, Binary, Cond, Call, SectionRef, Const, RegionRef, Str]


# ---------------------------------------------------------------- statements

@dataclass(frozen=True)
class Assign:
    target: str  # "." for the location counter
    op: str
    expr: Expr
    provide: bool
    hidden: bool
    line: int
    col: int


@dataclass(frozen=True)
class Assert:
    expr: Expr
    message: str
    line: int
    col: int


@dataclass(frozen=True)
class Pattern:
    """A section-name glob, verbatim. ``sort`` is the keyword as written; nested
    sorts read ``"SORT_BY_NAME(SORT_BY_ALIGNMENT)"``."""

    glob: str
    exclude_files: tuple[str, ...]
    sort: Optional[str]


@dataclass(frozen=True)
class InputSpec:
    """``file(patterns)``; no patterns means every section of the file (ld's bare
    file name). ``exclude_files`` and ``sort`` apply to the file pattern."""

    file: str
    exclude_files: tuple[str, ...]
    patterns: tuple[Pattern, ...]
    keep: bool
    sort: Optional[str]
    line: int
    col: int


@dataclass(frozen=True)
class Data:
    kind: str  # BYTE SHORT LONG QUAD SQUAD, or ASCIZ with a Str
    expr: Expr
    line: int
    col: int


@dataclass(frozen=True)
class Fill:
    expr: Expr
    line: int
    col: int


@dataclass(frozen=True)
class Constructors:
    """CONSTRUCTORS, or SORT(CONSTRUCTORS) with ``sort`` set."""

    sort: Optional[str]
    line: int
    col: int


@dataclass(frozen=True)
class CreateObjectSymbols:
    line: int
    col: int


@dataclass(frozen=True)
class OutputSection:
    name: str
    address: Optional[Expr]
    type: Optional[str]
    at: Optional[Expr]
    align: Optional[Expr]
    subalign: Optional[Expr]
    constraint: Optional[str]
    body: tuple
    region: Optional[str]
    lma_region: Optional[str]
    phdrs: tuple[str, ...]
    fill: Optional[Expr]
    line: int
    col: int
    align_with_input: bool = False


@dataclass(frozen=True)
class OverlaySection:
    name: str
    body: tuple
    phdrs: tuple[str, ...]
    fill: Optional[Expr]
    line: int
    col: int


@dataclass(frozen=True)
class Overlay:
    address: Optional[Expr]
    nocrossrefs: bool
    at: Optional[Expr]
    subalign: Optional[Expr]
    sections: tuple[OverlaySection, ...]
    region: Optional[str]
    lma_region: Optional[str]
    phdrs: tuple[str, ...]
    fill: Optional[Expr]
    line: int
    col: int


@dataclass(frozen=True)
class Sections:
    body: tuple
    line: int
    col: int


@dataclass(frozen=True)
class Entry:
    name: str
    line: int
    col: int


@dataclass(frozen=True)
class OutputArch:
    name: str
    line: int
    col: int


@dataclass(frozen=True)
class OutputFormat:
    names: tuple[str, ...]  # one name, or default, big-endian, little-endian
    line: int
    col: int


@dataclass(frozen=True)
class Include:
    """Recorded, not followed: the included file is the caller's to find."""

    path: str
    line: int
    col: int


@dataclass(frozen=True)
class MemoryRegion:
    name: str
    attributes: Optional[str]  # as written between the parentheses, e.g. "rwx" or "!w"
    origin: Expr
    length: Expr
    line: int
    col: int


@dataclass(frozen=True)
class Memory:
    regions: tuple  # MemoryRegion or Include
    line: int
    col: int


@dataclass(frozen=True)
class Phdr:
    name: str
    type: Union[str, Expr]  # "PT_LOAD" etc., or a numeric expression
    filehdr: bool
    phdrs: bool
    at: Optional[Expr]
    flags: Optional[Expr]
    line: int
    col: int


@dataclass(frozen=True)
class Phdrs:
    headers: tuple[Phdr, ...]
    line: int
    col: int


@dataclass(frozen=True)
class InputList:
    """INPUT(...), GROUP(...) or, as an item of those, AS_NEEDED(...)."""

    command: str
    items: tuple  # str or InputList
    line: int
    col: int


@dataclass(frozen=True)
class Command:
    """A command with plain-name arguments that the analysis has no use for beyond
    its presence: TARGET, OUTPUT, SEARCH_DIR, STARTUP, EXTERN, REGION_ALIAS,
    NOCROSSREFS(_TO), LD_FEATURE, INSERT, *_ALLOCATION."""

    name: str
    args: tuple[str, ...]
    line: int
    col: int


@dataclass(frozen=True)
class Script:
    commands: tuple
    path: str
