"""The pipeline: object -> sites -> constraints -> verdicts -> report.

Column-wise proofs come first (screen.py); the rows they leave are decided one
by one in groups (decide.py), with counterexamples completed and re-checked
(witness.py, recheck.py). Every object is decided on its own, so objects can
be analyzed in parallel and the report is the same whatever the job count.
"""
from __future__ import annotations

import contextlib
import gc
import hashlib
import os
import posixpath
from collections import defaultdict
from typing import Iterable

import numpy as np

from .. import __version__
from ..errors import InputError, ModelError
from ..ir import BASE
from ..model.options import LayoutModel
from ..objfile.dwarf import LineTable
from ..objfile.elf import STT_SECTION, ObjectFile, read_object
from ..objfile.inputs import load
from ..objfile.sites import Site
from ..report.algebra import render
from ..target.catalogue import TP_VAR
from ..report.document import (Counterexample, FileError, FileSummary, Placement, ProofTable, Report, SiteResult,
                               Source, SourceLine, SymbolPlacement)
from ..report.proofs import Failure, FailureKind, Problem, Proof, ProofKind, TypeRejected, Verdict
from ..report.reasons import note, reason
from . import backend
from .context import ObjectContext
from .decide import Decider, group_key
from .fix import attach as attach_fixes
from .recheck import fits, recheck
from .screen import screen
from .witness import Decision, undecided


def _placements(ob: ObjectContext, env: dict, shared: dict) -> tuple[tuple, tuple]:
    """A layout as Placement tuples; sites that share a layout share the tuples."""
    hit = shared.get(id(env))
    if hit is not None and hit[0] is env:
        return hit[1], hit[2]
    obj = ob.obj
    order = shared.get("sections")  # every placed section in index order, found once per object
    if order is None:
        order = shared["sections"] = [(obj.sections[i].name, i, ("sec", i)) for i in sorted(ob.labels)]
    layout = tuple(Placement(name, i, env[v]) for name, i, v in order if v in env)
    syms = tuple(sorted([SymbolPlacement(ob.frame.slots[k].label, a, "undefined" if k[0] == "sym" else "got")
                         if k in ob.frame.slots else SymbolPlacement(obj.symbol_label(k[1]), a, "script")
                         for k, a in env.items() if k[0] in ("sym", "got")]
                        # the thread pointer of TP-relative values (target.catalogue.TP_VAR)
                        + [SymbolPlacement("TP", a, "tp") for k, a in env.items() if k == TP_VAR],
                        key=lambda p: (p.kind, p.name, p.address)))
    shared[id(env)] = (env, layout, syms)
    return layout, syms


class _Lines:
    """Source lines of the sites one object reports, looked up on demand (objfile/dwarf.py)."""

    def __init__(self, obj: ObjectFile, root: str | None):
        self.table = LineTable(obj)
        # As given and with symbolic links resolved: a compiler records getcwd(), the real path.
        self.roots = sorted({posixpath.normpath(os.path.abspath(root)), os.path.realpath(root)},
                            key=len, reverse=True) if root else []

    def __call__(self, section: int, offset: int) -> SourceLine | None:
        hit = self.table.lookup(section, offset)
        if hit is None:
            return None
        path = hit.file
        if self.roots and path.startswith("/"):
            norm = posixpath.normpath(path)
            for root in self.roots:
                if norm.startswith(root.rstrip("/") + "/"):
                    path = norm[len(root.rstrip("/")) + 1:]
                    break
        return SourceLine(path, hit.line, hit.column)


def _target_label(obj: ObjectFile, site: Site) -> str | None:
    """A section symbol plus addend names the label written there, if one starts exactly there."""
    tsec = site.target_section
    if tsec is None or not len(obj.symbols) or (obj.symbol_info(site.symbol) & 0xF) != STT_SECTION:
        return None
    return obj.label_at(tsec, site.sym_value + site.addend)


