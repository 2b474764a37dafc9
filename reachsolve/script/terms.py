"""Script expressions as terms over the layout: symbol values, ASSERT conditions.

A script symbol such as ``_kernel_size_le_lo32 = (_end - _text) & 0xffffffff``
becomes a linear term over the chain's variables; masks, shifts, divisions
and ALIGN of a layout-dependent value become auxiliary variables (ir.Aux) whose
meaning the IR defines once. Constant sub-expressions are folded here.
"""
from __future__ import annotations

from typing import Mapping

from ..errors import ModelError
from ..ir import INF, TRUE, AllOf, AnyOf, Aux, AuxOp, Between, Constraint, Lin, Var, negate
from ..objfile.elf import SYM_ABS
from . import ast as L
from .match import ScriptModelError

BIG = INF
MASK64 = (1 << 64) - 1
MAXPAGESIZE = 0x10000
COMMONPAGESIZE = 0x1000


_LIMIT = 1 << 65  # layout-dependent terms: coefficients and offsets stay within this


def _signed_int(x: int) -> int:
    """A 64-bit value as the signed number it is when added to an address (two's complement)."""
    x &= MASK64
    return x - (1 << 64) if x >> 63 else x


def _signed(t: Lin) -> Lin:
    return Lin.of(_signed_int(t.const))


_FOLD = {"+": lambda x, y: x + y, "-": lambda x, y: x - y, "*": lambda x, y: x * y,
         "<<": lambda x, y: x << (y & 63), ">>": lambda x, y: x >> (y & 63),
         "&": lambda x, y: x & y, "|": lambda x, y: x | y,
         "==": lambda x, y: int(x == y), "!=": lambda x, y: int(x != y), "<": lambda x, y: int(x < y),
         "<=": lambda x, y: int(x <= y), ">": lambda x, y: int(x > y), ">=": lambda x, y: int(x >= y),
         "&&": lambda x, y: int(bool(x and y)), "||": lambda x, y: int(bool(x or y))}


