"""The pipeline: object -> sites -> constraints -> verdicts -> report.

Sites that share a value shape (same type, same place section, same target
variable) differ only by a constant, so one pair of solver optimisations
bounds the layout-dependent part for the whole group; each site's verdict
then follows from those proved bounds. Only sites that can fail get queries
of their own (a counterexample, and whether any layout fits at all).
"""
from __future__ import annotations

import fnmatch
from collections import Counter, defaultdict
from dataclasses import dataclass
from functools import cached_property
from typing import Iterable, Sequence

import numpy as np

from . import __version__, solver
from .algebra import render
from .checker import fits, recheck
from .constraints import (BASE, Between, Bound, Lin, Multiple, NotMultiple, Outside, PageDiff, Proved,
                          Unknown, Witness)
from .elf import SHF_TLS, SHT_NOBITS, ObjectFile, read_object
from .errors import InputError, ModelError
from .inputs import load
from .layout import Frame, Slot
from .scriptmodel import OrderedFrame, ScriptLayout
from .model import LayoutModel
from .relocs import BY_NUMBER, PROFILE_LABEL, repaired_by_veneer
from .report import (ABSOLUTE, ALIGNED, AS_LINKED, FIXED, PAGE_FIXED, PAGE_SOLVER, PAGE_SPAN, SOLVER, SPAN, Counterexample,
                     FileError, FileSummary, Placement, ProofTable, Report, SiteResult, SymbolPlacement, robust_reason,
                     veneer_note)
from .screen import screen
from .sites import SYM_ANCHOR, Site, SiteColumns

PAGE = 4096
BIG = 1 << 70
# Where counterexamples are shown when the image base is free: low addresses read
# best; 2^40 still fails absolute 32-bit types without 64-bit wrap-around.
HINT_BASES = (0x40000000, 1 << 40)


@dataclass(frozen=True)
class _Verdict:
    verdict: str
    reason: str
    env: dict | None = None
    notes: tuple[str, ...] = ()
    margin: int | None = None


