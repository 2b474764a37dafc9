"""Column-wise proofs: the interval arguments of the one-by-one path, over numpy columns.

Most sites of a kernel object sit far inside their range: a branch between two
sections of a 128 MiB image cannot leave +-128 MiB. The one-by-one path proves
those with interval arithmetic (the span of the layout-dependent part, the
alignment of its variables, and for script models the as-linked layout) before
it asks the solver anything. This module makes the same arguments for all rows
of an object at once. It only ever proves: a row it cannot prove, or whose
arithmetic might leave int64, goes to the one-by-one path, which decides it as
before. So a site's verdict never depends on which path saw it.
"""
from __future__ import annotations

import functools

from collections import Counter

import numpy as np

from ..ir import PAGE, Lin, page_delta_bounds
from ..model.frame import clamp
from ..report.algebra import render
from ..report.document import PROOF_COLUMNS, ProofTable, SiteResult
from ..report.proofs import Proof, ProofKind, VeneerNote, Verdict
from ..report.reasons import note, robust
from ..objfile.sites import SEC_ANCHOR, SYM_ANCHOR, SiteColumns
from ..target.catalogue import BY_NAME, BY_NUMBER, Formula, by_type
from ..target.decode import decode
from ..target.policy import LinkPolicy

LIMIT = 1 << 60  # every operand below this keeps every sum below 2^63
_PREL, _PAGE, _ABS, _OTHER = 0, 1, 2, 3
_U64 = np.uint64
# The proof column's numbers as plain ints: an IntEnum operand makes numpy probe its class
# for array protocols, through EnumType.__getattr__, at every use.
SPAN, FIXED, PAGE_SPAN, PAGE_FIXED, ALIGNED, AS_LINKED = map(int, (
    ProofKind.SPAN, ProofKind.FIXED, ProofKind.PAGE_SPAN, ProofKind.PAGE_FIXED, ProofKind.ALIGNED,
    ProofKind.AS_LINKED))


@functools.lru_cache(maxsize=8)
def _type_tables(policy: LinkPolicy) -> dict[str, np.ndarray]:
    """Per relocation type number: formula class, range, granule, veneer policy, name rank.
    Made once per policy (an archive has thousands of objects under one), read-only."""
    tables = _build_type_tables(policy)
    for a in tables.values():
        a.setflags(write=False)
    return tables


def _build_type_tables(policy: LinkPolicy) -> dict[str, np.ndarray]:
    klass = {Formula.PREL: _PREL, Formula.PAGE: _PAGE, Formula.ABS: _ABS}
    rank = {name: k for k, name in enumerate(sorted(BY_NAME))}
    return {"formula": by_type(lambda s: klass.get(s.formula, _OTHER), _OTHER, np.int8),
            "has_range": by_type(lambda s: policy.range(s) is not None, False, bool),
            "r0": by_type(lambda s: (policy.range(s) or (0, 0))[0], 0, np.int64),
            "r1": by_type(lambda s: (policy.range(s) or (0, 0))[1], 0, np.int64),
            "granule": by_type(lambda s: s.granule, 1, np.int64),
            "veneer_same": by_type(lambda s: policy.veneered(s, True, True), False, bool),
            "veneer_other": by_type(lambda s: policy.veneered(s, True, False), False, bool),
            "rank": by_type(lambda s: rank[s.name], 0, np.int64),
            # a type some selected linker refuses outright is broken one by one, never screened
            "rejected": by_type(lambda s: bool(policy.rejects_type(s)), False, bool)}


CHUNK = 1 << 18  # rows screened together: bounds the temporaries of a kernel-sized object


