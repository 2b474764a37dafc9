"""Layouts that follow a linker script: "ordered" (any build) and "as-linked" (this build).

The script is walked once into a chain of items: our input sections, in the
order the script places them (first matching input description wins), and
points where the location counter is set or a symbol is defined. In the
ordered model every item keeps its place in the chain, but wherever an input
description could take more input (other objects, or this object's own code
grown in another configuration) the gap before an item is free; the image
bound and the script's ASSERTs are what cap it. The as-linked layout is the
chain packed with alignment padding only, as the linker lays this object out
when it is the first file of the link. Both take this object as the first file
(as vmlinux.o is in the kernel's final link): growth lies after each of its
sections and after each input description, never before its first section.

Symbols assigned by the script become linear terms over the chain (with
auxiliary variables for masks, shifts and ALIGN of a layout-dependent value),
so a relocation against `_kernel_size_le_lo32` is judged with its real value.
"""
from __future__ import annotations

import fnmatch
import itertools
import re
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from . import ldscript as L
from .constraints import (TRUE, AllOf, AnyOf, Between, Constraint, Lin, Multiple, Var, holds, negate)
from .elf import SHT_NOBITS, STB_LOCAL, SYM_ABS, SYM_COMMON, SYM_UNDEF, ObjectFile
from .errors import ModelError
from .layout import Frame, Slot
from .model import ADDRESS_SPACE

BIG = 1 << 70
MASK64 = (1 << 64) - 1
MAXPAGESIZE = 0x10000
COMMONPAGESIZE = 0x1000


class ScriptModelError(ModelError):
    def __init__(self, path: str, line: int, col: int, message: str):
        super().__init__(f"{path}:{line}:{col}: {message}")


@dataclass(slots=True)
class Item:
    var: Var
    size: int            # bytes this item puts after its start
    align: int           # its start is a multiple of this
    gap: bool            # may more input lie just before it (ordered model)?
    label: str
    out: str
    spec: str = ""       # the input description that placed it
    gap_from: tuple = ()  # the descriptions whose further input may lie just before it
    pre: int = 0         # `. += pre` before it
    pre_expr: object = None   # `. += expr` with a layout-dependent expr (as-linked only)
    fixed: object = None      # expression giving its exact address (`. = expr`, an output address)
    dot: Lin | None = None    # dot before the item, for `fixed` expressions that use `.`
    fixed_term: object = None  # `fixed` and `pre_expr` as terms (set by OrderedFrame)
    pre_term: object = None


@dataclass
class SymDef:
    expr: object
    dot: Lin | None
    provide: bool
    line: int
    col: int


@dataclass
class Aux:
    kind: str   # "mod" | "div" | "alignup"
    arg: Lin
    k: int


def _glob(pattern: str) -> re.Pattern:
    return re.compile(fnmatch.translate(pattern), re.DOTALL)


def _spec_text(spec: L.InputSpec) -> str:
    inner = " ".join(p.glob for p in spec.patterns)
    text = f"{spec.file}({inner})"
    return f"KEEP({text})" if spec.keep else text