class _Object:
    """Everything the decisions about one object share."""

    def __init__(self, obj: ObjectFile, model: LayoutModel):
        self.obj = obj
        self.model = model
        self.cols = cols = SiteColumns(obj)
        alloc = [s for s in obj.sections if s.alloc]
        # Section.occupies and .align, inlined: kernels have 10^5 sections.
        secs = {s.index: Slot(s.name, 0 if not s.size or (s.type == SHT_NOBITS and s.flags & SHF_TLS) else s.size,
                              s.addralign or 1) for s in alloc}
        self.layout = None
        self.assumptions: list[str] = []
        if model.script is not None:
            self.layout = ScriptLayout(model.script, obj, model.script_path)
            self.frame = OrderedFrame(model, self.layout, secs)
            if self.layout.orphans:
                names = ", ".join(obj.sections[i].name for i in self.layout.orphans[:5])
                self.assumptions.append(f"{len(self.layout.orphans)} orphan sections ({names}...) lie anywhere in the "
                                        f"image; as linked, after the last output section")
        else:
            self.frame = Frame(model, secs)
        names = Counter(s.name for s in alloc)
        slots = self.frame.slots
        self.labels = {s.index: (s.name if names[s.name] == 1 else f"{s.name}[{s.index}]")
                       for s in alloc if ("sec", s.index) in slots}
        for sym, align in sorted(cols.symbol_alignment().items()):
            if self.layout is not None and self.frame.bind_symbol(("sym", sym), obj.symbol_name(sym)):
                continue
            self.frame.add(("sym", sym), Slot(obj.symbol_label(sym), 0, align))
            self.assumptions.append(f"undefined {obj.symbol_label(sym)} lies in the image, aligned to {align}")
        got = np.zeros(len(cols), dtype=bool)
        for spec in BY_NUMBER.values():
            if spec.formula.uses_got:
                got |= cols.rtype == spec.number
        for si, addend in sorted(set(zip(cols.symbol[got].tolist(), cols.addend[got].tolist()))):
            name = cols.label(si) if si and len(obj.symbols) else ""
            self.frame.add(("got", si, addend), Slot(f"GOT[{name}+{addend:#x}]", 8, 8))
        if (cols.weak & (cols.kind == SYM_ANCHOR)).any():
            self.assumptions.append("undefined weak symbols are taken to be defined somewhere in the image")
        self.stats: Counter = Counter()
        self._exprs: dict[int, object] = {}
        self.texts: dict = {}  # rendered symbolic parts, by shape
        self._ranges: dict = {}
        self._veneer_secs: dict[int, bool] = {}
        self.feasible = self.frame.complete({})
        if self.feasible is not None and self.frame.problems(self.feasible):
            self.feasible = None

    @cached_property
    def sites(self) -> tuple[Site, ...]:
        """Every row as a Site (library queries; the analysis builds only the rows it needs)."""
        return self.cols.extraction().sites

    def range(self, spec):
        r = self._ranges.get(spec.name, False)
        if r is False:
            r = self._ranges[spec.name] = spec.range(self.model.profiles)
        return r

    def veneers(self, site: Site) -> bool:
        """May an out-of-range branch at this site rely on a veneer?"""
        return self.section_veneers(site.section)

    def section_veneers(self, index: int) -> bool:
        """May out-of-range branches in this section rely on veneers (model, no_veneers globs)?"""
        ok = self._veneer_secs.get(index)
        if ok is None:
            name = self.obj.sections[index].name
            ok = self._veneer_secs[index] = self.model.veneers and not any(
                fnmatch.fnmatchcase(name, g) for g in self.model.no_veneers)
        return ok

    def unplaced(self, site: Site) -> str | None:
        """Why a script leaves this site out of the image, if it does."""
        if site.section in self.layout.discarded:
            return f"the script discards {self.obj.sections[site.section].name}"
        t = site.target_section
        if t is not None and t in self.layout.discarded:
            return f"the target section {self.obj.sections[t].name} is discarded by the script"
        return None

    def query_vars(self, site: Site) -> set:
        """The layout variables a query about ``site`` must constrain."""
        vars = set(self.expr(site).vars) | {("sec", site.section)}
        if site.anchor and not site.spec.formula.uses_got and site.anchor in self.frame.slots:
            vars.add(site.anchor)
        return vars

    def violations(self, site: Site) -> list:
        """What it means for ``site`` to fail: out of range (unless a veneer repairs it), misaligned."""
        spec, e = site.spec, self.expr(site)
        rng = self.range(spec)
        bad = []
        if rng is not None and not (self.veneers(site) and repaired_by_veneer(spec, self.model.profiles,
                                                                              _same_section(site))):
            bad.append(Outside(e, rng[0], rng[1]))
        if spec.granule > 1 and not spec.formula.paged:
            bad.append(NotMultiple(e, spec.granule))
        return bad

    def expr(self, site: Site):
        """The site's value over this model's variables (script symbols substituted)."""
        e = self._exprs.get(id(site))
        if e is None:
            e = self._exprs[id(site)] = self.frame.subst(site.value_expr())
        return e

    def name(self, v) -> str:
        kind = v[0]
        if kind == "pt":
            return f"point({self.layout.items[self.layout.pos[v]].label})"
        if kind == "aux":
            return f"aux{v[1]}"
        if kind == "sec":
            return f"base({self.labels.get(v[1]) or self.obj.sections[v[1]].name})"
        if kind == "sym":
            return f"addr({self.obj.symbol_label(v[1])})"
        if kind == "got":
            return f"got({self.obj.symbol_label(v[1])}{v[2]:+#x})" if v[2] else f"got({self.obj.symbol_label(v[1])})"
        return "image_base"


def _group_key(ob: _Object, site: Site):
    e = ob.expr(site)
    if isinstance(e, PageDiff):
        return (site.spec.name, "page", e.a.coeffs, e.b.coeffs)
    return (site.spec.name, "lin", e.coeffs, ("sec", site.section), site.anchor)


def _same_section(site: Site) -> bool:
    return site.target_section == site.section


def _strip(e: Lin) -> Lin:
    return Lin(e.coeffs, 0)


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


def _with_aux(frame, env: dict) -> dict:
    """A layout with the script's auxiliary values filled in (for evaluating terms)."""
    out = dict(env)
    for v in frame.L.aux:
        out[v] = frame.L._var_value(v, out)
    return out


