"""The unknowns of one object's layout under a model, and concrete layouts.

A frame knows every variable's size and alignment. It builds the model's
constraints for the few variables one query needs (a sound relaxation:
dropping the other sections only adds layouts), bounds expressions by
interval arithmetic, completes a solver's partial answer into a full layout
by placing every other section, and validates a full layout with plain
integers. The last two never touch the solver, so a counterexample is
checked on an independent path.

:class:`Frame` states the interface; :class:`FreeFrame` is the free model
and :class:`reachsolve.model.ordered.OrderedFrame` the script models. A frame
is complete when built: its variables never change afterwards, so what it
derives from them is computed once.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass
from functools import cached_property
from typing import AbstractSet as Set, Iterable, Mapping, NamedTuple, Protocol

import numpy as np

from ..ir import BASE, INF, Between, Constraint, Disjoint, Lin, Multiple, PageDiff, Var
from ..target.catalogue import TCB_SIZE, TP_VAR, thread_pointer
from .options import ADDRESS_SPACE, LayoutModel


def clamp(idx: np.ndarray, n: int) -> np.ndarray:
    """np.clip(idx, 0, n - 1) for an index column (n >= 1), without np.clip's fixed cost."""
    return np.minimum(np.maximum(idx, 0), n - 1)


class Slot(NamedTuple):
    label: str
    size: int      # bytes of address space it occupies (0: a point)
    align: int


# Alignment padding smaller than this is not offered to later sections: thousands of
# 4-byte holes would make every later placement scan them all (quadratic on kernels).
KEEP_PADDING = 256


@dataclass(frozen=True)
class TlsSegment:
    """The PT_TLS segment as one object's TLS sections constrain it, and the thread pointer
    TP of TPREL values (catalogue.TP_VAR: TP = alignDown(p_vaddr - 16, p_align)).

    What every link satisfies: the segment starts at or below each TLS section, so TP lies
    at least 16 bytes below each; TP is a multiple of p_align, a power of two no smaller
    than any TLS section's alignment; .tdata (contents) comes before .tbss (ld.lld and
    GNU ld both order PT_TLS so). Assumed, and stated in the report: p_align is at most
    ``max_align`` (16, or the object's largest TLS alignment), so TP lies less than
    16 + max_align below the segment, which starts inside the image. Other objects' TLS
    may lie between the segment start and this object's: no bound from above."""

    data: tuple[tuple[Var, int], ...]  # (section, size) with contents (.tdata)
    bss: tuple[Var, ...]               # SHT_NOBITS TLS sections (.tbss)
    align: int                         # the largest alignment among them

    @property
    def sections(self) -> tuple[Var, ...]:
        return tuple(v for v, _ in self.data) + self.bss

    @property
    def max_align(self) -> int:
        return max(self.align, TCB_SIZE)

    @property
    def below(self) -> int:
        """TP - image start is at least -below."""
        return TCB_SIZE + self.max_align - 1

    def constraints(self, vars, base: Lin) -> list[Constraint]:
        tp = Lin.var(TP_VAR)
        out: list[Constraint] = [Between(tp - base, -self.below, INF)]
        if self.align > 1:
            out.append(Multiple(tp, self.align))
        named = set(vars)
        for v in self.sections:
            if v in named:
                out.append(Between(Lin.var(v) - tp, TCB_SIZE, INF))
        for b in self.bss:
            for t, size in self.data:
                if b in named and t in named:
                    out.append(Between(Lin.var(b) - Lin.var(t), size, INF))
        return out

    def tp_of(self, env: Mapping[Var, int], base: int) -> int:
        """TP of the segment when it starts at this object's lowest TLS section."""
        starts = [env[v] for v in self.sections if v in env]
        return thread_pointer(min(starts) if starts else base + TCB_SIZE, self.align)

    def problems(self, env: Mapping[Var, int], base: int) -> list[str]:
        tp = env.get(TP_VAR)
        if tp is None:
            return ["the thread pointer has no address"]
        out = []
        if tp % self.align:
            out.append(f"TP {tp:#x} is not aligned to {self.align}")
        if tp < base - self.below:
            out.append(f"TP {tp:#x} lies more than {self.below:#x} bytes below the image")
        for v in self.sections:
            if v in env and env[v] - tp < TCB_SIZE:
                out.append(f"TLS section at {env[v]:#x} lies less than {TCB_SIZE} bytes above TP {tp:#x}")
        for b in self.bss:
            for t, size in self.data:
                if b in env and t in env and env[b] < env[t] + size:
                    out.append(f".tbss at {env[b]:#x} lies below the end of .tdata at {env[t] + size:#x}")
        return out


