"""The script chain as columns: walks that differ from the as-linked one by growth, without a
Python step per item, and the validation of a full layout over the same columns.

Why this is exact. The as-linked walk places item k at align_up(end(k-1) + pre(k), align(k)).
Let another walk's end of item k-1 lie s bytes after the as-linked one. If align(k) divides s,
item k lies exactly s bytes after its as-linked place, and so does its end: the shift s carries
over unchanged. It can change only at an item that is given growth, one placed by an expression
(a fixed address or a layout-dependent ``. +=``), or one whose alignment does not divide s. There
the walk is computed as the item-by-item walk computes it; everywhere else it is the as-linked
place plus s. Alignments are powers of two, so "does not divide s" means "is larger than the
lowest set bit of s", and each such item absorbs the shift (s becomes 0) or raises its lowest set
bit: a walk takes a few dozen exact steps, not one per section.

An expression that reads an item placed after it (the kernel's page tables sized from ``_end``)
is a forward reference. The walk then repeats, as the item-by-item walk does, from the first
such item, reading later items from the pass before, until a pass repeats the last one. A chain
whose alignments are not all powers of two is not taken here: :meth:`ChainShift.walk` answers
None and the frame walks it item by item.
"""
from __future__ import annotations

import bisect
import itertools
from functools import cached_property
from typing import Callable, Mapping, Sequence

import numpy as np

_SAFE = 1 << 60  # int64 sums of a few values below this cannot overflow
PASSES = 12      # as the item-by-item walk (model/ordered.py)


class _Pass(Mapping):
    """A pass being walked, as the expressions of its next item read it: an item before row
    ``upto`` has its as-linked address plus this pass's shift there; a later one is read from
    the pass before (``older``), and the read is a miss; with no pass before, a KeyError."""

    def __init__(self, chain: "ChainShift", older: "Shifted | None"):
        self.chain, self.older = chain, older
        self.rows: list[int] = [0]
        self.shifts: list[int] = [0]
        self.upto = 0
        self.missed = False

    def __contains__(self, k) -> bool:
        r = self.chain.pos.get(k)
        if r is not None and r < self.upto:
            return True
        if k not in self.chain.aux:
            self.missed = True
        return r is not None and self.older is not None

    def __getitem__(self, k) -> int:
        r = self.chain.pos.get(k)
        if r is not None and r < self.upto:
            return self.chain.start[r] + self.shifts[bisect.bisect_right(self.rows, r) - 1]
        self.missed = True
        if r is None or self.older is None:
            raise KeyError(k)
        return self.older.at(r)

    def __iter__(self):
        raise TypeError("not iterable")

    def __len__(self) -> int:
        return self.upto


