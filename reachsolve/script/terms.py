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


class SymbolTerms:
    """Term building and evaluation, shared by the chain walk (a base of ScriptLayout).

    It reads the walk's tables: ``symbols`` (script definitions), ``_objsyms`` (the
    object's own global definitions), ``pos``, ``orphans``, ``discarded``,
    ``out_start``/``out_end`` (output sections) and keeps ``aux`` (auxiliary
    variables, numbered in creation order) and ``_terms`` (a cache by name).
    """

    def _err(self, node, msg: str) -> ScriptModelError:
        return ScriptModelError(self.path, getattr(node, "line", 0), getattr(node, "col", 0), msg)

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
            return t.scaled(k)
        if op == "<<" and not b.coeffs:
            return Lin(tuple((v, c << b.const) for v, c in a.coeffs), a.const << b.const)
        if op in (">>", "/", "%") and not b.coeffs:
            k = (1 << b.const) if op == ">>" else b.const
            if k <= 0:
                raise self._err(e, "division by zero")
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
                return self._aux(AuxOp.ALIGN_UP, dot if dot is not None else Lin.of(0), self._const(e.args[0], "ALIGN"))
            return self._aux(AuxOp.ALIGN_UP, self.term(e.args[0], dot), self._const(e.args[1], "ALIGN"))
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

