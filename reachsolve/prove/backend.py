"""The only module that speaks z3: it turns constraint IR into queries and answers.

Every answer is a :class:`Proved` (UNSAT), a :class:`Witness` (a model) or an
:class:`Unknown` with z3's reason; never a bare bool. All arithmetic is over
unbounded integers (linear integer arithmetic), so nothing wraps silently.

z3 is imported, and a context made, when the first query is asked: most
objects are decided without one.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

from ..ir import (INF, PAGE, AllOf, AnyOf, Between, Bound, Constraint, Disjoint, Expr, Lin, Multiple, NotMultiple,
                  Outside, PageDiff, Proved, Unknown, Var, Witness)


@lru_cache(maxsize=1)
def _z3():
    import z3
    return z3


def _checked_context():
    """A z3 Context, or MemoryError when z3 cannot allocate one.

    z3py hands the NULL that Z3_mk_context_rc returns on failure straight to
    Z3_set_error_handler, which segfaults; under a memory limit that is a real
    case, so the result is checked first."""
    z3 = _z3()
    ctx = z3.Context.__new__(z3.Context)
    ctx.owner, ctx.ctx, ctx.eh = False, None, None
    conf = z3.Z3_mk_config()
    try:
        raw = z3.Z3_mk_context_rc(conf)
    finally:
        z3.Z3_del_config(conf)
    if not raw or raw.value is None:
        raise MemoryError("z3 could not allocate a context")
    ctx.ctx, ctx.owner = raw, True
    ctx.eh = z3.Z3_set_error_handler(raw, z3.z3_error_handler)
    z3.Z3_set_ast_print_mode(raw, z3.Z3_PRINT_SMTLIB2_COMPLIANT)
    return ctx


# Every object is decided in a z3 context of its own, so that no answer depends on
# which objects were decided before it in the same process (--jobs determinism).
_session = None


def new_session() -> None:
    """Start a fresh context for the next object (made on its first query); the old
    one is freed first, so two never coexist."""
    global _session
    _session = None


def _context():
    global _session
    if _session is None:
        _session = _checked_context()
    return _session


def prepare_for_memory_limit() -> None:
    """Allocate now what z3 would otherwise allocate unchecked later: z3py's main context
    (made lazily by SolverFor's symbol conversion) and the timer thread a query with a
    timeout starts (under RLIMIT_DATA a failed thread start aborts the process)."""
    z3 = _z3()
    z3.main_ctx()
    s = z3.SolverFor("QF_LIA", ctx=z3.main_ctx())
    s.set(timeout=1000)
    s.add(z3.Int("warm!up") > 0)
    s.check()


def is_out_of_memory(exc: BaseException) -> bool:
    """Did a z3 call fail for memory? (z3 raises Z3Exception(b'out of memory'), not MemoryError.)"""
    if isinstance(exc, MemoryError):
        return True
    z3 = _z3()
    if isinstance(exc, z3.Z3Exception):
        v = exc.value
        return b"out of memory" in (v if isinstance(v, bytes) else str(v).encode())
    return False


def estimated_alloc() -> int:
    """Bytes z3 has allocated, all contexts together."""
    return int(_z3().Z3_get_estimated_alloc_size())


def var_name(v: Var) -> str:
    return "/".join(str(p) for p in v)


class _Builder:
    """Translates IR to z3 terms; Page() gets a fresh quotient variable each time."""

    def __init__(self, ctx=None) -> None:
        self.ctx = ctx or _context()
        self.vars: dict = {}
        self.side: list = []
        self._pages = 0

    def var(self, v: Var):
        z3 = _z3()
        x = self.vars.get(v)
        if x is None:
            x = self.vars[v] = z3.Int(var_name(v), self.ctx)
        return x

    def lin(self, e: Lin):
        t = _z3().IntVal(e.const, self.ctx)
        for v, c in e.coeffs:
            t = t + (self.var(v) if c == 1 else c * self.var(v))
        return t

    def page(self, e: Lin):
        self._pages += 1
        q = _z3().Int(f"page!{self._pages}", self.ctx)
        x = self.lin(e)
        self.side += [PAGE * q <= x, x < PAGE * q + PAGE]
        return PAGE * q

    def expr(self, e: Expr):
        if isinstance(e, Lin):
            return self.lin(e)
        if isinstance(e, PageDiff):
            return self.page(e.a) - self.page(e.b)
        raise TypeError(e)

    def cons(self, c: Constraint):
        z3 = _z3()
        if isinstance(c, Between):
            x = self.expr(c.expr)
            return z3.And(x >= c.lo, x <= c.hi)
        if isinstance(c, Outside):
            x = self.expr(c.expr)
            return z3.Or(x < c.lo, x > c.hi)
        if isinstance(c, Multiple):
            return self.expr(c.expr) % c.m == 0
        if isinstance(c, NotMultiple):
            return self.expr(c.expr) % c.m != 0
        if isinstance(c, Disjoint):
            a, b = self.var(c.a), self.var(c.b)
            if c.sa == 0 or c.sb == 0:
                (lo, size, p) = (a, c.sa, b) if c.sb == 0 else (b, c.sb, a)
                return z3.Or(p <= lo, p >= lo + size)
            return z3.Or(a + c.sa <= b, b + c.sb <= a)
        if isinstance(c, AnyOf):
            return z3.Or(*[self.cons(p) for p in c.parts]) if c.parts else z3.BoolVal(False, self.ctx)
        if isinstance(c, AllOf):
            return z3.And(*[self.cons(p) for p in c.parts]) if c.parts else z3.BoolVal(True, self.ctx)
        raise TypeError(c)


def _witness(model, vars: dict) -> Witness:
    return Witness({v: model.eval(x, model_completion=True).as_long() for v, x in vars.items()})


@dataclass(frozen=True)
class Budget:
    """Per-query limits: wall-clock ``timeout_ms`` and z3's deterministic ``rlimit``
    (resource units; 0 means none). Either one running out gives Unknown, never a proof."""

    timeout_ms: int = 10_000
    rlimit: int = 0

    def gave_up(self, why: str) -> Unknown:
        limits = f"timeout {self.timeout_ms} ms" + (f", rlimit {self.rlimit}" if self.rlimit else "")
        return Unknown(f"solver gave up ({why or 'resource limit'}; {limits})")

    def apply(self, s) -> None:
        s.set("timeout", self.timeout_ms)
        if self.rlimit:
            s.set("rlimit", self.rlimit)


def limit_memory(extra_bytes: int) -> None:
    """Let z3 allocate at most ``extra_bytes`` more than it holds now (its cap counts every
    context), so that it gives up (Unknown, or out of memory) while Python can still report."""
    _z3().set_param("memory_max_size", max(1, (estimated_alloc() + extra_bytes) >> 20))


class Stats:
    """Solver calls made, so speed from skipped work stays visible."""

    calls = 0


def find(constraints: Sequence[Constraint], budget: Budget) -> Proved | Witness | Unknown:
    """Is there an assignment satisfying every constraint?"""
    z3 = _z3()
    b = _Builder()
    fs = [b.cons(c) for c in constraints] + b.side
    vars = b.vars
    s = z3.SolverFor("QF_LIA", ctx=b.ctx)
    budget.apply(s)
    s.add(*fs)
    Stats.calls += 1
    r = s.check()
    if r == z3.unsat:
        return Proved()
    if r == z3.sat:
        return _witness(s.model(), vars)
    return budget.gave_up(s.reason_unknown())


def optimum(expr: Expr, constraints: Sequence[Constraint], maximize: bool,
            budget: Budget) -> Bound | Proved | Unknown:
    """The largest (or smallest) value of ``expr``; Proved means no layout exists.

    z3's optimum is then confirmed by a second, plain query that must be UNSAT:
    no layout takes ``expr`` beyond the bound.
    """
    z3 = _z3()
    b = _Builder()
    fs = [b.cons(c) for c in constraints]
    target = b.expr(expr)
    o = z3.Optimize(ctx=b.ctx)
    budget.apply(o)
    o.add(*fs, *b.side)
    h = o.maximize(target) if maximize else o.minimize(target)
    Stats.calls += 1
    r = o.check()
    if r == z3.unsat:
        return Proved()
    if r != z3.sat:
        return budget.gave_up(o.reason_unknown())
    val = (o.upper(h) if maximize else o.lower(h))
    if not z3.is_int_value(val):
        return Unknown(f"expression is unbounded under the model ({val})")
    value = val.as_long()
    beyond = Outside(expr, -INF, value) if maximize else Outside(expr, value, INF)
    confirm = find(list(constraints) + [beyond], budget)
    if not isinstance(confirm, Proved):
        return Unknown("solver optimum could not be confirmed" if isinstance(confirm, Witness)
                       else confirm.reason)
    w = _witness(o.model(), b.vars)
    return Bound(value, w)


def site_terms(domain: Sequence[Constraint], expr: Expr, violations: Sequence[Constraint]):
    """(layout constraints, value term, violation formula, z3 variables by IR variable),
    in z3's main context, for library callers."""
    z3 = _z3()
    b = _Builder(z3.main_ctx())
    model = [b.cons(c) for c in domain]
    value = b.expr(expr)
    viol = z3.Or(*[b.cons(c) for c in violations]) if violations else z3.BoolVal(False)
    return model + b.side, value, viol, b.vars


def var_term(v: Var, vars: dict):
    """The z3 term of IR variable ``v`` among a query's variables (a fresh one if unused)."""
    z3 = _z3()
    x = vars.get(v)
    if x is None:
        x = vars[v] = z3.Int(var_name(v), z3.main_ctx())
    return x


def lin_term(e: Lin, vars: dict):
    """A linear IR term over a query's variables, in z3."""
    z3 = _z3()
    t = z3.IntVal(e.const)
    for v, c in e.coeffs:
        t = t + c * var_term(v, vars)
    return t


def solve(formulas: Sequence, budget: Budget = Budget()) -> Proved | Witness | Unknown:
    """Solve caller-built z3 formulas (e.g. a SiteQuery plus constraints of their own)."""
    z3 = _z3()
    s = z3.Solver()
    budget.apply(s)
    s.add(*formulas)
    r = s.check()
    if r == z3.unsat:
        return Proved()
    if r == z3.sat:
        m = s.model()
        return Witness({d.name(): m[d].as_long() for d in m.decls() if z3.is_int_value(m[d])})
    return budget.gave_up(s.reason_unknown())