def screen(ob, cols: SiteColumns, threads: int = 1) -> tuple[ProofTable | None, np.ndarray, Counter]:
    """Prove what interval arithmetic proves; return the table, the proved rows, and counts.

    ``threads`` > 1 screens the chunks of a large object in that many threads: numpy lets
    the interpreter go while it works on a chunk, and the chunks are joined in order, so
    the table is the same whatever the count."""
    n = len(cols)
    proved = np.zeros(n, dtype=bool)
    stats: Counter = Counter()
    model, obj = ob.model, ob.obj
    if not n or ob.feasible is None or model.image_max >= LIMIT:
        return None, proved, stats
    ctx = _Context(ob, cols)
    chunks = [slice(k, min(k + CHUNK, n)) for k in range(0, n, CHUNK)]
    # The first chunk in this thread: the frame's per-section tables are made there, once.
    parts = [_screen_rows(ctx, chunks[0])]
    if threads > 1 and len(chunks) > 1:
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(max_workers=min(threads, len(chunks) - 1)) as pool:
            parts += pool.map(lambda part: _screen_rows(ctx, part), chunks[1:])
    else:
        parts += [_screen_rows(ctx, part) for part in chunks[1:]]
    rows = np.concatenate([p.pop("row") for p in parts]) if len(parts) > 1 else parts[0].pop("row")
    if not len(rows):
        return None, proved, stats
    proved[rows] = True

    def column(name, let_go=True):  # joined; the pieces let go at once, so the peak is a column
        if len(parts) == 1:  # one chunk (most objects): nothing to join
            return parts[0].pop(name) if let_go else parts[0][name]
        return np.concatenate([p.pop(name) if let_go else p[name] for p in parts])

    order = row_order(column("section_index", False), column("offset", False), ctx.tt["rank"][column("reloc", False)])
    columns = {k: (column(k)[order] if k in parts[0] else None) for k in PROOF_COLUMNS}
    made = np.bincount(columns["proof"], minlength=AS_LINKED + 1).tolist()  # every kept row has a proof >= 0
    for k, name in ((SPAN, "interval proofs"), (PAGE_SPAN, "interval proofs"), (FIXED, "fixed-value sites"),
                    (PAGE_FIXED, "fixed-value sites"), (ALIGNED, "alignment proofs"), (AS_LINKED, "as-linked proofs")):
        stats[name] += made[k]
    tsec = columns["target_section_index"]
    used_secs = _used(np.concatenate([columns["section_index"], tsec[tsec >= 0]]), len(obj.sections)).tolist()
    used_syms = _used(columns["symbol"], len(obj.symbols))
    used_syms = used_syms[used_syms != 0]
    table = ProofTable(obj.name, columns, {i: obj.sections[i].name for i in used_secs},
                       {i: ob.labels.get(i, obj.sections[i].name) for i in used_secs},
                       dict(zip(used_syms.tolist(), obj.symbol_labels(used_syms))), ob.policy, model.image_max,
                       expand_rows)
    return table, proved, stats


def _used(index: np.ndarray, n: int) -> np.ndarray:
    """The distinct entries of ``index`` (each in [0, n)), ascending: a scatter, not a sort."""
    seen = np.zeros(max(n, 1), dtype=bool)  # symbol 0 stands for "none" in an object without symbols
    seen[index] = True
    return np.flatnonzero(seen)


def row_order(first: np.ndarray, *rest: np.ndarray) -> np.ndarray:
    """The permutation np.lexsort gives for these keys (``first`` most significant), made by
    a stable sort on ``first`` alone where the rows of each ``first`` already come in order of
    the rest. Relocations do: a table's rows ascend by offset, and only the tables come out of
    section order. Both sorts are stable, so the permutations are the same."""
    perm = np.argsort(first, kind="stable")
    if len(perm) < 2:
        return perm
    f = first[perm]
    same = f[1:] == f[:-1]  # row i+1 of the sorted rows has row i's first key
    later, tied = np.zeros(len(same), dtype=bool), same.copy()
    for k in rest:  # does row i+1 come at or after row i by the rest, compared left to right?
        k = k[perm]
        later |= tied & (k[1:] > k[:-1])
        tied &= k[1:] == k[:-1]
    if (~same | later | tied).all():
        return perm
    return np.lexsort((*rest[::-1], first))


class _Context:
    """What every chunk shares: the object, its columns, per-type and per-section tables."""

    def __init__(self, ob, cols: SiteColumns):
        obj = ob.obj
        self.ob, self.cols, self.frame, self.model = ob, cols, ob.frame, ob.model
        self.tt = _type_tables(ob.policy)
        self.counts = (len(obj.sections), max(len(obj.symbols), 1))
        self.sec_veneers = np.zeros(len(obj.sections), dtype=bool)
        used = _used(cols.section, len(obj.sections))
        self.sec_veneers[used] = ob.sections_veneers(used.tolist())
        self.addr = self.placed = None
        if ob.layout is not None:
            nsec = self.counts[0]
            self.addr = np.zeros(nsec, dtype=_U64)
            self.placed = np.zeros(nsec, dtype=bool)
            # no one as-linked address (the linkers differ), or none the chain can give
            unsettled = ob.frame.unsettled | {("sec", i) for i in ob.layout.tbss_shadowed}
            for v, a in ob.feasible.items():
                if v[0] == "sec" and 0 <= v[1] < nsec and 0 <= a < (1 << 64) and v not in unsettled:
                    self.addr[v[1]], self.placed[v[1]] = a, True


