"""GNU ld / ld.lld linker scripts (such as a generated vmlinux.lds) as a syntax tree.

Nothing is evaluated here: values depend on the sections of the object being
linked, which the caller has. Syntax the parser does not cover raises
ScriptError rather than being skipped, so a tree is never a partial reading.
"""
from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from typing import NamedTuple, Optional, Union

__all__ = [
    "ScriptError", "parse", "parse_file", "MAX_NESTING", "MAX_EXPR_DEPTH",
    "Num", "Sym", "Dot", "Unary", "Binary", "Cond", "Call", "SectionRef", "Const", "RegionRef", "Str",
    "Assign", "Assert", "Pattern", "InputSpec", "Data", "Fill", "Constructors", "CreateObjectSymbols",
    "OutputSection", "OverlaySection", "Overlay", "Sections", "Entry", "OutputArch", "OutputFormat",
    "Include", "MemoryRegion", "Memory", "Phdr", "Phdrs", "InputList", "Command", "Script",
]

# Parser recursion per nesting level is ~5 frames: 100 levels stay far below
# Python's limit wherever the parser is called from.
MAX_NESTING = 100
# Consumers walk expressions recursively (evaluators, dataclass __eq__/__repr__):
# a tree this deep is still safe for them, and no real script comes close.
MAX_EXPR_DEPTH = 200
_U64_MAX = (1 << 64) - 1


class ScriptError(Exception):
    """A script that cannot be parsed; str() points at the offending token."""

    def __init__(self, path: str, line: int, col: int, message: str):
        super().__init__(f"{path}:{line}:{col}: {message}")
        self.path = path
        self.line = line
        self.col = col
        self.message = message

    def __reduce__(self):  # picklable across worker processes despite the custom __init__
        return (type(self), (self.path, self.line, self.col, self.message))


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


# ---------------------------------------------------------------- lexing

class _Tok(NamedTuple):
    kind: str  # 'name' 'str' 'num' 'op' 'bad' 'eof'
    text: str
    start: int
    end: int


_SPACE = re.compile(r"(?:[ \t\r\n\f\v]+|/\*.*?\*/)*", re.S)  # whitespace and complete comments
_NUMBER = re.compile(r"[0-9][A-Za-z0-9_]*")
# The lexer is modal, like ld's: what a word may contain depends on where it stands.
_EXPR = None  # symbols in expressions: `a-b` is a subtraction
_EXPR_NAME = re.compile(r"[A-Za-z_.$][A-Za-z0-9_.$]*")
# Output section, symbol and region names. A word stops before an assignment
# operator (`.+=4`) and before a comment.
_NAME = re.compile(r"(?:[A-Za-z_.$\\~]|/(?![=*]))(?:[A-Za-z0-9_.$\\~]|[-+](?!=)|/(?![=*]))*")
# File and section globs (`*`, `?`, `[...]`) in output section bodies.
_GLOB = re.compile(r"(?:[A-Za-z0-9_.$\\~\[\]?^!:]|[-+*](?!=)|/(?![=*]))+")
# Arguments of top-level commands: file names, `-lfoo`, `i386:x86-64`, `=/sysroot`.
_ARG = re.compile(r"(?:[A-Za-z0-9_.$\\~:=@%+\-\[\]*?!^]|/(?!\*))+")

_OPS = ("<<=", ">>=", "<<", ">>", "<=", ">=", "==", "!=", "&&", "||",
        "+=", "-=", "*=", "/=", "&=", "|=", "^=")
_OP = re.compile("|".join(map(re.escape, _OPS)) + r"|[-+*/%<>&|^~!?:(){},;=]")  # longest first
_ASSIGN_OPS = frozenset(("=", "+=", "-=", "*=", "/=", "<<=", ">>=", "&=", "|="))
_ASSIGN_LIKE = _ASSIGN_OPS | {"^="}  # lexed so that it is reported, not misread
_BINARY = {"||": 1, "&&": 2, "|": 3, "^": 4, "&": 5, "==": 6, "!=": 6,
           "<": 7, "<=": 7, ">": 7, ">=": 7, "<<": 8, ">>": 8,
           "+": 9, "-": 9, "*": 10, "/": 10, "%": 10}

# Builtin functions: argument kind, or (min, max) expression arguments.
_BUILTINS: dict[str, object] = {
    "ALIGN": (1, 2), "BLOCK": (1, 1), "ABSOLUTE": (1, 1), "MAX": (2, 2), "MIN": (2, 2),
    "DATA_SEGMENT_ALIGN": (2, 2), "DATA_SEGMENT_END": (1, 1), "DATA_SEGMENT_RELRO_END": (2, 2),
    "NEXT": (1, 1), "LOG2CEIL": (1, 1),
    "SIZEOF": "section", "ADDR": "section", "LOADADDR": "section", "ALIGNOF": "section",
    "DEFINED": "symbol", "ORIGIN": "region", "LENGTH": "region", "CONSTANT": "constant",
    "SEGMENT_START": "segment", "ASSERT": "assert",
    "SIZEOF_HEADERS": "none", "sizeof_headers": "none",
}
_CONSTANTS = ("MAXPAGESIZE", "COMMONPAGESIZE")
_SECTION_TYPES = frozenset(("NOLOAD", "DSECT", "COPY", "INFO", "OVERLAY", "READONLY"))
_SECTION_ATTRS = frozenset(("AT", "ALIGN", "SUBALIGN", "ALIGN_WITH_INPUT", "ONLY_IF_RO", "ONLY_IF_RW",
                            "SPECIAL"))
