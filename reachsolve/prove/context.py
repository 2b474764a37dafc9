"""What every decision about one object shares: its columns, its frame, its link policy.

An :class:`ObjectContext` is built once per object and model. The column-wise
screen and the one-by-one deciders read it through the attributes and methods
below; none of them reaches into a frame or a layout beyond the frame
interface.
"""
from __future__ import annotations

from collections import Counter
from functools import cached_property

import numpy as np

from ..ir import Lin, PageDiff, Var
from ..model.frame import FreeFrame, Slot
from ..model.options import LayoutModel
from ..model.ordered import OrderedFrame
from ..objfile.elf import ObjectFile
from ..objfile.sites import SYM_ANCHOR, Site, SiteColumns
from ..script.chain import ScriptLayout
from ..target.catalogue import BY_NUMBER


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
        self.cols = cols = SiteColumns(obj)
        alloc = [s for s in obj.sections if s.alloc]
        secs = {s.index: Slot(s.name, s.footprint, s.addralign or 1) for s in alloc}
        self.layout = None
        self.assumptions: list[str] = []
        syms = [(("sym", sym), obj.symbol_name(sym), Slot(obj.symbol_label(sym), 0, align))
                for sym, align in sorted(cols.symbol_alignment().items())]
        got = np.zeros(len(cols), dtype=bool)
        for spec in BY_NUMBER.values():
            if spec.formula.uses_got:
                got |= cols.rtype == spec.number
        gots = {}
        for si, addend in sorted(set(zip(cols.symbol[got].tolist(), cols.addend[got].tolist()))):
            name = cols.label(si) if si and len(obj.symbols) else ""
            gots[("got", si, addend)] = Slot(f"GOT[{name}+{addend:#x}]", 8, 8)
        if model.script is not None:
            self.layout = ScriptLayout(model.script, obj, model.script_path, model.linker, model.defsym)
            self.frame = OrderedFrame(model, self.layout, secs, syms, gots)
            if self.layout.orphans:
                names = ", ".join(obj.sections[i].name for i in self.layout.orphans[:5])
                self.assumptions.append(f"{len(self.layout.orphans)} orphan sections ({names}...) lie anywhere in the "
                                        f"image; as linked, after the last output section")
            bound = self.frame.bound
            if gots:
                self.assumptions.append("GOT slots lie anywhere in the image: where the script's .got puts "
                                        "them is not modelled, so GOT-relative sites have no as-linked value")
        else:
            self.frame = FreeFrame(model, secs, {**{v: s for v, _, s in syms}, **gots})
            bound = lambda v: False  # noqa: E731
        names = Counter(s.name for s in alloc)
        slots = self.frame.slots
        self.labels = {s.index: (s.name if names[s.name] == 1 else f"{s.name}[{s.index}]")
                       for s in alloc if ("sec", s.index) in slots}
        for var, _, slot in syms:
            if not bound(var):
                self.assumptions.append(f"undefined {slot.label} lies in the image, aligned to {slot.align}")
        if (cols.weak & (cols.kind == SYM_ANCHOR)).any():
            self.assumptions.append("undefined weak symbols are taken to be defined somewhere in the image")
        self.stats: Counter = Counter()
        self.texts: dict = {}  # rendered symbolic parts, by shape
        self._veneer_secs: dict[int, bool] = {}
        self.feasible = self.frame.complete({})
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
            else:
                self.infeasible_why = (f"first-fit placement found no layout of the object's sections "
                                       f"({occupied:#x} bytes and their alignment) in the {model.image_max:#x}-byte "
                                       f"image; undecided")

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

    def veneered(self, site: Site) -> bool:
        """Does a veneer repair this site's branch whenever it is out of range?"""
        return self.policy.veneered(site.spec, self.veneers(site), site.target_section == site.section)

    def open_vars(self, e) -> bool:
        """Does ``e`` depend on a variable the script gives no place: an undefined symbol it
        does not define, or a GOT slot? Such a value has no as-linked value to judge."""
        return any(v[0] in ("sym", "got") and v in self.frame.slots for v in e.vars)

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
        """The site's value over this model's variables (script symbols substituted)."""
        return self.frame.subst(site.value_expr)

    def name(self, v: Var) -> str:
        """A variable as expressions show it: base(.text), addr(sym), got(sym), point(...)."""
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