def _screen_rows(ctx: _Context, part: slice) -> dict[str, np.ndarray]:
    """The proved rows among ``part``, with every column of the table."""
    cols, tt, frame, model = ctx.cols, ctx.tt, ctx.frame, ctx.model
    ty, sec, off = cols.rtype[part], cols.section[part], cols.offset[part]
    kind, anchor, symval, addend = cols.kind[part], cols.anchor[part], cols.symval[part], cols.addend[part]
    n = len(ty)
    form = tt["formula"][ty]
    g = tt["granule"][ty]
    small = (symval < _U64(LIMIT)) & (np.abs(addend) < LIMIT) & (off >= 0) & (off < LIMIT)
    cand = ~cols.special[part] & small & (form != _OTHER) & ((kind == SEC_ANCHOR) | (kind == SYM_ANCHOR))
    cand &= ~tt["rejected"][ty]
    if ctx.ob.layout is not None:
        cand &= kind == SEC_ANCHOR  # an undefined symbol may be one the script defines
    ct = np.where(small, symval.astype(np.int64) + addend, 0)  # S+A relative to the anchor
    c = np.where(form == _ABS, ct, ct - off)
    same = (kind == SEC_ANCHOR) & (anchor == sec)
    veneered = ctx.sec_veneers[sec] & np.where(same, tt["veneer_same"][ty], tt["veneer_other"][ty])
    has_rng = tt["has_range"][ty] & ~veneered
    r0, r1 = tt["r0"][ty], tt["r1"][ty]

    # Bounds [lo, hi] of the layout-dependent part d: var(target) - base(place); 0 when same.
    ok, lo, hi = frame.pair_spans(kind, anchor, sec, ctx.counts)
    ok = same | ok
    lo, hi = np.where(same, 0, lo), np.where(same, 0, hi)
    t_known, t_align = frame.column_align(kind, anchor, ctx.counts)
    s_known, s_align = frame.column_align(np.ones(n, dtype=np.int8), sec, ctx.counts)
    multiple = same | (t_known & s_known & (t_align % g == 0) & (s_align % g == 0))

    vmin, vmax = lo + c, hi + c
    prel = cand & (form == _PREL) & ok & multiple & (c % g == 0) & (~has_rng | ((r0 <= vmin) & (vmax <= r1)))
    pmin, pmax = page_delta_bounds(lo + c, hi + c)
    paged = cand & (form == _PAGE) & ok & has_rng & (r0 <= pmin) & (pmax <= r1)
    # Absolute lo12 forms have no range, only a granule: S+A stays a multiple of it.
    aligned = cand & (form == _ABS) & ~tt["has_range"][ty] & t_known & (t_align % g == 0) & (c % g == 0)
    proof = np.full(n, -1, dtype=np.int8)
    proof[prel] = np.where(same[prel], FIXED, SPAN)
    proof[paged] = np.where(same[paged], PAGE_FIXED, PAGE_SPAN)
    proof[aligned] = ALIGNED
    vmin = np.where(form == _PAGE, pmin, np.where(form == _ABS, 0, vmin))
    vmax = np.where(form == _PAGE, pmax, np.where(form == _ABS, 0, vmax))
    lo, hi = np.where(form == _ABS, 0, lo), np.where(form == _ABS, 0, hi)

    value = None
    if ctx.addr is not None:
        value, fits = _as_linked(ctx, kind, anchor, sec, off, form, ct, g, has_rng, r0, r1)
        fits &= cand
        if model.placement == "as-linked":
            proof = np.where(fits, AS_LINKED, -1).astype(np.int8)
        else:
            proof[~fits] = -1  # a site that fails as linked is broken: the one-by-one path says so
    keep = proof >= 0
    raw = tt["has_range"][ty]
    note = veneered & raw & ((proof == SPAN) | (proof == FIXED)) & ((vmax > r1) | (vmin < r0))
    data = {"row": np.arange(part.start, part.stop)[keep], "section_index": sec.astype(np.int32), "offset": off,
            "reloc": ty.astype(np.int32), "symbol": cols.symbol[part], "addend": addend,
            "target_section_index": np.where(kind == SEC_ANCHOR, anchor, -1).astype(np.int32),
            "word": cols.word[part].astype(np.uint32),
            "proof": proof, "constant": c, "span_min": lo, "span_max": hi, "value_min": vmin, "value_max": vmax,
            "veneered": veneered, "veneer_note": note}
    if value is not None:
        data["as_linked"] = value
    return {k: (v if k == "row" else v[keep]) for k, v in data.items()}


