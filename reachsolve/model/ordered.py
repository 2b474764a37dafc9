"""Layouts that follow a linker script: "ordered" (any build) and "as-linked" (this build).

The chain walk (reachsolve.script.chain) gives the object's sections in script
order, with the points where the location counter is set or a symbol defined.
In the ordered model every item keeps its place in the chain, but wherever an
input description could take more input (other objects, or this object's own
code grown in another configuration) the gap before an item is free; the
image bound and the script's ASSERTs are what cap it. The as-linked layout is
the chain packed with alignment padding only, as the linker lays this object
out when it is the first file of the link (as vmlinux.o is in the kernel's
final link): growth lies after each of its sections and after each input
description, never before its first section.
"""
from __future__ import annotations

import itertools
from functools import cached_property
from typing import Mapping, Sequence

import numpy as np

from ..errors import ModelError
from ..ir import INF, AuxOp, Between, Constraint, Lin, Multiple, Var, constraint_vars, holds
from ..script.chain import ScriptLayout
from ..target.catalogue import TP_VAR
from ..target.policy import GOT_HEADER
from .chainshift import ChainShift, Layered as _Layered, running as _running
from .frame import FreeFrame, Slot, TlsSegment, clamp
from .options import ADDRESS_SPACE

BIG = INF


class OrderedFrame(FreeFrame):
    """The layout variables of a script-ordered image (see the module docstring)."""

    def __init__(self, model, layout: ScriptLayout, sections: Mapping[int, Slot],
                 symbols: Sequence[tuple[Var, str, Slot]] = (), extra: Mapping[Var, Slot] = {},
                 tls: TlsSegment | None = None):
        # An undefined symbol that the script defines takes the script's value; the
        # others lie anywhere in the image, as orphan sections do.
        self._sym_terms: dict[Var, Lin] = {}
        free: dict[Var, Slot] = {}
        for var, name, slot in symbols:
            t = layout.symbol_term(name)
            if t is None:
                free[var] = slot
            else:
                self._sym_terms[var] = t
        free.update(extra)
        super().__init__(model, {i: s for i, s in sections.items()
                                 if ("sec", i) in layout.pos or i in layout.orphans}, free, defined=self._sym_terms)
        if tls is not None:
            self.tls = self._tls_segment(layout, tls)
        self.L = layout
        items = layout.items
        # prefix[k]: least distance from the start of item 0 to the start of item k;
        # padded[k]: the same with every alignment's worst padding; free[k]: how many
        # items up to k may be preceded by a gap of any size.
        pre, size, align = [it.pre for it in items], [it.size for it in items], [it.align for it in items]
        self.prefix = _running(pre, size)
        self.padded = _running([p + a - 1 for p, a in zip(pre, align)], size)
        self.free = _running([int(it.gap or it.pre_expr is not None or it.fixed is not None) for it in items])
        # eff_align[k]: what every layout's address of item k is a multiple of. Beyond
        # the item's own alignment, an item that nothing may precede directly (no gap,
        # no fixed address, no layout-dependent `. +=`) starts at the rounded-up end of
        # its predecessor, so it inherits the alignment that end has, e.g. a 1-aligned
        # section right after `. = ALIGN(8)` is 8-aligned in every layout.
        self.eff_align = align[:]
        for k in [k for k, it in enumerate(items) if k and not it.gap and it.fixed is None and it.pre_expr is None]:
            step = size[k - 1] + pre[k]
            prev = self.eff_align[k - 1]
            self.eff_align[k] = max(align[k], min(prev, step & -step) if step else prev)
        self.first = items[0].var
        self.last = items[-1]
        self.assert_cons = layout.assert_cons
        # Variables every query carries: the image ends, fixed points and ASSERT operands.
        self._always = {self.first, self.last.var} | {it.var for it in items if it.fixed_term is not None}
        for _, c in self.assert_cons:
            self._always |= set(constraint_vars(c))
        ft = items[0].fixed_term
        self.start_const = ft.const if ft is not None and not ft.coeffs else None
        self.base_fixed = self.start_const is not None
        self.base = Lin.of(self.start_const) if self.base_fixed else Lin.var(self.first)
        self.as_linked = self._walk({})
        first_miss = self._first_miss
        if self.as_linked is None:
            raise ModelError(f"{layout.path}: the script's layout does not settle (symbols keep moving)")
        self._shift = ChainShift(self._rows, [it.gap for it in items], self.as_linked, layout.value, layout.aux,
                                 layout.pos)
        # Where the selected linkers size a linker-made section differently (GNU ld's GOT header),
        # an item lies, as linked, between its least address (as_linked: the chain holds the
        # least sizes) and its greatest in each linker's own walk.
        self.as_linked_hi = dict(self.as_linked) if layout.alt_rows else self.as_linked  # (neither changes later)
        for prof, alt in sorted(layout.alt_rows.items()):
            rows = []
            for k, (var, pre, align, size, fixed_term, pre_term) in enumerate(self._rows):
                size, align = alt.get(k, (size, align))
                rows.append((var, pre, align, size, fixed_term, pre_term))
            # Items before the first resized one and the first forward reference: as linked.
            env = self._walk({}, rows, (self.as_linked, min(min(alt, default=0), first_miss)))
            if env is None:
                raise ModelError(f"{layout.path}: the script's layout does not settle (symbols keep moving)")
            for v, x in env.items():
                if x > self.as_linked_hi[v]:
                    self.as_linked_hi[v] = x
        self.unsettled = {v for v, x in self.as_linked_hi.items() if x != self.as_linked[v]} if layout.alt_rows else set()
        self._got_frame(extra)

    def _got_frame(self, extra: Mapping[Var, Slot]) -> None:
        """The GOT entries' place: within the linker's .got when the script places it (the
        chain item ("syn", ".got")), after each selected linker's header, in an order that
        is not modelled; other objects' entries may follow ours, up to the next item."""
        L = self.L
        self.got_item = ("syn", ".got") if ("syn", ".got") in L.pos else None
        self.got_vars = sorted(v for v in extra if v[0] == "got") if self.got_item else []
        if self.got_item is None:
            return
        k = L.pos[self.got_item]
        profiles = [p for p in self.model.policy.profiles if p in GOT_HEADER]
        self.got_header = (min(GOT_HEADER[p] for p in profiles), max(GOT_HEADER[p] for p in profiles))
        self.got_bytes = sum(self.slots[v].size for v in self.got_vars)
        self.got_next = L.items[k + 1].var if k + 1 < len(L.items) else None

    def got_constraints(self, v: Var) -> list[Constraint]:
        """Where GOT entry ``v`` lies relative to the .got item (see _got_frame)."""
        g, s = Lin.var(self.got_item), self.slots[v].size
        lo, hi = self.got_header
        if self.model.placement == "as-linked":  # this build: our entries alone fill the .got
            return [Between(Lin.var(v) - g, lo, hi + self.got_bytes - s)]
        cons = [Between(Lin.var(v) - g, lo, BIG)]
        if self.got_next is not None:
            cons.append(Between(Lin.var(self.got_next) - Lin.var(v), s, BIG))
        return cons

    @staticmethod
    def _tls_segment(layout: ScriptLayout, tls: TlsSegment) -> TlsSegment | None:
        """Under a script, PT_TLS starts at (or, with other objects' TLS output sections, below)
        the start of the output section that holds this object's first TLS section; the
        script orders .tdata and .tbss. TP is constrained against that start point."""
        placed = sorted((layout.pos[v], v) for v in tls.sections if v in layout.pos)
        if not placed:  # orphans only: the segment starts at or below each of them
            return TlsSegment((), tuple(v for v in tls.sections if v[1] in layout.orphans), tls.align)
        out = layout.items[placed[0][0]].out
        start = layout.out_start.get(out)
        if start is None or len(start.coeffs) != 1:
            return TlsSegment((), tuple(v for _, v in placed), tls.align)
        var = start.coeffs[0][0]
        return TlsSegment((), (var,), max(tls.align, layout.items[layout.pos[var]].align))

    @cached_property
    def as_linked_tp(self) -> int:
        """TP as linked: the segment starts at the object's first TLS section (this build)."""
        return self.tls.tp_of(self.as_linked, self.as_linked[self.first])

    # -- symbols of the object that the script defines (subst and bound: FreeFrame's) ------
    def value(self, t: Lin, env: Mapping[Var, int]) -> int:
        return self.L.value(t, env)

    # -- distances -----------------------------------------------------------------------
    def mind(self, a: Var, b: Var) -> int:
        return self.prefix[self.L.pos[b]] - self.prefix[self.L.pos[a]]

    def mind_padded(self, a: Var, b: Var) -> int:
        return self.padded[self.L.pos[b]] - self.padded[self.L.pos[a]]

    def _end_room(self, v: Var) -> int:
        """Least bytes from the start of ``v`` to the end of the image."""
        return self.prefix[len(self.L.items)] - self.prefix[self.L.pos[v]]

    def _closure(self, vars) -> set:
        out, todo = set(), list(vars)
        while todo:
            v = todo.pop()
            if v in out:
                continue
            out.add(v)
            a = self.L.aux.get(v)
            if a is not None:
                todo.extend(a.arg.vars)
            it = self.L.items[self.L.pos[v]] if v in self.L.pos else None
            if it is not None and it.fixed_term is not None:
                todo.extend(it.fixed_term.vars)
            if v[0] == "got" and self.got_item is not None:
                todo += [self.got_item] + ([self.got_next] if self.got_next is not None else [])
        return out

    def padded_domain(self, vars) -> list[Constraint]:
        """domain() with every alignment's worst padding reserved between chain items: not a
        proof, but its witnesses can always be completed (a search restriction)."""
        return self.domain(vars, strict=True)

    def domain(self, vars, strict: bool = False) -> list[Constraint]:
        """The model restricted to ``vars``. Distances between chain items are at least
        the bytes between them (a relaxation, so UNSAT is a proof); ``strict``: see
        padded_domain."""
        top = self.model.image_max
        mind = self.mind_padded if strict else self.mind
        vs = self._closure(set(vars) | self._always)
        chain = sorted((v for v in vs if v in self.L.pos), key=self.L.pos.__getitem__)
        cons: list[Constraint] = []
        first = Lin.var(self.first)
        pos = self.L.pos
        for a, b in zip(chain, chain[1:]):
            # With no gap between them, b is at most every padding away from a.
            closed = self.free[pos[b]] == self.free[pos[a]]
            cons.append(Between(Lin.var(b) - Lin.var(a), mind(a, b), self.mind_padded(a, b) if closed else BIG))
        for v in chain:
            it = self.L.items[self.L.pos[v]]
            if self.eff_align[pos[v]] > 1:
                cons.append(Multiple(Lin.var(v), self.eff_align[pos[v]]))
            if it.fixed_term is not None:
                cons.append(Between(Lin.var(v) - it.fixed_term, 0, 0))
            cons.append(Between(Lin.var(v) - first, self.mind(self.first, v), top - self._end_room(v)))
            if self.model.placement == "as-linked":  # this build (as each selected linker makes it)
                cons.append(Between(Lin.var(v), self.as_linked[v], self.as_linked_hi[v]))
            elif self.start_const is not None:
                # Growth only ever adds bytes: from a fixed start, nothing lies lower than as linked.
                cons.append(Between(Lin.var(v), self.as_linked[v], BIG))
        cons.append(Between(first, 0, ADDRESS_SPACE - top))
        if self.tls is not None and TP_VAR in vs:
            cons += self.tls.constraints(vs, first)
            if self.model.placement == "as-linked":
                cons.append(Between(Lin.var(TP_VAR), self.as_linked_tp, self.as_linked_tp))
        for v in vs:
            if v in self.L.pos or v in self.L.aux or v == TP_VAR:
                continue
            s = self.slots[v]
            cons.append(Between(Lin.var(v) - first, 0, top - s.size))
            if s.align > 1:
                cons.append(Multiple(Lin.var(v), s.align))
            if v[0] == "got" and self.got_item is not None:
                cons += self.got_constraints(v)
        for v in vs:
            a = self.L.aux.get(v)
            if a is None:
                continue
            cons += a.op.defining(Lin.var(v), a.arg, a.k)
        cons += [c for _, c in self.assert_cons]
        return cons

    def _interval(self, v: Var) -> tuple[int, int] | None:
        top = self.model.image_max
        if self.start_const is None:
            return None
        f = self.start_const
        if v in self.L.pos:
            return self.as_linked[v], f + top - self._end_room(v)
        if v in self.slots:
            return f, f + top - self.slots[v].size
        return None

    def span(self, d: Lin) -> tuple[int, int]:
        top = self.model.image_max
        cs = dict(d.coeffs)
        if len(cs) == 2 and sorted(cs.values()) == [-1, 1] and all(v in self.L.pos for v in cs):
            t = next(v for v, c in cs.items() if c == 1)
            p = next(v for v, c in cs.items() if c == -1)
            a, b = sorted((t, p), key=self.L.pos.__getitem__)
            lo = self.mind(a, b)
            hi = top - self.mind(self.first, a) - self._end_room(b)
            return (d.const + lo, d.const + hi) if t == b else (d.const - hi, d.const - lo)
        lo = hi = d.const
        for v, c in d.coeffs:
            iv = self._interval(v)
            if iv is None:
                return -BIG, BIG
            lo += min(c * iv[0], c * iv[1])
            hi += max(c * iv[0], c * iv[1])
        return lo, hi

    @cached_property
    def _chain(self) -> dict:
        return {}

    def _chain_arrays(self, n: int):
        """(in chain, position, item alignment) per section index; prefix sums as int64."""
        cache = self._chain
        if n not in cache:
            inchain = np.zeros(n, dtype=bool)
            pos = np.zeros(n, dtype=np.int64)
            align = np.ones(n, dtype=np.int64)
            for v, k in self.L.pos.items():
                it = self.L.items[k]
                if v[0] == "sec" and 0 <= v[1] < n and self.eff_align[k] < self.LIMIT \
                        and v[1] not in self.L.tbss_shadowed:
                    inchain[v[1]], pos[v[1]], align[v[1]] = True, k, self.eff_align[k]
            prefix = np.array(self.prefix, dtype=object)
            if max(self.prefix) >= self.LIMIT or min(self.prefix) < 0:
                inchain[:] = False
                prefix = np.zeros(len(self.prefix), dtype=np.int64)
            cache[n] = inchain, pos, align, prefix.astype(np.int64)
        return cache[n]

    def column_align(self, kind, idx, n):
        ok, align = super().column_align(kind, idx, n)
        inchain, _, al, _ = self._chain_arrays(n[0])
        rows = (kind == 1) & inchain[clamp(idx, n[0])]
        align[rows] = al[idx[rows]]
        return ok | rows, align

    def pair_spans(self, kind, target, place, n):
        """As :meth:`span` for two chain sections: the script's order fixes which comes first."""
        top = self.model.image_max
        inchain, pos, _, prefix = self._chain_arrays(n[0])
        t = clamp(target, n[0])
        p = clamp(place, n[0])
        ok = (kind == 1) & inchain[t] & inchain[p] & (pos[t] != pos[p]) & (top < self.LIMIT)
        a, b = np.minimum(pos[t], pos[p]), np.maximum(pos[t], pos[p])
        lo = prefix[b] - prefix[a]
        hi = top - (prefix[a] - prefix[0]) - (prefix[len(self.L.items)] - prefix[b])
        after = pos[t] > pos[p]
        return ok, np.where(after, lo, -hi), np.where(after, hi, -lo)

    def always_multiple(self, d: Lin, g: int) -> bool:
        def align(v):
            if v in self.L.pos:
                return self.eff_align[self.L.pos[v]]
            if v in self.slots:
                return self.slots[v].align
            a = self.L.aux.get(v)
            return a.k if a is not None and a.op is AuxOp.ALIGN_UP else 1
        return all((c * align(v)) % g == 0 for v, c in d.coeffs)

    # -- concrete layouts ------------------------------------------------------------------
    @cached_property
    def _rows(self) -> list[tuple]:
        return [(it.var, it.pre, it.align, it.size, it.fixed_term, it.pre_term) for it in self.L.items]

    def _walk(self, extra: Mapping[int, int], rows=None, seed: tuple[dict, int] | None = None) -> dict | None:
        """Positions of every item with ``extra`` bytes of gap before some; None if unsettled.
        ``rows``: the chain as another linker sizes it (default: the chain); ``seed``: (a walk,
        k) whose first k items this walk places alike. A pass repeats the last one up to its
        first forward reference (a term reading what it has not placed), so it starts there."""
        if rows is None and seed is None and extra:
            shifted = self._shift.walk(extra)  # the same walk, over columns (chainshift.py)
            if shifted is not None:
                self._first_miss = shifted[1]
                return shifted[0].env()
        rows = self._rows if rows is None else rows
        value = self.L.value
        first, k0 = seed if seed is not None else ({}, 0)
        prev: dict = {}   # the last pass (a seed is not one: its later items are another walk's)
        self._first_miss = len(rows)
        for _ in range(12):
            env: dict = dict(itertools.islice((prev or first).items(), k0))
            look, miss = _Layered(env, prev, self.L.aux), len(rows)
            end = env[rows[k0 - 1][0]] + rows[k0 - 1][3] if k0 else 0
            for k in range(k0, len(rows)):
                var, pre, align, size, fixed_term, pre_term = rows[k]
                if fixed_term is not None:
                    try:
                        start = value(fixed_term, look)
                    except KeyError:
                        start = end
                    miss = k if look.missed and miss > k else miss
                else:
                    base = end + pre
                    if extra:
                        base += extra.get(k, 0)
                    if pre_term is not None:
                        try:
                            base += max(0, value(pre_term, look))
                        except KeyError:
                            pass
                        miss = k if look.missed and miss > k else miss
                    start = -(-base // align) * align if align > 1 else base
                env[var] = start
                end = start + size
            if env == prev or not look.missed:  # (a pass that read only what it placed would repeat)
                self._first_miss = miss
                return env
            prev, k0 = env, miss
        return None

    def complete(self, partial: Mapping[Var, int], focus=None) -> dict | None:
        """Walk the chain, inserting growth so that the ``focus`` items (default: all given)
        land where ``partial`` puts them; other items just follow. None if that is impossible."""
        pos = self.L.pos
        if focus is not None:
            focus = self._closure(focus)  # a script symbol's auxiliary term stands for chain items
        targets = sorted((pos[v], x) for v, x in partial.items() if v in pos and (focus is None or v in focus))
        extra: dict[int, int] = {}
        env = None
        for _ in range(4 * len(targets) + 8):
            shifted = self._shift.walk(extra)  # None: no growth, or a chain walked item by item
            shifted = shifted and shifted[0]
            env = None if shifted is not None else self._walk(extra) if extra else self.as_linked
            if shifted is None and env is None:
                return None
            at = shifted.at if shifted is not None else (lambda k: env[self.L.items[k].var])
            wrong = next(((k, x) for k, x in targets if at(k) != x), None)
            if wrong is None:
                break
            k, x = wrong
            have = at(k)
            if have > x:
                return None
            j = next((j for j in range(k, -1, -1) if self.L.items[j].gap and self.L.items[j].fixed is None), None)
            if j is None:
                return None
            extra[j] = extra.get(j, 0) + (x - have)
        else:
            return None
        env = shifted.env() if shifted is not None else dict(env)
        end = env[self.last.var] + self.last.size
        if self.got_item is not None:  # our entries fill the .got after the least header
            at = env[self.got_item] + self.got_header[0]
            for v in self.got_vars:
                env[v] = partial.get(v, at)
                at += self.slots[v].size
        for v, s in sorted(self.slots.items()):
            if v in env:
                continue
            if v in partial:  # (symbols the script defines are never slots: they are set below)
                env[v] = partial[v]
            else:
                at = -(-end // s.align) * s.align
                env[v] = at
                end = at + s.size
        for v, t in self._sym_terms.items():
            env[v] = self.L.value(t, env)
        if self.tls is not None:
            env[TP_VAR] = partial[TP_VAR] if TP_VAR in partial else self.tls.tp_of(env, env[self.first])
        return env

    def problems(self, env: Mapping[Var, int]) -> list[str]:
        out = []
        items = self.L.items
        look = _Layered(env, {})
        end = None
        rows = self._shift.suspects(env)  # None: every row (else the rest pass: chainshift.py)
        for k in range(len(items)) if rows is None else rows:
            it = items[k]
            if rows is not None:
                end = env[items[k - 1].var] + items[k - 1].size if k else None
            x = env.get(it.var)
            if x is None:
                out.append(f"{it.label} has no address")
                continue
            if x % it.align:
                out.append(f"{it.label} at {x:#x} is not aligned to {it.align}")
            if it.fixed_term is not None:
                want = self.L.value(it.fixed_term, look)
                if x != want:
                    out.append(f"{it.label} at {x:#x}, but the script puts it at {want:#x}")
            elif end is not None:
                least = end + it.pre + (max(0, self.L.value(it.pre_term, look)) if it.pre_term is not None else 0)
                if x < least:
                    out.append(f"{it.label} at {x:#x} overlaps what precedes it (ends at {least:#x})")
                elif not it.gap and x != -(-least // it.align) * it.align:
                    out.append(f"{it.label} at {x:#x}: nothing may lie before it, yet it is not at {least:#x}")
            end = x + it.size
        if rows is not None:
            end = env[self.last.var] + self.last.size
        if not out:
            f = env[self.first]
            if end - f > self.model.image_max:
                out.append(f"the image spans {end - f:#x} bytes, more than {self.model.image_max:#x}")
            if self.assert_cons:
                full = dict(env)
                for v in self.L.aux:
                    full[v] = self.L.var_value(v, look)
                out += [f"ASSERT fails: {a.message}" for a, c in self.assert_cons if not holds(c, full)]
            if self.tls is not None:
                out += self.tls.problems(env, env[self.first])
        return out

    def failing_assert_vars(self, env: Mapping[Var, int]) -> set:
        """The chain variables of every ASSERT that ``env`` breaks."""
        full = dict(env)
        look = _Layered(env, {})
        for v in self.L.aux:
            full[v] = self.L.var_value(v, look)
        out: set = set()
        for _, c in self.assert_cons:
            if not holds(c, full):
                out |= self._closure(set(constraint_vars(c)))
        return {v for v in out if v in self.L.pos}

    MARGIN_WORK = 1 << 22  # array cells the input-margin computation may hold

    def input_margin(self, a: Var, b: Var, need: int) -> int | None:
        """The least bytes of input that, added in the gaps the model allows between chain
        items ``a`` and ``b``, move ``b`` at least ``need`` bytes further from ``a`` than as
        linked. Input comes in units of u, the least alignment of the object's sections
        from ``a`` to ``b`` (more input of the same descriptions is taken to be like them).
        None: an item between is placed by a layout-dependent expression, no gap lies
        between, the work would exceed MARGIN_WORK, or the least growth breaks the model
        (an ASSERT, the image bound), so that the least within the model is not this.

        Alignment is why this is not ``need``: padding before an aligned item absorbs
        growth (up to the item's slack), and growth before an ALIGN(n) moves what follows
        in steps of n, so a little input there can move it n. Exact, by dynamic
        programming over shifts from the as-linked layout (in units of u): F_k(t), the
        least growth that moves item k by at least t, is F_{k-1} at tau_k(t), the least
        shift of its predecessor's end (plus growth just before it) that does, and
        growth g before a gap item makes that min over x <= tau of F_{k-1}(x) + tau - x."""
        L, env = self.L, self.as_linked
        i, j = L.pos[a], L.pos[b]
        if need <= 0 or j <= i:
            return None
        steps = []
        for k in range(i + 1, j + 1):
            it = L.items[k]
            if it.pre_expr is not None or (it.fixed is not None and (it.fixed_term is None or it.fixed_term.coeffs)):
                return None
            if it.fixed is not None:
                steps.append(None)  # a fixed address: no growth before it moves it
                continue
            prev = L.items[k - 1]
            slack = env[it.var] - (env[prev.var] + prev.size + it.pre)
            steps.append((slack, it.align, it.gap))
        if not any(st is not None and st[2] for st in steps):
            return None
        u = min((it.align for it in L.items[i:j + 1] if it.var[0] == "sec"), default=1)

        def tau(t, slack, align):  # in units: least end shift (+ growth) that moves the item t units
            up = -(-t * u // align) * align
            least = np.maximum(0, slack + up - align + 1)
            return np.where(t > 0, -(-least // u), 0)

        dom = [0] * (len(steps) + 1)
        dom[-1] = -(-need // u)
        for n in range(len(steps) - 1, -1, -1):
            st = steps[n]
            dom[n] = 0 if st is None else int(tau(np.array(dom[n + 1]), st[0], st[1]))
            if dom[n] > self.MARGIN_WORK:
                return None
        if sum(dom) > self.MARGIN_WORK:
            return None
        never = np.int64(1 << 60)
        f = np.full(dom[0] + 1, never, dtype=np.int64)
        f[0] = 0
        levels = [f]  # F per level, to read the growth back out
        for n, st in enumerate(steps):
            size = dom[n + 1] + 1
            if st is None:
                f = np.full(size, never, dtype=np.int64)
                f[0] = 0
            else:
                slack, align, gap = st
                g = f
                if gap:
                    idx = np.arange(len(f), dtype=np.int64)
                    g = np.minimum.accumulate(f - idx) + idx
                f = g[tau(np.arange(size, dtype=np.int64), slack, align)]
            levels.append(f)
        best = int(f[dom[-1]])
        if best >= never:
            return None
        # The growth that achieves it, walked through the whole chain: it must be a layout
        # of the model (ASSERTs, image bound), else the least growth is not this.
        extra, t = {}, dom[-1]
        for n in range(len(steps) - 1, -1, -1):
            st = steps[n]
            if st is None:
                break
            slack, align, gap = st
            need_t = int(tau(np.array(t), slack, align))
            if gap:
                prev = levels[n][:need_t + 1]
                x = int(np.argmin(prev + (need_t - np.arange(need_t + 1))))
                if need_t > x:
                    extra[i + 1 + n] = (need_t - x) * u
                need_t = x
            t = need_t
        env2 = self._walk(extra)
        if env2 is None or sum(extra.values()) != best * u or env2[b] - env2[a] < env[b] - env[a] + need \
                or self.problems(env2):
            return None
        return best * u

    def explain_between(self, a: Var, b: Var, limit: int = 6) -> tuple[list[str], int]:
        """The input descriptions whose content may lie between items ``a`` and ``b``."""
        i, j = sorted((self.L.pos[a], self.L.pos[b]))
        seen: list[str] = []
        for it in self.L.items[i + 1:j + 1]:
            if it.gap:
                seen += [x for x in it.gap_from if x not in seen]
        return seen[:limit], max(0, len(seen) - limit)
