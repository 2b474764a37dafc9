"""Tokens of a linker script, read on demand in the mode the grammar asks for.

ld's lexer is modal (what a word may contain depends on where it stands), so
the parser names a mode on every peek instead of the text being tokenized up
front. Positions, line/column lookup and ScriptError live here, so that every
error points at a token the same way.
"""
from __future__ import annotations

import bisect
import re
from typing import NamedTuple, Optional

__all__ = [
    "ScriptError", "Token", "Lexer", "EXPR", "NAME", "GLOB", "ARG", "ASSIGN_OPS", "ASSIGN_LIKE", "BUILTINS",
    "CONSTANTS", "SECTION_TYPES", "SECTION_ATTRS", "SORTS", "NESTABLE_SORTS", "DATA_KINDS", "PROVIDES",
    "UNSUPPORTED", "TOP_COMMANDS", "KEYWORDS", "BRACKETS", "MEM_ATTRS", "PT_NAME",
]

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


class Token(NamedTuple):
    kind: str  # 'name' 'str' 'num' 'op' 'bad' 'eof'
    text: str
    start: int
    end: int

    def is_op(self, op: str) -> bool:
        return self.kind == "op" and self.text == op

    def is_word(self, *words: str) -> bool:
        return self.kind == "name" and self.text in words


_SPACE = re.compile(r"(?:[ \t\r\n\f\v]+|/\*.*?\*/)*", re.S)  # whitespace and complete comments
_NUMBER = re.compile(r"[0-9][A-Za-z0-9_]*")
# The lexer is modal, like ld's: what a word may contain depends on where it stands.
EXPR = None  # symbols in expressions: `a-b` is a subtraction
_EXPR_NAME = re.compile(r"[A-Za-z_.$][A-Za-z0-9_.$]*")
# Output section, symbol and region names. A word stops before an assignment
# operator (`.+=4`) and before a comment.
NAME = re.compile(r"(?:[A-Za-z_.$\\~]|/(?![=*]))(?:[A-Za-z0-9_.$\\~]|[-+](?!=)|/(?![=*]))*")
# File and section globs (`*`, `?`, `[...]`) in output section bodies.
GLOB = re.compile(r"(?:[A-Za-z0-9_.$\\~\[\]?^!:]|[-+*](?!=)|/(?![=*]))+")
# Arguments of top-level commands: file names, `-lfoo`, `i386:x86-64`, `=/sysroot`.
ARG = re.compile(r"(?:[A-Za-z0-9_.$\\~:=@%+\-\[\]*?!^]|/(?!\*))+")

_OPS = ("<<=", ">>=", "<<", ">>", "<=", ">=", "==", "!=", "&&", "||",
        "+=", "-=", "*=", "/=", "&=", "|=", "^=")
_OP = re.compile("|".join(map(re.escape, _OPS)) + r"|[-+*/%<>&|^~!?:(){},;=]")  # longest first
ASSIGN_OPS = frozenset(("=", "+=", "-=", "*=", "/=", "<<=", ">>=", "&=", "|="))
ASSIGN_LIKE = ASSIGN_OPS | {"^="}  # lexed so that it is reported, not misread

# Builtin functions: argument kind, or (min, max) expression arguments.
BUILTINS: dict[str, object] = {
    "ALIGN": (1, 2), "BLOCK": (1, 1), "ABSOLUTE": (1, 1), "MAX": (2, 2), "MIN": (2, 2),
    "DATA_SEGMENT_ALIGN": (2, 2), "DATA_SEGMENT_END": (1, 1), "DATA_SEGMENT_RELRO_END": (2, 2),
    "NEXT": (1, 1), "LOG2CEIL": (1, 1),
    "SIZEOF": "section", "ADDR": "section", "LOADADDR": "section", "ALIGNOF": "section",
    "DEFINED": "symbol", "ORIGIN": "region", "LENGTH": "region", "CONSTANT": "constant",
    "SEGMENT_START": "segment", "ASSERT": "assert",
    "SIZEOF_HEADERS": "none", "sizeof_headers": "none",
}
CONSTANTS = ("MAXPAGESIZE", "COMMONPAGESIZE")
SECTION_TYPES = frozenset(("NOLOAD", "DSECT", "COPY", "INFO", "OVERLAY", "READONLY"))
SECTION_ATTRS = frozenset(("AT", "ALIGN", "SUBALIGN", "ALIGN_WITH_INPUT", "ONLY_IF_RO", "ONLY_IF_RW",
                           "SPECIAL"))
SORTS = frozenset(("SORT", "SORT_BY_NAME", "SORT_BY_ALIGNMENT", "SORT_BY_INIT_PRIORITY", "SORT_NONE"))
NESTABLE_SORTS = frozenset(("SORT", "SORT_BY_NAME", "SORT_BY_ALIGNMENT"))
DATA_KINDS = frozenset(("BYTE", "SHORT", "LONG", "QUAD", "SQUAD"))
PROVIDES = frozenset(("PROVIDE", "PROVIDE_HIDDEN", "HIDDEN"))
# Real ld syntax this parser does not model.
UNSUPPORTED = frozenset(("INPUT_SECTION_FLAGS", "REVERSE", "LINKER_VERSION", "VERSION", "BIND"))
TOP_COMMANDS = frozenset((
    "SECTIONS", "MEMORY", "PHDRS", "ENTRY", "OUTPUT_ARCH", "OUTPUT_FORMAT", "INCLUDE", "ASSERT",
    "INPUT", "GROUP", "AS_NEEDED", "TARGET", "OUTPUT", "SEARCH_DIR", "STARTUP", "EXTERN",
    "REGION_ALIAS", "NOCROSSREFS", "NOCROSSREFS_TO", "LD_FEATURE", "FORCE_COMMON_ALLOCATION",
    "INHIBIT_COMMON_ALLOCATION", "FORCE_GROUP_ALLOCATION", "INSERT", "VERSION"))