class SymbolTerms:
    """Term building and evaluation, shared by the chain walk (a base of ScriptLayout).

    It reads the walk's tables: ``symbols`` (script definitions), ``_objsyms`` (the
    object's own global definitions), ``pos``, ``orphans``, ``discarded``,
    ``out_start``/``out_end`` (output sections) and keeps ``aux`` (auxiliary
    variables, numbered in creation order) and ``_terms`` (a cache by name).
    """

    def _err(self, node, msg: str) -> ScriptModelError:
        """An error at ``node``, or at the statement being read (expression nodes carry no place)."""
        path = getattr(self, "_src", None) or self.path
        if hasattr(node, "line"):
            return ScriptModelError(path, node.line, node.col, msg)
        return ScriptModelError(path, *self._at, msg)

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
                raise ModelError(f"{d.origin or self.path}:{d.line}:{d.col}: symbol {name} is defined in terms of itself")
            self._busy.add(name)
            at, self._at = self._at, (d.line, d.col)
            src, self._src = getattr(self, "_src", None), d.origin
            try:
                t = self.term(d.expr, d.dot)
            finally:
                self._busy.discard(name)
                self._at = at
                self._src = src
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

    def _align_up(self, arg: Lin, k: int) -> Lin:
        if not arg.coeffs:
            return Lin.of(AuxOp.ALIGN_UP.apply(arg.const & MASK64, k) & MASK64)  # wraps, as both linkers do
        return self._aux(AuxOp.ALIGN_UP, arg, k)

    def _aux(self, op: AuxOp, arg: Lin, k: int) -> Lin:
        if not arg.coeffs:
            return Lin.of(op.apply(arg.const, k))
        var = ("aux", len(self.aux) + 1)
        self.aux[var] = Aux(op, arg, k)
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
                src = getattr(self, "_src", None)
                if src:
                    raise ModelError(f"{src}: symbol {e.name} is used but defined nowhere (neither the script nor "
                                     f"the object defines it)")
                raise ModelError(f"{self.path}: symbol {e.name} is used by the script but defined nowhere")
            return t
        if isinstance(e, L.Unary):
            a = self.term(e.arg, dot)
            if e.op == "-":
                return Lin.of(0) - a if a.coeffs else Lin.of((-a.const) & MASK64)
            if not a.coeffs:
                x = a.const & MASK64
                return Lin.of((~x) & MASK64 if e.op == "~" else int(not x))
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
            return Lin.of(self._fold(e, op, a.const & MASK64, b.const & MASK64))
        if op == "+":
            return self._bounded(e, a + _signed(b) if not b.coeffs else (_signed(a) + b if not a.coeffs else a + b))
        if op == "-":
            return self._bounded(e, a - _signed(b) if not b.coeffs else (_signed(a) - b if not a.coeffs else a - b))
        if op == "*" and (not a.coeffs or not b.coeffs):
            k, t = (a.const, b) if not a.coeffs else (b.const, a)
            return self._bounded(e, t.scaled(_signed_int(k)))
        if op == "<<" and not b.coeffs:
            return self._bounded(e, a.scaled(1 << (b.const & 63)))
        if op in (">>", "/", "%") and not b.coeffs:
            k = (1 << (b.const & 63)) if op == ">>" else b.const & MASK64
            if k == 0:
                raise self._err(e, "division by zero" if op == "/" else "modulo by zero")
            return self._aux(AuxOp.MOD if op == "%" else AuxOp.DIV, a, k)
        if op == "&" and (not a.coeffs or not b.coeffs):
            m, t = (a.const, b) if not a.coeffs else (b.const, a)
            m &= MASK64
            if m & (m + 1) == 0:           # 2^k - 1: the low k bits
                return self._aux(AuxOp.MOD, t, m + 1)
            low = (~m) & MASK64
            if low & (low + 1) == 0:       # ~(2^k - 1): round down to 2^k
                return t - self._aux(AuxOp.MOD, t, low + 1)
        raise self._err(e, f"cannot model operator '{op}' on a layout-dependent value")

    def _fold(self, e, op: str, x: int, y: int) -> int:
        """``x op y`` for two constants, as the linkers compute it: 64-bit unsigned values
        that wrap, shift counts taken mod 64, unsigned comparisons. ld.lld divides unsigned
        and GNU ld signed; where the two differ the script means different things to them,
        which is an error here."""
        if op in ("/", "%"):
            if y == 0:
                raise self._err(e, "division by zero" if op == "/" else "modulo by zero")
            u = x // y if op == "/" else x % y
            sx, sy = _signed_int(x), _signed_int(y)
            q = abs(sx) // abs(sy) * (1 if (sx < 0) == (sy < 0) else -1)  # C: truncate toward zero
            sv = (q if op == "/" else sx - q * sy) & MASK64
            if sv != u:
                raise self._err(e, f"ld.lld and GNU ld disagree on {x:#x} {op} {y:#x}: ld.lld divides unsigned "
                                   f"({u:#x}), GNU ld signed ({sv:#x})")
            return u
        fold = _FOLD.get(op)
        if op == "^":  # newer ld.lld has it; the linkers whose rules apply here do not
            raise self._err(e, "operator ^ is not accepted by ld.lld 14 or GNU ld 2.40")
        if fold is None:
            raise self._err(e, f"operator {op} is not supported")
        return fold(x, y) & MASK64

    def _bounded(self, e, t: Lin) -> Lin:
        """A layout-dependent term whose numbers stay within 64 bits (a bound on the work
        any script can cause, and what a 64-bit linker can mean)."""
        if abs(t.const) > _LIMIT or any(abs(c) > _LIMIT for _, c in t.coeffs):
            raise self._err(e, "the value overflows 64 bits; the layout model cannot follow it")
        return t

    def _alignment(self, e, what: str) -> int:
        """An ALIGN argument: a constant power of two, 0 meaning 1 (ld.lld refuses any other)."""
        n = self._const(e, what)
        if n & (n - 1):
            raise self._err(e, f"{what}: alignment must be a power of 2, not {n:#x}")
        return max(1, n)

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
                return self._align_up(dot if dot is not None else Lin.of(0), self._alignment(e.args[0], "ALIGN"))
            return self._align_up(self.term(e.args[0], dot), self._alignment(e.args[1], "ALIGN"))
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
            x, y = a.const & MASK64, b.const & MASK64
            return Lin.of(max(x, y) if n == "MAX" else min(x, y))
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
            total += c * self.var_value(v, env)
        return total

    def var_value(self, v: Var, env) -> int:
        """A variable's value in ``env``; an auxiliary one is computed from its definition."""
        if v in env:
            return env[v]
        a = self.aux.get(v)
        if a is None:
            raise KeyError(v)
        return a.op.apply(self.value(a.arg, env), a.k)

