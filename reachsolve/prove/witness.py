"""Counterexamples: from a solver's partial answer to a full layout, checked again without it.

The solver names places for the few variables of one query. Here they are
completed into a layout of every section (the frame's completion), moved to a
readable image base where that keeps the failure, validated with plain
integers, and the site is re-checked on that layout by recheck.py. Only a
layout that survives all of this makes a site vulnerable or broken; anything
else is unknown, with the reason.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..ir import BASE, INF, AllOf, AnyOf, Between, Bound, Lin, Multiple, NotMultiple, Outside, Proved, Witness
from ..report.proofs import (Failure, FailureKind, FitUndecided, Margin, Problem, Undecided, Verdict)
from . import backend
from .context import SOLVER_COMPLETION, ObjectContext
from .recheck import recheck

# Where counterexamples are shown when the image base is free: low addresses read
# best; 2^40 still fails absolute 32-bit types without 64-bit wrap-around.
HINT_BASES = (0x40000000, 1 << 40)


@dataclass(frozen=True)
class Decision:
    """A site's verdict with its record, its counterexample layout and notes (records)."""

    verdict: Verdict
    record: object
    env: dict | None = None
    notes: tuple = ()
    margin: int | None = None
    policy: object = None  # the LinkPolicy the counterexample is re-checked under (None: the model's)


def undecided(why: str, notes: tuple = ()) -> Decision:
    return Decision(Verdict.UNKNOWN, Undecided(why), notes=notes)