# Words that are never a name of ours: seen out of place, they are reported.
KEYWORDS = (TOP_COMMANDS | SECTION_ATTRS | SORTS | DATA_KINDS | PROVIDES | UNSUPPORTED
            | set(BUILTINS) | {"KEEP", "EXCLUDE_FILE", "FILL", "ASCIZ", "CONSTRUCTORS",
                               "CREATE_OBJECT_SYMBOLS", "OVERLAY"}) - {"sizeof_headers"}
BRACKETS = re.compile(r"(?:[^\[]|\[[!^]?\]?[^\]]*\])*")
MEM_ATTRS = re.compile(r"[rwxailRWXAIL!][rwxailRWXAIL!\s]*")
PT_NAME = re.compile(r"PT_[A-Z0-9_]+")

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


class Lexer:
    """The text and a position in it. ``peek`` reads the next token without
    consuming it (``take`` does); ``scans`` counts tokens actually read, which
    stays proportional to the text as long as nothing is re-read."""

    def __init__(self, text: str, path: str):
        self.text = text
        self.path = path
        self.pos = 0
        self.scans = 0
        self.lines = [0] + [m.end() for m in re.finditer("\n", text)]
        self.cache: dict = {}  # (pos, mode) -> token: the grammar peeks the same token repeatedly

    # ------------------------------------------------------------ positions and errors

    def lc(self, pos: int) -> tuple[int, int]:
        line = bisect.bisect_right(self.lines, pos)
        return line, pos - self.lines[line - 1] + 1

    def where(self, tok: Token) -> str:
        return "%d:%d" % self.lc(tok.start)

    def error(self, pos: int, message: str) -> ScriptError:
        line, col = self.lc(pos)
        return ScriptError(self.path, line, col, message)

    def fail(self, tok: Token, expected: str):
        raise self.error(tok.start, f"expected {expected}, found {self.describe(tok)}")

    def describe(self, tok: Token) -> str:
        if tok.kind == "eof":
            return "end of input"
        if tok.kind == "bad":
            fuller = self.peek_at(tok.start, EXPR)
            if fuller.kind in ("num", "name"):
                tok = fuller
            elif not tok.text.isprintable() or tok.text in "'\\":
                return repr(tok.text)
        text = tok.text if len(tok.text) <= 40 else tok.text[:37] + "..."
        return f'string "{text}"' if tok.kind == "str" else f"'{text}'"

    # ------------------------------------------------------------ reading tokens

    def skip(self) -> int:
        pos = _SPACE.match(self.text, self.pos).end()
        if self.text.startswith("/*", pos):
            raise self.error(pos, "expected '*/' to close this comment, found end of input")
        self.pos = pos
        return pos

    def peek(self, mode) -> Token:
        key = (self.pos, mode)
        tok = self.cache.get(key)
        if tok is None:
            if len(self.cache) > 64:
                self.cache.clear()
            tok = self.cache[key] = self.scan(mode)
        self.pos = tok.start
        return tok

    def scan(self, mode) -> Token:
        self.scans += 1
        pos = self.skip()
        text = self.text
        if pos >= len(text):
            return Token("eof", "", pos, pos)
        c = text[pos]
        if c == '"':
            end = text.find('"', pos + 1)
            if end < 0:
                raise self.error(pos, "expected '\"' to close this string, found end of input")
            return Token("str", text[pos + 1:end], pos, end + 1)
        if mode is EXPR:
            if "0" <= c <= "9":
                m = _NUMBER.match(text, pos)
                return Token("num", m.group(), pos, m.end())
            m = _EXPR_NAME.match(text, pos)
        else:
            m = mode.match(text, pos)
        if m:
            return Token("name", m.group(), pos, m.end())
        m = _OP.match(text, pos)
        if m:
            return Token("op", m.group(), pos, m.end())
        return Token("bad", c, pos, pos + 1)

    def peek_at(self, pos: int, mode) -> Token:
        saved = self.pos
        self.pos = pos
        try:
            return self.peek(mode)
        finally:
            self.pos = saved

    def take(self, tok: Token) -> Token:
        self.pos = tok.end
        return tok

    def raw_until(self, start: int, stop: str) -> Optional[str]:
        """The text from ``start`` up to ``stop``, both consumed; None if ``stop`` never
        comes. For what no mode reads as one token, such as MEMORY's ``(w !rx)``."""
        end = self.text.find(stop, start)
        if end < 0:
            return None
        self.pos = end + 1
        return self.text[start:end]

    def accept(self, op: str) -> bool:
        tok = self.peek(EXPR)
        if tok.is_op(op):
            self.take(tok)
            return True
        return False

    def expect(self, op: str, where: str) -> Token:
        tok = self.peek(EXPR)
        if not tok.is_op(op):
            self.fail(tok, f"'{op}' {where}")
        return self.take(tok)

    def name(self, what: str, mode=NAME) -> str:
        tok = self.peek(mode)
        if tok.kind not in ("name", "str"):
            self.fail(tok, what)
        return self.take(tok).text

    def number(self, tok: Token) -> int:
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
