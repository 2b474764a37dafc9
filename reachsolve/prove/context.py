"""What every decision about one object shares: its columns, its frame, its link policy.

An :class:`ObjectContext` is built once per object and model. The column-wise
screen and the one-by-one deciders read it through the attributes and methods
below; none of them reaches into a frame or a layout beyond the frame
interface.
"""
from __future__ import annotations

import copy
from collections import Counter
from dataclasses import replace
from functools import cached_property

import numpy as np

from ..ir import Lin, PageDiff, Var
from ..model.frame import FreeFrame, Slot, TlsSegment
from ..model.options import LayoutModel
from ..model.ordered import OrderedFrame
from ..objfile.elf import SHF_TLS, SHT_NOBITS, STB_WEAK, SYM_UNDEF, ObjectFile
from ..objfile.sites import SYM_ANCHOR, Site, SiteColumns, got_var
from ..report.document import assumption_id
from ..script.chain import DefsymTerms, ScriptLayout
from ..target.catalogue import BY_NUMBER, TP_VAR
from ..target.policy import GOT_HEADER, got_sections, weak_modelled, weak_preemptible

# Free-model objects with at most this many layout variables get an exact placement
# query when first fit finds no layout; the query has one disjointness term per pair.
SOLVER_COMPLETION = 64


