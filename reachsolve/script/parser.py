"""GNU ld / ld.lld linker scripts (such as a generated vmlinux.lds) as a syntax tree.

Nothing is evaluated here: values depend on the sections of the object being
linked, which the caller has. Syntax the parser does not cover raises
ScriptError rather than being skipped, so a tree is never a partial reading.
The nodes are in :mod:`.ast`, the tokens in :mod:`.lexer`; this is the grammar.
"""
from __future__ import annotations

from typing import Optional, Union

from .ast import (Assert, Assign, Binary, Call, Command, Cond, Const, Constructors, CreateObjectSymbols, Data,
                  Dot, Entry, Expr, Fill, Include, InputList, InputSpec, Memory, MemoryRegion, Num, OutputArch,
                  OutputFormat, OutputSection, Overlay, OverlaySection, Pattern, Phdr, Phdrs, RegionRef, Script,
                  SectionRef, Sections, Str, Sym, Unary)
from .lexer import (ARG, ASSIGN_LIKE, ASSIGN_OPS, BRACKETS, BUILTINS, CONSTANTS, DATA_KINDS, EXPR, GLOB, KEYWORDS,
                    MEM_ATTRS, NAME, NESTABLE_SORTS, PROVIDES, PT_NAME, SECTION_ATTRS, SECTION_TYPES, SORTS,
                    UNSUPPORTED, Lexer, ScriptError, Token)

