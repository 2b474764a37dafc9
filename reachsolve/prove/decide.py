"""One-by-one decisions: the sites the column-wise screen left, in groups of one shape.

Sites that share a value shape (same type, same place section, same target
variable) differ only by a constant, so one pair of solver optimisations
bounds the layout-dependent part for the whole group; each site's verdict
then follows from those proved bounds. Interval arithmetic is tried first,
and only sites that can fail get queries of their own (a counterexample, and
whether any layout fits at all).
"""
from __future__ import annotations

from dataclasses import replace
from typing import Sequence

from ..ir import (AllOf, Between, Bound, Lin, NotMultiple, Outside, PageDiff, Proved, Unknown, Witness, page,
                  page_delta_bounds)
from ..objfile.sites import Site
from ..report.algebra import render
from ..report.proofs import (Failure, FailureKind, MayStayUndefined, Problem, Proof, ProofKind, UndefinedWeak,
                             VeneerNote, Verdict, WeakResolution)
from ..target.policy import WEAK_NEXT, WEAK_NOP, WEAK_PAGE, WEAK_PLACE, WEAK_ZERO
from . import backend
from .context import ObjectContext
from .witness import Decision, Witnesses, undecided


def group_key(ob: ObjectContext, site: Site):
    """Sites with equal keys have values that differ only by a constant."""
    if ob.weak_rules(site) is not None or ob.weak_unmodelled(site):
        return ("weak", site.section, site.offset, site.spec.name)   # decided alone, per linker
    e = ob.expr(site)
    if isinstance(e, PageDiff):
        return (site.spec.name, "page", e.a.coeffs, e.b.coeffs)
    return (site.spec.name, "lin", e.coeffs, ("sec", site.section), site.anchor)


class _LazyDomain:
    """A group's model constraints, built on first use."""

    def __init__(self, make):
        self._make = make
        self._cons = None

    def _get(self) -> list:
        if self._cons is None:
            self._cons = self._make()
        return self._cons

    def __iter__(self):
        return iter(self._get())

    def __add__(self, more) -> list:
        return self._get() + list(more)


