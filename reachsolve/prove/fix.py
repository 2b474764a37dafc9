"""Fixes decided, not only suggested: every failing site's standard rewrite, proved.

Each non-robust site whose instruction has a rewrite (target/rewrite.py) is
rewritten in a copy of the object (objfile/patch.py): the section grows by 4 or 8
bytes at the site, and the new sequence carries its own relocations (a JUMP26 at
site+4, or ADR_PREL_PG_HI21 + a lo12 relocation). The copy is analyzed by the
same pipeline under the same model and link policy, no-veneer sections included,
so the new sites get verdicts of their own, and every other site of the object is
decided again in the grown sections: those whose verdict the growth changes are
reported. All of an object's rewrites are applied together (one more analysis per
object with findings, as an engineer would apply them).
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..errors import InputError, ModelError
from ..objfile.patch import Edit, PatchError, patch_object
from ..objfile.sites import Site
from ..report.document import SiteResult
from ..report.fixes import Changed, FixDecision, FixKind, FixSite, Remedy
from ..report.proofs import Failure, Problem, TypeRejected, Verdict
from ..report.reasons import fix as fix_words
from ..target.catalogue import BY_NAME
from ..target.rewrite import Rewrite, rewrite, symbol_text
from . import backend

_WORST = (Verdict.BROKEN, Verdict.VULNERABLE, Verdict.UNKNOWN, Verdict.ROBUST)
_WIDER = {"R_AARCH64_ABS16": "R_AARCH64_ABS32 (.word)", "R_AARCH64_ABS32": "R_AARCH64_ABS64 (.quad sym)",
          "R_AARCH64_PREL16": "R_AARCH64_PREL32 (.word sym - .)", "R_AARCH64_PREL32": "R_AARCH64_PREL64 (.quad sym - .)",
          "R_AARCH64_PLT32": "R_AARCH64_PREL64 (.quad sym - .)",
          "R_AARCH64_MOVW_UABS_G0": ":abs_g1_nc: (R_AARCH64_MOVW_UABS_G1_NC)",
          "R_AARCH64_MOVW_UABS_G1": ":abs_g2_nc: (R_AARCH64_MOVW_UABS_G2_NC)",
          "R_AARCH64_MOVW_UABS_G2": ":abs_g3: (R_AARCH64_MOVW_UABS_G3)"}
_LISTED = 8  # changed sites named in a note; the rest are counted


def _plan(ob, site: Site, record) -> Rewrite | FixDecision | None:
    """The rewrite for a failing site, an advice where none applies, or None (nothing to say)."""
    if site.problem or isinstance(record, TypeRejected):
        return None  # a type the loader refuses: no rewrite of the instruction helps
    spec = site.spec
    if spec.tls and not (isinstance(record, Failure) and record.problem is Problem.ALIGN):
        return None  # no standard rewrite of a TLS access sequence
    target = symbol_text(site.symbol_name, site.addend)
    if isinstance(record, Failure) and record.problem is Problem.ALIGN:
        return FixDecision(FixKind.ADVICE, target=target, remedy=Remedy.ALIGN, granule=spec.granule)
    if spec.field.is_data or site.insn.klass == "movw":
        if spec.name in _WIDER:
            return FixDecision(FixKind.ADVICE, target=target, remedy=Remedy.MOVW if site.insn else Remedy.WIDEN,
                               wider=_WIDER[spec.name])
        return None
    if spec.formula.uses_got:
        return FixDecision(FixKind.ADVICE, target=target, remedy=Remedy.GOT if not spec.formula.paged
                           else Remedy.LITERAL)
    klass = site.insn.klass
    if klass == "adrp":
        return FixDecision(FixKind.ADVICE, target=target, remedy=Remedy.LITERAL)
    if klass in ("b", "bl") and ob.veneered(site):
        return None  # a veneer repairs its range; what fails is not its reach
    rw = rewrite(klass, site.word, site.symbol_name, site.addend)
    if rw is None and klass == "adr":
        return FixDecision(FixKind.ADVICE, target=target, remedy=Remedy.NO_REGISTER)
    return rw


def _key(r: SiteResult, moved=None) -> tuple:
    off = moved(r.section_index, r.offset) if moved else r.offset
    return (r.section_index, off, BY_NAME[r.reloc].number)


def attach(ob, items: list[tuple[Site, object, SiteResult]], analyze_object) -> dict[tuple, SiteResult]:
    """Fixes for the non-robust sites of ``items`` (site, decision record, result): the results
    that change, by key. ``analyze_object`` is the pipeline's, run on the rewritten object."""
    plans: dict[tuple, tuple[Site, Rewrite | FixDecision]] = {}
    for site, record, res in items:
        if res.verdict == Verdict.ROBUST:
            continue
        p = _plan(ob, site, record)
        if p is not None:
            plans[res.key] = (site, p)
    if not plans:
        return {}
    rewrites = {k: (s, p) for k, (s, p) in plans.items() if isinstance(p, Rewrite)}
    decided = _decide(ob, rewrites, items, analyze_object) if rewrites else {}
    out = {}
    for site, record, res in items:
        if res.key in plans:
            s, p = plans[res.key]
            d = decided[res.key] if isinstance(p, Rewrite) else p
            out[res.key] = replace(res, fix=fix_words(d))
    return out