def _result(ob: ObjectContext, site: Site, v: Decision, as_linked: int | None = None, shared: dict | None = None,
            lines: _Lines | None = None) -> SiteResult:
    obj = ob.obj
    sec = obj.sections[site.section]
    tsec = site.target_section
    ce = None
    if v.env is not None and v.verdict in (Verdict.VULNERABLE, Verdict.BROKEN):
        rc = recheck(site, v.env, v.policy or ob.policy, ob.veneers(site) and v.policy is None)
        layout, syms = _placements(ob, v.env, shared if shared is not None else {})
        base = ob.frame.base.evaluate(v.env) if ob.frame.base_fixed or BASE not in v.env else v.env[BASE]
        ce = Counterexample(rc.value, base, layout, syms, rc.rejected_by,
                            "improper alignment" if rc.misaligned and not rc.out_of_range else "out of range",
                            rc.place, rc.target, rc.encoded, rc.wanted)
    insn = site.insn.text if site.insn else (".hword" if site.spec.field.container == 2 else ".word")
    return SiteResult(
        file=obj.name, section=sec.name, section_index=site.section, offset=site.offset,
        reloc=site.spec.name, symbol=site.symbol_name, addend=site.addend,
        target_section=obj.sections[tsec].name if tsec is not None else None, target_section_index=tsec,
        instruction=insn, range=ob.range(site.spec), granule=site.spec.granule,
        verdict=v.verdict, reason=reason(v.record), expression=render(ob.expr(site), ob.name, ob.texts),
        counterexample=ce, notes=tuple(note(n) for n in v.notes), as_linked=as_linked, margin=v.margin,
        record=v.record, note_records=v.notes, function=obj.enclosing_symbol(site.section, site.offset),
        assumptions=ob.assumption_ids(site),
        # Lines for the findings only: a kernel has hundreds of robust sites decided one by
        # one, and decoding their line programs would cost more than deciding them.
        source=lines(site.section, site.offset) if lines is not None and v.verdict != Verdict.ROBUST else None,
        target_label=_target_label(obj, site))


def analyze_object(obj: ObjectFile, model: LayoutModel, columns: bool = True, fixes: bool = True,
                   source_lines: bool = False, source_root: str | None = None, threads: int = 1
                   ) -> tuple[list[SiteResult], ProofTable | None, FileSummary, ObjectContext]:
    """Decide every site of ``obj``: column-wise proofs first (screen.py), the rest one by one.

    ``columns=False`` decides every site one by one (tests compare the two paths).
    ``fixes``: decide a rewrite of each failing site (prove/fix.py).
    ``source_lines`` looks up the DWARF source line of each site decided one by one
    (off by default: a rewritten object analyzed for its fixes needs none);
    ``source_root`` makes those paths relative to it. ``threads``: for the column-wise
    proofs of one large object (screen.py); the results do not depend on it.
    """
    backend.new_session()
    ob = ObjectContext(obj, model)
    table, proved = None, np.zeros(len(ob.cols), dtype=bool)
    if columns:
        table, proved, counts = screen(ob, ob.cols, threads)
        ob.stats.update(counts)
    rest = np.nonzero(~proved)[0].tolist()
    sites = {i: ob.cols.site(i) for i in rest}
    verdicts: dict[int, Decision] = {}
    groups: dict[tuple, list[int]] = defaultdict(list)
    as_linked: dict[int, int] = {}
    for i in rest:
        site = sites[i]
        if ob.layout is not None and not site.problem:
            why = ob.unplaced(site)
            if why:
                verdicts[i] = undecided(why)
                continue
        rejects = ob.policy.rejects_type(site.spec)
        if rejects:  # no layout helps: the loader refuses the type (target.catalogue, kmod)
            verdicts[i] = Decision(Verdict.BROKEN, TypeRejected(site.spec.name, rejects))
        elif site.problem:
            verdicts[i] = undecided(site.problem)
        elif ob.feasible is None:
            verdicts[i] = undecided(ob.infeasible_why)
        elif ob.layout is not None and ob.open_vars(ob.expr(site)):
            # No as-linked value: the symbol (or GOT slot) may lie anywhere the model allows.
            groups[group_key(ob, site)].append(i)
        elif ob.layout is not None:
            # This build first: a site that fails as linked is broken, whatever else may happen.
            value, out, misaligned = fits(site, ob.feasible, ob.policy, ob.veneers(site))
            as_linked[i] = value
            if out or misaligned:
                rec = Failure(FailureKind.AS_LINKED, Problem.RANGE if out else Problem.ALIGN, value,
                              ob.range(site.spec), site.spec.granule)
                verdicts[i] = Decision(Verdict.BROKEN, rec, ob.feasible)
            elif model.placement == "as-linked":
                verdicts[i] = Decision(Verdict.ROBUST, Proof(ProofKind.AS_LINKED, value=(value, value)))
            else:
                groups[group_key(ob, site)].append(i)
        else:
            groups[group_key(ob, site)].append(i)
    dec = Decider(ob)
    for key in sorted(groups, key=repr):
        idx = groups[key]
        for i, v in zip(idx, dec.decide([sites[i] for i in idx])):
            verdicts[i] = v
    shared: dict = {}
    lines = _Lines(obj, source_root) if source_lines and rest else None
    pairs = sorted(((i, _result(ob, sites[i], verdicts[i], as_linked.get(i), shared, lines)) for i in rest),
                   key=lambda p: p[1].key)
    results = [r for _, r in pairs]
    if fixes and any(v.verdict != Verdict.ROBUST for v in verdicts.values()):
        # Decide a rewrite of every failing site in the rewritten object (one more analysis).
        fixed = attach_fixes(ob, [(sites[i], verdicts[i].record, r) for i, r in pairs], analyze_object)
        results = [fixed.get(r.key, r) for r in results]
    nrel = obj.relocation_count
    summary = FileSummary(obj.name, len(obj.sections), nrel, tuple(sorted(ob.cols.unchecked.items())),
                          ob.cols.skipped_nonalloc, tuple(ob.assumptions), tuple(sorted(ob.stats.items())))
    return results, table, summary, ob