class Witnesses:
    """Completes, validates and re-checks counterexamples for one object."""

    def __init__(self, ob: ObjectContext, budget: backend.Budget):
        self.ob = ob
        self.frame = ob.frame
        self.policy = ob.policy
        self.budget = budget
        self._layouts: dict[int, tuple] = {}  # id(solver answer) -> (answer, completed layout, problems)
        self._nearest: dict[tuple, Witness] = {}  # (d, side, d's value) -> the nearest failing answer

    def failure(self, site, dom, vars, d: Lin, c: int, rng, g: int, fail, notes, never_fits=False) -> Decision:
        """The decision for a site the bounds show failing (``fail``: which way, and a witness)."""
        kind, w = fail
        span = self.frame.span(d)
        copies = self.policy.wrapped_ranges(site.spec, span[0] + c, span[1] + c) if rng is not None else []
        if kind == "wrap":  # outside every copy of the range 2^64 apart (decide.py)
            violation = AllOf(tuple(Outside(d + c, a, z) for a, z in copies))
        elif kind == "high":
            violation = Between(d + c, rng[1] + 1, INF)
        elif kind == "low":
            violation = Between(d + c, -INF, rng[0] - 1)
        else:
            violation = NotMultiple(d + c, g)
        margin, amount = None, None
        if self.ob.layout is not None and kind in ("high", "low") and d.coeffs and not self.ob.open_vars(d):
            w, margin, amount = self.margin(d, c, dom, violation, kind, w)
        extreme = w
        if margin is None and kind != "align" and d.coeffs:
            w = self.nearest(d, c, dom, rng, g, kind, w)
        if never_fits:
            fit = Proved()
        elif not d.coeffs:
            v = d.const + c
            ok = (rng is None or self.policy.accepts(site.spec, v)) and v % g == 0
            fit = Witness(self.ob.feasible) if ok else Proved()
        else:
            cons = [Multiple(d + c, g)] if g > 1 else []
            if copies and copies != [tuple(rng)]:
                cons.append(AnyOf(tuple(Between(d + c, a, z) for a, z in copies)))
            elif rng is not None:
                cons.append(Between(d + c, rng[0], rng[1]))
            fit = backend.find(dom + cons, self.budget)
        v = self.counterexample(site, w, fit, violation, vars)
        if v.verdict == Verdict.UNKNOWN and w is not extreme:
            # The nearest answer of a relaxed query may not complete (a symbol the relaxation
            # let lie inside a section); the extreme one is tried as before.
            v = self.counterexample(site, extreme, fit, violation, vars)
        if v.verdict == Verdict.UNKNOWN:
            return Decision(v.verdict, v.record, v.env, notes + v.notes, None)
        rec = v.record if margin is None else Failure(**{**_fields(v.record), "margin": margin})
        return Decision(v.verdict, rec, v.env, notes + v.notes, amount)

    def nearest(self, d: Lin, c: int, dom, rng, g: int, kind: str, w: Witness) -> Witness:
        """The failing layout nearest to the range: the value just past the limit (0x100000 for
        a forward cbz), else the least violation the model allows, keeping the granule where it
        can. The solver's optimum of d is an extreme (images 128 MiB apart) that no build
        resembles. Any answer here is a witness only: it is completed and re-checked as any."""
        edge = rng[1] + g if kind == "high" else rng[0] - g
        key = (d, kind, edge - c)
        hit = self._nearest.get(key)
        if hit is not None:
            return hit
        exact = [Between(d + c, edge, edge)]
        found = backend.find(dom + exact, self.budget)
        if not isinstance(found, Witness):
            violation = Between(d + c, edge, INF) if kind == "high" else Between(d + c, -INF, edge)
            keep = [Multiple(d + c, g)] if g > 1 else []
            best = backend.optimum(d, dom + [violation] + keep, kind == "low", self.budget)
            if isinstance(best, Proved) and keep:
                best = backend.optimum(d, dom + [violation], kind == "low", self.budget)
            found = best.witness if isinstance(best, Bound) else w
        self._nearest[key] = found
        return found

    def margin(self, d: Lin, c: int, dom, violation, kind: str, w: Witness):
        """The least growth that breaks the site, from the as-linked layout (z3 Optimize)."""
        now = self.frame.value(d, self.ob.feasible)
        best = backend.optimum(d, dom + [violation], kind == "low", self.budget)
        if not isinstance(best, Bound):
            return w, None, None
        amount = abs(best.value - now)
        L = self.ob.layout
        chain = [v for v in dict(d.coeffs) if v in L.pos]
        if len(chain) == 2:
            a, b = sorted(chain, key=L.pos.__getitem__)
            grown = self._input_margin(d, c, a, b, violation)
            if grown is not None:
                amount = grown
            specs, more = self.frame.explain_between(a, b)
            m = Margin(amount, (L.items[L.pos[a]].label, L.items[L.pos[b]].label), tuple(specs), more)
        else:
            m = Margin(amount)
        return best.witness, m, amount

    def _input_margin(self, d: Lin, c: int, a, b, violation) -> int | None:
        """The least growth of input between chain items a and b that breaks the site,
        when its value is +-(b - a) plus a constant (the frame computes it through the
        alignments between); None otherwise."""
        cs = dict(d.coeffs)
        if len(cs) != 2 or sorted(cs.values()) != [-1, 1] or not isinstance(violation, Between):
            return None
        env = self.ob.feasible
        dist = env[b] - env[a]
        k0 = d.const + c
        if cs[b] == 1 and violation.hi >= INF:      # the value grows with b - a: b - a >= lo - k0
            need = violation.lo - k0 - dist
        elif cs[b] == -1 and violation.lo <= -INF:  # it shrinks with b - a: b - a >= k0 - hi
            need = k0 - violation.hi - dist
        else:
            return None
        return self.frame.input_margin(a, b, need) if need > 0 else None

    def _layout(self, site, partial, vars) -> tuple[dict | None, list]:
        """A complete, validated layout for a solver answer, and what is wrong with it.

        Sites of one group fail in the same extreme layout; completing and validating
        it once (it is as big as the object) serves all of them, as long as the layout
        still breaks the next site too."""
        hit = self._layouts.get(id(partial))
        if hit is not None and hit[0] is partial and hit[1] is not None and not hit[2]:
            rc = recheck(site, hit[1], self.policy, self.ob.veneers(site))
            if rc.out_of_range or rc.misaligned:
                return hit[1], hit[2]
        env = self._readable(site, partial, vars)
        bad = self.frame.problems(env) if env is not None else []
        self._layouts[id(partial)] = (partial, env, bad)
        return env, bad

    def counterexample(self, site, w: Witness, fit, violation, vars) -> Decision:
        """Vulnerable or broken with a re-checked layout, or unknown with the reason."""
        env, bad = self._layout(site, w.env, vars)
        padded = self.frame.padded_domain(vars) if env is None and violation is not None else None
        if padded is not None:
            # The relaxed witness left too little room for alignment padding: ask again
            # with every padding reserved (a search restriction; the result is re-checked).
            again = backend.find(padded + [violation], self.budget)
            if isinstance(again, Witness):
                env, bad = self._layout(site, again.env, vars)
        if env is None and violation is not None:
            env, bad = self._solver_completion(site, violation, vars)
        if env is None:
            n = len(self.frame.slots)
            if bad == ["proved"]:
                return undecided(f"the solver found a failing placement of these sections, but an exact query "
                                 f"over all {n} of the object's layout variables found no complete layout in "
                                 f"which the value fails; undecided")
            if self.ob.layout is not None:
                return undecided("the solver found a failing placement of these sections, but walking the "
                                 "script's chain to it (also with every alignment padding reserved) found no "
                                 "complete layout around it; undecided")
            if n > SOLVER_COMPLETION:
                return undecided(f"the solver found a failing placement of these sections, but first-fit placement "
                                 f"(largest alignment first) found no room for the object's other sections around "
                                 f"it, and an exact placement query is not tried for {n} layout variables; "
                                 f"undecided")
            return undecided("the solver found a failing placement of these sections, but neither first-fit "
                             "placement nor an exact placement query completed it; undecided")
        rc = recheck(site, env, self.policy, self.ob.veneers(site))
        if bad or not (rc.out_of_range or rc.misaligned):
            why = "; ".join(bad) if bad else f"value {rc.value:#x} fits"
            return undecided(f"internal error: the counterexample did not survive the independent check ({why})")
        broken = isinstance(fit, Proved)
        spec = site.spec
        silent = self.policy.silent_on_misalignment(spec) if rc.misaligned else ()
        rec = Failure(FailureKind.NO_LAYOUT if broken else FailureKind.SOME_LAYOUTS,
                      Problem.RANGE if rc.out_of_range else Problem.ALIGN, rc.value, self.policy.range(spec),
                      spec.granule, rc.rejected_by, silent)
        notes = () if isinstance(fit, (Proved, Witness)) else (FitUndecided(fit.reason),)
        return Decision(Verdict.BROKEN if broken else Verdict.VULNERABLE, rec, env, notes)

    def _solver_completion(self, site, violation, vars) -> tuple[dict | None, list]:
        """Complete a failing layout with the solver where first fit could not (small free-model
        objects). (None, ["proved"]): the solver shows that no complete layout fails."""
        ans = self.ob.solver_layout([violation], self.budget)
        if isinstance(ans, Proved):
            return None, ["proved"]
        if not isinstance(ans, dict):
            return None, []
        self.ob.stats["solver completions"] += 1
        return ans, self.frame.problems(ans)

    def _readable(self, site, partial, vars) -> dict | None:
        """A complete layout, moved to a conventional image base (HINT_BASES) when that keeps the value.

        The solver's extremes often sit at address 0 or near 2^64; the same relative
        layout there is easier to read and to feed to a linker.
        """
        env = None
        if self.ob.layout is not None:
            # Only the site's own items need the solver's places; the rest follow the
            # script, and the full layout is validated (ASSERTs included) afterwards.
            # If that breaks an ASSERT, also keep the solver's places for its operands.
            focus = set(vars)
            for _ in range(4):
                env = self.frame.complete(partial, focus=focus)
                if env is None or not self.frame.problems(env):
                    break
                more = self.frame.failing_assert_vars(env) - focus
                env = None
                if not more:
                    break
                focus |= more
        if env is None:
            env = self.frame.complete(partial)
        if env is None or self.frame.base_fixed or self.ob.layout is not None:
            return env
        step = max(s.align for s in self.frame.slots.values()) if self.frame.slots else 1
        value = recheck(site, env, self.policy, self.ob.veneers(site)).value
        for hint in HINT_BASES:
            delta = -(-hint // step) * step - env[BASE]
            moved = {k: a + delta for k, a in env.items()}
            rc = recheck(site, moved, self.policy, self.ob.veneers(site))
            # Only where the value stays the same: an absolute value moves with the image,
            # and the nearest failing one (nearest()) would be lost.
            if rc.value == value and (rc.out_of_range or rc.misaligned) and not self.frame.problems(moved):
                return moved
        return env


def _fields(rec) -> dict:
    return {k: getattr(rec, k) for k in rec.__slots__}