class ChainShift:
    """The chain's rows (var, pre, align, size, fixed_term, pre_term) beside the as-linked walk
    ``start``; ``value(term, mapping)`` evaluates an expression of the chain and ``aux`` holds
    its auxiliary variables (ScriptLayout.value, ScriptLayout.aux)."""

    def __init__(self, rows: Sequence[tuple], gaps: Sequence[bool], start: Mapping, value: Callable,
                 aux: Mapping, pos: Mapping):
        self.rows, self.gaps, self._as_linked = rows, gaps, start
        self.value, self.aux, self.pos = value, aux, pos  # pos: chain variable -> row
        self.vars = [r[0] for r in rows]
        self._arrays = None

    @cached_property
    def ok(self) -> bool:
        return bool(self.rows) and all(a >= 1 and a & (a - 1) == 0 for a in set(r[2] for r in self.rows))

    @cached_property
    def start(self) -> list[int]:
        return [self._as_linked[v] for v in self.vars]

    @cached_property
    def terms(self) -> list[int]:
        return [k for k, r in enumerate(self.rows) if r[4] is not None or r[5] is not None]

    @cached_property
    def by_align(self) -> dict[int, np.ndarray]:
        """For each alignment, the rows that have it (ascending): the next row an alignment
        larger than a shift's lowest bit lies at is the least of a few searches."""
        al = np.array([r[2] for r in self.rows], dtype=object)
        return {a: np.flatnonzero(al == a) for a in sorted(set(al.tolist())) if a > 1}

    # -- walks -----------------------------------------------------------------------------
    def walk(self, extra: Mapping[int, int]) -> "tuple[Shifted, int] | None":
        """The chain walked with ``extra`` bytes of growth before the given rows, as the
        item-by-item walk does it, and the first row of its last pass that read ahead; None
        where that walk must be used (see the module), or when it does not settle."""
        if not self.ok or not extra:
            return None
        prev, k0 = None, 0
        for _ in range(PASSES):
            walk, miss = self._pass(extra, prev, k0)
            if not walk.missed or (prev is not None and (walk.rows, walk.shifts) == (prev.rows, prev.shifts)):
                return Shifted(self, walk.rows, walk.shifts), miss
            prev, k0 = Shifted(self, walk.rows, walk.shifts), miss
        return None

    def _pass(self, extra: Mapping[int, int], prev: "Shifted | None", k0: int) -> tuple[_Pass, int]:
        """One pass from row ``k0``; rows before it as in ``prev``."""
        n = len(self.rows)
        walk = _Pass(self, prev)
        if prev is not None:
            i = bisect.bisect_right(prev.rows, k0 - 1) if k0 else 1
            walk.rows, walk.shifts = prev.rows[:i], prev.shifts[:i]
        s = walk.shifts[-1]
        growth = sorted(g for g in extra if g >= k0)
        terms = self.terms[bisect.bisect_left(self.terms, k0):]
        gi = ti = 0
        miss = n
        k = min(growth[0] if growth else n, terms[0] if terms else n, self._misaligned(s, k0 - 1, n))
        while k < n:
            var, pre, align, size, fixed_term, pre_term = self.rows[k]
            end = self.start[k - 1] + self.rows[k - 1][3] + s if k else 0
            walk.upto = k
            if fixed_term is not None:
                try:
                    start = self.value(fixed_term, walk)
                except KeyError:
                    start = end
                miss = k if walk.missed and miss > k else miss
            else:
                base = end + pre + extra.get(k, 0)
                if pre_term is not None:
                    try:
                        base += max(0, self.value(pre_term, walk))
                    except KeyError:
                        pass
                    miss = k if walk.missed and miss > k else miss
                start = -(-base // align) * align if align > 1 else base
            t = start - self.start[k]
            if t != s:
                walk.rows.append(k)
                walk.shifts.append(t)
                s = t
            while gi < len(growth) and growth[gi] <= k:
                gi += 1
            while ti < len(terms) and terms[ti] <= k:
                ti += 1
            k = min(growth[gi] if gi < len(growth) else n, terms[ti] if ti < len(terms) else n,
                    self._misaligned(s, k, n))
        walk.upto = n
        return walk, miss

    def _misaligned(self, s: int, k: int, n: int) -> int:
        """The first row after ``k`` whose alignment does not divide ``s`` (n if none)."""
        best = n
        if s:
            low = s & -s
            for a, at in self.by_align.items():
                if a > low:
                    i = int(np.searchsorted(at, k + 1))
                    if i < len(at) and at[i] < best:
                        best = int(at[i])
        return best

    # -- validation ------------------------------------------------------------------------
    def _columns(self):
        """(align, pre, size) of the rows as int64 columns and gap as booleans, or None when too large."""
        if self._arrays is None:
            pre = [r[1] for r in self.rows]
            size = [r[3] for r in self.rows]
            al = [r[2] for r in self.rows]
            if max(pre) >= _SAFE or min(pre) < 0 or max(size) >= _SAFE or min(size) < 0 or max(al) >= _SAFE:
                self._arrays = ()
            else:
                self._arrays = (np.array(al, dtype=np.int64), np.array(pre, dtype=np.int64),
                                np.array(size, dtype=np.int64), np.array(self.gaps, dtype=bool))
        return self._arrays or None

    def suspects(self, env: Mapping) -> list[int] | None:
        """The rows where checking ``env`` item by item may find a problem: every row placed by
        an expression, the first, and each plain row that is misaligned, overlaps what precedes
        it, or (no gap before it) does not follow it directly. None: check every row (an item has
        no address, or the addresses do not fit the columns)."""
        cols = self._columns() if self.ok else None
        if cols is None:
            return None
        xs = [env.get(v) for v in self.vars]
        if None in xs:
            return None
        lo, hi = min(xs), max(xs)
        if hi - lo >= _SAFE:
            return None
        al, pre, size, gap = cols
        top = int(al.max())
        rel = np.array([x - lo for x in xs], dtype=np.int64) + (lo % top)  # same residues mod every alignment
        bad = (rel & (al - 1)) != 0
        least = rel[:-1] + size[:-1] + pre[1:]
        bad[1:] |= rel[1:] < least
        up = (least + al[1:] - 1) & -al[1:]
        bad[1:] |= ~gap[1:] & (rel[1:] != up)
        bad[0] = True
        bad[self.terms] = True
        return np.flatnonzero(bad).tolist()


class Shifted:
    """A walk given as shifts from the as-linked one: ``rows[i]`` is where ``shifts[i]`` begins."""

    def __init__(self, chain: ChainShift, rows: list[int], shifts: list[int]):
        self.chain, self.rows, self.shifts = chain, rows, shifts

    def at(self, k: int) -> int:
        return self.chain.start[k] + self.shifts[bisect.bisect_right(self.rows, k) - 1]

    def env(self) -> dict:
        c = self.chain
        out = []
        bounds = self.rows[1:] + [len(c.rows)]
        for a, b, s in zip(self.rows, bounds, self.shifts):
            part = c.start[a:b]
            out += [x + s for x in part] if s else part
        return dict(zip(c.vars, out))


def running(before: list[int], after: list[int] | None = None) -> list[int]:
    """out[k] = sum over items j < k of before[j] + after[j], plus before[k]; the last entry is
    the total (``after`` None: zeros). Summed in int64 where no sum can leave it."""
    n = len(before)
    after = after if after is not None else [0] * n
    if n and min(min(before), min(after)) >= 0 and max(max(before), max(after)) < _SAFE // (2 * n + 1):
        both = np.empty(2 * n, dtype=np.int64)
        both[0::2], both[1::2] = before, after
        sums = np.cumsum(both)
        return sums[0::2].tolist() + [int(sums[-1])]
    out = list(itertools.accumulate(itertools.chain.from_iterable(zip(before, after)), initial=0))
    # out[2k + 1] is the sum through before[k]; the last entry is the total.
    return out[1::2] + [out[-1]]


class Layered(dict):
    """A mapping that falls back to an older layout (for forward references); ``missed``: a
    lookup of a chain variable went past the current pass (auxiliary ones are computed)."""

    def __init__(self, env, older, aux=()):
        super().__init__()
        self.env, self.older, self.aux = env, older, aux
        self.missed = False

    def __contains__(self, k):
        if k in self.env:
            return True
        if k not in self.aux:
            self.missed = True
        return k in self.older

    def __getitem__(self, k):
        if k in self.env:
            return self.env[k]
        self.missed = True
        return self.older[k]