class _Decider:
    def __init__(self, ob: _Object):
        self.ob = ob
        self.layout = ob.layout
        self.model = ob.model
        self.frame = ob.frame
        self.profiles = ob.model.profiles
        self.t = solver.Budget(ob.model.timeout_ms, ob.model.rlimit)
        self._layouts: dict[int, tuple] = {}  # id(solver answer) -> (answer, completed layout, problems)

    def decide(self, sites: Sequence[Site]) -> list[_Verdict]:
        s0 = sites[0]
        e0 = self.ob.expr(s0)
        vars = self.ob.query_vars(s0)
        self._vars = vars
        dom = _LazyDomain(lambda: self.frame.domain(vars))  # most groups never reach the solver
        if isinstance(e0, PageDiff):
            return self._paged(sites, dom)
        return self._linear(sites, dom, _strip(e0))

    # -- the two extremes of the layout-dependent part -------------------------------
    def _bounds(self, d: Lin, dom) -> tuple[Bound, Bound] | Unknown:
        if not d.coeffs:
            w = Witness(self.ob.feasible)
            return Bound(d.const, w), Bound(d.const, w)
        hi = solver.optimum(d, dom, True, self.t)
        lo = solver.optimum(d, dom, False, self.t)
        for b in (hi, lo):
            if isinstance(b, Proved):
                return Unknown("the model admits no layout for these sections")
            if isinstance(b, Unknown):
                return b
        return hi, lo

    def _linear(self, sites: Sequence[Site], dom, d: Lin) -> list[_Verdict]:
        spec = sites[0].spec
        raw = spec.range(self.profiles)
        veneered = self.ob.veneers(sites[0]) and repaired_by_veneer(spec, self.profiles, _same_section(sites[0]))
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
                notes = (veneer_note(smin, smax, raw, True),)
            in_span = rng is None or rng[0] <= smin and smax <= rng[1]
            if in_span and multiple and c % g == 0:
                self.ob.stats["interval proofs"] += 1
                out.append(_Verdict("robust", self._robust_reason(site, d, dtext, c, smin, smax, rng, g, veneered,
                                                                  by_span=bool(d.coeffs)), notes=notes))
                continue
            if multiple and c % g:
                # d is always a multiple of g, so d + c never is: every layout is misaligned.
                w = Witness(self.ob.feasible)
                out.append(self._failure(site, dom, d, c, rng, g, ("align", w), notes, never_fits=True))
                continue
            b = bounds()
            if isinstance(b, Unknown):
                out.append(_Verdict("unknown", b.reason, notes=notes))
                continue
            hi, lo = b
            vmin, vmax = lo.value + c, hi.value + c
            fails: list[tuple[str, Witness]] = []
            if rng is not None and vmax > rng[1]:
                fails.append(("high", hi.witness))
            if rng is not None and vmin < rng[0]:
                fails.append(("low", lo.witness))
            unknown = None
            if g > 1 and not multiple:
                r = c % g
                if r not in misfit:
                    misfit[r] = solver.find(dom + [NotMultiple(d + r, g)], self.t)
                ans = misfit[r]
                if isinstance(ans, Witness):
                    fails.append(("align", ans))
                elif isinstance(ans, Unknown):
                    unknown = ans.reason
            if veneered and raw is not None:
                notes = (veneer_note(vmin, vmax, raw, False),) if vmax > raw[1] or vmin < raw[0] else ()
            if fails:
                out.append(self._failure(site, dom, d, c, rng, g, fails[0], notes))
            elif unknown:
                out.append(_Verdict("unknown", unknown, notes=notes))
            else:
                out.append(_Verdict("robust", self._robust_reason(site, d, dtext, c, vmin, vmax, rng, g, veneered),
                                    notes=notes))
        return out

    def _robust_reason(self, site, d, dtext, c, vmin, vmax, rng, g, veneered, by_span=False) -> str:
        if not d.coeffs:
            kind = ABSOLUTE if site.anchor is None else FIXED
        elif by_span:
            kind = ALIGNED if rng is None and not veneered else SPAN
        else:
            kind = SOLVER
        return robust_reason(kind, self.model.image_max, dtext, c, vmin - c, vmax - c, vmin, vmax, rng, g, veneered)

    def _paged(self, sites: Sequence[Site], dom) -> list[_Verdict]:
        spec = sites[0].spec
        rng = spec.range(self.profiles)
        e0 = self.ob.expr(sites[0])
        d = _strip(e0.a) - _strip(e0.b)
        span = self.frame.span(d)
        cs = [self.ob.expr(s).a.const - self.ob.expr(s).b.const for s in sites]
        if d.coeffs and all(rng[0] <= -((-(span[0] + c - (PAGE - 1))) // PAGE) * PAGE
                            and ((span[1] + c + PAGE - 1) // PAGE) * PAGE <= rng[1] for c in cs):
            b = (Bound(span[1], None), Bound(span[0], None))  # interval proof; no witness needed
        else:
            b = self._bounds(d, dom)
            self.ob.stats["solver groups" if d.coeffs else "fixed-value groups"] += 1
        if isinstance(b, Unknown):
            return [_Verdict("unknown", b.reason) for _ in sites]
        hi, lo = b
        out = []
        for site in sites:
            e = self.ob.expr(site)
            c = e.a.const - e.b.const
            # Page(a) - Page(b) is a multiple of 4096 within 4095 of a - b.
            vmin = -((-(lo.value + c - (PAGE - 1))) // PAGE) * PAGE
            vmax = ((hi.value + c + PAGE - 1) // PAGE) * PAGE
            if rng[0] <= vmin and vmax <= rng[1]:
                if not d.coeffs:
                    kind = PAGE_FIXED
                elif hi.witness is None:
                    self.ob.stats["interval proofs"] += 1
                    kind = PAGE_SPAN
                else:
                    kind = PAGE_SOLVER
                dtext = render(d, self.ob.name) if d.coeffs else ""
                out.append(_Verdict("robust", robust_reason(kind, self.model.image_max, dtext, c, lo.value, hi.value,
                                                            vmin, vmax, rng, 1, False)))
                continue
            ans = solver.find(dom + [Outside(e, rng[0], rng[1])], self.t)
            if isinstance(ans, Proved):
                out.append(_Verdict("robust", f"the solver proved Page delta within [{rng[0]:#x}, {rng[1]:#x}] "
                                              f"for every layout"))
            elif isinstance(ans, Unknown):
                out.append(_Verdict("unknown", ans.reason))
            else:
                fit = solver.find(dom + [Between(e, rng[0], rng[1])], self.t)
                out.append(self._counterexample(site, ans, fit, "out of range", Outside(e, rng[0], rng[1])))
        return out

    def _failure(self, site, dom, d, c, rng, g, fail, notes, never_fits=False) -> _Verdict:
        kind, w = fail
        if kind == "high":
            violation = Between(d + c, rng[1] + 1, BIG)
        elif kind == "low":
            violation = Between(d + c, -BIG, rng[0] - 1)
        else:
            violation = NotMultiple(d + c, g)
        extra: tuple[str, ...] = ()
        margin = None
        if self.layout is not None and kind != "align" and d.coeffs:
            w, extra, margin = self._margin(d, c, dom, violation, kind, w)
        if never_fits:
            fit = Proved()
        elif not d.coeffs:
            v = d.const + c
            ok = (rng is None or rng[0] <= v <= rng[1]) and v % g == 0
            fit = Witness(self.ob.feasible) if ok else Proved()
        else:
            cons = [Multiple(d + c, g)] if g > 1 else []
            if rng is not None:
                cons.append(Between(d + c, rng[0], rng[1]))
            fit = solver.find(dom + cons, self.t)
        v = self._counterexample(site, w, fit, "improper alignment" if kind == "align" else "out of range",
                                 violation)
        ok = v.verdict != "unknown"
        return _Verdict(v.verdict, v.reason + "".join(f"; {x}" for x in extra if ok), v.env, notes + v.notes,
                        margin if ok else None)

    def _margin(self, d: Lin, c: int, dom, violation, kind: str, w: Witness):
        """The least growth that breaks the site, from the as-linked layout (z3 Optimize)."""
        now = self.ob.frame.L.value(d, _with_aux(self.ob.frame, self.ob.feasible))
        best = solver.optimum(d, dom + [violation], kind == "low", self.t)
        if not isinstance(best, Bound):
            return w, (), None
        margin = abs(best.value - now)
        cs = dict(d.coeffs)
        words = f"breaks once {margin:#x} more bytes lie between the site and its target"
        chain = [v for v in cs if v in self.ob.frame.L.pos]
        if len(chain) == 2:
            a, b = sorted(chain, key=self.ob.frame.L.pos.__getitem__)
            la = self.ob.frame.L.items[self.ob.frame.L.pos[a]].label
            lb = self.ob.frame.L.items[self.ob.frame.L.pos[b]].label
            specs, more = self.ob.frame.explain_between(a, b)
            words = f"breaks once {margin:#x} more bytes lie between {la} and {lb}"
            if specs:
                words += "; only input matching " + ", ".join(f"`{x}`" for x in specs) + \
                         (f" (and {more} more descriptions)" if more else "") + " can lie there"
            else:
                words += "; the script lets no input lie there"
        return best.witness, (words,), margin

    def _layout(self, site, partial) -> tuple[dict | None, list]:
        """A complete, validated layout for a solver answer, and what is wrong with it.

        Sites of one group fail in the same extreme layout; completing and validating
        it once (it is as big as the object) serves all of them, as long as the layout
        still breaks the next site too."""
        hit = self._layouts.get(id(partial))
        if hit is not None and hit[0] is partial and hit[1] is not None and not hit[2]:
            rc = recheck(site, hit[1], self.profiles, self.ob.veneers(site))
            if rc.out_of_range or rc.misaligned:
                return hit[1], hit[2]
        env = self._readable(site, partial)
        bad = self.frame.problems(env) if env is not None else []
        self._layouts[id(partial)] = (partial, env, bad)
        return env, bad

    def _counterexample(self, site, w: Witness, fit, problem: str, violation=None) -> _Verdict:
        env, bad = self._layout(site, w.env)
        if env is None and violation is not None:
            # The relaxed witness left too little room for alignment padding: ask again
            # with every padding reserved (a search restriction; the result is re-checked).
            again = solver.find(self.frame.domain(self._vars, strict=True) + [violation], self.t)
            if isinstance(again, Witness):
                env, bad = self._layout(site, again.env)
        if env is None:
            return _Verdict("unknown", "a failing placement of these sections exists, but the rest of the object "
                                       "could not be placed around it; the model is too tight to decide")
        rc = recheck(site, env, self.profiles, self.ob.veneers(site))
        if bad or not (rc.out_of_range or rc.misaligned):
            why = "; ".join(bad) if bad else f"value {rc.value:#x} fits"
            return _Verdict("unknown", f"internal error: the counterexample did not survive the independent check ({why})")
        broken = isinstance(fit, Proved)
        rng = site.spec.range(self.profiles)
        if rc.out_of_range:
            what = f"value {rc.value:#x} is not in [{rng[0]:#x}, {rng[1]:#x}]"
        else:
            what = f"value {rc.value:#x} is not a multiple of {site.spec.granule}"
        who = ", ".join(PROFILE_LABEL[p] for p in rc.rejected_by) or "no linker reports it; the code is silently wrong"
        silent = [PROFILE_LABEL[p] for p in self.profiles if not site.spec.limits[p].aligns]
        if rc.misaligned and silent:
            who += f"; {', '.join(silent)} silently drops the low bits"
        if broken:
            reason = f"no layout of the model fits: {what} ({who})"
        else:
            reason = f"fails in some layouts: {what} ({who})"
        notes = () if isinstance(fit, (Proved, Witness)) else (f"whether any layout fits is undecided: {fit.reason}",)
        return _Verdict("broken" if broken else "vulnerable", reason, env, notes)


    def _readable(self, site, partial) -> dict | None:
        """A complete layout, moved to a conventional image base (HINT_BASES) when that keeps the failure.

        The solver's extremes often sit at address 0 or near 2^64; the same relative
        layout there is easier to read and to feed to a linker.
        """
        env = None
        if self.layout is not None:
            # Only the site's own items need the solver's places; the rest follow the
            # script, and the full layout is validated (ASSERTs included) afterwards.
            # If that breaks an ASSERT, also keep the solver's places for its operands.
            focus = set(self._vars)
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
        if env is None or self.frame.base_fixed or self.layout is not None:
            return env
        step = max(s.align for s in self.frame.slots.values()) if self.frame.slots else 1
        for hint in HINT_BASES:
            delta = -(-hint // step) * step - env[BASE]
            moved = {k: a + delta for k, a in env.items()}
            rc = recheck(site, moved, self.profiles, self.ob.veneers(site))
            if (rc.out_of_range or rc.misaligned) and not self.frame.problems(moved):
                return moved
        return env


def _placements(ob: _Object, env: dict, shared: dict) -> tuple[tuple, tuple]:
    """A layout as Placement tuples; sites that share a layout share the tuples."""
    hit = shared.get(id(env))
    if hit is not None and hit[0] is env:
        return hit[1], hit[2]
    obj = ob.obj
    layout = tuple(Placement(obj.sections[i].name, i, env[("sec", i)]) for i in sorted(ob.labels) if ("sec", i) in env)
    syms = tuple(sorted((SymbolPlacement(ob.frame.slots[k].label, a, "undefined" if k[0] == "sym" else "got")
                         if k in ob.frame.slots else SymbolPlacement(obj.symbol_label(k[1]), a, "script")
                         for k, a in env.items() if k[0] in ("sym", "got")),
                        key=lambda p: (p.kind, p.name, p.address)))
    shared[id(env)] = (env, layout, syms)
    return layout, syms


def _result(ob: _Object, site: Site, v: _Verdict, as_linked: int | None = None, shared: dict | None = None
            ) -> SiteResult:
    obj = ob.obj
    sec = obj.sections[site.section]
    tsec = site.target_section
    ce = None
    if v.env is not None and v.verdict in ("vulnerable", "broken"):
        rc = recheck(site, v.env, ob.model.profiles, ob.veneers(site))
        layout, syms = _placements(ob, v.env, shared if shared is not None else {})
        base = ob.frame.base.evaluate(v.env) if ob.frame.base_fixed or BASE not in v.env else v.env[BASE]
        ce = Counterexample(rc.value, base, layout, syms, rc.rejected_by,
                            "improper alignment" if rc.misaligned and not rc.out_of_range else "out of range",
                            rc.place, rc.target, rc.encoded, rc.wanted)
    insn = site.insn.text if site.insn else (".hword" if site.spec.field.container == 2 else ".word")
    return SiteResult(
        file=obj.name, section=sec.name, section_index=site.section, offset=site.offset,
        reloc=site.spec.name, symbol=site.symbol_name, addend=site.addend,
        target_section=obj.sections[tsec].name if tsec is not None else None,
        instruction=insn, range=ob.range(site.spec), granule=site.spec.granule,
        verdict=v.verdict, reason=v.reason, expression=render(ob.expr(site), ob.name, ob.texts),
        counterexample=ce, notes=v.notes, as_linked=as_linked, margin=v.margin)


def analyze_object(obj: ObjectFile, model: LayoutModel, columns: bool = True
                   ) -> tuple[list[SiteResult], ProofTable | None, FileSummary]:
    """Decide every site of ``obj``: column-wise proofs first (screen.py), the rest one by one.

    ``columns=False`` decides every site one by one (tests compare the two paths).
    """
    solver.new_session()
    ob = _Object(obj, model)
    table, proved = None, np.zeros(len(ob.cols), dtype=bool)
    if columns:
        table, proved, counts = screen(ob, ob.cols)
        ob.stats.update(counts)
    rest = np.nonzero(~proved)[0].tolist()
    sites = {i: ob.cols.site(i) for i in rest}
    verdicts: dict[int, _Verdict] = {}
    groups: dict[tuple, list[int]] = defaultdict(list)
    as_linked: dict[int, int] = {}
    for i in rest:
        site = sites[i]
        if ob.layout is not None and not site.problem:
            why = ob.unplaced(site)
            if why:
                verdicts[i] = _Verdict("unknown", why)
                continue
        if site.problem:
            verdicts[i] = _Verdict("unknown", site.problem)
        elif ob.feasible is None:
            verdicts[i] = _Verdict("unknown", f"the model cannot hold this object: its allocated sections "
                                              f"({ob.frame.occupied:#x} bytes) cannot be placed in an image of "
                                              f"{model.image_max:#x} bytes")
        elif ob.layout is not None:
            # This build first: a site that fails as linked is broken, whatever else may happen.
            value, out, misaligned = fits(site, ob.feasible, model.profiles, ob.veneers(site))
            as_linked[i] = value
            if out or misaligned:
                rng = ob.range(site.spec)
                what = (f"value {value:#x} is not in [{rng[0]:#x}, {rng[1]:#x}]" if out
                        else f"value {value:#x} is not a multiple of {site.spec.granule}")
                verdicts[i] = _Verdict("broken", f"fails as linked: {what}", ob.feasible)
            elif model.placement == "as-linked":
                verdicts[i] = _Verdict("robust", robust_reason(AS_LINKED, 0, "", 0, 0, 0, value, value, None, 1,
                                                               False))
            else:
                groups[_group_key(ob, site)].append(i)
        else:
            groups[_group_key(ob, site)].append(i)
    dec = _Decider(ob)
    for key in sorted(groups, key=repr):
        idx = groups[key]
        for i, v in zip(idx, dec.decide([sites[i] for i in idx])):
            verdicts[i] = v
    shared: dict = {}
    results = sorted((_result(ob, sites[i], verdicts[i], as_linked.get(i), shared) for i in rest), key=lambda r: r.key)
    nrel = obj.relocation_count
    summary = FileSummary(obj.name, len(obj.sections), nrel, tuple(sorted(ob.cols.unchecked.items())),
                          ob.cols.skipped_nonalloc, tuple(ob.assumptions), tuple(sorted(ob.stats.items())))
    return results, table, summary


def _analyze_blob(task) -> tuple:
    """One object in isolation (a process-pool task): results, or the error that stopped it."""
    name, data, model, columns = task
    calls0 = solver.Stats.calls
    try:
        res, table, summ = analyze_object(read_object(name, data), model, columns)
    except InputError as exc:
        return None, None, None, FileError(exc.file, exc.message), 0
    except MemoryError:
        return None, None, None, FileError(name, "out of memory: the analysis exceeded the memory limit"), 0
    except ModelError as exc:  # the model cannot lay out this object (e.g. a script symbol it lacks)
        return None, None, None, FileError(name, f"layout model: {exc}"), 0
    return res, table, summ, None, solver.Stats.calls - calls0


def analyze(paths: Iterable[str], model: LayoutModel | None = None, jobs: int = 1, columns: bool = True) -> Report:
    """Analyze every object (and archive member) named by ``paths``.

    With ``jobs`` > 1 objects are analyzed in a process pool; the report is the same
    byte for byte, because every object is decided on its own and results are sorted.
    """
    model = model or LayoutModel()
    sites: list[SiteResult] = []
    files: list[FileSummary] = []
    errors: list[FileError] = []
    tasks = []
    for path in paths:
        try:
            blobs = load(path)
        except InputError as exc:
            errors.append(FileError(exc.file, exc.message))
            continue
        except MemoryError:
            errors.append(FileError(path, "out of memory while reading the file"))
            continue
        for blob in blobs:
            if isinstance(blob, InputError):
                errors.append(FileError(blob.file, blob.message))
            else:
                tasks.append((blob.name, blob.data, model, columns))
    if jobs > 1 and len(tasks) > 1:
        import concurrent.futures as cf
        with cf.ProcessPoolExecutor(max_workers=jobs) as pool:
            outcomes = list(pool.map(_analyze_blob, tasks, chunksize=1))
    else:
        outcomes = [_analyze_blob(t) for t in tasks]
    calls = 0
    tables = []
    for res, table, summ, err, n in outcomes:
        calls += n
        if err is not None:
            errors.append(err)
        else:
            sites.extend(res)
            files.append(summ)
            if table is not None:
                tables.append(table)
    sites.sort(key=lambda s: s.key)
    files.sort(key=lambda f: f.file)
    errors.sort(key=lambda e: (e.file, e.message))
    tables.sort(key=lambda t: t.file)
    return Report("reachsolve", __version__, tuple(sorted(model.describe().items())), tuple(sites),
                  tuple(files), tuple(errors), calls, tuple(tables))