def _decide(ob, rewrites: dict, items, analyze_object) -> dict[tuple, FixDecision]:
    obj, model = ob.obj, ob.model
    edits = [Edit(s.section, s.offset, s.spec.number, rw.words, rw.relocs) for s, rw in rewrites.values()]

    def base(site: Site, rw: Rewrite, **kw) -> FixDecision:
        reach = None
        for _, name in rw.checked[:1]:
            reach = ob.range(BY_NAME[name])
        return FixDecision(FixKind.REWRITE, rw.form.name, rw.asm, reach, model=model.name,
                           scratch=rw.scratch, clobbers=rw.clobbers, others=len(rewrites) - 1,
                           align=(rw.access, rw.literal_align) if rw.access else None,
                           target=symbol_text(site.symbol_name, site.addend), words=rw.words, relocs=rw.relocs,
                           **kw)

    try:
        grown, growth = patch_object(obj, edits)
        res2, table2, summ2, _ = analyze_object(grown, model, True, fixes=False)
    except (PatchError, InputError, ModelError) as exc:
        why = exc.message if isinstance(exc, InputError) else str(exc)
        return {k: base(s, rw, why=why) for k, (s, rw) in rewrites.items()}
    except (ValueError, IndexError, OverflowError) as exc:  # never the input's fault: say so, go on
        return {k: base(s, rw, why=f"internal error while rewriting the object: {exc}")
                for k, (s, rw) in rewrites.items()}
    except Exception as exc:  # out of memory in the second analysis: the object's own results stand
        if not (isinstance(exc, MemoryError) or backend.is_out_of_memory(exc)):
            raise
        backend.new_session()
        return {k: base(s, rw, why="out of memory while deciding the rewritten object")
                for k, (s, rw) in rewrites.items()}
    moved = growth.moved
    grown_secs = tuple((obj.sections[i].name, growth.total(i)) for i in sorted(growth.by_section))
    new_sites: dict[tuple, tuple] = {}  # key in the grown object -> the rewritten site's key
    for k, (s, rw) in rewrites.items():
        o = moved(s.section, s.offset)
        for off, name in rw.checked:
            new_sites[(s.section, o + off, BY_NAME[name].number)] = k
    by_key2 = {_key(r): r for r in res2}
    found = _table_rows(table2, set(new_sites) - set(by_key2))
    by_key2.update(found)
    # Other sites whose verdict the growth changes: only non-robust ones can differ, on either side.
    before = {_key(r, moved): r for _, _, r in items if r.verdict != Verdict.ROBUST and r.key not in rewrites}
    after = {k: r for k, r in by_key2.items() if r.verdict != Verdict.ROBUST and k not in new_sites}
    changed = []
    for k in sorted(set(before) | set(after)):
        b, a = before.get(k), after.get(k)
        vb, va = b.verdict if b else Verdict.ROBUST, a.verdict if a else Verdict.ROBUST
        if vb != va:
            r = b or a
            off = r.offset if b else _unmoved(growth, r.section_index, r.offset)
            changed.append(Changed(r.section, off, r.reloc, vb, va))
    for sec, off, klass in growth.unreachable:  # the assembler would reject the rewritten source
        changed.append(Changed(obj.sections[sec].name, off, klass, Verdict.ROBUST, Verdict.BROKEN, assembler=True))
    added = [a for a in summ2.assumptions if a not in ob.assumptions]
    out = {}
    for k, (s, rw) in rewrites.items():
        o = moved(s.section, s.offset)
        subs = []
        for off, name in rw.checked:
            r = by_key2.get((s.section, o + off, BY_NAME[name].number))
            if r is None:  # not range-checked in the grown object: cannot happen for a catalogue type
                subs.append(FixSite(name, obj.sections[s.section].name, o + off, Verdict.UNKNOWN,
                                    "the rewritten site was not found in the rewritten object"))
            else:
                subs.append(FixSite(name, r.section, r.offset, r.verdict, r.reason))
        verdict = min((x.verdict for x in subs), key=_WORST.index) if subs else Verdict.UNKNOWN
        out[k] = base(s, rw, verdict=verdict, sites=tuple(subs), grown=grown_secs,
                      changed=tuple(changed[:_LISTED]), more_changed=max(0, len(changed) - _LISTED),
                      assumptions=tuple(a for a in added if _about(a, s.symbol_name)))
    return out


def _about(assumption: str, symbol: str) -> bool:
    """Does a new assumption of the grown object concern this fix (its target symbol)?"""
    return not assumption.startswith("undefined ") or assumption.startswith(f"undefined {symbol} ")


def _unmoved(growth, sec: int, off: int) -> int:
    """The original offset of ``off`` in a grown section (the inverse of Growth.moved)."""
    t = growth.by_section.get(sec)
    if t is None:
        return off
    offs, cum = t
    return off - int(cum[np.searchsorted(offs + cum[:-1], off, side="left")])


def _table_rows(table, keys: set) -> dict[tuple, SiteResult]:
    """The proof-table rows of ``keys`` as SiteResults (only those rows are expanded)."""
    if table is None or not keys:
        return {}
    c = table.columns
    k = np.array(sorted(keys), dtype=np.int64)
    mask = np.zeros(len(table), dtype=bool)
    for sec, off, ty in k.tolist():
        mask |= (c["section_index"] == sec) & (c["offset"] == off) & (c["reloc"] == ty)
    if not mask.any():
        return {}
    sub = replace(table, columns={n: (v[mask] if v is not None else None) for n, v in c.items()})
    return {_key(r): r for r in sub.results()}