__all__ = [
    "ScriptError", "parse", "parse_file", "parse_defsym", "MAX_NESTING", "MAX_EXPR_DEPTH",
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

_BINARY = {"||": 1, "&&": 2, "|": 3, "^": 4, "&": 5, "==": 6, "!=": 6,
           "<": 7, "<=": 7, ">": 7, ">=": 7, "<<": 8, ">>": 8,
           "+": 9, "-": 9, "*": 10, "/": 10, "%": 10}


class Parser:
    """Recursive descent over a :class:`Lexer`, one method per construct (as in
    lld's ScriptParser). Expression operators are folded in loops, so only
    parentheses and calls recurse, and those are capped by MAX_NESTING."""

    def __init__(self, text: str, path: str):
        self.lex = Lexer(text, path)
        self.depth = 0

    def assign_follows(self, tok: Token) -> bool:
        nxt = self.lex.peek_at(tok.end, EXPR)
        return nxt.kind == "op" and nxt.text in ASSIGN_LIKE

    # ------------------------------------------------------------ expressions

    def expression(self) -> Expr:
        return self.nested(self.lex.peek(EXPR))[0]

    def nested(self, at: Token) -> tuple[Expr, int]:
        if self.depth >= MAX_NESTING:
            raise self.lex.error(at.start, f"expression nested too deeply (more than {MAX_NESTING} levels)")
        self.depth += 1
        try:
            return self.conditional()
        finally:
            self.depth -= 1

    def deeper(self, depth: int, pos: int) -> int:
        if depth > MAX_EXPR_DEPTH:
            raise self.lex.error(pos, f"expression nested too deeply (tree deeper than {MAX_EXPR_DEPTH})")
        return depth

    def conditional(self) -> tuple[Expr, int]:
        # Right-associative chains are collected in a loop, so `a ? b : c ? d : ...`
        # costs no recursion.
        last = self.binary()
        pairs = []
        while True:
            q = self.lex.peek(EXPR)
            if not q.is_op("?"):
                break
            self.lex.take(q)
            then = self.nested(q)
            self.lex.expect(":", "in conditional expression")
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
            tok = self.lex.peek(EXPR)
            prec = _BINARY.get(tok.text) if tok.kind == "op" else None
            if prec is None:
                break
            self.lex.take(tok)
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
            tok = self.lex.peek(EXPR)
            if tok.kind == "op" and tok.text in ("-", "~", "!", "+"):
                prefix.append(self.lex.take(tok))
            else:
                break
        node, depth = self.primary()
        for tok in reversed(prefix):
            if tok.text != "+":
                depth = self.deeper(depth + 1, tok.start)
                node = Unary(tok.text, node)
        return node, depth

    def primary(self) -> tuple[Expr, int]:
        tok = self.lex.peek(EXPR)
        if tok.kind == "num":
            return Num(self.lex.number(self.lex.take(tok))), 1
        if tok.kind == "str":
            return Sym(self.lex.take(tok).text), 1
        if tok.kind == "name":
            if tok.text == ".":
                self.lex.take(tok)
                return Dot(), 1
            if tok.text in BUILTINS:
                return self.call(self.lex.take(tok))
            return Sym(self.lex.take(tok).text), 1
        if tok.is_op("("):
            self.lex.take(tok)
            inner = self.nested(tok)
            self.lex.expect(")", "after expression")
            return inner
        self.lex.fail(tok, "an expression")

    def call(self, tok: Token) -> tuple[Expr, int]:
        name = tok.text
        kind = BUILTINS[name]
        if kind == "none":
            return Call("SIZEOF_HEADERS", ()), 1
        self.lex.expect("(", f"after {name}")
        depth = 1
        if kind == "section":
            args = (SectionRef(self.lex.name(f"a section name in {name}")),)
        elif kind == "symbol":
            args = (Sym(self.lex.name(f"a symbol name in {name}")),)
        elif kind == "region":
            args = (RegionRef(self.lex.name(f"a memory region name in {name}")),)
        elif kind == "constant":
            arg = self.lex.peek(NAME)
            if not arg.is_word(*CONSTANTS):
                self.lex.fail(arg, "MAXPAGESIZE or COMMONPAGESIZE in CONSTANT")
            args = (Const(self.lex.take(arg).text),)
        elif kind in ("segment", "assert"):
            if kind == "segment":
                first, fd = Str(self.lex.name("a segment name in SEGMENT_START", ARG)), 1
            else:
                first, fd = self.nested(tok)
            self.lex.expect(",", f"after the first argument of {name}")
            if kind == "segment":
                second, sd = self.nested(tok)
            else:
                second, sd = Str(self.lex.name("a message in ASSERT", ARG)), 1
            args, depth = (first, second), 1 + max(fd, sd)
        else:
            lo, hi = kind
            items = []
            for i in range(hi):
                if i:
                    if i < lo:
                        self.lex.expect(",", f"and another argument to {name}")
                    elif not self.lex.accept(","):
                        break
                node, d = self.nested(tok)
                items.append(node)
                depth = max(depth, 1 + d)
            args = tuple(items)
        self.lex.expect(")", f"after the arguments of {name}")
        return Call(name, args), self.deeper(depth, tok.start)

    # ------------------------------------------------------------ statements common to all levels

    def assignment(self, tok: Token) -> Assign:
        if tok.kind == "name" and (any(c in tok.text for c in "*?[]") or not NAME.fullmatch(tok.text)):
            self.lex.fail(tok, "a symbol name before the assignment")
        self.lex.take(tok)
        op = self.lex.peek(EXPR)
        if op.kind != "op" or op.text not in ASSIGN_OPS:
            if op.kind == "op" and op.text in ASSIGN_LIKE:
                raise self.lex.error(op.start, f"assignment operator '{op.text}' is not supported")
            self.lex.fail(op, f"an assignment operator after '{tok.text}'")
        self.lex.take(op)
        expr = self.expression()
        if not self.lex.accept(","):  # ld also takes ',' as the separator
            self.lex.expect(";", "after assignment")
        return Assign(tok.text, op.text, expr, False, False, *self.lex.lc(tok.start))

    def provide(self, tok: Token) -> Assign:
        kw = self.lex.take(tok).text
        self.lex.expect("(", f"after {kw}")
        target = self.lex.peek(NAME)
        if target.kind not in ("name", "str") or (target.kind == "name" and target.text == "."):
            self.lex.fail(target, f"a symbol name in {kw}")
        self.lex.take(target)
        self.lex.expect("=", f"after '{target.text}' in {kw}")
        expr = self.expression()
        self.lex.expect(")", f"after the expression in {kw}")
        self.lex.expect(";", f"after {kw}(...)")
        return Assign(target.text, "=", expr, kw != "HIDDEN", kw != "PROVIDE", *self.lex.lc(tok.start))

    def assert_(self, tok: Token) -> Assert:
        self.lex.take(tok)
        self.lex.expect("(", "after ASSERT")
        expr = self.expression()
        self.lex.expect(",", "after ASSERT condition")
        message = self.lex.name("a message in ASSERT", ARG)
        self.lex.expect(")", "after ASSERT message")
        return Assert(expr, message, *self.lex.lc(tok.start))

    def include(self, tok: Token) -> Include:
        self.lex.take(tok)
        return Include(self.lex.name("a file name after INCLUDE", ARG), *self.lex.lc(tok.start))

    def entry(self, tok: Token) -> Entry:
        self.lex.take(tok)
        self.lex.expect("(", "after ENTRY")
        name = self.lex.name("a symbol name in ENTRY")
        self.lex.expect(")", "after the symbol name in ENTRY")
        return Entry(name, *self.lex.lc(tok.start))

    # ------------------------------------------------------------ top level

    def script(self) -> Script:
        commands = []
        while True:
            tok = self.lex.peek(NAME)
            if tok.kind == "eof":
                return Script(tuple(commands), self.lex.path)
            if tok.is_op(";"):
                self.lex.take(tok)
                continue
            commands.append(self.command(tok))

    def command(self, tok: Token):
        word = tok.text if tok.kind == "name" else None
        if word in UNSUPPORTED:
            raise self.lex.error(tok.start, f"{word} is not supported")
        if word in PROVIDES:
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
            self.lex.take(tok)
            return Command(word, (), *self.lex.lc(tok.start))
        if tok.kind in ("name", "str") and word not in KEYWORDS and self.assign_follows(tok):
            return self.assignment(tok)
        self.lex.fail(tok, "a command or an assignment")

    def output_arch(self, tok: Token) -> OutputArch:
        self.lex.take(tok)
        self.lex.expect("(", "after OUTPUT_ARCH")
        name = self.lex.name("an architecture name in OUTPUT_ARCH", ARG)
        self.lex.expect(")", "after the architecture name in OUTPUT_ARCH")
        return OutputArch(name, *self.lex.lc(tok.start))

    def output_format(self, tok: Token) -> OutputFormat:
        self.lex.take(tok)
        self.lex.expect("(", "after OUTPUT_FORMAT")
        names = [self.lex.name("a format name in OUTPUT_FORMAT", ARG)]
        if self.lex.accept(","):
            names.append(self.lex.name("a big-endian format name in OUTPUT_FORMAT", ARG))
            self.lex.expect(",", "after the big-endian format name (OUTPUT_FORMAT takes one or three names)")
            names.append(self.lex.name("a little-endian format name in OUTPUT_FORMAT", ARG))
        self.lex.expect(")", "after OUTPUT_FORMAT names (one or three)")
        return OutputFormat(tuple(names), *self.lex.lc(tok.start))

    def simple(self, tok: Token, lo: int, hi: Optional[int]) -> Command:
        word = self.lex.take(tok).text
        self.lex.expect("(", f"after {word}")
        args: list[str] = []
        while True:
            t = self.lex.peek(ARG)
            if t.is_op(")") and len(args) >= lo:
                self.lex.take(t)
                return Command(word, tuple(args), *self.lex.lc(tok.start))
            if t.is_op(",") and args:
                self.lex.take(t)
                continue
            if t.kind not in ("name", "str") or (hi is not None and len(args) >= hi):
                self.lex.fail(t, f"')' after {word} arguments" if args and len(args) >= lo
                              else f"an argument to {word}")
            args.append(self.lex.take(t).text)

    def input_list(self, tok: Token, nested: bool = False) -> InputList:
        word = self.lex.take(tok).text
        self.lex.expect("(", f"after {word}")
        items: list = []
        while True:
            t = self.lex.peek(ARG)
            if t.is_op(")"):
                self.lex.take(t)
                return InputList(word, tuple(items), *self.lex.lc(tok.start))
            if t.is_op(",") and items:
                self.lex.take(t)
                continue
            if t.is_word("AS_NEEDED") and not nested:
                items.append(self.input_list(t, nested=True))
                continue
            if t.kind not in ("name", "str") or t.text == "AS_NEEDED":
                self.lex.fail(t, f"a file name or ')' in {word}")
            items.append(self.lex.take(t).text)

    def insert(self, tok: Token) -> Command:
        self.lex.take(tok)
        where = self.lex.peek(NAME)
        if not where.is_word("AFTER", "BEFORE"):
            self.lex.fail(where, "AFTER or BEFORE after INSERT")
        self.lex.take(where)
        section = self.lex.name(f"an output section name after INSERT {where.text}")
        return Command("INSERT", (where.text, section), *self.lex.lc(tok.start))

    # ------------------------------------------------------------ MEMORY and PHDRS

    def memory(self, tok: Token) -> Memory:
        self.lex.take(tok)
        opened = self.lex.expect("{", "after MEMORY")
        regions: list = []
        while True:
            t = self.lex.peek(NAME)
            if t.is_op("}"):
                self.lex.take(t)
                return Memory(tuple(regions), *self.lex.lc(tok.start))
            if t.is_op(",") and regions:
                self.lex.take(t)
                continue
            if t.is_word("INCLUDE"):
                regions.append(self.include(t))
                continue
            if t.kind not in ("name", "str") or (t.kind == "name" and t.text in KEYWORDS):
                self.lex.fail(t, f"a memory region or '}}' to close MEMORY (opened at {self.lex.where(opened)})")
            regions.append(self.region(self.lex.take(t)))

    def region(self, tok: Token) -> MemoryRegion:
        attributes = None
        paren = self.lex.peek(EXPR)
        if paren.is_op("("):
            raw = self.lex.raw_until(paren.end, ")")
            if raw is None or not MEM_ATTRS.fullmatch(raw.strip()):
                raise self.lex.error(paren.end, f"expected memory attributes such as 'rwx' or '!w' and ')', "
                                                f"found {self.lex.describe(self.lex.peek_at(paren.end, ARG))}")
            attributes = raw.strip()
        self.lex.expect(":", f"after memory region name '{tok.text}'")
        values = []
        for words, what in ((("ORIGIN", "org", "o"), "ORIGIN"), (("LENGTH", "len", "l"), "LENGTH")):
            if values:
                self.lex.accept(",")
            kw = self.lex.peek(NAME)
            if not kw.is_word(*words):
                self.lex.fail(kw, f"{what} in memory region '{tok.text}'")
            self.lex.take(kw)
            self.lex.expect("=", f"after {kw.text}")
            values.append(self.expression())
        return MemoryRegion(tok.text, attributes, values[0], values[1], *self.lex.lc(tok.start))

    def phdrs(self, tok: Token) -> Phdrs:
        self.lex.take(tok)
        opened = self.lex.expect("{", "after PHDRS")
        headers = []
        while True:
            t = self.lex.peek(NAME)
            if t.is_op("}"):
                self.lex.take(t)
                return Phdrs(tuple(headers), *self.lex.lc(tok.start))
            if t.is_op(";"):
                self.lex.take(t)
                continue
            if t.kind not in ("name", "str"):
                self.lex.fail(t, f"a program header name or '}}' to close PHDRS "
                                 f"(opened at {self.lex.where(opened)})")
            headers.append(self.phdr(self.lex.take(t)))

    def phdr(self, tok: Token) -> Phdr:
        kind = self.lex.peek(NAME)
        if kind.kind == "name" and PT_NAME.fullmatch(kind.text):
            type_: Union[str, Expr] = self.lex.take(kind).text
        elif kind.kind == "name" or kind.kind == "eof" or (kind.kind == "op" and kind.text == ";"):
            self.lex.fail(kind, f"a segment type such as PT_LOAD for program header '{tok.text}'")
        else:
            type_ = self.expression()
        filehdr = phdrs = False
        at = flags = None
        while True:
            t = self.lex.peek(NAME)
            if t.is_word("FILEHDR") and not filehdr:
                filehdr = bool(self.lex.take(t))
            elif t.is_word("PHDRS") and not phdrs:
                phdrs = bool(self.lex.take(t))
            elif t.is_word("AT") and at is None:
                at = self.parenthesized(self.lex.take(t))
            elif t.is_word("FLAGS") and flags is None:
                flags = self.parenthesized(self.lex.take(t))
            else:
                break
        self.lex.expect(";", f"after program header '{tok.text}'")
        return Phdr(tok.text, type_, filehdr, phdrs, at, flags, *self.lex.lc(tok.start))

    def parenthesized(self, kw: Token) -> Expr:
        self.lex.expect("(", f"after {kw.text}")
        expr = self.expression()
        self.lex.expect(")", f"after the expression in {kw.text}")
        return expr

    # ------------------------------------------------------------ SECTIONS

    def sections(self, tok: Token) -> Sections:
        self.lex.take(tok)
        opened = self.lex.expect("{", "after SECTIONS")
        body = []
        while True:
            t = self.lex.peek(NAME)
            if t.kind == "eof":
                self.lex.fail(t, f"'}}' to close SECTIONS (opened at {self.lex.where(opened)})")
            if t.is_op("}"):
                self.lex.take(t)
                return Sections(tuple(body), *self.lex.lc(tok.start))
            if t.is_op(";"):
                self.lex.take(t)
                continue
            body.append(self.sections_item(t))

    def sections_item(self, tok: Token):
        if tok.kind == "str":
            return self.assignment(tok) if self.assign_follows(tok) else self.output_section(tok)
        if tok.kind != "name":
            self.lex.fail(tok, "an output section, an assignment or '}'")
        word = tok.text
        if word in PROVIDES:
            return self.provide(tok)
        if word == "ASSERT":
            a = self.assert_(tok)
            semi = self.lex.peek(EXPR)
            if semi.is_op(";"):   # ld.lld reads it as an output section's name; GNU ld: syntax error
                raise self.lex.error(semi.start, "';' after an ASSERT directly inside SECTIONS: neither ld.lld "
                                                 "nor GNU ld accepts it (write ASSERT(...) alone there)")
            return a
        simple = {"ENTRY": self.entry, "INCLUDE": self.include, "OVERLAY": self.overlay}.get(word)
        if simple:
            return simple(tok)
        if word in UNSUPPORTED:
            raise self.lex.error(tok.start, f"{word} is not supported")
        if word in KEYWORDS:
            raise self.lex.error(tok.start, f"expected an output section, an assignment or '}}', found '{word}', "
                                            "which is not allowed directly inside SECTIONS")
        if self.assign_follows(tok):
            return self.assignment(tok)
        return self.output_section(tok)

    def section_type(self) -> Optional[str]:
        """A parenthesized type after the name or address; ld's empty ``()`` is no type."""
        paren = self.lex.peek(EXPR)
        if not paren.is_op("("):
            return None
        inner = self.lex.peek_at(paren.end, NAME)
        if inner.is_op(")"):
            self.lex.take(inner)
            return None
        if inner.is_word("TYPE"):
            raise self.lex.error(inner.start, "section type 'TYPE = ...' is not supported")
        if inner.kind != "name" or inner.text not in SECTION_TYPES:
            return None  # a parenthesized address
        close = self.lex.peek_at(inner.end, EXPR)
        if not close.is_op(")"):
            self.lex.fail(close, f"')' after section type {inner.text}")
        self.lex.take(close)
        return inner.text

    def output_section(self, tok: Token) -> OutputSection:
        name = self.lex.take(tok).text
        address = type_ = None
        nxt = self.lex.peek(EXPR)
        where = f"after output section name '{name}'"
        if not nxt.is_op(":"):
            if nxt.kind == "eof" or (nxt.kind == "op" and nxt.text in "{};"):
                self.lex.fail(nxt, f"':' {where}")
            type_ = self.section_type()
            if type_ is None and self.lex.pos == nxt.start:  # nothing taken: the address comes first
                address = self.expression()
                type_ = self.section_type()
            where = f"after the address and type of output section '{name}'"
        self.lex.expect(":", where)
        at = align = subalign = constraint = None
        align_with_input = False
        seen: set[str] = set()
        while True:
            t = self.lex.peek(NAME)
            if not t.is_word(*SECTION_ATTRS):
                break
            word = self.lex.take(t).text
            if word in seen or (constraint and word in ("ONLY_IF_RO", "ONLY_IF_RW", "SPECIAL")):
                raise self.lex.error(t.start, f"{word} given twice for output section '{name}'")
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
        opened = self.lex.expect("{", f"to start the contents of output section '{name}'")
        body = self.body(f"output section '{name}'", opened)
        region, lma_region, phdrs, fill = self.tail(regions=True)
        return OutputSection(name, address, type_, at, align, subalign, constraint, body, region, lma_region,
                             phdrs, fill, *self.lex.lc(tok.start), align_with_input=align_with_input)

    def tail(self, regions: bool):
        region = lma_region = fill = None
        phdrs = []
        if regions:
            if self.lex.accept(">"):
                region = self.lex.name("a memory region name after '>'")
            t = self.lex.peek(NAME)
            if t.is_word("AT") and self.lex.peek_at(t.end, EXPR).is_op(">"):
                self.lex.take(self.lex.peek_at(t.end, EXPR))
                lma_region = self.lex.name("a memory region name after 'AT>'")
        while self.lex.accept(":"):
            phdrs.append(self.lex.name("a program header name after ':'"))
        if self.lex.accept("="):
            fill = self.expression()
        self.lex.accept(",")
        return region, lma_region, tuple(phdrs), fill

    def overlay(self, tok: Token) -> Overlay:
        self.lex.take(tok)
        address = None
        if not self.lex.peek(EXPR).is_op(":"):
            address = self.expression()
        self.lex.expect(":", "after OVERLAY address")
        nocrossrefs = False
        at = subalign = None
        while True:
            t = self.lex.peek(NAME)
            if t.is_word("NOCROSSREFS") and not nocrossrefs:
                nocrossrefs = bool(self.lex.take(t))
            elif t.is_word("AT") and at is None:
                at = self.parenthesized(self.lex.take(t))
            elif t.is_word("SUBALIGN") and subalign is None:
                subalign = self.parenthesized(self.lex.take(t))
            else:
                break
        opened = self.lex.expect("{", "to start the contents of OVERLAY")
        sections = []
        while True:
            t = self.lex.peek(NAME)
            if t.is_op("}"):
                self.lex.take(t)
                break
            if t.kind not in ("name", "str") or (t.kind == "name" and t.text in KEYWORDS):
                self.lex.fail(t, f"an overlay section name or '}}' to close OVERLAY "
                                 f"(opened at {self.lex.where(opened)})")
            self.lex.take(t)
            inner = self.lex.expect("{", f"after overlay section name '{t.text}'")
            body = self.body(f"overlay section '{t.text}'", inner)
            _, _, phdrs, fill = self.tail(regions=False)
            sections.append(OverlaySection(t.text, body, phdrs, fill, *self.lex.lc(t.start)))
        region, lma_region, phdrs, fill = self.tail(regions=True)
        return Overlay(address, nocrossrefs, at, subalign, tuple(sections), region, lma_region, phdrs, fill,
                       *self.lex.lc(tok.start))

    # ------------------------------------------------------------ output section contents

    def body(self, what: str, opened: Token) -> tuple:
        items = []
        while True:
            t = self.lex.peek(GLOB)
            if t.kind == "eof":
                self.lex.fail(t, f"'}}' to close {what} (opened at {self.lex.where(opened)})")
            if t.is_op("}"):
                self.lex.take(t)
                return tuple(items)
            if t.is_op(";"):
                self.lex.take(t)
                continue
            items.append(self.body_item(t))

    def body_item(self, tok: Token):
        if tok.kind == "str":
            return self.assignment(tok) if self.assign_follows(tok) else self.input_spec(tok, keep=False)
        if tok.kind != "name":
            self.lex.fail(tok, "an input section description, an assignment or '}'")
        word = tok.text
        line, col = self.lex.lc(tok.start)
        if word in PROVIDES:
            return self.provide(tok)
        if word == "ASSERT":
            return self.assert_(tok)
        if word == "INCLUDE":
            return self.include(tok)
        if word == "KEEP":
            return self.keep(tok)
        if word in DATA_KINDS:
            return Data(word, self.parenthesized(self.lex.take(tok)), line, col)
        if word == "FILL":
            return Fill(self.parenthesized(self.lex.take(tok)), line, col)
        if word == "ASCIZ":
            self.lex.take(tok)
            return Data("ASCIZ", Str(self.lex.name("a string after ASCIZ", ARG)), line, col)
        if word == "CONSTRUCTORS":
            self.lex.take(tok)
            return Constructors(None, line, col)
        if word == "CREATE_OBJECT_SYMBOLS":
            self.lex.take(tok)
            return CreateObjectSymbols(line, col)
        if word in UNSUPPORTED:
            raise self.lex.error(tok.start, f"{word} is not supported")
        if word in KEYWORDS and word not in SORTS and word != "EXCLUDE_FILE":
            raise self.lex.error(tok.start, f"expected an input section description, an assignment or '}}', "
                                            f"found '{word}', which is not allowed inside an output section")
        if self.assign_follows(tok):
            return self.assignment(tok)
        return self.input_spec(tok, keep=False)

    def keep(self, tok: Token) -> InputSpec:
        self.lex.take(tok)
        self.lex.expect("(", "after KEEP")
        inner = self.lex.peek(GLOB)
        if inner.is_word("KEEP"):
            raise self.lex.error(inner.start, "KEEP cannot be nested")
        spec = self.input_spec(inner, keep=True, start=tok)
        self.lex.expect(")", "after the input section description in KEEP")
        return spec

    def excluded(self, tok: Token) -> tuple[str, ...]:
        self.lex.take(tok)
        self.lex.expect("(", "after EXCLUDE_FILE")
        files = []
        while True:
            t = self.lex.peek(GLOB)
            if t.is_op(")") and files:
                self.lex.take(t)
                return tuple(files)
            files.append(self.glob(t, "a file name pattern or ')' in EXCLUDE_FILE" if files
                                   else "a file name pattern in EXCLUDE_FILE"))

    def glob(self, tok: Token, what: str) -> str:
        if tok.kind not in ("name", "str"):
            self.lex.fail(tok, what)
        if tok.kind == "name":
            if tok.text in ("KEEP", "EXCLUDE_FILE") or tok.text in SORTS or tok.text in UNSUPPORTED:
                raise self.lex.error(tok.start, f"expected {what}, found '{tok.text}', which is not allowed here")
            if not BRACKETS.fullmatch(tok.text):
                raise self.lex.error(tok.start, f"expected ']' to close the character class in pattern "
                                                f"{self.lex.describe(tok)}")
        return self.lex.take(tok).text

    def input_spec(self, tok: Token, keep: bool, start: Optional[Token] = None):
        line, col = self.lex.lc((start or tok).start)
        exclude: tuple[str, ...] = ()
        sort = None
        if tok.is_word("EXCLUDE_FILE"):
            exclude = self.excluded(tok)
            tok = self.lex.peek(GLOB)
        if tok.kind == "name" and tok.text in SORTS:
            sort = self.lex.take(tok).text
            self.lex.expect("(", f"after {sort}")
            inner = self.lex.peek(GLOB)
            if inner.is_word("EXCLUDE_FILE"):
                exclude += self.excluded(inner)
                inner = self.lex.peek(GLOB)
            if inner.is_word("CONSTRUCTORS") and not keep and not exclude and start is None:
                close = self.lex.peek_at(inner.end, EXPR)
                if close.is_op(")") and not self.lex.peek_at(close.end, EXPR).is_op("("):
                    self.lex.take(close)
                    return Constructors(sort, line, col)
            file = self.glob(inner, f"a file name pattern in {sort}")
            self.lex.expect(")", f"after the file name pattern in {sort}")
        else:
            file = self.glob(tok, "an input section description")
        paren = self.lex.peek(EXPR)
        if not paren.is_op("("):
            if sort or exclude:
                self.lex.fail(paren, f"'(' and section patterns after file name pattern '{file}'")
            return InputSpec(file, (), (), keep, None, line, col)
        self.lex.take(paren)
        patterns: list[Pattern] = []
        while True:
            t = self.lex.peek(GLOB)
            if t.is_op(")") and patterns:
                self.lex.take(t)
                return InputSpec(file, exclude, tuple(patterns), keep, sort, line, col)
            if t.is_op(",") and patterns:
                self.lex.take(t)
                continue
            patterns.append(self.pattern(t, bool(patterns)))

    def pattern(self, tok: Token, more: bool) -> Pattern:
        what = "a section pattern or ')'" if more else "a section pattern"
        exclude: tuple[str, ...] = ()
        if tok.is_word("EXCLUDE_FILE"):
            exclude = self.excluded(tok)
            tok = self.lex.peek(GLOB)
        if not (tok.kind == "name" and tok.text in SORTS):
            return Pattern(self.glob(tok, what), exclude, None)
        outer = self.lex.take(tok).text
        self.lex.expect("(", f"after {outer}")
        sort = outer
        inner = self.lex.peek(GLOB)
        nested = inner.kind == "name" and inner.text in SORTS
        if nested:
            if outer not in NESTABLE_SORTS or inner.text not in NESTABLE_SORTS:
                raise self.lex.error(inner.start, f"{inner.text} cannot be nested inside {outer}")
            self.lex.take(inner)
            self.lex.expect("(", f"after {inner.text}")
            sort = f"{outer}({inner.text})"
            inner = self.lex.peek(GLOB)
        if inner.is_word("EXCLUDE_FILE"):
            exclude += self.excluded(inner)
            inner = self.lex.peek(GLOB)
        glob = self.glob(inner, f"a section pattern in {outer}")
        if nested:
            self.lex.expect(")", f"after the section pattern in {sort}")
        self.lex.expect(")", f"after the section pattern in {outer}")
        return Pattern(glob, exclude, sort)


def parse(text: str, path: str = "<script>") -> Script:
    """The syntax tree of one linker script; ``path`` only labels errors."""
    return Parser(text, path).script()


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


def parse_defsym(text: str, origin: str = "--defsym") -> Assign:
    """``NAME=EXPR`` as ld.lld and GNU ld take --defsym: one plain assignment whose
    expression is script syntax over numbers and symbols. ``origin`` labels errors
    (``--defsym:1:col: ...``); anything but one ``NAME = EXPR`` is a ScriptError."""
    name, eq, expr = text.partition("=")
    if not eq or not name.strip() or not expr.strip():
        raise ScriptError(origin, 1, 1, f"expected NAME=EXPRESSION, found {text!r}")
    try:
        (cmd, *rest) = parse(f"{text};", origin).commands or (None,)
    except ScriptError as exc:
        # A ';' of our own closes the text: an error there is the text ending too soon.
        raise ScriptError(origin, exc.line, exc.col, exc.message.replace("';'", "the end")) from None
    if rest or not isinstance(cmd, Assign) or cmd.op != "=" or cmd.provide or cmd.target == ".":
        raise ScriptError(origin, 1, 1, f"expected NAME=EXPRESSION, found {text!r}")
    return cmd