class ObjectContext:
    """One object under one model.

    ``obj`` the object, ``model`` and ``policy`` the model and its link policy,
    ``cols`` every range-checked site as columns, ``layout`` the script chain (None
    for the free model), ``frame`` the layout frame, ``labels`` each placed section's
    name as expressions show it, ``assumptions`` what verdicts rest on, ``feasible``
    one valid layout (the as-linked one under a script; None if the model cannot hold
    the object), ``stats`` counts of the work done."""

    def __init__(self, obj: ObjectFile, model: LayoutModel):
        self.obj = obj
        self.model = model
        self.policy = model.policy
        self._exprs: dict[int, tuple] = {}  # id(site) -> (site, its expression): see expr
        self.cols = cols = SiteColumns(obj)
        alloc = [s for s, a in zip(obj.sections, obj.alloc_mask.tolist()) if a]
        secs = {s.index: Slot(s.name, s.footprint, s.addralign or 1) for s in alloc}
        self.layout = None
        self.assumptions: list[str] = []
        self._assumed: dict[tuple, int] = {}  # what an assumption is about -> its index (id A<index+1>)
        syms = [(("sym", sym), obj.symbol_name(sym), Slot(obj.symbol_label(sym), 0, align))
                for sym, align in sorted(cols.symbol_alignment().items())]
        gots = {}
        tp_sites = False
        for number in sorted(set(cols.rtype.tolist())):  # the catalogue's types (SiteColumns keeps no other)
            spec = BY_NUMBER[number]
            tp_sites |= bool(spec.formula.tp_relative)
            if not spec.formula.uses_got:
                continue
            rows = cols.rtype == number
            kind = spec.formula.got_kind
            for si, addend in sorted(set(zip(cols.symbol[rows].tolist(), cols.addend[rows].tolist()))):
                name = cols.label(si) if si and len(obj.symbols) else ""
                what = f"GOT[{kind}:" if kind else "GOT["
                gots[got_var(spec, si, addend)] = Slot(f"{what}{name}+{addend:#x}]", spec.formula.got_size, 8)
        gots = dict(sorted(gots.items()))
        # The TLS segment, when some value is TP-relative (model.frame.TlsSegment).
        tls = None
        if tp_sites:
            tsecs = [s for s in alloc if s.flags & SHF_TLS]
            tls = TlsSegment(tuple((("sec", s.index), s.size) for s in tsecs if s.type != SHT_NOBITS),
                             tuple(("sec", s.index) for s in tsecs if s.type == SHT_NOBITS),
                             max([s.addralign or 1 for s in tsecs], default=1))
            self.assumptions.append(
                f"TLS: the thread pointer lies 16 bytes or more below the TLS segment, which starts at or below "
                f"this object's TLS sections; the segment is aligned to at most {tls.max_align} (its alignment "
                f"with this object's TLS sections alone)")
        if model.script is not None:
            synthetic = self._synthetic(gots)
            self.layout = ScriptLayout(model.script, obj, model.script_path, model.linker, model.defsym, synthetic)
            self.frame = OrderedFrame(model, self.layout, secs, syms, gots, tls)
            if self.layout.orphans:
                names = ", ".join(obj.sections[i].name for i in self.layout.orphans[:5])
                self._assume(("orphans",), f"{len(self.layout.orphans)} orphan sections ({names}...) lie anywhere "
                                           f"in the image; as linked, after the last output section")
            bound = self.frame.bound
            got = self.frame.got_item
            if got is not None:
                it = self.layout.items[self.layout.pos[got]]
                lo, hi = self.frame.got_header
                head = (f"after the linker's {lo}-byte header" if lo == hi else
                        f"after a header of {lo} (ld.lld) or {hi} bytes (GNU ld)")
                self._assume(("got",), f"the GOT entries lie in the linker's .got, which the script's {it.spec} "
                                       f"places in {it.out}, {head}, in an order not modelled; as linked, only "
                                       f"this object's entries fill it")
            elif gots:
                why = ("its TLS entries are not sized (the linkers relax them)" if synthetic is None and
                       any(len(v) > 3 for v in gots) else "the script does not place the linker's .got")
                self._assume(("got",), f"GOT slots lie anywhere in the image ({why}), so GOT-relative sites have "
                                       f"no as-linked value")
        else:
            defs = {}   # --defsym with no script: those symbols are terms, not slots
            if model.defsym:
                terms = DefsymTerms(obj, model.defsym)
                defs = {v: t for v, name, _ in syms if (t := terms.defined(name)) is not None}
            self.frame = FreeFrame(model, secs, {**{v: s for v, _, s in syms if v not in defs}, **gots}, tls,
                                   defined=defs)
            bound = self.frame.bound
            if gots:
                self._assume(("got",), "each GOT slot a site uses is an 8-byte, 8-aligned entry anywhere in the "
                                       "image (the linker's .got is placed like a section)")
        names = Counter(s.name for s in alloc)
        slots = self.frame.slots
        self.labels = {s.index: (s.name if names[s.name] == 1 else f"{s.name}[{s.index}]")
                       for s in alloc if ("sec", s.index) in slots}
        for var, _, slot in syms:
            if not bound(var):
                self._assume(var, f"undefined {slot.label} lies in the image, aligned to {slot.align}")
            else:
                self._assume(var, f"{slot.label} has the value {'the script' if self.layout else '--defsym'} "
                                  f"gives it (no input defines it)")
        weak_rows = cols.weak & (cols.kind == SYM_ANCHOR)
        self._bound = bound  # symbols the script defines: neither open nor resolved as undefined
        self.resolved_weak = self._resolve_weak(weak_rows)
        if (weak_rows & ~self.resolved_weak).any():
            self._assume(("weak",), "undefined weak symbols are taken to be defined somewhere in the image")
        self.stats: Counter = Counter()
        self.texts: dict = {}  # rendered symbolic parts, by shape
        self._veneer_secs: dict[int, bool] = {}
        self.feasible = self.frame.complete({})
        none_fit = False  # proved: no layout of the model holds the object
        if self.feasible is None and self.frame.occupied <= model.image_max:
            from . import backend
            found = self.solver_layout([], backend.Budget(model.timeout_ms, model.rlimit))
            none_fit = found is not None and not isinstance(found, dict)
            self.feasible = found if isinstance(found, dict) else None
        self.infeasible_why = ""  # why there is no feasible layout, in words
        problems = self.frame.problems(self.feasible) if self.feasible is not None else []
        if problems:
            self.feasible = None
        if self.layout is not None and self.feasible is None:
            self.infeasible_why = ("the as-linked layout breaks the model: " + "; ".join(problems[:3]) if problems
                                   else "the script's layout of this object cannot be built")
        elif self.feasible is None:
            occupied = self.frame.occupied
            if occupied > model.image_max:  # a fact: the sizes alone exceed the image
                self.infeasible_why = (f"the model cannot hold this object: its allocated sections take "
                                       f"{occupied:#x} bytes, more than the {model.image_max:#x}-byte image")
            elif none_fit:  # a fact too: the exact query over every section is UNSAT
                self.infeasible_why = (f"the model cannot hold this object: an exact placement query shows that "
                                       f"its allocated sections ({occupied:#x} bytes) cannot all be placed, "
                                       f"aligned and disjoint, in the {model.image_max:#x}-byte image")
            else:
                n = len(self.frame.slots)
                tried = ("nor did an exact placement query" if n <= SOLVER_COMPLETION else
                         f"an exact placement query is not tried for {n} layout variables")
                self.infeasible_why = (f"first-fit placement found no layout of the object's sections "
                                       f"({occupied:#x} bytes and their alignment) in the {model.image_max:#x}-byte "
                                       f"image, {tried}; undecided")

    def _assume(self, key: tuple, text: str) -> None:
        self._assumed[key] = len(self.assumptions)
        self.assumptions.append(text)

    def assumption_ids(self, site: Site) -> tuple[str, ...]:
        """The ids of the assumptions this site's verdict rests on: the undefined or script
        symbol it names, the GOT slot it uses, an orphan section at either end, weak symbols."""
        used = set()
        a = self._assumed
        e = site.value_expr
        for v in e.vars:
            if v[0] == "sym" and v in a:
                used.add(a[v])
            elif v[0] == "got" and ("got",) in a:
                used.add(a[("got",)])
        if ("orphans",) in a and self.layout is not None:
            if {site.section, site.target_section} & set(self.layout.orphans):
                used.add(a[("orphans",)])
        if site.anchor is not None and site.anchor[0] == "sym" and \
                self.obj.symbol_info(site.symbol) >> 4 == STB_WEAK:
            used |= {a[k] for k in (("weak",), ("final-link",), ("preemptible",)) if k in a}
        return tuple(assumption_id(k) for k in sorted(used))

    def solver_layout(self, extra: list, budget):
        """A complete layout of every variable that meets ``extra`` too, found by one exact query
        (free model, at most SOLVER_COMPLETION variables); Proved when none exists, None when
        not asked or undecided. First fit can miss layouts that exist; this cannot."""
        from ..ir import Proved, Witness
        from . import backend
        slots = self.frame.slots
        if self.layout is not None or len(slots) > SOLVER_COMPLETION:
            return None
        ans = backend.find(self.frame.domain(list(slots)) + list(extra), budget)
        if isinstance(ans, Proved):
            return ans
        if not isinstance(ans, Witness):
            return None
        env = self.frame.complete(ans.env)  # every slot has a place: this only fills BASE if fixed
        return env if env is not None and not self.frame.problems(env) else None

    def _resolve_weak(self, weak_rows: np.ndarray) -> np.ndarray:
        """Rows whose undefined weak target the final link resolves to a fixed place (the
        linkers' rule, target.policy.weak_rule). They are decided one by one on that value;
        the screen's open-world proofs do not apply to them. States the assumption."""
        cols, fl = self.cols, self.model.final_link
        out = np.zeros(len(cols), dtype=bool)
        if fl is None or not weak_rows.any():
            return out
        obj = self.obj
        resolved, preempt = set(), set()
        for i in np.nonzero(weak_rows)[0].tolist():
            si = int(cols.symbol[i])
            if int(obj.symbol_section[si]) != SYM_UNDEF or self._bound(("sym", si)):
                continue
            vis = int(obj.symbols["other"][si]) & 3
            if weak_preemptible(fl, vis):
                preempt.add(si)
            elif self.policy.weak_rules(BY_NUMBER[int(cols.rtype[i])], fl, vis) is not None:
                out[i] = True
                resolved.add(si)
            elif not weak_modelled(BY_NUMBER[int(cols.rtype[i])]):
                out[i] = True        # decided one by one, as unknown (weak_unmodelled)
        cols.special |= out
        if resolved:
            names = ", ".join(sorted(obj.symbol_label(si) for si in resolved)[:5])
            self._assume(("final-link",), f"final link {fl}: undefined weak {names}{'...' if len(resolved) > 5 else ''} "
                                    f"not preemptible: its references take the value the linkers give them")
        if preempt:
            names = ", ".join(sorted(obj.symbol_label(si) for si in preempt)[:5])
            self._assume(("preemptible",), f"final link {fl}: undefined weak {names}{'...' if len(preempt) > 5 else ''} "
                                    f"has default visibility, so it is preemptible (a PLT/GOT entry, or an error "
                                    f"for a non-PIC relocation): decided as if defined anywhere in the image")
        return out

    def _final_weak(self, site: Site) -> int | None:
        """The visibility of this site's target when a final link must resolve it as an
        undefined weak symbol (no input nor the script defines it); None otherwise."""
        if self.model.final_link is None or site.anchor is None or site.anchor[0] != "sym":
            return None
        si = site.symbol
        if int(self.obj.symbol_section[si]) != SYM_UNDEF or not self.is_weak(si) or self.script_defines(site.anchor):
            return None
        return int(self.obj.symbols["other"][si]) & 3

    def weak_rules(self, site: Site):
        """The selected linkers' resolutions of this site's undefined weak target (None: open world)."""
        vis = self._final_weak(site)
        return None if vis is None else self.policy.weak_rules(site.spec, self.model.final_link, vis)

    def _synthetic(self, gots: dict) -> dict[str, dict[str, int]] | None:
        """Bytes of the linker-made .got and .got.plt per selected linker, for the script
        chain; None when this object makes no GOT, or one the model does not size (TLS
        entries, which the linkers relax in an executable; the module loader's GOT)."""
        profiles = self.policy.profiles
        if not gots or any(len(v) > 3 for v in gots) or not all(p in GOT_HEADER for p in profiles):
            return None
        entries = len({v[1] for v in gots})  # one entry per symbol (both linkers)
        out: dict[str, dict[str, int]] = {}
        for p in profiles:
            for name, size in got_sections(p, entries).items():
                out.setdefault(name, {})[p] = size
        return out

    def weak_unmodelled(self, site: Site) -> bool:
        """A non-preemptible undefined weak target in a final link, of a type whose resolution
        by the linkers is not modelled: neither open-world nor resolved is known to be right."""
        vis = self._final_weak(site)
        return vis is not None and not weak_preemptible(self.model.final_link, vis) and not weak_modelled(site.spec)

    def script_defines(self, v: Var) -> bool:
        """Does the script give this symbol its value (so it is neither open nor undefined)?"""
        return bool(self._bound(v))

    def is_weak(self, si: int) -> bool:
        return (self.obj.symbol_info(si) >> 4) == STB_WEAK

    def for_weak(self, profile: str) -> "ObjectContext":
        """This context deciding a resolved undefined weak reference under one of its linkers
        alone (shares frame and layout). No veneers: ld.lld adds no thunk for an undefined
        weak target without a PLT entry (AArch64::needsThunk), and GNU ld's b/bl become NOPs."""
        view = copy.copy(self)
        view.policy = replace(self.policy.single(profile), veneers=False)
        view._veneer_secs = {}
        return view

    @cached_property
    def sites(self) -> tuple[Site, ...]:
        """Every row as a Site (library queries; the analysis builds only the rows it needs)."""
        return self.cols.sites()

    def range(self, spec):
        return self.policy.range(spec)

    def veneers(self, site: Site) -> bool:
        """May an out-of-range branch at this site rely on a veneer?"""
        return self.section_veneers(site.section)

    def section_veneers(self, index: int) -> bool:
        """May out-of-range branches in this section rely on veneers (model, no_veneers globs)?"""
        ok = self._veneer_secs.get(index)
        if ok is None:
            ok = self._veneer_secs[index] = self.policy.section_veneers(self.obj.sections[index].name)
        return ok

    def sections_veneers(self, indices: list[int]) -> list[bool]:
        """section_veneers of many sections at once."""
        return self.policy.sections_veneers([self.obj.sections[i].name for i in indices])

    def veneered(self, site: Site) -> bool:
        """Does a veneer repair this site's branch whenever it is out of range?"""
        return self.policy.veneered(site.spec, self.veneers(site), site.target_section == site.section)

    def open_vars(self, e) -> bool:
        """Does ``e`` depend on a variable the script gives no place: an undefined symbol it
        does not define, a GOT slot, or an item the selected linkers place apart (GNU ld's
        GOT header)? Such a value has no one as-linked value to judge."""
        unsettled = self.frame.unsettled
        return any(v[0] in ("sym", "got") and v in self.frame.slots or v in unsettled for v in e.vars)

    def unplaced(self, site: Site) -> str | None:
        """Why a script leaves this site out of the image, if it does."""
        if site.section in self.layout.discarded:
            return f"the script discards {self.obj.sections[site.section].name}"
        t = site.target_section
        if t is not None and t in self.layout.discarded:
            return f"the target section {self.obj.sections[t].name} is discarded by the script"
        for i in (site.section, t):
            if i is not None and i in self.layout.tbss_shadowed:
                return (f"{self.obj.sections[i].name} follows another TLS NOBITS input section in its output "
                        f"section: ld.lld lays them out one after another, the layout model gives them one place")
        return None

    def query_vars(self, site: Site) -> set:
        """The layout variables a query about ``site`` must constrain."""
        vars = set(self.expr(site).vars) | {("sec", site.section)}
        if site.anchor and not site.spec.formula.uses_got and site.anchor in self.frame.slots:
            vars.add(site.anchor)
        if TP_VAR in vars and self.frame.tls is not None:
            # every TLS section (or, under a script, the TLS output section's start): TP lies
            # below each, and a witness places them all
            vars |= set(self.frame.tls.sections)
        return vars

    def violations(self, site: Site) -> list:
        """What it means for ``site`` to fail: out of range (unless a veneer repairs it), misaligned."""
        from ..ir import NotMultiple, Outside
        spec, e = site.spec, self.expr(site)
        rng = self.range(spec)
        bad = []
        if rng is not None and not self.veneered(site):
            bad.append(Outside(e, rng[0], rng[1]))
        if spec.granule > 1 and not spec.formula.paged:
            bad.append(NotMultiple(e, spec.granule))
        return bad

    def expr(self, site: Site) -> Lin | PageDiff:
        """The site's value over this model's variables (script symbols substituted); made once
        per site (grouping, deciding and reporting each ask, and a substitution builds terms)."""
        hit = self._exprs.get(id(site))
        if hit is None or hit[0] is not site:
            hit = self._exprs[id(site)] = (site, self.frame.subst(site.value_expr))
        return hit[1]

    def name(self, v: Var) -> str:
        """A variable as expressions show it: base(.text), addr(sym), got(sym), point(...)."""
        kind = v[0]
        if kind == "pt":
            return f"point({self.layout.items[self.layout.pos[v]].label})"
        if kind == "aux":
            return f"aux{v[1]}"
        if kind == "tp":
            return "TP"
        if kind == "sec":
            return f"base({self.labels.get(v[1]) or self.obj.sections[v[1]].name})"
        if kind == "sym":
            return f"addr({self.obj.symbol_label(v[1])})"
        if kind == "got":
            what = f"got_{v[3]}" if len(v) > 3 else "got"
            return f"{what}({self.obj.symbol_label(v[1])}{v[2]:+#x})" if v[2] else f"{what}({self.obj.symbol_label(v[1])})"
        return "image_base"
