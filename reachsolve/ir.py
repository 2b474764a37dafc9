"""Solver-neutral terms and constraints over a layout's unknowns, with their meaning.

Variables are the unknowns of a layout: the image base, a section's base
address, an undefined symbol's address, a GOT slot's address, a script
item's place, and auxiliary values of a script's masks, shifts and ALIGNs.
Expressions are linear in them, plus AAELF64's Page() (``x & ~0xfff``).
Every construct has one concrete evaluation here, so the re-check of a
counterexample (plain integers) and the solver backend (z3) read the same
definitions.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Mapping, Union

Var = tuple  # ("base",) | ("sec", i) | ("sym", i) | ("got", symbol, addend) | ("pt", k) | ("aux", k)
BASE: Var = ("base",)

#: AAELF64 Page(expr) = expr & ~0xFFF: the 4 KiB granule of ADRP (section 5.7.3).
PAGE = 4096
#: A bound no layout value reaches (addresses and differences lie within +-2^64).
INF = 1 << 70


def page(x):
    """Page(x) for ints and integer numpy columns (x - x mod 4096 equals x & ~0xfff)."""
    return x - x % PAGE


def page_delta_bounds(lo, hi):
    """Bounds of Page(a) - Page(b) when a - b lies in [lo, hi]: the page delta is a
    multiple of 4096 within 4095 of a - b. Works on ints and int64 columns."""
    return -((-(lo - (PAGE - 1))) // PAGE) * PAGE, ((hi + PAGE - 1) // PAGE) * PAGE


@dataclass(frozen=True)
class Lin:
    """sum(coef * var) + const, with integer coefficients."""

    coeffs: tuple[tuple[Var, int], ...] = ()
    const: int = 0

    @staticmethod
    def var(v: Var, coef: int = 1) -> "Lin":
        return Lin(((v, coef),), 0)

    @staticmethod
    def of(const: int) -> "Lin":
        return Lin((), const)

    def _combine(self, other: "Lin", sign: int) -> "Lin":
        acc: dict[Var, int] = dict(self.coeffs)
        for v, c in other.coeffs:
            acc[v] = acc.get(v, 0) + sign * c
        return Lin(tuple(sorted((v, c) for v, c in acc.items() if c)), self.const + sign * other.const)

    def __add__(self, other: "Lin | int") -> "Lin":
        if not isinstance(other, Lin):
            return Lin(self.coeffs, self.const + other)
        if not other.coeffs:
            return Lin(self.coeffs, self.const + other.const)
        return self._combine(other, 1)

    def __sub__(self, other: "Lin | int") -> "Lin":
        if not isinstance(other, Lin):
            return Lin(self.coeffs, self.const - other)
        if not other.coeffs:
            return Lin(self.coeffs, self.const - other.const)
        return self._combine(other, -1)

    def scaled(self, k: int) -> "Lin":
        return Lin(tuple((v, c * k) for v, c in self.coeffs), self.const * k)

    def dependent(self) -> "Lin":
        """The layout-dependent part: the same terms without the constant."""
        return Lin(self.coeffs, 0)

    @property
    def vars(self) -> tuple[Var, ...]:
        return tuple(v for v, _ in self.coeffs)

    def evaluate(self, env: Mapping[Var, int]) -> int:
        return self.const + sum(c * env[v] for v, c in self.coeffs)


@dataclass(frozen=True)
class PageDiff:
    """Page(a) - Page(b), the ADRP value (AAELF64 5.7.3)."""

    a: Lin
    b: Lin

    @property
    def vars(self) -> tuple[Var, ...]:
        return tuple(dict.fromkeys(self.a.vars + self.b.vars))

    def evaluate(self, env: Mapping[Var, int]) -> int:
        return page(self.a.evaluate(env)) - page(self.b.evaluate(env))

    def __add__(self, k: int) -> "PageDiff":
        return PageDiff(self.a + k, self.b)


Expr = Union[Lin, PageDiff]


def page_diff(a, b):
    """Page(a) - Page(b): an IR term for Lin operands, the number for ints or columns."""
    if isinstance(a, Lin):
        return PageDiff(a, b)
    return page(a) - page(b)


class AuxOp(enum.Enum):
    """Non-linear script operations, each kept as an auxiliary variable x = op(arg, k)."""

    MOD = "mod"          # arg mod k (a mask of the low bits)
    DIV = "div"          # floor(arg / k) (a right shift, a division)
    ALIGN_UP = "alignup"  # arg rounded up to a multiple of k (ALIGN)

    def apply(self, x: int, k: int) -> int:
        if self is AuxOp.MOD:
            return x % k
        if self is AuxOp.DIV:
            return x // k
        return -(-x // k) * k

    def defining(self, x: "Lin", arg: "Lin", k: int) -> list:
        """Linear constraints that pin ``x`` to op(arg, k) over the integers."""
        if self is AuxOp.MOD:
            return [Between(x, 0, k - 1), Multiple(arg - x, k)]
        if self is AuxOp.DIV:
            return [Between(arg - x.scaled(k), 0, k - 1)]
        return [Multiple(x, k), Between(x - arg, 0, k - 1)]


@dataclass(frozen=True)
class Aux:
    """The definition of one auxiliary variable: op(arg, k)."""

    op: AuxOp
    arg: Lin
    k: int


@dataclass(frozen=True)
class Between:
    expr: Expr
    lo: int
    hi: int


@dataclass(frozen=True)
class Outside:
    expr: Expr
    lo: int
    hi: int


@dataclass(frozen=True)
class Multiple:
    expr: Expr
    m: int


@dataclass(frozen=True)
class NotMultiple:
    expr: Expr
    m: int


@dataclass(frozen=True)
class Disjoint:
    """[a, a+sa) and [b, b+sb) do not overlap; a zero size is a point that may touch an end."""

    a: Var
    sa: int
    b: Var
    sb: int


@dataclass(frozen=True)
class AnyOf:
    parts: tuple


@dataclass(frozen=True)
class AllOf:
    parts: tuple


Constraint = Union[Between, Outside, Multiple, NotMultiple, Disjoint, AnyOf, AllOf]
TRUE = AllOf(())
FALSE = AnyOf(())


def holds(c: Constraint, env: Mapping[Var, int]) -> bool:
    """Evaluate a constraint with plain integers (the re-check's path, no solver)."""
    if isinstance(c, Between):
        return c.lo <= c.expr.evaluate(env) <= c.hi
    if isinstance(c, Outside):
        v = c.expr.evaluate(env)
        return v < c.lo or v > c.hi
    if isinstance(c, Multiple):
        return c.expr.evaluate(env) % c.m == 0
    if isinstance(c, NotMultiple):
        return c.expr.evaluate(env) % c.m != 0
    if isinstance(c, Disjoint):
        a, b = env[c.a], env[c.b]
        if c.sa == 0 or c.sb == 0:
            lo, size, p = (a, c.sa, b) if c.sb == 0 else (b, c.sb, a)
            return not lo < p < lo + size
        return a + c.sa <= b or b + c.sb <= a
    if isinstance(c, AnyOf):
        return any(holds(p, env) for p in c.parts)
    if isinstance(c, AllOf):
        return all(holds(p, env) for p in c.parts)
    raise TypeError(c)


def negate(c: Constraint) -> Constraint:
    """The constraint that holds exactly when ``c`` does not."""
    if isinstance(c, Between):
        return Outside(c.expr, c.lo, c.hi)
    if isinstance(c, Outside):
        return Between(c.expr, c.lo, c.hi)
    if isinstance(c, Multiple):
        return NotMultiple(c.expr, c.m)
    if isinstance(c, NotMultiple):
        return Multiple(c.expr, c.m)
    if isinstance(c, AnyOf):
        return AllOf(tuple(negate(p) for p in c.parts))
    if isinstance(c, AllOf):
        return AnyOf(tuple(negate(p) for p in c.parts))
    raise TypeError(c)


def constraint_vars(c: Constraint) -> list:
    """The variables a constraint mentions."""
    if isinstance(c, (AnyOf, AllOf)):
        return [v for p in c.parts for v in constraint_vars(p)]
    if isinstance(c, Disjoint):
        return [c.a, c.b]
    return list(c.expr.vars)


# -- query results: never a bare bool --------------------------------------------
@dataclass(frozen=True)
class Proved:
    """No assignment satisfies the query (the solver answered UNSAT)."""


@dataclass(frozen=True)
class Witness:
    """An assignment that satisfies the query."""

    env: Mapping


@dataclass(frozen=True)
class Unknown:
    """The query was not decided; ``reason`` says why."""

    reason: str


Answer = Union[Proved, Witness, Unknown]


@dataclass(frozen=True)
class Bound:
    """An optimum ``value`` of an expression, proved by the solver, with a layout reaching it."""

    value: int
    witness: Witness | None