_SORTS = frozenset(("SORT", "SORT_BY_NAME", "SORT_BY_ALIGNMENT", "SORT_BY_INIT_PRIORITY", "SORT_NONE"))
_NESTABLE_SORTS = frozenset(("SORT", "SORT_BY_NAME", "SORT_BY_ALIGNMENT"))
_DATA_KINDS = frozenset(("BYTE", "SHORT", "LONG", "QUAD", "SQUAD"))
_PROVIDES = frozenset(("PROVIDE", "PROVIDE_HIDDEN", "HIDDEN"))
# Real ld syntax this parser does not model.
_UNSUPPORTED = frozenset(("INPUT_SECTION_FLAGS", "REVERSE", "LINKER_VERSION", "VERSION", "BIND"))
_TOP_COMMANDS = frozenset((
    "SECTIONS", "MEMORY", "PHDRS", "ENTRY", "OUTPUT_ARCH", "OUTPUT_FORMAT", "INCLUDE", "ASSERT",
    "INPUT", "GROUP", "AS_NEEDED", "TARGET", "OUTPUT", "SEARCH_DIR", "STARTUP", "EXTERN",
    "REGION_ALIAS", "NOCROSSREFS", "NOCROSSREFS_TO", "LD_FEATURE", "FORCE_COMMON_ALLOCATION",
    "INHIBIT_COMMON_ALLOCATION", "FORCE_GROUP_ALLOCATION", "INSERT", "VERSION"))
# Words that are never a name of ours: seen out of place, they are reported.
_KEYWORDS = (_TOP_COMMANDS | _SECTION_ATTRS | _SORTS | _DATA_KINDS | _PROVIDES | _UNSUPPORTED
             | set(_BUILTINS) | {"KEEP", "EXCLUDE_FILE", "FILL", "ASCIZ", "CONSTRUCTORS",
                                 "CREATE_OBJECT_SYMBOLS", "OVERLAY"}) - {"sizeof_headers"}
_BRACKETS = re.compile(r"(?:[^\[]|\[[!^]?\]?[^\]]*\])*")
_MEM_ATTRS = re.compile(r"[rwxailRWXAIL!][rwxailRWXAIL!\s]*")
_PT_NAME = re.compile(r"PT_[A-Z0-9_]+")

_NUM_FORMS = (
    (re.compile(r"0[xX]([0-9A-Fa-f]+)([KkMm]?)"), 16),
    (re.compile(r"([0-9]+)([KkMm]?)"), 0),  # 0: C rule, a leading 0 means octal
    (re.compile(r"([0-9][0-9A-Fa-f]*)([hH])"), 16),  # ld's suffixed forms
    (re.compile(r"([0-9][0-9A-Fa-f]*)([oO])"), 8),
    (re.compile(r"([0-9][0-9A-Fa-f]*)([bB])"), 2),
    (re.compile(r"([0-9][0-9A-Fa-f]*)([dD])"), 10),
)
_DIGITS = {16: re.compile(r"[0-9A-Fa-f]+"), 10: re.compile(r"[0-9]+"), 8: re.compile(r"[0-7]+"),
           2: re.compile(r"[01]+")}
_MAX_DIGITS = {16: 16, 10: 20, 8: 22, 2: 64}  # checked before int(): huge literals stay cheap
_SCALE = {"": 1, "k": 1 << 10, "K": 1 << 10, "m": 1 << 20, "M": 1 << 20}