def _as_linked(ctx: _Context, kind, anchor, sec, off, form, ct, g, has_rng, r0, r1):
    """Each row's value in the as-linked layout (uint64 bits) and whether it fits there."""
    addr, placed = ctx.addr, ctx.placed
    t = clamp(anchor, len(addr))
    known = (kind == SEC_ANCHOR) & placed[t] & placed[sec]
    # Two's complement arithmetic: exact for differences (both ends lie in one image),
    # and a plain sum for S+A, whose overflow is ruled out row by row.
    with np.errstate(over="ignore"):
        s = addr[t] + ct.astype(_U64)
        p = addr[sec] + off.astype(_U64)
        diff = np.where(form == _PAGE, Formula.PAGE.value(s, p), s - p)
    value = np.where(form == _ABS, s, diff)
    signed = value.view(np.int64)
    no_wrap = np.where(form == _ABS, (ct >= 0) & (addr[t] <= _U64((1 << 64) - 1) - np.maximum(ct, 0).astype(_U64)), True)
    # An absolute value is unsigned (it did not wrap); its ranges start at or below 0.
    in_range = ~has_rng | np.where(form == _ABS, value <= np.maximum(r1, 0).astype(_U64), (r0 <= signed) & (signed <= r1))
    aligned = (form == _PAGE) | (np.where(form == _ABS, value % g.astype(_U64), signed % g) == 0)
    return value, known & no_wrap & in_range & aligned


def expand_rows(t: ProofTable):
    """Every row of a proof table as a SiteResult, with the texts a one-by-one decision gives.

    Lazy: a kernel's table has 10^6 rows, and most readers want a few."""
    c = {k: (v.tolist() if v is not None else None) for k, v in t.columns.items()}
    as_linked = t.as_linked()

    def name(v):
        return f"base({t.section_labels[v[1]]})" if v[0] == "sec" else f"addr({t.symbol_names[v[1]]})"

    memo: dict = {}
    for k in range(len(t)):
        sec, off, ty, sym = c["section_index"][k], c["offset"][k], c["reloc"][k], c["symbol"][k]
        tsec, kind, const = c["target_section_index"][k], ProofKind(c["proof"][k]), c["constant"][k]
        spec = BY_NUMBER[ty]
        anchor = Lin.var(("sec", tsec) if tsec >= 0 else ("sym", sym))
        veneered = c["veneered"][k]
        full = t.policy.range(spec)
        rng = None if veneered else full
        place = Lin.var(("sec", sec)) + off
        # S+A relative to the anchor is const (+ off for PC-relative forms, whose const is S+A-P).
        target = anchor + (const if spec.formula is Formula.ABS else const + off)
        expr = spec.formula.value(target, place)
        d = anchor if spec.formula is Formula.ABS else (anchor - Lin.var(("sec", sec)))
        dtext = render(d, name, memo)
        al = as_linked[k] if as_linked is not None else None
        vmin, vmax = (al, al) if kind == ProofKind.AS_LINKED else (c["value_min"][k], c["value_max"][k])
        proof = Proof(kind, t.image_max, dtext, const, (c["span_min"][k], c["span_max"][k]), (vmin, vmax), rng,
                      spec.granule, veneered)
        notes = (VeneerNote((c["value_min"][k], c["value_max"][k]), full, True),) if c["veneer_note"][k] else ()
        insn = (decode(c["word"][k], off).text if not spec.field.is_data
                else (".hword" if spec.field.container == 2 else ".word"))
        yield SiteResult(
            file=t.file, section=t.section_names[sec], section_index=sec, offset=off, reloc=spec.name,
            symbol=t.symbol_names.get(sym, ""), addend=c["addend"][k],
            target_section=t.section_names[tsec] if tsec >= 0 else None,
            target_section_index=int(tsec) if tsec >= 0 else None, instruction=insn,
            range=full, granule=spec.granule, verdict=Verdict.ROBUST, reason=robust(proof),
            expression=render(expr, name, memo), notes=tuple(note(n) for n in notes),
            as_linked=al, record=proof, note_records=notes)
