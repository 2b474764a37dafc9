"""Constraint building: layout models and site values as a small solver-neutral IR.

Variables are the unknowns of a layout: the image base, a section's base
address, an undefined symbol's address, a GOT slot's address. Expressions are
linear in them, plus AAELF64's Page() (``x & ~0xfff``). solver.py translates
this IR to z3; layout.py evaluates it with plain integers, so the checker
that re-validates a counterexample never depends on the solver.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Union

Var = tuple  # ("base",) | ("sec", index) | ("sym", index) | ("got", symbol, addend)
BASE: Var = ("base",)
PAGE = 4096


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

    @property
    def vars(self) -> tuple[Var, ...]:
        return tuple(v for v, _ in self.coeffs)

    def evaluate(self, env: Mapping[Var, int]) -> int:
        return self.const + sum(c * env[v] for v, c in self.coeffs)


@dataclass(frozen=True)
class PageDiff:
    """Page(a) - Page(b), the ADRP value (AAELF64: Page(expr) = expr & ~0xFFF)."""

    a: Lin
    b: Lin

    @property
    def vars(self) -> tuple[Var, ...]:
        return tuple(dict.fromkeys(self.a.vars + self.b.vars))

    def evaluate(self, env: Mapping[Var, int]) -> int:
        return (self.a.evaluate(env) & ~(PAGE - 1)) - (self.b.evaluate(env) & ~(PAGE - 1))

    def __add__(self, k: int) -> "PageDiff":
        return PageDiff(self.a + k, self.b)


Expr = Union[Lin, PageDiff]


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
    """Evaluate a constraint with plain integers (the checker's path, no solver)."""
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


# -- query results ------------------------------------------------------------
@dataclass(frozen=True)
class Proved:
    """No assignment satisfies the query (the solver answered UNSAT)."""


@dataclass(frozen=True)
class Witness:
    """An assignment that satisfies the query."""

    env: Mapping[Var, int]


@dataclass(frozen=True)
class Unknown:
    reason: str


Answer = Union[Proved, Witness, Unknown]


@dataclass(frozen=True)
class Bound:
    """An optimum ``value`` of an expression, proved by the solver, with a layout reaching it."""

    value: int
    witness: Witness