class Decider:
    def __init__(self, ob: ObjectContext):
        self.ob = ob
        self.model = ob.model
        self.frame = ob.frame
        self.policy = ob.policy
        self.budget = backend.Budget(ob.model.timeout_ms, ob.model.rlimit)
        self.witnesses = Witnesses(ob, self.budget)

    def decide(self, sites: Sequence[Site]) -> list[Decision]:
        """Decisions for one group (see group_key), in the order given."""
        if self.ob.weak_rules(sites[0]) is not None:
            return [self._weak(s) for s in sites]
        if self.ob.weak_unmodelled(sites[0]):
            return [undecided(f"undefined weak {s.symbol_name} in a {self.ob.model.final_link} link: how the "
                              f"linkers resolve {s.spec.name} against it is not modelled") for s in sites]
        out = self._decide(sites)
        a = sites[0].anchor
        if a and a[0] == "sym" and self.ob.is_weak(sites[0].symbol) and not self.ob.script_defines(a):
            out = [_may_stay_undefined(s, v) for s, v in zip(sites, out)]
        return out

    def _weak(self, site: Site) -> Decision:
        """A non-preemptible undefined weak reference in a final link: each selected linker's
        value (S where that linker resolves it, the addend kept) decided as an ordinary site
        of that linker alone; the site must fit under every one."""
        per, decisions = [], []
        for profile, rule in self.ob.weak_rules(site):
            if rule == WEAK_NOP:
                per.append(WeakResolution(profile, rule))
                continue
            view = self.ob.for_weak(profile)
            if rule == WEAK_PAGE:
                d = self._page_of_place(view, site)
            else:
                anchor, sval = ((("sec", site.section), site.offset + (4 if rule == WEAK_NEXT else 0))
                                if rule in (WEAK_NEXT, WEAK_PLACE) else (None, 0))
                d = Decider(view).decide([replace(site, anchor=anchor, sym_value=sval)])[0]
            per.append(WeakResolution(profile, rule, d.record))
            decisions.append((view, rule, d))
        worst = None
        for verdict in (Verdict.BROKEN, Verdict.VULNERABLE, Verdict.UNKNOWN):
            worst = next((x for x in decisions if x[2].verdict == verdict), None)
            if worst is not None:
                break
        rec = UndefinedWeak(self.model.final_link, site.symbol_name, tuple(per))
        notes = tuple(n for _, _, d in decisions for n in d.notes)
        if worst is None:
            return Decision(Verdict.ROBUST, rec, notes=notes)
        view, rule, d = worst
        env = None
        if d.env is not None:
            # The original site's re-check sees S where that linker resolves it.
            p = d.env[("sec", site.section)] + site.offset
            env = {**d.env, site.anchor: {WEAK_NEXT: p + 4, WEAK_PLACE: p, WEAK_PAGE: page(p), WEAK_ZERO: 0}[rule]}
        return Decision(d.verdict, rec, env, notes, policy=view.policy)

    def _page_of_place(self, view, site: Site) -> Decision:
        """GNU ld's ADRP to an undefined weak symbol: Page(Page(P)+A) - Page(P), which is
        Page(A) wherever P lies."""
        v = page(site.addend)
        rng = view.policy.range(site.spec)
        if rng[0] <= v <= rng[1]:
            return Decision(Verdict.ROBUST, Proof(ProofKind.PAGE_FIXED, const=v, value=(v, v), range=rng))
        rec = Failure(FailureKind.NO_LAYOUT, Problem.RANGE, v, rng, 1, view.policy.rejecting(
            site.spec, v, view.section_veneers(site.section), False))
        env = self.ob.feasible
        return Decision(Verdict.BROKEN, rec, env)

    def _decide(self, sites: Sequence[Site]) -> list[Decision]:
        e0 = self.ob.expr(sites[0])
        vars = self.ob.query_vars(sites[0])
        dom = _LazyDomain(lambda: self.frame.domain(vars))  # most groups never reach the solver
        if isinstance(e0, PageDiff):
            return self._paged(sites, dom, vars)
        return self._linear(sites, dom, vars, e0.dependent())

    # -- the two extremes of the layout-dependent part -------------------------------
    def _bounds(self, d: Lin, dom) -> tuple[Bound, Bound] | Unknown:
        if not d.coeffs:
            w = Witness(self.ob.feasible)
            return Bound(d.const, w), Bound(d.const, w)
        hi = backend.optimum(d, dom, True, self.budget)
        lo = backend.optimum(d, dom, False, self.budget)
        for b in (hi, lo):
            if isinstance(b, Proved):
                return Unknown("the model admits no layout for these sections")
            if isinstance(b, Unknown):
                return b
        return hi, lo

    def _proof(self, site, kind, d, dtext, c, vmin, vmax, rng, g, veneered) -> Proof:
        return Proof(kind, self.model.image_max, dtext, c, (vmin - c, vmax - c), (vmin, vmax), rng, g, veneered)

    def _linear(self, sites: Sequence[Site], dom, vars, d: Lin) -> list[Decision]:
        spec = sites[0].spec
        raw = self.policy.range(spec)
        veneered = self.ob.veneered(sites[0])
        rng = None if veneered else raw
        g = spec.granule
        dtext = render(d, self.ob.name) if d.coeffs else ""
        # Interval arithmetic first: the span bound of d and the alignments of its
        # variables decide most sites with a proof of their own; z3 gets the rest.
        span = self.frame.span(d)
        multiple = g == 1 or self.frame.always_multiple(d, g)
        exact: list = []

        def bounds():
            if not exact:
                exact.append(self._bounds(d, dom))
                self.ob.stats["solver groups" if d.coeffs else "fixed-value groups"] += 1
            return exact[0]

        misfit: dict[int, object] = {}
        out = []
        for site in sites:
            c = self.ob.expr(site).const
            smin, smax = span[0] + c, span[1] + c
            notes = ()
            if veneered and raw is not None and (smax > raw[1] or smin < raw[0]):
                notes = (VeneerNote((smin, smax), raw, True),)
            in_span = rng is None or rng[0] <= smin and smax <= rng[1]
            if in_span and multiple and c % g == 0:
                self.ob.stats["interval proofs"] += 1
                if not d.coeffs:
                    kind = ProofKind.ABSOLUTE if site.anchor is None else ProofKind.FIXED
                else:
                    kind = ProofKind.ALIGNED if rng is None and not veneered else ProofKind.SPAN
                out.append(Decision(Verdict.ROBUST, self._proof(site, kind, d, dtext, c, smin, smax, rng, g,
                                                                veneered), notes=notes))
                continue
            if multiple and c % g:
                # d is always a multiple of g, so d + c never is: every layout is misaligned.
                w = Witness(self.ob.feasible)
                out.append(self.witnesses.failure(site, dom, vars, d, c, rng, g, ("align", w), notes,
                                                  never_fits=True))
                continue
            b = bounds()
            if isinstance(b, Unknown):
                out.append(undecided(b.reason, notes))
                continue
            hi, lo = b
            vmin, vmax = lo.value + c, hi.value + c
            fails: list[tuple[str, Witness]] = []
            unknown = None
            copies = self.policy.wrapped_ranges(spec, vmin, vmax) if rng is not None else []
            wraps = bool(copies) and copies != [tuple(rng)]
            if wraps:
                # The value may reach a copy of the range 2^64 away, which every linker
                # reads as in range (64-bit arithmetic): ask for a layout outside all copies.
                ans = backend.find(dom + [AllOf(tuple(Outside(d + c, a, z) for a, z in copies))], self.budget)
                if isinstance(ans, Witness):
                    fails.append(("wrap", ans))
                elif isinstance(ans, Unknown):
                    unknown = ans.reason
            if not wraps and rng is not None and vmax > rng[1]:
                fails.append(("high", hi.witness))
            if not wraps and rng is not None and vmin < rng[0]:
                fails.append(("low", lo.witness))
            if g > 1 and not multiple:
                r = c % g
                if r not in misfit:
                    misfit[r] = backend.find(dom + [NotMultiple(d + r, g)], self.budget)
                ans = misfit[r]
                if isinstance(ans, Witness):
                    fails.append(("align", ans))
                elif isinstance(ans, Unknown):
                    unknown = ans.reason
            if veneered and raw is not None:
                notes = (VeneerNote((vmin, vmax), raw, False),) if vmax > raw[1] or vmin < raw[0] else ()
            if fails:
                out.append(self.witnesses.failure(site, dom, vars, d, c, rng, g, fails[0], notes))
            elif unknown:
                out.append(undecided(unknown, notes))
            else:
                if wraps:
                    kind = ProofKind.WRAP_QUERY
                elif not d.coeffs:
                    kind = ProofKind.ABSOLUTE if site.anchor is None else ProofKind.FIXED
                else:
                    kind = ProofKind.SOLVER
                out.append(Decision(Verdict.ROBUST, self._proof(site, kind, d, dtext, c, vmin, vmax, rng, g,
                                                                veneered), notes=notes))
        return out

    def _paged(self, sites: Sequence[Site], dom, vars) -> list[Decision]:
        spec = sites[0].spec
        rng = self.policy.range(spec)
        e0 = self.ob.expr(sites[0])
        d = e0.a.dependent() - e0.b.dependent()
        span = self.frame.span(d)
        cs = [e.a.const - e.b.const for e in map(self.ob.expr, sites)]
        if d.coeffs and all(rng[0] <= page_delta_bounds(span[0] + c, span[1] + c)[0]
                            and page_delta_bounds(span[0] + c, span[1] + c)[1] <= rng[1] for c in cs):
            b = (Bound(span[1], None), Bound(span[0], None))  # interval proof; no witness needed
        else:
            b = self._bounds(d, dom)
            self.ob.stats["solver groups" if d.coeffs else "fixed-value groups"] += 1
        if isinstance(b, Unknown):
            return [undecided(b.reason) for _ in sites]
        hi, lo = b
        out = []
        dtext = None  # the same text for every site of the group: rendered once, when needed
        for site in sites:
            e = self.ob.expr(site)
            c = e.a.const - e.b.const
            vmin, vmax = page_delta_bounds(lo.value + c, hi.value + c)
            if rng[0] <= vmin and vmax <= rng[1]:
                if not d.coeffs:
                    kind = ProofKind.PAGE_FIXED
                elif hi.witness is None:
                    self.ob.stats["interval proofs"] += 1
                    kind = ProofKind.PAGE_SPAN
                else:
                    kind = ProofKind.PAGE_SOLVER
                if dtext is None:
                    dtext = render(d, self.ob.name) if d.coeffs else ""
                out.append(Decision(Verdict.ROBUST, Proof(kind, self.model.image_max, dtext, c, (lo.value, hi.value),
                                                          (vmin, vmax), rng, 1, False)))
                continue
            ans = backend.find(dom + [Outside(e, rng[0], rng[1])], self.budget)
            if isinstance(ans, Proved):
                out.append(Decision(Verdict.ROBUST, Proof(ProofKind.PAGE_QUERY, range=rng)))
            elif isinstance(ans, Unknown):
                out.append(undecided(ans.reason))
            else:
                fit = backend.find(dom + [Between(e, rng[0], rng[1])], self.budget)
                out.append(self.witnesses.counterexample(site, ans, fit, Outside(e, rng[0], rng[1]), vars))
        return out


def _may_stay_undefined(site: Site, v: Decision) -> Decision:
    """Open world: a weak target may also stay undefined, and the final link then resolves
    it, so no layout of its definition failing does not make the site broken (every
    address it could take would have to fail); it is vulnerable, with its counterexample."""
    if v.verdict != Verdict.BROKEN or not isinstance(v.record, Failure):
        return v
    rec = replace(v.record, kind=FailureKind.SOME_LAYOUTS)
    return Decision(Verdict.VULNERABLE, rec, v.env, v.notes + (MayStayUndefined(site.symbol_name),), v.margin)