@contextlib.contextmanager
def cyclic_collection_paused():
    """The cyclic collector paused for a run. An analysis makes millions of small objects
    (chain items, terms, sites, results) that live until the report is made; the collector
    walked them again and again (a third of the big kernel's time) and found almost nothing:
    reference counting frees them. Forked pool workers inherit the pause. It runs again
    afterwards (the CLI holds it until the report is written)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


class _Digests:
    """The SHA-256 of each object's contents. One large object is hashed in a thread
    while it is analyzed (hashlib lets the interpreter go); many are hashed here."""

    def __init__(self, sources: dict[str, tuple], background: bool):
        self._sources = sources
        self._done: dict[str, str] = {}
        self._thread = None
        if background:
            import threading
            self._thread = threading.Thread(target=self._hash, daemon=True)
            self._thread.start()
        else:
            self._hash()

    def _hash(self) -> None:
        for name, (_, _, data) in self._sources.items():
            self._done[name] = hashlib.sha256(data).hexdigest()

    def sources(self) -> dict[str, Source]:
        if self._thread is not None:
            self._thread.join()
        return {name: Source(path, k, self._done[name]) for name, (path, k, _) in self._sources.items()}


# The process whose last object's context is let go by its exit (see hold_until_exit).
_holder_pid: int | None = None
_held: list = []


def hold_until_exit() -> None:
    """Keep the last object's decision context alive until the process exits.

    For a command that ends with os._exit: a kernel's context is 10^7 small objects,
    and freeing them one by one costs a quarter of a second that the exit does for
    nothing (lld exits without freeing for the same reason). Each object still lets
    the previous one go before it starts, so the peak is that of a run without this;
    forked pool workers, whose pid differs, hold nothing."""
    global _holder_pid
    _holder_pid = os.getpid()


def _analyze_blob(task) -> tuple:
    """One object in isolation (a process-pool task): results, or the error that stopped it."""
    name, data, model, columns, keep, lines, root, threads = task
    calls0 = backend.Stats.calls
    _held.clear()
    try:
        res, table, summ, ob = analyze_object(read_object(name, data), model, columns, source_lines=lines,
                                              source_root=root, threads=threads)
    except InputError as exc:
        return None, None, None, FileError(exc.file, exc.message), 0, None
    except ModelError as exc:  # the model cannot lay out this object (e.g. a script symbol it lacks)
        return None, None, None, FileError(name, f"layout model: {exc}"), 0, None
    except Exception as exc:  # MemoryError, or z3's own out-of-memory exception
        if not backend.is_out_of_memory(exc):
            raise
        backend.new_session()  # let the context that ran out go
        return None, None, None, FileError(name, "out of memory: the analysis exceeded the memory limit"), 0, None
    if table is not None:
        table.type_counts  # counted here, in the worker: the parent renders ten thousand tables
    if _holder_pid == os.getpid():
        _held.append(ob)
    return res, table, summ, None, backend.Stats.calls - calls0, ob if keep else None


def analyze(paths: Iterable[str], model: LayoutModel | None = None, jobs: int = 1, columns: bool = True,
            keep_objects: bool = False, progress=None, source_lines: bool = True,
            source_root: str | None = None) -> Report:
    """Analyze every object (and archive member) named by ``paths``.

    With ``jobs`` > 1 objects are analyzed in a process pool; the report is the same
    byte for byte, because every object is decided on its own and results are sorted.
    ``keep_objects`` keeps each object's decision context (in-process runs only) so that
    library queries need not read the file again. ``progress(done, total, sites)`` is
    called as each object finishes (for a terminal's progress line; it sees no results).
    ``source_lines`` and ``source_root``: see analyze_object.
    """
    model = model or LayoutModel()
    sites: list[SiteResult] = []
    files: list[FileSummary] = []
    errors: list[FileError] = []
    tasks = []
    sources: dict[str, tuple] = {}  # name -> (path, member, contents)
    for path in paths:
        try:
            blobs = load(path)
        except InputError as exc:
            errors.append(FileError(exc.file, exc.message))
            continue
        except MemoryError:
            errors.append(FileError(path, "out of memory while reading the file"))
            continue
        for k, blob in enumerate(blobs):
            if isinstance(blob, InputError):
                errors.append(FileError(blob.file, blob.message))
            else:
                sources[blob.name] = (path, k, blob.data)
                tasks.append([blob.name, blob.data, model, columns, keep_objects and jobs <= 1, source_lines,
                              source_root, 1])
    def tell(done: Iterable):
        outcomes, decided = [], 0
        for out in done:
            outcomes.append(out)
            decided += len(out[0] or ()) + (len(out[1]) if out[1] is not None else 0)
            if progress is not None:
                progress(len(outcomes), len(tasks), decided)
        return outcomes

    digests = _Digests(sources, background=len(tasks) == 1)
    with cyclic_collection_paused():
        if len(tasks) == 1:
            tasks[0][-1] = jobs   # one object: its jobs are threads within it
        if jobs > 1 and len(tasks) > 1:
            import concurrent.futures as cf
            workers = min(jobs, len(tasks))
            with cf.ProcessPoolExecutor(max_workers=workers, initializer=gc.disable) as pool:
                # Thousands of small archive members: a task per member costs more in the pool
                # than the member itself; chunks keep both workers busy to the end.
                chunk = max(1, min(64, len(tasks) // (workers * 16)))
                outcomes = tell(pool.map(_analyze_blob, tasks, chunksize=chunk))
        else:
            outcomes = tell(_analyze_blob(t) for t in tasks)
    calls = 0
    tables = []
    kept = {}
    for res, table, summ, err, n, ob in outcomes:
        calls += n
        if err is not None:
            errors.append(err)
        else:
            sites.extend(res)
            files.append(summ)
            if table is not None:
                tables.append(table)
            if ob is not None:
                kept[summ.file] = ob
    sources = digests.sources()
    sites.sort(key=lambda s: s.key)
    files.sort(key=lambda f: f.file)
    errors.sort(key=lambda e: (e.file, e.message))
    tables.sort(key=lambda t: t.file)
    return Report("reachsolve", __version__, tuple(sorted(model.describe().items())), tuple(sites),
                  tuple(files), tuple(errors), calls, tuple(tables), sources=sources, objects=kept, layout_model=model)