class ScriptLayout:
    """One object laid out by one script."""

    def __init__(self, script: L.Script, obj: ObjectFile, path: str):
        self.script = script
        self.obj = obj
        self.path = path
        self.items: list[Item] = []
        self.pos: dict[Var, int] = {}
        self.symbols: dict[str, SymDef] = {}
        self.asserts: list[tuple[L.Assert, Lin | None]] = []
        self.out_start: dict[str, Lin] = {}
        self.out_end: dict[str, Lin] = {}
        self.aux: dict[Var, Aux] = {}
        self.discarded: set[int] = set()
        self.orphans: list[int] = []
        self._npoints = 0
        self._gap = False
        self._gap_from: list[str] = []
        self._dot: Lin | None = None
        self._objsyms = self._object_symbols()
        self._terms: dict[str, Lin] = {}
        self._busy: set[str] = set()
        self._assign_sections()
        self._walk()
        self._terms.clear()  # terms read during the walk may predate later definitions

    # -- errors and object symbols ------------------------------------------------
    def _err(self, node, msg: str) -> ScriptModelError:
        return ScriptModelError(self.path, getattr(node, "line", 0), getattr(node, "col", 0), msg)

    def _object_symbols(self) -> dict[str, tuple[int, int]]:
        """Global definitions of the object: name -> (section code, value)."""
        o = self.obj
        if len(o.symbols) < 2:
            return {}
        where = o.symbol_section
        keep = ((where != SYM_UNDEF) & (where != SYM_COMMON) & ((o.symbols["info"] >> 4) != STB_LOCAL))
        keep[0] = False
        idx = np.nonzero(keep)[0]
        names = o.symbol_names(idx)
        return {n: (w, v) for n, w, v in zip(names, where[idx].tolist(), o.symbols["value"][idx].tolist()) if n}

    # -- which description takes which input section ---------------------------------
    def _assign_sections(self) -> None:
        specs: list[tuple[str, L.InputSpec]] = []

        def collect(body, out):
            for st in body:
                if isinstance(st, L.InputSpec):
                    specs.append((out, st))

        for cmd in self.script.commands:
            if isinstance(cmd, L.Sections):
                for st in cmd.body:
                    if isinstance(st, L.OutputSection):
                        collect(st.body, st.name)
                    elif isinstance(st, L.Overlay):
                        raise self._err(st, "OVERLAY is not supported by the layout model")
        import os
        fname = os.path.basename(self.obj.name.split("(")[0])
        compiled = []
        for out, sp in specs:
            if not _glob(sp.file).match(fname) or any(_glob(x).match(fname) for x in sp.exclude_files):
                compiled.append(None)
                continue
            pats = [(_glob(p.glob), p) for p in sp.patterns if not any(_glob(x).match(fname) for x in p.exclude_files)]
            compiled.append(pats if sp.patterns else [(re.compile(".*", re.DOTALL), None)])
        self.spec_of: dict[int, int] = {}
        self.members: dict[int, list[int]] = {k: [] for k in range(len(specs))}
        # One alternation of every pattern, in script order: the regex engine tries the
        # alternatives left to right, so the first match is the first description that
        # takes the section (the linkers' rule), found in one pass per section name.
        alts, which = [], {}
        for k, pats in enumerate(compiled):
            for j, (rx, p) in enumerate(pats or ()):
                which[f"g{len(alts)}"] = (k, p)
                alts.append(f"(?P<g{len(alts)}>{rx.pattern})")
        first = re.compile("|".join(alts), re.DOTALL) if alts else None
        for sec in self.obj.sections:
            if not sec.alloc:
                continue
            m = first.match(sec.name) if first is not None else None
            if m is None:
                self.orphans.append(sec.index)
                continue
            k, hit = which[m.lastgroup]
            if specs[k][0] == "/DISCARD/":
                self.discarded.add(sec.index)
            else:
                self.spec_of[sec.index] = k
                self.members[k].append((sec.index, hit))
        for k, mem in self.members.items():
            sorts = {p.sort for _, p in mem if p is not None and p.sort}
            if sorts:
                if any("ALIGNMENT" in s for s in sorts):
                    mem.sort(key=lambda m: (-self.obj.sections[m[0]].align, m[0]))
                elif any(s.startswith(("SORT_BY_NAME", "SORT(", "SORT_BY_INIT")) or s == "SORT" for s in sorts):
                    mem.sort(key=lambda m: (self.obj.sections[m[0]].name, m[0]))
        self._specs = specs

    # -- the walk --------------------------------------------------------------------
    def _point(self, label: str, out: str, align: int = 1, **kw) -> Item:
        self._npoints += 1
        it = Item(("pt", self._npoints), 0, align, self._gap, label, out, **kw)
        self._push(it)
        return it

    def _push(self, it: Item) -> None:
        if it.dot is None:
            it.dot = self._dot
        if it.gap:
            it.gap_from = tuple(self._gap_from)
        self._gap_from = []
        self.pos[it.var] = len(self.items)
        self.items.append(it)
        self._dot = Lin(((it.var, 1),), it.size)  # what Lin.var(it.var) + it.size gives, built directly
        self._gap = False

    def _walk(self) -> None:
        self._spec_index = 0
        for cmd in self.script.commands:
            if isinstance(cmd, L.Sections):
                for st in cmd.body:
                    self._statement(st, None)
            elif isinstance(cmd, L.Assign):
                self._assign(cmd, None, top=True)
            elif isinstance(cmd, L.Assert):
                self.asserts.append((cmd, self._dot))
        if not self.items:
            raise ModelError(f"{self.path}: the script places none of the object's sections")
        self.first = self.items[0]
        self.last = self.items[-1]

    def _statement(self, st, out: str | None) -> None:
        if isinstance(st, L.OutputSection):
            self._output(st)
        elif isinstance(st, L.Assign):
            self._assign(st, out)
        elif isinstance(st, L.Assert):
            self.asserts.append((st, self._dot))
        elif isinstance(st, L.InputSpec):
            k = self._spec_index
            self._spec_index += 1
            if out == "/DISCARD/":
                return
            text = _spec_text(st)
            for idx, _ in self.members[k]:
                sec = self.obj.sections[idx]
                size = 0 if sec.type == SHT_NOBITS and sec.flags & 0x400 else sec.size
                self._push(Item(("sec", idx), size, sec.align, self._gap, sec.name, out or "", text))
                self._gap = True  # the section may grow in another configuration
                self._gap_from = [text]
            self._gap = True  # other objects' input matching it may follow ours
            if text not in self._gap_from:
                self._gap_from.append(text)
        elif isinstance(st, L.Data):
            size = {"BYTE": 1, "SHORT": 2, "LONG": 4, "QUAD": 8, "SQUAD": 8}.get(st.kind)
            if size is None:
                raise self._err(st, f"{st.kind} is not supported by the layout model")
            it = self._point(st.kind, out or "")
            it.size = size
            self._dot = Lin.var(it.var) + size
        elif isinstance(st, (L.Fill, L.Constructors)):
            return
        else:
            raise self._err(st, f"{type(st).__name__} is not supported inside SECTIONS by the layout model")

    def _has_alloc(self, body) -> bool:
        k = self._spec_index
        for st in body:
            if isinstance(st, L.InputSpec):
                if self.members.get(k):
                    return True
                k += 1
            elif isinstance(st, (L.Assign, L.Data)):
                return True
        return False

    def _output(self, st: L.OutputSection) -> None:
        name = st.name
        if name == "/DISCARD/":
            for s in st.body:
                if isinstance(s, L.InputSpec):
                    self._spec_index += 1
            return
        if st.address is not None and not self._has_alloc(st.body) or st.type in ("INFO", "COPY", "DSECT"):
            # Non-allocated output (.comment 0, debug info): no part of the image.
            for s in st.body:
                if isinstance(s, L.InputSpec):
                    self._spec_index += 1
            return
        align = 1
        k = self._spec_index
        for s in st.body:
            if isinstance(s, L.InputSpec):
                for idx, _ in self.members.get(k, ()):
                    align = max(align, self.obj.sections[idx].align)
                k += 1
        if st.align is not None:
            align = max(align, self._const(st.align, f"ALIGN of {name}"))
        if st.address is not None:
            start = self._point(f"start of {name}", name, align, fixed=st.address)
            start.gap = False
        else:
            start = self._point(f"start of {name}", name, align)
        self.out_start[name] = Lin.var(start.var)
        for s in st.body:
            self._statement(s, name)
        if self._gap:
            self._point(f"end of {name}", name, 1)
        self.out_end[name] = self._dot

    def _assign(self, st: L.Assign, out: str | None, top: bool = False) -> None:
        expr = st.expr
        if st.op != "=":
            op = st.op[:-1]
            expr = L.Binary(op, L.Sym(st.target) if st.target != "." else L.Dot(), st.expr)
        if st.target != ".":
            if st.provide and st.target in self._objsyms:
                return  # PROVIDE only defines what nothing else defines
            dot = None if top and self._dot is None else self._dot
            if self._gap and self._dot is not None and not top:
                self._point(f"{st.target} = .", out or "")
                dot = self._dot
            self.symbols[st.target] = SymDef(expr, dot, st.provide, st.line, st.col)
            return
        if top:
            raise self._err(st, "assignment to '.' outside SECTIONS")
        # ". = ALIGN(n)", ". = . + k", ". += k" or an absolute ". = expr".
        if isinstance(expr, L.Call) and expr.name == "ALIGN" and len(expr.args) == 1:
            n = self._const(expr.args[0], "ALIGN")
            self._point(f". = ALIGN({n:#x})", out or "", max(1, n))
            return
        if isinstance(expr, L.Binary) and expr.op in "+-" and isinstance(expr.left, L.Dot):
            try:
                k = self._const(expr.right, "increment")
                it = self._point(f". += {k:#x}", out or "", pre=k if expr.op == "+" else -k)
                if it.pre < 0:
                    raise self._err(st, "the location counter may not move backwards")
            except ModelError:  # depends on the layout, or on a symbol defined further on
                self._point(". += (layout-dependent)", out or "", pre_expr=expr.right)
            return
        self._point(". = (expression)", out or "", fixed=expr)
        self.items[-1].gap = False

    # -- constants --------------------------------------------------------------------
    def _const(self, e, what: str) -> int:
        t = self.term(e, None)
        if t.coeffs:
            raise self._err(e, f"{what} must not depend on the layout")
        return t.const & MASK64

    # -- symbolic values ------------------------------------------------------------------
    def symbol_term(self, name: str) -> Lin | None:
        """The value of a script- or object-defined symbol as a term; None if undefined."""
        if name in self._terms:
            return self._terms[name]
        d = self.symbols.get(name)
        if d is not None:
            if name in self._busy:
                raise ModelError(f"{self.path}:{d.line}:{d.col}: symbol {name} is defined in terms of itself")
            self._busy.add(name)
            try:
                t = self.term(d.expr, d.dot)
            finally:
                self._busy.discard(name)
        elif name in self._objsyms:
            where, value = self._objsyms[name]
            if where == SYM_ABS:
                t = Lin.of(value - (1 << 64) if value >> 63 else value)
            elif where in self.discarded or ("sec", where) not in self.pos and where not in self.orphans:
                return None
            else:
                t = Lin.var(("sec", where)) + value
        else:
            return None
        self._terms[name] = t
        return t

    def _aux(self, kind: str, arg: Lin, k: int) -> Lin:
        if not arg.coeffs:
            v = arg.const
            return Lin.of({"mod": v % k, "div": v // k, "alignup": -(-v // k) * k}[kind])
        var = ("aux", len(self.aux) + 1)
        self.aux[var] = Aux(kind, arg, k)
        return Lin.var(var)

    def term(self, e, dot: Lin | None) -> Lin:
        if isinstance(e, L.Num):
            return Lin.of(e.value)
        if isinstance(e, L.Dot):
            if dot is None:
                raise self._err(e, "'.' is not available here")
            return dot
        if isinstance(e, L.Sym):
            t = self.symbol_term(e.name)
            if t is None:
                raise ModelError(f"{self.path}: symbol {e.name} is used by the script but defined nowhere")
            return t
        if isinstance(e, L.Unary):
            a = self.term(e.arg, dot)
            if e.op == "-":
                return Lin.of(0) - a if a.coeffs else Lin.of((-a.const) & MASK64)
            if not a.coeffs:
                return Lin.of((~a.const) & MASK64 if e.op == "~" else int(not a.const))
            raise self._err(e, f"cannot model '{e.op}' of a layout-dependent value")
        if isinstance(e, L.Binary):
            return self._binary(e, dot)
        if isinstance(e, L.Cond):
            c = self.term(e.cond, dot)
            if c.coeffs:
                raise self._err(e, "a ?: condition must not depend on the layout")
            return self.term(e.then if c.const else e.other, dot)
        if isinstance(e, L.Call):
            return self._call(e, dot)
        raise self._err(e, f"{type(e).__name__} is not supported in expressions by the layout model")

    def _binary(self, e: L.Binary, dot) -> Lin:
        a, b = self.term(e.left, dot), self.term(e.right, dot)
        op = e.op
        if not a.coeffs and not b.coeffs:
            x, y = a.const, b.const
            try:
                v = {"+": lambda: x + y, "-": lambda: x - y, "*": lambda: x * y,
                     "/": lambda: (x & MASK64) // (y & MASK64), "%": lambda: (x & MASK64) % (y & MASK64),
                     "<<": lambda: x << y, ">>": lambda: (x & MASK64) >> y, "&": lambda: x & y,
                     "|": lambda: x | y, "^": lambda: x ^ y, "==": lambda: int(x == y), "!=": lambda: int(x != y),
                     "<": lambda: int(x < y), "<=": lambda: int(x <= y), ">": lambda: int(x > y),
                     ">=": lambda: int(x >= y), "&&": lambda: int(bool(x and y)),
                     "||": lambda: int(bool(x or y))}[op]()
            except ZeroDivisionError:
                raise self._err(e, "division by zero") from None
            except KeyError:
                raise self._err(e, f"operator {op} is not supported") from None
            return Lin.of(v & MASK64) if op in ("+", "-", "*", "<<") else Lin.of(v)
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*" and (not a.coeffs or not b.coeffs):
            k, t = (a.const, b) if not a.coeffs else (b.const, a)
            return Lin(tuple((v, c * k) for v, c in t.coeffs), t.const * k)
        if op == "<<" and not b.coeffs:
            return Lin(tuple((v, c << b.const) for v, c in a.coeffs), a.const << b.const)
        if op in (">>", "/", "%") and not b.coeffs:
            k = (1 << b.const) if op == ">>" else b.const
            if k <= 0:
                raise self._err(e, "division by zero")
            return self._aux("mod" if op == "%" else "div", a, k)
        if op == "&" and (not a.coeffs or not b.coeffs):
            m, t = (a.const, b) if not a.coeffs else (b.const, a)
            m &= MASK64
            if m & (m + 1) == 0:           # 2^k - 1: the low k bits
                return self._aux("mod", t, m + 1)
            low = (~m) & MASK64
            if low & (low + 1) == 0:       # ~(2^k - 1): round down to 2^k
                return t - self._aux("mod", t, low + 1)
        raise self._err(e, f"cannot model operator '{op}' on a layout-dependent value")

    def _call(self, e: L.Call, dot) -> Lin:
        n = e.name
        if n in ("ADDR", "SIZEOF", "LOADADDR"):
            sec = e.args[0].name
            if sec not in self.out_start:
                if n == "SIZEOF":
                    return Lin.of(0)
                raise self._err(e, f"{n}({sec}): no such output section in the image")
            if n == "SIZEOF":
                return self.out_end[sec] - self.out_start[sec]
            return self.out_start[sec]
        if n == "ALIGN":
            if len(e.args) == 1:
                return self._aux("alignup", dot if dot is not None else Lin.of(0), self._const(e.args[0], "ALIGN"))
            return self._aux("alignup", self.term(e.args[0], dot), self._const(e.args[1], "ALIGN"))
        if n == "ABSOLUTE":
            return self.term(e.args[0], dot)
        if n == "DEFINED":
            return Lin.of(int(self.symbol_term(e.args[0].name) is not None))
        if n == "CONSTANT":
            return Lin.of(MAXPAGESIZE if e.args[0].name == "MAXPAGESIZE" else COMMONPAGESIZE)
        if n in ("MAX", "MIN"):
            a, b = self.term(e.args[0], dot), self.term(e.args[1], dot)
            if a.coeffs or b.coeffs:
                raise self._err(e, f"{n} of layout-dependent values is not supported")
            return Lin.of(max(a.const, b.const) if n == "MAX" else min(a.const, b.const))
        raise self._err(e, f"{n}() is not supported by the layout model")

    def formula(self, e, dot) -> Constraint:
        """An ASSERT condition as a constraint over the layout."""
        if isinstance(e, L.Binary) and e.op in ("&&", "||"):
            parts = (self.formula(e.left, dot), self.formula(e.right, dot))
            return AllOf(parts) if e.op == "&&" else AnyOf(parts)
        if isinstance(e, L.Unary) and e.op == "!":
            return negate(self.formula(e.arg, dot))
        if isinstance(e, L.Binary) and e.op in ("==", "!=", "<", "<=", ">", ">="):
            d = self.term(e.left, dot) - self.term(e.right, dot)
            c = {"==": Between(d, 0, 0), "<=": Between(d, -BIG, 0), "<": Between(d, -BIG, -1),
                 ">=": Between(d, 0, BIG), ">": Between(d, 1, BIG)}.get(e.op)
            return c if c is not None else negate(Between(d, 0, 0))
        t = self.term(e, dot)
        if not t.coeffs:
            return TRUE if t.const else AnyOf(())
        return negate(Between(t, 0, 0))

    # -- concrete evaluation (the checker's path) ------------------------------------------
    def value(self, t: Lin, env: Mapping[Var, int]) -> int:
        """Evaluate a term in a full layout, auxiliary operations included."""
        total = t.const
        for v, c in t.coeffs:
            total += c * self._var_value(v, env)
        return total

    def _var_value(self, v: Var, env) -> int:
        if v in env:
            return env[v]
        a = self.aux.get(v)
        if a is None:
            raise KeyError(v)
        x = self.value(a.arg, env)
        return {"mod": x % a.k, "div": x // a.k, "alignup": -(-x // a.k) * a.k}[a.kind]



class OrderedFrame(Frame):
    """The layout variables of a script-ordered image (see the module docstring)."""

    def __init__(self, model, layout: ScriptLayout, sections: Mapping[int, Slot]):
        super().__init__(model, {i: s for i, s in sections.items()
                                 if ("sec", i) in layout.pos or i in layout.orphans})
        self.L = layout
        items = layout.items
        # prefix[k]: least distance from the start of item 0 to the start of item k;
        # padded[k]: the same with every alignment's worst padding; free[k]: how many
        # items up to k may be preceded by a gap of any size.
        self.prefix = _running(items, lambda it: it.pre, lambda it: it.size)
        self.padded = _running(items, lambda it: it.pre + it.align - 1, lambda it: it.size)
        self.free = _running(items, lambda it: int(it.gap or it.pre_expr is not None or it.fixed is not None),
                             lambda it: 0)
        # eff_align[k]: what every layout's address of item k is a multiple of. Beyond
        # the item's own alignment, an item that nothing may precede directly (no gap,
        # no fixed address, no layout-dependent `. +=`) starts at the rounded-up end of
        # its predecessor, so it inherits the alignment that end has, e.g. a 1-aligned
        # section right after `. = ALIGN(8)` is 8-aligned in every layout.
        self.eff_align = []
        for k, it in enumerate(items):
            a = it.align
            if k and not it.gap and it.fixed is None and it.pre_expr is None:
                step = items[k - 1].size + it.pre
                prev = self.eff_align[k - 1]
                a = max(a, min(prev, step & -step) if step else prev)
            self.eff_align.append(a)
        self.first = items[0].var
        self.last = items[-1]
        for it in items:
            it.fixed_term = layout.term(it.fixed, it.dot) if it.fixed is not None else None
            it.pre_term = layout.term(it.pre_expr, it.dot) if it.pre_expr is not None else None
        self.assert_cons = [(a, layout.formula(a.expr, dot)) for a, dot in layout.asserts]
        # Variables every query carries: the image ends, fixed points and ASSERT operands.
        self._always = {self.first, self.last.var} | {it.var for it in items if it.fixed_term is not None}
        for _, c in self.assert_cons:
            self._always |= set(_cons_vars(c))
        ft = items[0].fixed_term
        self.start_const = ft.const if ft is not None and not ft.coeffs else None
        self.base_fixed = self.start_const is not None
        self.base = Lin.of(self.start_const) if self.base_fixed else Lin.var(self.first)
        self._sym_terms: dict[Var, Lin] = {}
        self.as_linked = self._walk({})
        if self.as_linked is None:
            raise ModelError(f"{layout.path}: the script's layout does not settle (symbols keep moving)")

    # -- symbols of the object that the script defines ---------------------------------
    def bind_symbol(self, var: Var, name: str) -> bool:
        """Give an undefined symbol of the object its script value; False if the script has none."""
        t = self.L.symbol_term(name)
        if t is None:
            return False
        self._sym_terms[var] = t
        return True

    def subst(self, e):
        from .constraints import PageDiff
        if isinstance(e, PageDiff):
            return PageDiff(self._subst_lin(e.a), self._subst_lin(e.b))
        return self._subst_lin(e)

    def _subst_lin(self, e: Lin) -> Lin:
        if not any(v in self._sym_terms for v, _ in e.coeffs):
            return e
        out = Lin.of(e.const)
        for v, c in e.coeffs:
            t = self._sym_terms.get(v, Lin.var(v))
            out = out + Lin(tuple((w, k * c) for w, k in t.coeffs), t.const * c)
        return out

    # -- distances -----------------------------------------------------------------------
    def mind(self, a: Var, b: Var) -> int:
        return self.prefix[self.L.pos[b]] - self.prefix[self.L.pos[a]]

    def mind_padded(self, a: Var, b: Var) -> int:
        return self.padded[self.L.pos[b]] - self.padded[self.L.pos[a]]

    def _end_room(self, v: Var) -> int:
        """Least bytes from the start of ``v`` to the end of the image."""
        return self.prefix[len(self.L.items)] - self.prefix[self.L.pos[v]]

    def _closure(self, vars) -> set:
        out, todo = set(), list(vars)
        while todo:
            v = todo.pop()
            if v in out:
                continue
            out.add(v)
            a = self.L.aux.get(v)
            if a is not None:
                todo.extend(a.arg.vars)
            it = self.L.items[self.L.pos[v]] if v in self.L.pos else None
            if it is not None and it.fixed_term is not None:
                todo.extend(it.fixed_term.vars)
        return out

    def domain(self, vars, strict: bool = False) -> list[Constraint]:
        """The model restricted to ``vars``. Distances between chain items are at least
        the bytes between them (a relaxation, so UNSAT is a proof); ``strict`` adds every
        alignment's worst padding, which is not a proof but makes witnesses completable."""
        top = self.model.image_max
        mind = self.mind_padded if strict else self.mind
        vs = self._closure(set(vars) | self._always)
        chain = sorted((v for v in vs if v in self.L.pos), key=self.L.pos.__getitem__)
        cons: list[Constraint] = []
        first = Lin.var(self.first)
        pos = self.L.pos
        for a, b in zip(chain, chain[1:]):
            # With no gap between them, b is at most every padding away from a.
            closed = self.free[pos[b]] == self.free[pos[a]]
            cons.append(Between(Lin.var(b) - Lin.var(a), mind(a, b), self.mind_padded(a, b) if closed else BIG))
        for v in chain:
            it = self.L.items[self.L.pos[v]]
            if self.eff_align[pos[v]] > 1:
                cons.append(Multiple(Lin.var(v), self.eff_align[pos[v]]))
            if it.fixed_term is not None:
                cons.append(Between(Lin.var(v) - it.fixed_term, 0, 0))
            cons.append(Between(Lin.var(v) - first, self.mind(self.first, v), top - self._end_room(v)))
            if self.start_const is not None:
                # Growth only ever adds bytes: from a fixed start, nothing lies lower than as linked.
                cons.append(Between(Lin.var(v), self.as_linked[v], BIG))
        cons.append(Between(first, 0, ADDRESS_SPACE - top))
        for v in vs:
            if v in self.L.pos or v in self.L.aux:
                continue
            s = self.slots[v]
            cons.append(Between(Lin.var(v) - first, 0, top - s.size))
            if s.align > 1:
                cons.append(Multiple(Lin.var(v), s.align))
        for v in vs:
            a = self.L.aux.get(v)
            if a is None:
                continue
            x = Lin.var(v)
            if a.kind == "mod":
                cons += [Between(x, 0, a.k - 1), Multiple(a.arg - x, a.k)]
            elif a.kind == "div":
                cons.append(Between(a.arg - Lin(((v, a.k),), 0), 0, a.k - 1))
            else:
                cons += [Multiple(x, a.k), Between(x - a.arg, 0, a.k - 1)]
        cons += [c for _, c in self.assert_cons]
        return cons

    def _interval(self, v: Var) -> tuple[int, int] | None:
        top = self.model.image_max
        if self.start_const is None:
            return None
        f = self.start_const
        if v in self.L.pos:
            return self.as_linked[v], f + top - self._end_room(v)
        if v in self.slots:
            return f, f + top - self.slots[v].size
        return None

    def span(self, d: Lin) -> tuple[int, int]:
        top = self.model.image_max
        cs = dict(d.coeffs)
        if len(cs) == 2 and sorted(cs.values()) == [-1, 1] and all(v in self.L.pos for v in cs):
            t = next(v for v, c in cs.items() if c == 1)
            p = next(v for v, c in cs.items() if c == -1)
            a, b = sorted((t, p), key=self.L.pos.__getitem__)
            lo = self.mind(a, b)
            hi = top - self.mind(self.first, a) - self._end_room(b)
            return (d.const + lo, d.const + hi) if t == b else (d.const - hi, d.const - lo)
        lo = hi = d.const
        for v, c in d.coeffs:
            iv = self._interval(v)
            if iv is None:
                return -BIG, BIG
            lo += min(c * iv[0], c * iv[1])
            hi += max(c * iv[0], c * iv[1])
        return lo, hi

    def _chain_arrays(self, n: int):
        """(in chain, position, item alignment) per section index; prefix sums as int64."""
        cache = self.__dict__.setdefault("_chain", {})
        if n not in cache:
            inchain = np.zeros(n, dtype=bool)
            pos = np.zeros(n, dtype=np.int64)
            align = np.ones(n, dtype=np.int64)
            for v, k in self.L.pos.items():
                it = self.L.items[k]
                if v[0] == "sec" and 0 <= v[1] < n and self.eff_align[k] < self.LIMIT:
                    inchain[v[1]], pos[v[1]], align[v[1]] = True, k, self.eff_align[k]
            prefix = np.array(self.prefix, dtype=object)
            if max(self.prefix) >= self.LIMIT or min(self.prefix) < 0:
                inchain[:] = False
                prefix = np.zeros(len(self.prefix), dtype=np.int64)
            cache[n] = inchain, pos, align, prefix.astype(np.int64)
        return cache[n]

    def column_align(self, kind, idx, n):
        ok, align = super().column_align(kind, idx, n)
        inchain, _, al, _ = self._chain_arrays(n[0])
        rows = (kind == 1) & inchain[np.clip(idx, 0, n[0] - 1)]
        align[rows] = al[idx[rows]]
        return ok | rows, align

    def pair_spans(self, kind, target, place, n):
        """As :meth:`span` for two chain sections: the script's order fixes which comes first."""
        top = self.model.image_max
        inchain, pos, _, prefix = self._chain_arrays(n[0])
        t = np.clip(target, 0, n[0] - 1)
        p = np.clip(place, 0, n[0] - 1)
        ok = (kind == 1) & inchain[t] & inchain[p] & (pos[t] != pos[p]) & (top < self.LIMIT)
        a, b = np.minimum(pos[t], pos[p]), np.maximum(pos[t], pos[p])
        lo = prefix[b] - prefix[a]
        hi = top - (prefix[a] - prefix[0]) - (prefix[len(self.L.items)] - prefix[b])
        after = pos[t] > pos[p]
        return ok, np.where(after, lo, -hi), np.where(after, hi, -lo)

    def always_multiple(self, d: Lin, g: int) -> bool:
        def align(v):
            if v in self.L.pos:
                return self.eff_align[self.L.pos[v]]
            if v in self.slots:
                return self.slots[v].align
            a = self.L.aux.get(v)
            return a.k if a is not None and a.kind == "alignup" else 1
        return all((c * align(v)) % g == 0 for v, c in d.coeffs)

    # -- concrete layouts ------------------------------------------------------------------
    def _walk(self, extra: Mapping[int, int]) -> dict | None:
        """Positions of every item with ``extra`` bytes of gap before some; None if unsettled."""
        rows = self.__dict__.get("_rows")
        if rows is None:
            rows = self._rows = [(it.var, it.pre, it.align, it.size, it.fixed_term, it.pre_term)
                                 for it in self.L.items]
        value = self.L.value
        prev: dict = {}
        for _ in range(12):
            env: dict = {}
            look = _Layered(env, prev)
            end = 0
            for k, (var, pre, align, size, fixed_term, pre_term) in enumerate(rows):
                if fixed_term is not None:
                    try:
                        start = value(fixed_term, look)
                    except KeyError:
                        start = end
                else:
                    base = end + pre
                    if extra:
                        base += extra.get(k, 0)
                    if pre_term is not None:
                        try:
                            base += max(0, value(pre_term, look))
                        except KeyError:
                            pass
                    start = -(-base // align) * align if align > 1 else base
                env[var] = start
                end = start + size
            if env == prev:
                return env
            prev = env
        return None

    def complete(self, partial: Mapping[Var, int], focus=None) -> dict | None:
        """Walk the chain, inserting growth so that the ``focus`` items (default: all given)
        land where ``partial`` puts them; other items just follow. None if that is impossible."""
        pos = self.L.pos
        targets = sorted((pos[v], x) for v, x in partial.items() if v in pos and (focus is None or v in focus))
        extra: dict[int, int] = {}
        env = None
        for _ in range(4 * len(targets) + 8):
            env = self._walk(extra)
            if env is None:
                return None
            wrong = next(((k, x) for k, x in targets if env[self.L.items[k].var] != x), None)
            if wrong is None:
                break
            k, x = wrong
            have = env[self.L.items[k].var]
            if have > x:
                return None
            j = next((j for j in range(k, -1, -1) if self.L.items[j].gap and self.L.items[j].fixed is None), None)
            if j is None:
                return None
            extra[j] = extra.get(j, 0) + (x - have)
        else:
            return None
        env = dict(env)
        end = env[self.last.var] + self.last.size
        for v, s in sorted(self.slots.items()):
            if v in env:
                continue
            if v in self._sym_terms:
                env[v] = self.L.value(self._sym_terms[v], env)
            elif v in partial:
                env[v] = partial[v]
            else:
                at = -(-end // s.align) * s.align
                env[v] = at
                end = at + s.size
        for v, t in self._sym_terms.items():
            env[v] = self.L.value(t, env)
        return env

    def problems(self, env: Mapping[Var, int]) -> list[str]:
        out = []
        items = self.L.items
        look = _Layered(env, {})
        end = None
        for k, it in enumerate(items):
            x = env.get(it.var)
            if x is None:
                out.append(f"{it.label} has no address")
                continue
            if x % it.align:
                out.append(f"{it.label} at {x:#x} is not aligned to {it.align}")
            if it.fixed_term is not None:
                want = self.L.value(it.fixed_term, look)
                if x != want:
                    out.append(f"{it.label} at {x:#x}, but the script puts it at {want:#x}")
            elif end is not None:
                least = end + it.pre + (max(0, self.L.value(it.pre_term, look)) if it.pre_term is not None else 0)
                if x < least:
                    out.append(f"{it.label} at {x:#x} overlaps what precedes it (ends at {least:#x})")
                elif not it.gap and x != -(-least // it.align) * it.align:
                    out.append(f"{it.label} at {x:#x}: nothing may lie before it, yet it is not at {least:#x}")
            end = x + it.size
        if not out:
            f = env[self.first]
            if end - f > self.model.image_max:
                out.append(f"the image spans {end - f:#x} bytes, more than {self.model.image_max:#x}")
            for a, c in self.assert_cons:
                full = dict(env)
                for v in self.L.aux:
                    full[v] = self.L._var_value(v, look)
                if not holds(c, full):
                    out.append(f"ASSERT fails: {a.message}")
        return out

    def failing_assert_vars(self, env: Mapping[Var, int]) -> set:
        """The chain variables of every ASSERT that ``env`` breaks."""
        full = dict(env)
        look = _Layered(env, {})
        for v in self.L.aux:
            full[v] = self.L._var_value(v, look)
        out: set = set()
        for _, c in self.assert_cons:
            if not holds(c, full):
                out |= self._closure(set(_cons_vars(c)))
        return {v for v in out if v in self.L.pos}

    def explain_between(self, a: Var, b: Var, limit: int = 6) -> tuple[list[str], int]:
        """The input descriptions whose content may lie between items ``a`` and ``b``."""
        i, j = sorted((self.L.pos[a], self.L.pos[b]))
        seen: list[str] = []
        for it in self.L.items[i + 1:j + 1]:
            if it.gap:
                seen += [x for x in it.gap_from if x not in seen]
        return seen[:limit], max(0, len(seen) - limit)


def _running(items, before, after) -> list[int]:
    """out[k] = sum over items j < k of before(j) + after(j), plus before(k)."""
    b = [before(it) for it in items]
    a = [after(it) for it in items]
    out = list(itertools.accumulate(itertools.chain.from_iterable(zip(b, a)), initial=0))
    # out[2k + 1] is the sum through before(k); the last entry is the total.
    return out[1::2] + [out[-1]]


class _Layered(dict):
    """A mapping that falls back to an older layout (for forward references)."""

    def __init__(self, env, older):
        super().__init__()
        self.env, self.older = env, older

    def __contains__(self, k):
        return k in self.env or k in self.older

    def __getitem__(self, k):
        if k in self.env:
            return self.env[k]
        return self.older[k]


def _cons_vars(c) -> list:
    if isinstance(c, (AnyOf, AllOf)):
        return [v for p in c.parts for v in _cons_vars(p)]
    e = getattr(c, "expr", None)
    return list(e.vars) if e is not None else []