class _Parser:
    def __init__(self, text: str, path: str):
        self.text = text
        self.path = path
        self.pos = 0
        self.depth = 0
        self.lines = [0] + [m.end() for m in re.finditer("\n", text)]
        self.cache: dict = {}  # (pos, mode) -> token: the grammar peeks the same token repeatedly

    # ------------------------------------------------------------ tokens

    def lc(self, pos: int) -> tuple[int, int]:
        line = bisect.bisect_right(self.lines, pos)
        return line, pos - self.lines[line - 1] + 1

    def error(self, pos: int, message: str) -> ScriptError:
        line, col = self.lc(pos)
        return ScriptError(self.path, line, col, message)

    def fail(self, tok: _Tok, expected: str):
        raise self.error(tok.start, f"expected {expected}, found {self.describe(tok)}")

    def describe(self, tok: _Tok) -> str:
        if tok.kind == "eof":
            return "end of input"
        if tok.kind == "bad":
            fuller = self.peek_at(tok.start, _EXPR)
            if fuller.kind in ("num", "name"):
                tok = fuller
            elif not tok.text.isprintable() or tok.text in "'\\":
                return repr(tok.text)
        text = tok.text if len(tok.text) <= 40 else tok.text[:37] + "..."
        return f'string "{text}"' if tok.kind == "str" else f"'{text}'"

    def skip(self) -> int:
        pos = _SPACE.match(self.text, self.pos).end()
        if self.text.startswith("/*", pos):
            raise self.error(pos, "expected '*/' to close this comment, found end of input")
        self.pos = pos
        return pos

    def peek(self, mode) -> _Tok:
        key = (self.pos, mode)
        tok = self.cache.get(key)
        if tok is None:
            if len(self.cache) > 64:
                self.cache.clear()
            tok = self.cache[key] = self.scan(mode)
        self.pos = tok.start
        return tok

    def scan(self, mode) -> _Tok:
        pos = self.skip()
        text = self.text
        if pos >= len(text):
            return _Tok("eof", "", pos, pos)
        c = text[pos]
        if c == '"':
            end = text.find('"', pos + 1)
            if end < 0:
                raise self.error(pos, "expected '\"' to close this string, found end of input")
            return _Tok("str", text[pos + 1:end], pos, end + 1)
        if mode is _EXPR:
            if "0" <= c <= "9":
                m = _NUMBER.match(text, pos)
                return _Tok("num", m.group(), pos, m.end())
            m = _EXPR_NAME.match(text, pos)
        else:
            m = mode.match(text, pos)
        if m:
            return _Tok("name", m.group(), pos, m.end())
        m = _OP.match(text, pos)
        if m:
            return _Tok("op", m.group(), pos, m.end())
        return _Tok("bad", c, pos, pos + 1)

    def peek_at(self, pos: int, mode) -> _Tok:
        saved = self.pos
        self.pos = pos
        try:
            return self.peek(mode)
        finally:
            self.pos = saved

    def take(self, tok: _Tok) -> _Tok:
        self.pos = tok.end
        return tok

    @staticmethod
    def is_op(tok: _Tok, op: str) -> bool:
        return tok.kind == "op" and tok.text == op

    @staticmethod
    def is_word(tok: _Tok, *words: str) -> bool:
        return tok.kind == "name" and tok.text in words

    def accept(self, op: str) -> bool:
        tok = self.peek(_EXPR)
        if self.is_op(tok, op):
            self.take(tok)
            return True
        return False

    def expect(self, op: str, where: str) -> _Tok:
        tok = self.peek(_EXPR)
        if not self.is_op(tok, op):
            self.fail(tok, f"'{op}' {where}")
        return self.take(tok)

    def name(self, what: str, mode=_NAME) -> str:
        tok = self.peek(mode)
        if tok.kind not in ("name", "str"):
            self.fail(tok, what)
        return self.take(tok).text

    def assign_follows(self, tok: _Tok) -> bool:
        nxt = self.peek_at(tok.end, _EXPR)
        return nxt.kind == "op" and nxt.text in _ASSIGN_LIKE

    # ------------------------------------------------------------ expressions

    def expression(self) -> Expr:
        return self.nested(self.peek(_EXPR))[0]

    def nested(self, at: _Tok) -> tuple[Expr, int]:
        if self.depth >= MAX_NESTING:
            raise self.error(at.start, f"expression nested too deeply (more than {MAX_NESTING} levels)")
        self.depth += 1
        try:
            return self.conditional()
        finally:
            self.depth -= 1

    def deeper(self, depth: int, pos: int) -> int:
        if depth > MAX_EXPR_DEPTH:
            raise self.error(pos, f"expression nested too deeply (tree deeper than {MAX_EXPR_DEPTH})")
        return depth

    def conditional(self) -> tuple[Expr, int]:
        # Right-associative chains are collected in a loop, so `a ? b : c ? d : ...`
        # costs no recursion.
        last = self.binary()
        pairs = []
        while True:
            q = self.peek(_EXPR)
            if not self.is_op(q, "?"):
                break
            self.take(q)
            then = self.nested(q)
            self.expect(":", "in conditional expression")
            pairs.append((last, then, q.start))
            last = self.binary()
        node, depth = last
        for (c, cd), (t, td), pos in reversed(pairs):
            depth = self.deeper(1 + max(cd, td, depth), pos)
            node = Cond(c, t, node)
        return node, depth

    def binary(self) -> tuple[Expr, int]:
        operands = [self.unary()]
        ops: list[tuple[str, int, int]] = []

        def reduce():
            op, _, pos = ops.pop()
            right, rd = operands.pop()
            left, ld = operands.pop()
            operands.append((Binary(op, left, right), self.deeper(1 + max(ld, rd), pos)))

        while True:
            tok = self.peek(_EXPR)
            prec = _BINARY.get(tok.text) if tok.kind == "op" else None
            if prec is None:
                break
            self.take(tok)
            while ops and ops[-1][1] >= prec:  # all binary operators are left-associative
                reduce()
            ops.append((tok.text, prec, tok.start))
            operands.append(self.unary())
        while ops:
            reduce()
        return operands[0]

    def unary(self) -> tuple[Expr, int]:
        prefix = []
        while True:
            tok = self.peek(_EXPR)
            if tok.kind == "op" and tok.text in ("-", "~", "!", "+"):
                prefix.append(self.take(tok))
            else:
                break
        node, depth = self.primary()
        for tok in reversed(prefix):
            if tok.text != "+":
                depth = self.deeper(depth + 1, tok.start)
                node = Unary(tok.text, node)
        return node, depth

    def primary(self) -> tuple[Expr, int]:
        tok = self.peek(_EXPR)
        if tok.kind == "num":
            return Num(self.number(self.take(tok))), 1
        if tok.kind == "str":
            return Sym(self.take(tok).text), 1
        if tok.kind == "name":
            if tok.text == ".":
                self.take(tok)
                return Dot(), 1
            if tok.text in _BUILTINS:
                return self.call(self.take(tok))
            return Sym(self.take(tok).text), 1
        if self.is_op(tok, "("):
            self.take(tok)
            inner = self.nested(tok)
            self.expect(")", "after expression")
            return inner
        self.fail(tok, "an expression")

    def call(self, tok: _Tok) -> tuple[Expr, int]:
        name = tok.text
        kind = _BUILTINS[name]
        if kind == "none":
            return Call("SIZEOF_HEADERS", ()), 1
        self.expect("(", f"after {name}")
        depth = 1
        if kind == "section":
            args = (SectionRef(self.name(f"a section name in {name}")),)
        elif kind == "symbol":
            args = (Sym(self.name(f"a symbol name in {name}")),)
        elif kind == "region":
            args = (RegionRef(self.name(f"a memory region name in {name}")),)
        elif kind == "constant":
            arg = self.peek(_NAME)
            if not self.is_word(arg, *_CONSTANTS):
                self.fail(arg, "MAXPAGESIZE or COMMONPAGESIZE in CONSTANT")
            args = (Const(self.take(arg).text),)
        elif kind in ("segment", "assert"):
            if kind == "segment":
                first, fd = Str(self.name("a segment name in SEGMENT_START", _ARG)), 1
            else:
                first, fd = self.nested(tok)
            self.expect(",", f"after the first argument of {name}")
            if kind == "segment":
                second, sd = self.nested(tok)
            else:
                second, sd = Str(self.name("a message in ASSERT", _ARG)), 1
            args, depth = (first, second), 1 + max(fd, sd)
        else:
            lo, hi = kind
            items = []
            for i in range(hi):
                if i:
                    if i < lo:
                        self.expect(",", f"and another argument to {name}")
                    elif not self.accept(","):
                        break
                node, d = self.nested(tok)
                items.append(node)
                depth = max(depth, 1 + d)
            args = tuple(items)
        self.expect(")", f"after the arguments of {name}")
        return Call(name, args), self.deeper(depth, tok.start)

    def number(self, tok: _Tok) -> int:
        text = tok.text
        for form, base in _NUM_FORMS:
            m = form.fullmatch(text)
            if not m:
                continue
            digits, suffix = m.groups()
            if base == 0:
                base = 8 if len(digits) > 1 and digits[0] == "0" else 10
            if not _DIGITS[base].fullmatch(digits):
                break
            scale = _SCALE.get(suffix, 1)
            if len(digits.lstrip("0")) > _MAX_DIGITS[base] or int(digits, base) * scale > _U64_MAX:
                raise self.error(tok.start, f"number {self.describe(tok)} does not fit in 64 bits")
            return int(digits, base) * scale
        raise self.error(tok.start, f"expected a number, found {self.describe(tok)}")

    # ------------------------------------------------------------ statements common to all levels

    def assignment(self, tok: _Tok) -> Assign:
        if tok.kind == "name" and (any(c in tok.text for c in "*?[]") or not _NAME.fullmatch(tok.text)):
            self.fail(tok, "a symbol name before the assignment")
        self.take(tok)
        op = self.peek(_EXPR)
        if op.kind != "op" or op.text not in _ASSIGN_OPS:
            if op.kind == "op" and op.text in _ASSIGN_LIKE:
                raise self.error(op.start, f"assignment operator '{op.text}' is not supported")
            self.fail(op, f"an assignment operator after '{tok.text}'")
        self.take(op)
        expr = self.expression()
        if not self.accept(","):  # ld also takes ',' as the separator
            self.expect(";", "after assignment")
        return Assign(tok.text, op.text, expr, False, False, *self.lc(tok.start))

    def provide(self, tok: _Tok) -> Assign:
        kw = self.take(tok).text
        self.expect("(", f"after {kw}")
        target = self.peek(_NAME)
        if target.kind not in ("name", "str") or (target.kind == "name" and target.text == "."):
            self.fail(target, f"a symbol name in {kw}")
        self.take(target)
        self.expect("=", f"after '{target.text}' in {kw}")
        expr = self.expression()
        self.expect(")", f"after the expression in {kw}")
        self.expect(";", f"after {kw}(...)")
        return Assign(target.text, "=", expr, kw != "HIDDEN", kw != "PROVIDE", *self.lc(tok.start))

    def assert_(self, tok: _Tok) -> Assert:
        self.take(tok)
        self.expect("(", "after ASSERT")
        expr = self.expression()
        self.expect(",", "after ASSERT condition")
        message = self.name("a message in ASSERT", _ARG)
        self.expect(")", "after ASSERT message")
        return Assert(expr, message, *self.lc(tok.start))

    def include(self, tok: _Tok) -> Include:
        self.take(tok)
        return Include(self.name("a file name after INCLUDE", _ARG), *self.lc(tok.start))

    def entry(self, tok: _Tok) -> Entry:
        self.take(tok)
        self.expect("(", "after ENTRY")
        name = self.name("a symbol name in ENTRY")
        self.expect(")", "after the symbol name in ENTRY")
        return Entry(name, *self.lc(tok.start))

    # ------------------------------------------------------------ top level

    def script(self) -> Script:
        commands = []
        while True:
            tok = self.peek(_NAME)
            if tok.kind == "eof":
                return Script(tuple(commands), self.path)
            if self.is_op(tok, ";"):
                self.take(tok)
                continue
            commands.append(self.command(tok))

    def command(self, tok: _Tok):
        word = tok.text if tok.kind == "name" else None
        if word in _UNSUPPORTED:
            raise self.error(tok.start, f"{word} is not supported")
        if word in _PROVIDES:
            return self.provide(tok)
        handler = {
            "SECTIONS": self.sections, "MEMORY": self.memory, "PHDRS": self.phdrs, "ENTRY": self.entry,
            "ASSERT": self.assert_, "INCLUDE": self.include, "OUTPUT_ARCH": self.output_arch,
            "OUTPUT_FORMAT": self.output_format, "INPUT": self.input_list, "GROUP": self.input_list,
            "INSERT": self.insert,
        }.get(word)
        if handler:
            return handler(tok)
        if word in ("TARGET", "OUTPUT", "SEARCH_DIR", "STARTUP", "LD_FEATURE"):
            return self.simple(tok, 1, 1)
        if word in ("EXTERN", "NOCROSSREFS"):
            return self.simple(tok, 1, None)
        if word == "NOCROSSREFS_TO":
            return self.simple(tok, 2, None)
        if word == "REGION_ALIAS":
            return self.simple(tok, 2, 2)
        if word in ("FORCE_COMMON_ALLOCATION", "INHIBIT_COMMON_ALLOCATION", "FORCE_GROUP_ALLOCATION"):
            self.take(tok)
            return Command(word, (), *self.lc(tok.start))
        if tok.kind in ("name", "str") and word not in _KEYWORDS and self.assign_follows(tok):
            return self.assignment(tok)
        self.fail(tok, "a command or an assignment")

    def output_arch(self, tok: _Tok) -> OutputArch:
        self.take(tok)
        self.expect("(", "after OUTPUT_ARCH")
        name = self.name("an architecture name in OUTPUT_ARCH", _ARG)
        self.expect(")", "after the architecture name in OUTPUT_ARCH")
        return OutputArch(name, *self.lc(tok.start))

    def output_format(self, tok: _Tok) -> OutputFormat:
        self.take(tok)
        self.expect("(", "after OUTPUT_FORMAT")
        names = [self.name("a format name in OUTPUT_FORMAT", _ARG)]
        if self.accept(","):
            names.append(self.name("a big-endian format name in OUTPUT_FORMAT", _ARG))
            self.expect(",", "after the big-endian format name (OUTPUT_FORMAT takes one or three names)")
            names.append(self.name("a little-endian format name in OUTPUT_FORMAT", _ARG))
        self.expect(")", "after OUTPUT_FORMAT names (one or three)")
        return OutputFormat(tuple(names), *self.lc(tok.start))

    def simple(self, tok: _Tok, lo: int, hi: Optional[int]) -> Command:
        word = self.take(tok).text
        self.expect("(", f"after {word}")
        args: list[str] = []
        while True:
            t = self.peek(_ARG)
            if self.is_op(t, ")") and len(args) >= lo:
                self.take(t)
                return Command(word, tuple(args), *self.lc(tok.start))
            if self.is_op(t, ",") and args:
                self.take(t)
                continue
            if t.kind not in ("name", "str") or (hi is not None and len(args) >= hi):
                self.fail(t, f"')' after {word} arguments" if args and len(args) >= lo
                          else f"an argument to {word}")
            args.append(self.take(t).text)

    def input_list(self, tok: _Tok, nested: bool = False) -> InputList:
        word = self.take(tok).text
        self.expect("(", f"after {word}")
        items: list = []
        while True:
            t = self.peek(_ARG)
            if self.is_op(t, ")"):
                self.take(t)
                return InputList(word, tuple(items), *self.lc(tok.start))
            if self.is_op(t, ",") and items:
                self.take(t)
                continue
            if self.is_word(t, "AS_NEEDED") and not nested:
                items.append(self.input_list(t, nested=True))
                continue
            if t.kind not in ("name", "str") or t.text == "AS_NEEDED":
                self.fail(t, f"a file name or ')' in {word}")
            items.append(self.take(t).text)

    def insert(self, tok: _Tok) -> Command:
        self.take(tok)
        where = self.peek(_NAME)
        if not self.is_word(where, "AFTER", "BEFORE"):
            self.fail(where, "AFTER or BEFORE after INSERT")
        self.take(where)
        section = self.name(f"an output section name after INSERT {where.text}")
        return Command("INSERT", (where.text, section), *self.lc(tok.start))

    # ------------------------------------------------------------ MEMORY and PHDRS

    def memory(self, tok: _Tok) -> Memory:
        self.take(tok)
        opened = self.expect("{", "after MEMORY")
        regions: list = []
        while True:
            t = self.peek(_NAME)
            if self.is_op(t, "}"):
                self.take(t)
                return Memory(tuple(regions), *self.lc(tok.start))
            if self.is_op(t, ",") and regions:
                self.take(t)
                continue
            if self.is_word(t, "INCLUDE"):
                regions.append(self.include(t))
                continue
            if t.kind not in ("name", "str") or (t.kind == "name" and t.text in _KEYWORDS):
                self.fail(t, f"a memory region or '}}' to close MEMORY (opened at {self.where(opened)})")
            regions.append(self.region(self.take(t)))

    def region(self, tok: _Tok) -> MemoryRegion:
        attributes = None
        paren = self.peek(_EXPR)
        if self.is_op(paren, "("):
            close = self.text.find(")", paren.end)
            raw = self.text[paren.end:close].strip() if close >= 0 else ""
            if close < 0 or not _MEM_ATTRS.fullmatch(raw):
                raise self.error(paren.end, f"expected memory attributes such as 'rwx' or '!w' and ')', "
                                            f"found {self.describe(self.peek_at(paren.end, _ARG))}")
            attributes = raw
            self.pos = close + 1
        self.expect(":", f"after memory region name '{tok.text}'")
        values = []
        for words, what in ((("ORIGIN", "org", "o"), "ORIGIN"), (("LENGTH", "len", "l"), "LENGTH")):
            if values:
                self.accept(",")
            kw = self.peek(_NAME)
            if not self.is_word(kw, *words):
                self.fail(kw, f"{what} in memory region '{tok.text}'")
            self.take(kw)
            self.expect("=", f"after {kw.text}")
            values.append(self.expression())
        return MemoryRegion(tok.text, attributes, values[0], values[1], *self.lc(tok.start))

    def phdrs(self, tok: _Tok) -> Phdrs:
        self.take(tok)
        opened = self.expect("{", "after PHDRS")
        headers = []
        while True:
            t = self.peek(_NAME)
            if self.is_op(t, "}"):
                self.take(t)
                return Phdrs(tuple(headers), *self.lc(tok.start))
            if self.is_op(t, ";"):
                self.take(t)
                continue
            if t.kind not in ("name", "str"):
                self.fail(t, f"a program header name or '}}' to close PHDRS (opened at {self.where(opened)})")
            headers.append(self.phdr(self.take(t)))

    def phdr(self, tok: _Tok) -> Phdr:
        kind = self.peek(_NAME)
        if kind.kind == "name" and _PT_NAME.fullmatch(kind.text):
            type_: Union[str, Expr] = self.take(kind).text
        elif kind.kind == "name" or kind.kind == "eof" or (kind.kind == "op" and kind.text == ";"):
            self.fail(kind, f"a segment type such as PT_LOAD for program header '{tok.text}'")
        else:
            type_ = self.expression()
        filehdr = phdrs = False
        at = flags = None
        while True:
            t = self.peek(_NAME)
            if self.is_word(t, "FILEHDR") and not filehdr:
                filehdr = bool(self.take(t))
            elif self.is_word(t, "PHDRS") and not phdrs:
                phdrs = bool(self.take(t))
            elif self.is_word(t, "AT") and at is None:
                at = self.parenthesized(self.take(t))
            elif self.is_word(t, "FLAGS") and flags is None:
                flags = self.parenthesized(self.take(t))
            else:
                break
        self.expect(";", f"after program header '{tok.text}'")
        return Phdr(tok.text, type_, filehdr, phdrs, at, flags, *self.lc(tok.start))

    def parenthesized(self, kw: _Tok) -> Expr:
        self.expect("(", f"after {kw.text}")
        expr = self.expression()
        self.expect(")", f"after the expression in {kw.text}")
        return expr

    def where(self, tok: _Tok) -> str:
        return "%d:%d" % self.lc(tok.start)

    # ------------------------------------------------------------ SECTIONS

    def sections(self, tok: _Tok) -> Sections:
        self.take(tok)
        opened = self.expect("{", "after SECTIONS")
        body = []
        while True:
            t = self.peek(_NAME)
            if t.kind == "eof":
                self.fail(t, f"'}}' to close SECTIONS (opened at {self.where(opened)})")
            if self.is_op(t, "}"):
                self.take(t)
                return Sections(tuple(body), *self.lc(tok.start))
            if self.is_op(t, ";"):
                self.take(t)
                continue
            body.append(self.sections_item(t))

    def sections_item(self, tok: _Tok):
        if tok.kind == "str":
            return self.assignment(tok) if self.assign_follows(tok) else self.output_section(tok)
        if tok.kind != "name":
            self.fail(tok, "an output section, an assignment or '}'")
        word = tok.text
        if word in _PROVIDES:
            return self.provide(tok)
        simple = {"ENTRY": self.entry, "ASSERT": self.assert_, "INCLUDE": self.include,
                  "OVERLAY": self.overlay}.get(word)
        if simple:
            return simple(tok)
        if word in _UNSUPPORTED:
            raise self.error(tok.start, f"{word} is not supported")
        if word in _KEYWORDS:
            raise self.error(tok.start, f"expected an output section, an assignment or '}}', found '{word}', "
                                        "which is not allowed directly inside SECTIONS")
        if self.assign_follows(tok):
            return self.assignment(tok)
        return self.output_section(tok)

    def section_type(self) -> Optional[str]:
        """A parenthesized type after the name or address; ld's empty ``()`` is no type."""
        paren = self.peek(_EXPR)
        if not self.is_op(paren, "("):
            return None
        inner = self.peek_at(paren.end, _NAME)
        if self.is_op(inner, ")"):
            self.take(inner)
            return None
        if self.is_word(inner, "TYPE"):
            raise self.error(inner.start, "section type 'TYPE = ...' is not supported")
        if inner.kind != "name" or inner.text not in _SECTION_TYPES:
            return None  # a parenthesized address
        close = self.peek_at(inner.end, _EXPR)
        if not self.is_op(close, ")"):
            self.fail(close, f"')' after section type {inner.text}")
        self.take(close)
        return inner.text

    def output_section(self, tok: _Tok) -> OutputSection:
        name = self.take(tok).text
        address = type_ = None
        nxt = self.peek(_EXPR)
        where = f"after output section name '{name}'"
        if not self.is_op(nxt, ":"):
            if nxt.kind == "eof" or (nxt.kind == "op" and nxt.text in "{};"):
                self.fail(nxt, f"':' {where}")
            type_ = self.section_type()
            if type_ is None and self.pos == nxt.start:  # nothing taken: the address comes first
                address = self.expression()
                type_ = self.section_type()
            where = f"after the address and type of output section '{name}'"
        self.expect(":", where)
        at = align = subalign = constraint = None
        align_with_input = False
        seen: set[str] = set()
        while True:
            t = self.peek(_NAME)
            if not self.is_word(t, *_SECTION_ATTRS):
                break
            word = self.take(t).text
            if word in seen or (constraint and word in ("ONLY_IF_RO", "ONLY_IF_RW", "SPECIAL")):
                raise self.error(t.start, f"{word} given twice for output section '{name}'")
            seen.add(word)
            if word == "AT":
                at = self.parenthesized(t)
            elif word == "ALIGN":
                align = self.parenthesized(t)
            elif word == "SUBALIGN":
                subalign = self.parenthesized(t)
            elif word == "ALIGN_WITH_INPUT":
                align_with_input = True
            else:
                constraint = word
        opened = self.expect("{", f"to start the contents of output section '{name}'")
        body = self.body(f"output section '{name}'", opened)
        region, lma_region, phdrs, fill = self.tail(regions=True)
        return OutputSection(name, address, type_, at, align, subalign, constraint, body, region, lma_region,
                             phdrs, fill, *self.lc(tok.start), align_with_input=align_with_input)

    def tail(self, regions: bool):
        region = lma_region = fill = None
        phdrs = []
        if regions:
            if self.accept(">"):
                region = self.name("a memory region name after '>'")
            t = self.peek(_NAME)
            if self.is_word(t, "AT") and self.is_op(self.peek_at(t.end, _EXPR), ">"):
                self.take(self.peek_at(t.end, _EXPR))
                lma_region = self.name("a memory region name after 'AT>'")
        while self.accept(":"):
            phdrs.append(self.name("a program header name after ':'"))
        if self.accept("="):
            fill = self.expression()
        self.accept(",")
        return region, lma_region, tuple(phdrs), fill

    def overlay(self, tok: _Tok) -> Overlay:
        self.take(tok)
        address = None
        if not self.is_op(self.peek(_EXPR), ":"):
            address = self.expression()
        self.expect(":", "after OVERLAY address")
        nocrossrefs = False
        at = subalign = None
        while True:
            t = self.peek(_NAME)
            if self.is_word(t, "NOCROSSREFS") and not nocrossrefs:
                nocrossrefs = bool(self.take(t))
            elif self.is_word(t, "AT") and at is None:
                at = self.parenthesized(self.take(t))
            elif self.is_word(t, "SUBALIGN") and subalign is None:
                subalign = self.parenthesized(self.take(t))
            else:
                break
        opened = self.expect("{", "to start the contents of OVERLAY")
        sections = []
        while True:
            t = self.peek(_NAME)
            if self.is_op(t, "}"):
                self.take(t)
                break
            if t.kind not in ("name", "str") or (t.kind == "name" and t.text in _KEYWORDS):
                self.fail(t, f"an overlay section name or '}}' to close OVERLAY (opened at {self.where(opened)})")
            self.take(t)
            inner = self.expect("{", f"after overlay section name '{t.text}'")
            body = self.body(f"overlay section '{t.text}'", inner)
            _, _, phdrs, fill = self.tail(regions=False)
            sections.append(OverlaySection(t.text, body, phdrs, fill, *self.lc(t.start)))
        region, lma_region, phdrs, fill = self.tail(regions=True)
        return Overlay(address, nocrossrefs, at, subalign, tuple(sections), region, lma_region, phdrs, fill,
                       *self.lc(tok.start))

    # ------------------------------------------------------------ output section contents

    def body(self, what: str, opened: _Tok) -> tuple:
        items = []
        while True:
            t = self.peek(_GLOB)
            if t.kind == "eof":
                self.fail(t, f"'}}' to close {what} (opened at {self.where(opened)})")
            if self.is_op(t, "}"):
                self.take(t)
                return tuple(items)
            if self.is_op(t, ";"):
                self.take(t)
                continue
            items.append(self.body_item(t))

    def body_item(self, tok: _Tok):
        if tok.kind == "str":
            return self.assignment(tok) if self.assign_follows(tok) else self.input_spec(tok, keep=False)
        if tok.kind != "name":
            self.fail(tok, "an input section description, an assignment or '}'")
        word = tok.text
        line, col = self.lc(tok.start)
        if word in _PROVIDES:
            return self.provide(tok)
        if word == "ASSERT":
            return self.assert_(tok)
        if word == "INCLUDE":
            return self.include(tok)
        if word == "KEEP":
            return self.keep(tok)
        if word in _DATA_KINDS:
            return Data(word, self.parenthesized(self.take(tok)), line, col)
        if word == "FILL":
            return Fill(self.parenthesized(self.take(tok)), line, col)
        if word == "ASCIZ":
            self.take(tok)
            return Data("ASCIZ", Str(self.name("a string after ASCIZ", _ARG)), line, col)
        if word == "CONSTRUCTORS":
            self.take(tok)
            return Constructors(None, line, col)
        if word == "CREATE_OBJECT_SYMBOLS":
            self.take(tok)
            return CreateObjectSymbols(line, col)
        if word in _UNSUPPORTED:
            raise self.error(tok.start, f"{word} is not supported")
        if word in _KEYWORDS and word not in _SORTS and word != "EXCLUDE_FILE":
            raise self.error(tok.start, f"expected an input section description, an assignment or '}}', "
                                        f"found '{word}', which is not allowed inside an output section")
        if self.assign_follows(tok):
            return self.assignment(tok)
        return self.input_spec(tok, keep=False)

    def keep(self, tok: _Tok) -> InputSpec:
        self.take(tok)
        self.expect("(", "after KEEP")
        inner = self.peek(_GLOB)
        if self.is_word(inner, "KEEP"):
            raise self.error(inner.start, "KEEP cannot be nested")
        spec = self.input_spec(inner, keep=True, start=tok)
        self.expect(")", "after the input section description in KEEP")
        return spec

    def excluded(self, tok: _Tok) -> tuple[str, ...]:
        self.take(tok)
        self.expect("(", "after EXCLUDE_FILE")
        files = []
        while True:
            t = self.peek(_GLOB)
            if self.is_op(t, ")") and files:
                self.take(t)
                return tuple(files)
            files.append(self.glob(t, "a file name pattern or ')' in EXCLUDE_FILE" if files
                                   else "a file name pattern in EXCLUDE_FILE"))

    def glob(self, tok: _Tok, what: str) -> str:
        if tok.kind not in ("name", "str"):
            self.fail(tok, what)
        if tok.kind == "name":
            if tok.text in ("KEEP", "EXCLUDE_FILE") or tok.text in _SORTS or tok.text in _UNSUPPORTED:
                raise self.error(tok.start, f"expected {what}, found '{tok.text}', which is not allowed here")
            if not _BRACKETS.fullmatch(tok.text):
                raise self.error(tok.start, f"expected ']' to close the character class in pattern "
                                            f"{self.describe(tok)}")
        return self.take(tok).text

    def input_spec(self, tok: _Tok, keep: bool, start: Optional[_Tok] = None):
        line, col = self.lc((start or tok).start)
        exclude: tuple[str, ...] = ()
        sort = None
        if self.is_word(tok, "EXCLUDE_FILE"):
            exclude = self.excluded(tok)
            tok = self.peek(_GLOB)
        if tok.kind == "name" and tok.text in _SORTS:
            sort = self.take(tok).text
            self.expect("(", f"after {sort}")
            inner = self.peek(_GLOB)
            if self.is_word(inner, "EXCLUDE_FILE"):
                exclude += self.excluded(inner)
                inner = self.peek(_GLOB)
            if self.is_word(inner, "CONSTRUCTORS") and not keep and not exclude and start is None:
                close = self.peek_at(inner.end, _EXPR)
                if self.is_op(close, ")") and not self.is_op(self.peek_at(close.end, _EXPR), "("):
                    self.take(close)
                    return Constructors(sort, line, col)
            file = self.glob(inner, f"a file name pattern in {sort}")
            self.expect(")", f"after the file name pattern in {sort}")
        else:
            file = self.glob(tok, "an input section description")
        paren = self.peek(_EXPR)
        if not self.is_op(paren, "("):
            if sort or exclude:
                self.fail(paren, f"'(' and section patterns after file name pattern '{file}'")
            return InputSpec(file, (), (), keep, None, line, col)
        self.take(paren)
        patterns: list[Pattern] = []
        while True:
            t = self.peek(_GLOB)
            if self.is_op(t, ")") and patterns:
                self.take(t)
                return InputSpec(file, exclude, tuple(patterns), keep, sort, line, col)
            if self.is_op(t, ",") and patterns:
                self.take(t)
                continue
            patterns.append(self.pattern(t, bool(patterns)))

    def pattern(self, tok: _Tok, more: bool) -> Pattern:
        what = "a section pattern or ')'" if more else "a section pattern"
        exclude: tuple[str, ...] = ()
        if self.is_word(tok, "EXCLUDE_FILE"):
            exclude = self.excluded(tok)
            tok = self.peek(_GLOB)
        if not (tok.kind == "name" and tok.text in _SORTS):
            return Pattern(self.glob(tok, what), exclude, None)
        outer = self.take(tok).text
        self.expect("(", f"after {outer}")
        sort = outer
        inner = self.peek(_GLOB)
        nested = inner.kind == "name" and inner.text in _SORTS
        if nested:
            if outer not in _NESTABLE_SORTS or inner.text not in _NESTABLE_SORTS:
                raise self.error(inner.start, f"{inner.text} cannot be nested inside {outer}")
            self.take(inner)
            self.expect("(", f"after {inner.text}")
            sort = f"{outer}({inner.text})"
            inner = self.peek(_GLOB)
        if self.is_word(inner, "EXCLUDE_FILE"):
            exclude += self.excluded(inner)
            inner = self.peek(_GLOB)
        glob = self.glob(inner, f"a section pattern in {outer}")
        if nested:
            self.expect(")", f"after the section pattern in {sort}")
        self.expect(")", f"after the section pattern in {outer}")
        return Pattern(glob, exclude, sort)


def parse(text: str, path: str = "<script>") -> Script:
    """The syntax tree of one linker script; ``path`` only labels errors."""
    return _Parser(text, path).script()


def parse_file(path) -> Script:
    """Read and parse a script; unreadable files are ScriptErrors too (line 0, col 0)."""
    name = str(path)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError as e:
        raise ScriptError(name, 0, 0, f"cannot read: not UTF-8 text (byte {e.start})") from None
    except OSError as e:
        raise ScriptError(name, 0, 0, f"cannot read: {e.strerror or e}") from None
    return parse(text, name)