class Frame(Protocol):
    """What the deciders ask of a layout model, whichever it is."""

    model: LayoutModel
    slots: Mapping[Var, Slot]   # every variable with a size and an alignment
    base_fixed: bool            # is the image's start address known?
    base: Lin                   # the image's start
    unsettled: Set[Var]         # items with no one as-linked address (the selected linkers differ)

    def subst(self, e): ...                                  # a site value over the frame's variables
    def value(self, t: Lin, env: Mapping[Var, int]) -> int: ...  # a term in a full layout
    def domain(self, vars: Iterable[Var]) -> list[Constraint]: ...          # a relaxation: UNSAT is a proof
    def padded_domain(self, vars: Iterable[Var]) -> list[Constraint] | None: ...  # room for every padding
    def span(self, d: Lin) -> tuple[int, int]: ...           # interval bounds, a proof
    def always_multiple(self, d: Lin, g: int) -> bool: ...
    def column_align(self, kind, idx, n): ...                # the same two facts, column-wise
    def pair_spans(self, kind, target, place, n): ...
    def complete(self, partial: Mapping[Var, int], focus=None) -> dict | None: ...
    def problems(self, env: Mapping[Var, int]) -> list[str]: ...  # empty: a valid layout


class FreeFrame:
    """The free model: every slot anywhere in one bounded image, aligned and disjoint."""

    def __init__(self, model: LayoutModel, sections: Mapping[int, Slot], extra: Mapping[Var, Slot] = {},
                 tls: TlsSegment | None = None, defined: Mapping[Var, Lin] = {}):
        self.model = model
        self._defined = dict(defined)  # undefined symbols --defsym gives a value: terms, not slots
        self.slots: dict[Var, Slot] = {("sec", i): s for i, s in sections.items()}
        self.slots.update(extra)
        self.base_fixed = model.image_base is not None
        self.base: Lin = Lin.of(model.image_base) if self.base_fixed else Lin.var(BASE)
        self.tls = tls  # the TLS segment, when a site's value is TP-relative
        self.unsettled: frozenset | set = frozenset()  # see OrderedFrame

    def subst(self, e):
        """A site value over this frame's variables: a --defsym'd symbol is its term."""
        if not self._defined:
            return e
        if isinstance(e, PageDiff):
            return PageDiff(self._subst_lin(e.a), self._subst_lin(e.b))
        return self._subst_lin(e)

    def _subst_lin(self, e: Lin) -> Lin:
        if not any(v in self._defined for v, _ in e.coeffs):
            return e
        out = Lin.of(e.const)
        for v, c in e.coeffs:
            t = self._defined.get(v, Lin.var(v))
            out = out + Lin(tuple((w, k * c) for w, k in t.coeffs), t.const * c)
        return out

    def bound(self, var: Var) -> bool:
        """Does --defsym give this undefined symbol its value?"""
        return var in self._defined

    def value(self, t: Lin, env: Mapping[Var, int]) -> int:
        return t.evaluate(env)

    @property
    def occupied(self) -> int:
        return sum(s.size for s in self.slots.values())

    # -- constraints for a query ----------------------------------------------
    def padded_domain(self, vars: Iterable[Var]) -> None:
        """None: the free model has no order, so no padding between its sections to reserve."""
        return None

    def domain(self, vars: Iterable[Var]) -> list[Constraint]:
        """The model's constraints restricted to ``vars`` (plus the image base)."""
        vars = set(vars)
        vs = sorted({v for v in vars if v not in (BASE, TP_VAR)})
        top = self.model.image_max
        out: list[Constraint] = []
        if not self.base_fixed:
            out.append(Between(Lin.var(BASE), 0, ADDRESS_SPACE - top))
        if self.tls is not None and TP_VAR in vars:
            out += self.tls.constraints(vs, self.base)
        for v in vs:
            s = self.slots[v]
            x = Lin.var(v)
            out.append(Between(x - self.base, 0, top - s.size))
            if s.align > 1:
                out.append(Multiple(x, s.align))
        for i, a in enumerate(vs):
            for b in vs[i + 1:]:
                sa, sb = self.slots[a].size, self.slots[b].size
                if sa or sb:
                    out.append(Disjoint(a, sa, b, sb))
        return out

    # -- interval arithmetic (sound, solver-free bounds) ----------------------------
    def span(self, d: Lin) -> tuple[int, int]:
        """Bounds of ``d`` that hold in every layout: each variable lies inside the image.

        Looser than the solver's (it ignores disjointness and alignment) but a proof.
        """
        top = self.model.image_max
        lo = hi = d.const
        total = 0
        for v, c in d.coeffs:
            total += c
            if v == TP_VAR:  # TP - image start lies in [-below, top - 16]
                below = self.tls.below if self.tls is not None else INF
                lo += min(-c * below, c * (top - TCB_SIZE))
                hi += max(-c * below, c * (top - TCB_SIZE))
                continue
            room = top - self.slots[v].size
            lo += min(0, c * room)
            hi += max(0, c * room)
        if total:
            if self.base_fixed:
                lo += total * self.model.image_base
                hi += total * self.model.image_base
            else:
                lo += min(0, total * (ADDRESS_SPACE - top))
                hi += max(0, total * (ADDRESS_SPACE - top))
        return lo, hi

    def always_multiple(self, d: Lin, g: int) -> bool:
        """Is ``d`` (without its constant) a multiple of ``g`` in every layout?"""
        return all((c * self._align_of(v)) % g == 0 for v, c in d.coeffs)

    def _align_of(self, v: Var) -> int:
        if v == TP_VAR:
            return self.tls.align if self.tls is not None else 1
        return self.slots[v].align

    # -- the same two facts, for columns of sites (screen.py) ---------------------------
    # Columns name a variable by kind (1: section, 2: undefined symbol) and index.
    # Bounds are int64, so frames whose numbers could leave it decline (ok False).
    LIMIT = 1 << 60

    @cached_property
    def _arrays(self) -> dict:
        return {}

    def _var_arrays(self, kind: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(present, size, align) per index of one kind of variable."""
        key = (kind, n)
        cache = self._arrays
        if key in cache:
            return cache[key]
        present = np.zeros(n, dtype=bool)
        size = np.zeros(n, dtype=np.int64)
        align = np.ones(n, dtype=np.int64)
        tag = "sec" if kind == 1 else "sym"
        for v, s in self.slots.items():
            if v[0] == tag and 0 <= v[1] < n and s.size < self.LIMIT and s.align < self.LIMIT:
                present[v[1]], size[v[1]], align[v[1]] = True, s.size, s.align
        cache[key] = present, size, align
        return present, size, align

    def _var_columns(self, n: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(present, size, align) of the sections, then the symbols, then one entry for a row
        that names neither (absent, size 0, alignment 1): one gather serves every kind."""
        key = ("all", n[0], n[1])
        cache = self._arrays
        hit = cache.get(key)
        if hit is None:
            secs, syms = self._var_arrays(1, n[0]), self._var_arrays(2, n[1])
            hit = cache[key] = tuple(np.concatenate([a, b, np.array([x], dtype=a.dtype)])
                                     for a, b, x in zip(secs, syms, (False, 0, 1)))
        return hit

    @staticmethod
    def _var_rows(kind: np.ndarray, idx: np.ndarray, n: tuple[int, int]) -> np.ndarray:
        """Each row's entry in :meth:`_var_columns` (an index clamped into its kind's range)."""
        lo = np.maximum(idx, 0)
        return np.where(kind == 1, np.minimum(lo, n[0] - 1),
                        np.where(kind == 2, np.minimum(lo, n[1] - 1) + n[0], n[0] + n[1]))

    def column_align(self, kind: np.ndarray, idx: np.ndarray, n: tuple[int, int]):
        """(known, alignment) of each variable named by the columns; ``n``: how many sections, symbols."""
        present, _, align = self._var_columns(n)
        j = self._var_rows(kind, idx, n)
        return present[j], align[j]

    def pair_spans(self, kind: np.ndarray, target: np.ndarray, place: np.ndarray, n: tuple[int, int]):
        """(ok, lo, hi): bounds of var(target) - base(place) for distinct variables, as :meth:`span`
        gives them for that difference (each variable inside the image; its size is room lost)."""
        top = self.model.image_max
        if top >= self.LIMIT:
            z = np.zeros(len(place), dtype=np.int64)
            return np.zeros(len(place), dtype=bool), z, z
        present, size, _ = self._var_columns(n)
        t = self._var_rows(kind, target, n)
        j = clamp(place, n[0])  # a section: the first n[0] entries
        return present[t] & present[j], -(top - size[j]), top - size[t]

    # -- concrete layouts ---------------------------------------------------------
    def complete(self, partial: Mapping[Var, int], focus=None) -> dict[Var, int] | None:
        """Place every slot the partial layout leaves open; None if they do not fit."""
        env = dict(partial)
        base = self.model.image_base if self.base_fixed else env.get(BASE)
        if base is None:
            base = 0
            env[BASE] = 0
        end = base + self.model.image_max
        taken = sorted((env[v], env[v] + s.size) for v, s in self.slots.items() if v in env and s.size)
        gaps: list[list[int]] = []
        cur = base
        for lo, hi in taken:
            if lo > cur:
                gaps.append([cur, lo])
            cur = max(cur, hi)
        if cur < end:
            gaps.append([cur, end])
        # Symbols already placed are points that no section may straddle: split there.
        for p in sorted(env[v] for v, s in self.slots.items() if v in env and not s.size):
            for i, g in enumerate(gaps):
                if g[0] < p < g[1]:
                    gaps[i:i + 1] = [[g[0], p], [p, g[1]]]
                    break
        # Sections first (largest alignment, then size), points last: a point placed
        # early could otherwise end up inside a section placed after it.
        todo = [v for v in self._placing_order if v not in env]
        slots = self.slots
        for v in todo:
            s = slots[v]
            size, align = s.size, s.align
            for k, g in enumerate(gaps):
                lo = g[0]
                at = -(-lo // align) * align
                if at + size <= g[1]:
                    env[v] = at
                    if size:
                        g[0] = at + size
                        if g[0] == g[1]:
                            del gaps[k]  # used up: later slots need not look at it
                        if at - lo >= KEEP_PADDING:
                            gaps.insert(k, [lo, at])
                    break
            else:
                return None
        if self.tls is not None:
            self._complete_tls(env, partial, base, end)
        for v, t in self._defined.items():
            env[v] = t.evaluate(env)
        return env

    def _complete_tls(self, env: dict, partial: Mapping[Var, int], base: int, end: int) -> None:
        """Move .tbss points that completion placed above the end of .tdata (a .tbss takes
        no address space here), then set TP from the segment's start if the solver did not."""
        tls = self.tls
        data_end = max((env[t] + size for t, size in tls.data), default=None)
        if data_end is not None:
            full = sorted((env[v], env[v] + s.size) for v, s in self.slots.items() if s.size)
            for b in tls.bss:
                if b in partial or env[b] >= data_end:
                    continue
                a = self.slots[b].align
                at = -(-data_end // a) * a
                for lo, hi in full:  # a point may touch a section's ends, never lie inside
                    if lo < at < hi:
                        at = -(-hi // a) * a
                if at <= end:
                    env[b] = at
        if TP_VAR not in env:
            env[TP_VAR] = tls.tp_of(env, base)

    @cached_property
    def _placing_order(self) -> list[Var]:
        slots = self.slots
        return sorted(slots, key=lambda v: (not slots[v].size, -slots[v].align, -slots[v].size, v))

    def problems(self, env: Mapping[Var, int]) -> list[str]:
        """Every way ``env`` breaks the model (empty: a valid layout)."""
        out = []
        base = self.model.image_base if self.base_fixed else env.get(BASE)
        if base is None:
            return ["no image base"]
        top = self.model.image_max
        if not 0 <= base <= ADDRESS_SPACE - top:
            out.append(f"image base {base:#x} leaves no room for the image")
        spans = []
        for v, s in self.slots.items():
            if v not in env:
                out.append(f"{s.label} has no address")
                continue
            a = env[v]
            if a % s.align:
                out.append(f"{s.label} at {a:#x} is not aligned to {s.align}")
            if not base <= a or a + s.size > base + top:
                out.append(f"{s.label} [{a:#x}, {a + s.size:#x}) leaves the image [{base:#x}, {base + top:#x})")
            spans.append((a, a + s.size, s.label))
        full = sorted(x for x in spans if x[1] > x[0])
        for (lo1, hi1, n1), (lo2, hi2, n2) in zip(full, full[1:]):
            if lo2 < hi1:
                out.append(f"{n1} and {n2} overlap")
        starts = [x[0] for x in full]
        for lo, hi, n in spans:
            if hi == lo:
                k = bisect.bisect_left(starts, lo) - 1
                if k >= 0 and full[k][0] < lo < full[k][1]:
                    out.append(f"{n} at {lo:#x} lies inside {full[k][2]}")
        if self.tls is not None:
            out += self.tls.problems(env, base)
        return out
