"""The soundness campaign: reachsolve's verdicts against ld.lld on random objects and layouts.

Each object (:mod:`testsupport.randobj`) is analyzed by reachsolve under the free
model, then linked by ld.lld in every counterexample reachsolve gives and in
sampled layouts; :mod:`testsupport.oracle` says what each relocation's value is
and what ld.lld must report. The checks (a)-(e) are described in
tests/test_soundness.py; benchmarks/soundness.py runs longer campaigns.
"""
from __future__ import annotations

import dataclasses
import multiprocessing
import random
import re
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .oracle import (ABS_TYPES, IMAGE_BASE, IMAGE_MAX, LLD, PAGE, PAGE_TYPES, TPREL_TYPES, Layout, LinkResult, fits,
                     link_layout, link_text, lld_link, lld_rejects, map_layout, problems, read, script, value, with_tp)
from .randobj import generate, sample_layout
from .toolchain import assemble_text, tool

GAVE_UP = re.compile(r"solver gave up|timeout|timed out|resource limit|canceled|rlimit", re.I)
# An unknown that says it could not be decided (a completion of the solver's witness failed):
# incompleteness, not a wrong verdict; counted apart from disagreements, as the solver giving up is.
INCOMPLETE = re.compile(r"(found no room for the object's other "
                        r"sections around it, and an exact placement query is not tried for \d+ layout variables"
                        r"|walking the script's chain to it \(also with every alignment padding reserved\) found "
                        r"no complete layout around it); undecided$"
                        # a second .tbss input of an output section: no one place in the chain
                        r"|follows another TLS NOBITS input section in its output section")


@dataclass
class Tally:
    objects: int = 0
    sites: int = 0
    layouts: int = 0
    checks: int = 0              # site x layout comparisons
    ce_checks: int = 0           # counterexamples linked and checked at their site
    lld_rejections: int = 0      # site x layout pairs ld.lld rejected
    verdicts: Counter = field(default_factory=Counter)
    modes: Counter = field(default_factory=Counter)
    by_type: Counter = field(default_factory=Counter)  # (type, verdict) -> sites; (type, "rejected") -> checks
    unknown_reasons: Counter = field(default_factory=Counter)  # reason, numbers and names blotted out -> sites
    kinds: Counter = field(default_factory=Counter)   # disagreement kind -> checks
    sites_by_kind: Counter = field(default_factory=Counter)  # disagreement kind -> distinct sites
    gave_up: int = 0             # rejections at sites the solver gave up on (not disagreements)
    incomplete: int = 0          # rejections at sites left unknown because a completion failed (likewise)
    # counterexamples (objects with TLS) that reachsolve's own script (report.repro.linker_script)
    # does not make with ld.lld 14: a .tbss address ld.lld ignores, no TP below the object's
    # own, a section between two .tdata output sections (ld.lld refuses the script). Checked
    # instead through this harness's script, counted apart: not a disagreement.
    repro_unmade: int = 0
    examples: list = field(default_factory=list)     # a few disagreements per kind, to reproduce
    _seen: set = field(default_factory=set, repr=False)  # (kind, site) already counted (one object's)
    seconds: float = 0.0

    COUNTS = ("objects", "sites", "layouts", "checks", "ce_checks", "lld_rejections", "gave_up", "incomplete",
              "repro_unmade")

    def add(self, other: "Tally", keep: int = 3) -> None:
        for k in self.COUNTS:
            setattr(self, k, getattr(self, k) + getattr(other, k))
        for k in ("verdicts", "modes", "by_type", "unknown_reasons", "kinds", "sites_by_kind"):
            getattr(self, k).update(getattr(other, k))
        have = Counter(e["kind"] for e in self.examples)
        for e in other.examples:
            if have[e["kind"]] < keep:
                have[e["kind"]] += 1
                self.examples.append(e)

    def disagree(self, seed: str, kind: str, where, detail: str, script: str | None = None) -> None:
        """Count one disagreement of ``kind`` at site ``where`` (None: not a site's); each site
        counts once per kind in sites_by_kind, and a few per kind are kept to reproduce."""
        self.kinds[kind] += 1
        if where is not None and (kind, where) in self._seen:
            return
        self._seen.add((kind, where))
        self.sites_by_kind[kind] += 1
        if sum(e["kind"] == kind for e in self.examples) < 3:
            self.examples.append({"seed": seed, "kind": kind, "detail": f"{_where(where) if where else ''} {detail}",
                                  "script": script})

    @property
    def disagreements(self) -> int:
        return sum(self.kinds.values())

    @property
    def tls_checks(self) -> int:
        return sum(n for (ty, k), n in self.by_type.items() if k == "checks" and ty in TPREL_TYPES)

    def summary(self) -> dict:
        return {"objects": self.objects, "sites": self.sites, "layouts": self.layouts,
                "site_layout_checks": self.checks, "counterexamples_checked": self.ce_checks,
                "lld_rejections": self.lld_rejections, "verdicts": dict(sorted(self.verdicts.items())),
                "layout_modes": dict(sorted(self.modes.items())), "solver_gave_up": self.gave_up,
                "unknown_incomplete_rejected": self.incomplete,
                "counterexamples_repro_script_does_not_make_tls": self.repro_unmade,
                "unknown_reasons": dict(self.unknown_reasons.most_common()),
                "by_type": {ty: {k: n for (t2, k), n in sorted(self.by_type.items()) if t2 == ty}
                            for ty in sorted({ty for ty, _ in self.by_type})},
                "disagreements": self.disagreements,
                "disagreements_by_kind": {k: {"checks": n, "sites": self.sites_by_kind[k]}
                                          for k, n in sorted(self.kinds.items())}}

    def line(self) -> str:
        return (f"{self.objects} objects, {self.sites} sites, {self.layouts} layouts, "
                f"{self.checks} site x layout checks, {self.ce_checks} counterexamples, "
                f"{self.lld_rejections} ld.lld rejections, {self.disagreements} disagreements")

    def explain(self) -> str:
        out = [f"{k}: {n} checks at {self.sites_by_kind[k]} sites" for k, n in sorted(self.kinds.items())]
        if self.repro_unmade:
            out.append(f"(not a disagreement) {REPRO_UNMADE}: {self.repro_unmade} counterexamples")
        for e in self.examples:
            out.append(f"--- seed {e['seed']!r}: {e['kind']}: {e['detail']}")
            if e.get("script"):
                out.append(e["script"].rstrip())
        return "\n".join(out)


def _where(k) -> str:
    return f"{k[0]}+{k[1]:#x} {k[2]}"


REPRO_UNMADE = "reachsolve's repro script does not make this counterexample (an object with TLS) with ld.lld 14"


def ce_layout(obj, ce, syms=None) -> Layout:
    """A counterexample's layout: its sections, undefined symbols and thread pointer."""
    tp = next((p.address for p in ce.symbols if p.kind == "tp"), None)
    if syms is None:
        syms = {p.name: p.address for p in ce.symbols if p.kind == "undefined"}
    return with_tp(obj, Layout({p.section: p.address for p in ce.layout}, syms, "counterexample", tp))


def _same_tls(obj, a: Layout, b: Layout) -> bool:
    return a.tp == b.tp and all(a.secs.get(s.name) == b.secs.get(s.name) for s in obj.tls)


# ld.lld 14 refuses a script that puts another section between two .tdata output sections
RELRO = "is not contiguous with other relro sections"


def _refused(obj, res: LinkResult) -> bool:
    return bool(obj.tls) and any(RELRO in line for line in res.other)


def _unmade(obj, res: LinkResult, made: Layout, rel, v: int) -> str | None:
    """Why reachsolve's script for a counterexample does not make it with ld.lld 14 (None: it does)."""
    if _refused(obj, res):
        return "ld.lld refuses the script: another section lies between two .tdata output sections"
    if rel.type in TPREL_TYPES and value(rel, made) != v:
        return f"as ld.lld links the script the value is {value(rel, made):#x}"
    return None


class _HarnessLinks:
    """Counterexamples reachsolve's script does not make, linked through this harness's
    script (the site's target .tbss pinned first, TP made by a pad section), once per layout."""

    def __init__(self, t: Tally, seed: str, obj, work: Path, compare, messages):
        self.t, self.seed, self.obj, self.work = t, seed, obj, work
        self.compare, self.messages = compare, messages   # (layout, result); (result)
        self.done: dict = {}

    def __call__(self, rel, lay: Layout, v: int, why: str, text: str) -> LinkResult | None:
        t = self.t
        t.repro_unmade += 1
        if sum(e["kind"] == REPRO_UNMADE for e in t.examples) < 3:
            t.examples.append({"seed": self.seed, "kind": REPRO_UNMADE, "script": text,
                               "detail": f"{_where(rel.key)} value {v:#x} in the counterexample; {why}"})
        keep = (rel.target,) if rel.type in TPREL_TYPES else ()
        key = (tuple(sorted(lay.secs.items())), tuple(sorted(lay.syms.items())), lay.tp, keep)
        if key not in self.done:
            res, made = link_layout(self.obj, lay, self.work, keep)
            t.layouts += 1
            t.modes["counterexample (harness script)"] += 1
            if not problems(self.obj, made):
                self.compare(made, res)
            else:   # a .tbss moved off another into no model layout: the site alone is judged
                t.modes["counterexample (harness script) outside the model"] += 1
                self.messages(res)
            self.done[key] = res, made
        res, made = self.done[key]
        if value(rel, made) != v:
            t.modes["counterexample ld.lld 14 cannot make"] += 1
            return None
        return res


def check_object(seed: str, layouts: int, work: Path) -> Tally:
    """Generate, analyze and link one object: its counterexamples, then ``layouts`` sampled layouts."""
    from reachsolve import LayoutModel, analyze
    from reachsolve.report.repro import linker_script

    t = Tally(objects=1)
    work.mkdir(parents=True, exist_ok=True)
    path = assemble_text(generate(seed), work / "o.o")
    obj = read(path)
    rng = random.Random(seed + "/layouts")

    def disagree(kind: str, where, detail: str, lay: Layout | None = None) -> None:
        t.disagree(seed, kind, where, detail, script(lay, obj) if lay else None)

    report = analyze([str(path)], LayoutModel(image_base=IMAGE_BASE, image_max=IMAGE_MAX, linker="lld"))
    for e in report.errors:
        disagree("analysis error", None, f"{e.file}: {e.message}")
    by = {(s.section, s.offset, s.reloc): s for s in report.sites}
    mine = {r.key: r for r in obj.rels}
    t.sites = len(mine)
    for k in set(mine) - set(by):
        disagree("site not analyzed", k, "")
    for k in set(by) - set(mine):
        disagree("site unknown to the harness", k, "")
    for s in report.sites:
        t.verdicts[str(s.verdict)] += 1   # a Verdict is a str enum: count its plain value
        t.by_type[(s.reloc, str(s.verdict))] += 1
        if s.verdict == "unknown":
            t.unknown_reasons[re.sub(r"(?:-?0x[0-9a-f]+|\.\w+\.\d+|\.text|ext_\d+)(?: lies inside #)?", "#",
                                     s.reason)] += 1

    def compare(lay: Layout, res: LinkResult) -> None:
        for line in res.other:
            disagree("unexpected linker message", None, line, lay)
        for k in set(res.rejected) - set(mine):
            disagree("ld.lld rejects a site reachsolve does not check", k, "", lay)
        for k, rel in mine.items():
            s = by.get(k)
            if s is None:
                continue
            t.checks += 1
            v = value(rel, lay)
            rej = k in res.rejected
            t.lld_rejections += rej
            t.by_type[(rel.type, "rejected")] += rej
            t.by_type[(rel.type, "checks")] += 1
            if rej != lld_rejects(rel, v):
                disagree("harness: ld.lld differs from the predicted check", k,
                         f"value {v:#x}: ld.lld {'rejects' if rej else 'accepts'}", lay)
            if s.verdict == "robust":
                if rej:
                    disagree("(a) ld.lld rejects a robust site", k, f"value {v:#x}: {s.reason}", lay)
                elif not fits(rel, v):
                    disagree("(d) a robust site does not fit (silently)", k, f"value {v:#x}: {s.reason}", lay)
            elif s.verdict == "broken" and fits(rel, v):
                disagree("(d) a broken site fits", k, f"value {v:#x}: {s.reason}", lay)
            elif s.verdict == "unknown" and rej:
                if GAVE_UP.search(s.reason):
                    t.gave_up += 1
                else:
                    disagree("(b) ld.lld rejects an unknown site", k, f"value {v:#x}: {s.reason}", lay)

    # (c) every counterexample: a layout of the model, rejected by ld.lld at its site
    scripts: dict[str, list] = {}
    for s in report.sites:
        ce = s.counterexample
        k = (s.section, s.offset, s.reloc)
        if s.verdict in ("vulnerable", "broken") and ce is None:
            disagree("(c) no counterexample", k, s.reason)
        if ce is None:
            continue
        lay = ce_layout(obj, ce)
        bad = problems(obj, lay)
        if bad:
            disagree("(c) counterexample outside the model", k, "; ".join(bad), lay)
            continue
        scripts.setdefault(linker_script(s, "lld"), []).append((s, lay))

    def messages(res: LinkResult) -> None:
        for line in res.other:
            disagree("unexpected linker message", None, line)

    harness = _HarnessLinks(t, seed, obj, work, compare, messages)
    for text, group in sorted(scripts.items()):
        lay = group[0][1]
        res, made = link_text(obj, text, work, lay)
        t.layouts += 1
        t.modes["counterexample"] += 1
        if _refused(obj, res):
            t.modes["counterexample: ld.lld refuses reachsolve's script"] += 1
        elif made is lay or _same_tls(obj, made, lay):
            compare(lay, res)
        elif not problems(obj, made):
            compare(made, res)   # the layout ld.lld made from the script: checked as any other
        for s, lay in group:
            t.ce_checks += 1
            ce = s.counterexample
            k = (s.section, s.offset, s.reloc)
            rel = mine.get(k)
            if rel is None:
                continue
            v = value(rel, lay)
            if v != ce.value:
                disagree("(c) counterexample value differs", k, f"reachsolve {ce.value:#x}, computed {v:#x}", lay)
            res_k = res
            why = _unmade(obj, res, made, rel, v)
            if why:
                res_k = harness(rel, lay, v, why, text)
                if res_k is None:
                    continue
            if "lld" in ce.rejected_by:
                if k not in res_k.rejected:
                    disagree("(c) ld.lld accepts a counterexample", k, f"value {v:#x}: {s.reason}", lay)
                elif ce.problem not in res_k.rejected[k]:
                    disagree("(c) ld.lld rejects a counterexample for another reason", k,
                             f"{ce.problem} vs {sorted(res_k.rejected[k])}", lay)
            else:
                # No ld.lld check applies (b/bl thunks, silently dropped low bits): the
                # linker stays silent, and the value must really be wrong.
                if k in res_k.rejected:
                    disagree("(c) ld.lld rejects a counterexample said to pass silently", k, "", lay)
                if fits(rel, v):
                    disagree("(c) a silent counterexample fits", k, f"value {v:#x}", lay)
    # (a), (b), (d) in sampled layouts
    for _ in range(layouts):
        lay = sample_layout(rng, obj)
        res, made = link_layout(obj, lay, work)   # made == lay: a sampled layout's .tbss never overlap
        t.layouts += 1
        t.modes[lay.mode] += 1
        compare(made, res)
    return t


def _job(args) -> Tally:
    seed, layouts, root, kind = args
    d = Path(root) / re.sub(r"\W", "_", seed)
    t0 = time.monotonic()
    try:
        t = CHECKS[kind](seed, layouts, d)
    except Exception as exc:  # a crash is a finding, not a reason to stop the campaign
        t = Tally(objects=1)
        t.kinds["harness crash"] += 1
        t.sites_by_kind["harness crash"] += 1
        t.examples.append({"seed": seed, "kind": "harness crash", "detail": repr(exc), "script": None})
    t.seconds = time.monotonic() - t0
    shutil.rmtree(d, ignore_errors=True)
    return t


def campaign(seed: int, objects: int, layouts: int, jobs: int = 2, progress=None,
             deadline: float | None = None, kind: str = "free", picks=None) -> Tally:
    """Objects named "SEED/0" ... "SEED/objects-1" (or "SEED/i" for each i of ``picks``), each
    checked in ``layouts`` sampled layouts (objects finish in any order; past ``deadline``
    seconds the rest are dropped). ``kind``:
    "free" (the free model), "weak" (--final-link static, weak targets left undefined) or
    "script" (random scripts, ordered model, grown builds); see CHECKS."""
    import reachsolve.prove.pipeline, reachsolve.report.repro  # noqa: F401  (loaded once, before the workers fork)

    total = Tally()
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="soundness-") as root:
        tasks = [(f"{seed}/{i}", layouts, root, kind) for i in (range(objects) if picks is None else picks)]
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(jobs, maxtasksperchild=100) as pool:
            for t in pool.imap_unordered(_job, tasks):
                total.add(t)
                if progress:
                    progress(total, time.monotonic() - t0)
                if deadline is not None and time.monotonic() - t0 > deadline:
                    break
    total.seconds = time.monotonic() - t0
    return total



# ---------------------------------------------------------------------------
# (f) --final-link: undefined weak targets left undefined in a static link
# ---------------------------------------------------------------------------
# What ld.lld 14 writes for a reference to an undefined weak symbol in a static
# link, worked out here from lld's source (InputSection.cpp getRelocTargetVA and
# getAArch64UndefinedRelativeWeakVA), not from reachsolve: S = P+4 for branches,
# S = P for other PC-relative types, ADRP Page(P+A) - Page(P) (S = 0 when hidden),
# S = 0 for absolute types; no thunk for a b/bl.
# ld.lld 14 resolves these to the next instruction (S = P+4); measured for MOVW_PREL, whose
# movz gets A+4 (tests/fixtures/final_link/weak_movw.S).
WEAK_NEXT = {"R_AARCH64_CONDBR19", "R_AARCH64_TSTBR14", "R_AARCH64_JUMP26", "R_AARCH64_CALL26",
             "R_AARCH64_MOVW_PREL_G0", "R_AARCH64_MOVW_PREL_G1", "R_AARCH64_MOVW_PREL_G2"}


def weak_value(rel, lay: Layout, hidden: bool) -> int:
    p = lay.secs[rel.section] + rel.offset
    if rel.type in ABS_TYPES:
        return rel.addend
    if rel.type in PAGE_TYPES:
        s = 0 if hidden else p
        return ((s + rel.addend) & ~(PAGE - 1)) - (p & ~(PAGE - 1))
    return (4 if rel.type in WEAK_NEXT else 0) + rel.addend


def weak_fits(rel, v: int) -> bool:
    """Range and granule, with no thunk (ld.lld adds none for an undefined weak target)."""
    lo, hi, g, _, _ = LLD[rel.type]
    return v % g == 0 and (lo is None or lo <= v <= hi)


def weak_rejects(rel, v: int) -> bool:
    lo, hi, g, aligns, _ = LLD[rel.type]
    if aligns and v % g and rel.type not in PAGE_TYPES:
        return True
    return lo is not None and not lo <= v <= hi


def weak_source(seed: str) -> tuple[str, dict[str, bool]]:
    """generate(seed) with every undefined symbol made weak, some of them hidden."""
    src = generate(seed)
    rng = random.Random(seed + "/weak")
    names = sorted(set(re.findall(r"\bext_\d+\b", src)))
    hidden = {n: rng.random() < 0.4 for n in names}
    head = "".join(f"\t.weak {n}\n" + (f"\t.hidden {n}\n" if hidden[n] else "") for n in names)
    return src.replace("\n", "\n" + head, 1), hidden


def check_weak_object(seed: str, layouts: int, work: Path) -> Tally:
    """An object whose undefined symbols are weak, analyzed with final_link = "static" and
    linked by ld.lld in sampled layouts with those symbols left undefined."""
    from reachsolve import LayoutModel, analyze

    t = Tally(objects=1)
    work.mkdir(parents=True, exist_ok=True)
    src, hidden = weak_source(seed)
    path = assemble_text(src, work / "o.o")
    obj = read(path)
    sections_only = dataclasses.replace(obj, undef=[], sym_align={})   # the model, but for the weak symbols
    rng = random.Random(seed + "/weak-layouts")

    def disagree(kind, where, detail, text=None):
        t.disagree(seed, kind, where, detail, text)

    report = analyze([str(path)], LayoutModel(image_base=IMAGE_BASE, image_max=IMAGE_MAX, linker="lld",
                                              final_link="static"))
    for e in report.errors:
        disagree("analysis error", None, f"{e.file}: {e.message}")
    by = {(s.section, s.offset, s.reloc): s for s in report.all_sites()}
    mine = {r.key: r for r in obj.rels}
    t.sites = len(mine)
    weak = {k for k, r in mine.items() if r.target is None and r.sym in hidden}
    for k, s in by.items():
        t.verdicts[str(s.verdict)] += 1
        t.by_type[(s.reloc, str(s.verdict))] += 1
        if k in weak:
            t.by_type[("undefined weak", str(s.verdict))] += 1
    for k in weak:
        s = by.get(k)
        if s is None:
            disagree("site not analyzed", k, "")
        elif "undefined weak" not in s.reason:
            disagree("(f) weak site not decided as resolved", k, s.reason)

    def val(rel, lay):
        return weak_value(rel, lay, hidden[rel.sym]) if rel.key in weak else value(rel, lay)

    def compare(lay: Layout, res: LinkResult, text: str) -> None:
        for line in res.other:
            disagree("unexpected linker message", None, line, text)
        for k, rel in mine.items():
            s = by.get(k)
            if s is None:
                continue
            t.checks += 1
            v = val(rel, lay)
            rej = k in res.rejected
            t.lld_rejections += rej
            w = k in weak
            predicted = weak_rejects(rel, v) if w else lld_rejects(rel, v)
            ok = weak_fits(rel, v) if w else fits(rel, v)
            if rej != predicted:
                disagree("harness: ld.lld differs from the predicted check", k,
                         f"value {v:#x}: ld.lld {'rejects' if rej else 'accepts'}", text)
            if s.verdict == "robust" and (rej or not ok):
                disagree("(f) a robust site fails", k, f"value {v:#x}: {s.reason}", text)
            elif s.verdict == "broken" and ok:
                disagree("(f) a broken site fits", k, f"value {v:#x}: {s.reason}", text)
            elif s.verdict == "unknown" and rej and INCOMPLETE.search(s.reason):
                t.incomplete += 1
            elif s.verdict == "unknown" and rej and not GAVE_UP.search(s.reason):
                disagree("(b) ld.lld rejects an unknown site", k, f"value {v:#x}: {s.reason}", text)

    def link(lay: Layout, mode: str, keep: tuple = ()) -> tuple[LinkResult, Layout]:
        syms = {n: a for n, a in lay.syms.items() if n not in hidden}   # weak ones stay undefined
        lay = Layout(lay.secs, syms, mode, lay.tp)
        text = script(lay, obj, keep)
        res, made = link_layout(obj, lay, work, keep)
        t.layouts += 1
        t.modes[mode] += 1
        if made is lay or not problems(sections_only, made):
            compare(made, res, text)
        else:
            t.modes["counterexample link outside the model (not compared)"] += 1
        return res, made

    # every counterexample, linked with its sections where it puts them and the weak symbols
    # undefined (sites that share a layout share one link)
    groups: dict[tuple, list] = {}
    for s in report.listed:
        ce = s.counterexample
        k = (s.section, s.offset, s.reloc)
        if s.verdict in ("vulnerable", "broken") and ce is None:
            disagree("(c) no counterexample", k, s.reason)
        if ce is None or k not in mine:
            continue
        lay = ce_layout(obj, ce, {p.name: p.address for p in ce.symbols
                                  if p.kind == "undefined" and p.name not in hidden})
        groups.setdefault((tuple(sorted(lay.secs.items())), tuple(sorted(lay.syms.items())), lay.tp or 0),
                          []).append((s, lay))
    for _, group in sorted(groups.items()):
        lay = group[0][1]
        keep = tuple(sorted({mine[(s.section, s.offset, s.reloc)].target for s, _ in group
                             if s.reloc in TPREL_TYPES}))
        res, made = link(lay, "weak counterexample", keep)
        for s, _ in group:
            k = (s.section, s.offset, s.reloc)
            ce = s.counterexample
            t.ce_checks += 1
            v = val(mine[k], lay)
            if v != ce.value:
                disagree("(c) counterexample value differs", k, f"reachsolve {ce.value:#x}, computed {v:#x}")
            res_k = res
            if s.reloc in TPREL_TYPES and val(mine[k], made) != v:
                # two .tbss the group's sites target overlap: this site's one pinned first
                res_k, made_k = link(lay, "weak counterexample", (mine[k].target,))
                if val(mine[k], made_k) != v:
                    t.modes["counterexample ld.lld 14 cannot make"] += 1
                    continue
            if "lld" in ce.rejected_by and k not in res_k.rejected:
                disagree("(c) ld.lld accepts a counterexample", k, f"value {v:#x}: {s.reason}")
    for _ in range(layouts):
        link(sample_layout(rng, obj), "weak sampled")
    return t


# ---------------------------------------------------------------------------
# (g) script models: random scripts, grown builds linked by ld.lld with the same script
# ---------------------------------------------------------------------------
_SEC_KIND = {"text": ("ax", "progbits"), "data": ("aw", "progbits"), "rodata": ("a", "progbits"),
             "bss": ("aw", "nobits"), "tdata": ("awT", "progbits"), "tbss": ("awT", "nobits")}
THUNK = re.compile(r"__AArch64\w*Thunk")


def script_source(seed: str) -> str:
    """generate(seed) with its undefined symbols defined in a section of their own, so
    that a link needs nothing from outside and every target has an address."""
    src = generate(seed)
    names = sorted(set(re.findall(r"\bext_\d+\b", src)))
    if not names:
        return src
    body = "".join(f"\t.globl {n}\n{n}:\n\t.space 16\n" for n in names)
    return src + '\t.section .rodata.ext,"a",%progbits\n\t.p2align 4\n' + body


def _kinds(names) -> dict:
    return {n: _SEC_KIND.get(n.split(".")[1] if n.count(".") >= 1 and len(n.split(".")) > 1 else "", ("a", "progbits"))
            for n in names}


def link_map(objs: list[Path], lds: Path, work: Path, tbss: frozenset = frozenset()) -> tuple[LinkResult, str]:
    """ld.lld -T lds objs... with a map file: the rejections and the map's text (warnings that
    a .tbss output section named in ``tbss`` starts unaligned dropped: ld.lld starts it where
    the location counter is, its input sections aligned inside it)."""
    from .oracle import UNALIGNED_TBSS, parse_stderr
    out, mp = work / "s.out", work / "s.map"
    cmd = [tool("lld"), "-T", str(lds), *map(str, objs), "-o", str(out), "-Map", str(mp), "-e", "0",
           "--error-limit=0", "--no-relax", "--threads=1"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    stderr = "\n".join(line for line in p.stderr.splitlines()
                        if not ((m := UNALIGNED_TBSS.search(line)) and m.group(1) in tbss))
    rejected, other = parse_stderr(stderr)
    text = mp.read_text() if mp.exists() else ""
    out.unlink(missing_ok=True)
    mp.unlink(missing_ok=True)
    return LinkResult(rejected, other, p.returncode), text


def check_script_object(seed: str, builds: int, work: Path) -> Tally:
    """A random object under a random script (ordered model), checked in the as-linked
    build and in ``builds`` grown builds, each linked by ld.lld with the same script."""
    from reachsolve import analyze
    from reachsolve.report.repro import linker_script

    from .randscript import ASSERT_MSG, grow, grown_source, make_script, pad_source, read_map

    t = Tally(objects=1)
    work.mkdir(parents=True, exist_ok=True)
    src = script_source(seed)
    path = assemble_text(src, work / "o.o")
    obj = read(path)
    rng = random.Random(seed + "/script")
    placed = [(s.name, s.size) for s in obj.secs if s.name not in (".text", ".data", ".bss")]
    sc = make_script(rng, placed)
    lds = work / "r.lds"
    lds.write_text(sc.text)

    def disagree(kind, where, detail):
        t.disagree(seed, kind, where, detail, sc.text)

    report = analyze([str(path)], "free", linker_script=str(lds), placement="ordered", linker="lld")
    for e in report.errors:
        disagree("analysis error", None, f"{e.file}: {e.message}")
    if report.errors:
        return t
    by = {(s.section, s.offset, s.reloc): s for s in report.all_sites()}
    mine = {r.key: r for r in obj.rels}
    t.sites = len(mine)
    for s in by.values():
        t.verdicts[str(s.verdict)] += 1
        t.by_type[(s.reloc, str(s.verdict))] += 1
    for k in set(mine) - set(by):
        disagree("site not analyzed", k, "")
    sizes = {s.name: s.size for s in obj.secs}
    kinds = _kinds(sizes)

    def compare(res: LinkResult, mp: str, first: bool) -> bool:
        addrs, lo, hi = read_map(mp, path.name, set(sizes))
        if res.returncode and ASSERT_MSG in "".join(res.other):
            t.modes["grown: breaks an ASSERT (not a build)"] += 1
            return False
        if THUNK.search(mp) and not first:
            t.modes["grown: thunks (their space is not modelled)"] += 1
            return False
        if hi - lo > IMAGE_MAX:
            t.modes["grown: larger than the image"] += 1
            return False
        for line in res.other:
            disagree("unexpected linker message", None, line)
        lay = Layout(addrs, {}, "script")
        missing = [s.name for s in obj.secs if s.name not in addrs]
        if missing:
            disagree("harness: sections missing from the map", None, ", ".join(missing[:3]))
            return False
        if obj.tls:   # TP from the PT_TLS segment ld.lld made: its first output section, its p_align
            lay.tp = map_layout(mp, obj, {}, "script").tp
        t.layouts += 1
        t.modes["as linked" if first else "grown"] += 1
        for k, rel in mine.items():
            s = by.get(k)
            if s is None:
                continue
            t.checks += 1
            v = value(rel, lay)
            rej = k in res.rejected
            t.lld_rejections += rej
            if rej != lld_rejects(rel, v):
                disagree("harness: ld.lld differs from the predicted check", k,
                         f"value {v:#x}: ld.lld {'rejects' if rej else 'accepts'}")
            if first and s.as_linked is not None and s.as_linked != v:
                disagree("(g) as-linked value differs", k, f"reachsolve {s.as_linked:#x}, ld.lld's layout {v:#x}")
            if s.verdict == "robust" and (rej or not fits(rel, v)):
                disagree("(g) a robust site fails in a grown build" if not first else
                         "(g) a robust site fails as linked", k, f"value {v:#x}: {s.reason}")
            elif s.verdict == "vulnerable" and not first and rej:
                t.modes["vulnerable site rejected in a grown build"] += 1
            elif s.verdict == "broken" and first and fits(rel, v):
                disagree("(g) a broken site fits as linked", k, f"value {v:#x}: {s.reason}")
            elif s.verdict == "unknown" and rej and INCOMPLETE.search(s.reason):
                t.incomplete += 1
            elif s.verdict == "unknown" and rej and not GAVE_UP.search(s.reason):
                disagree("(b) ld.lld rejects an unknown site", k, f"value {v:#x}: {s.reason}")
        return True

    tbss = frozenset({".tbss"} | {s.name for s in obj.secs if s.tbss})
    res, mp = link_map([path], lds, work, tbss)
    compare(res, mp, True)
    # every counterexample: its layout pinned, linked by ld.lld, rejected at its site
    # (sites that share a layout, e.g. the as-linked one, share one link)
    scripts: dict[str, list] = {}
    for s in report.listed:
        ce = s.counterexample
        k = (s.section, s.offset, s.reloc)
        if s.verdict in ("vulnerable", "broken") and ce is None:
            disagree("(c) no counterexample", k, s.reason)
        if ce is not None and k in mine:
            scripts.setdefault(linker_script(s, "lld"), []).append(s)

    def messages(res: LinkResult) -> None:   # counterexample layouts are judged at their sites only
        for line in res.other:
            disagree("unexpected linker message", None, line)

    harness = _HarnessLinks(t, seed, obj, work, lambda lay, res: messages(res), messages)
    for text, group in sorted(scripts.items()):
        r, made = link_text(obj, text, work, ce_layout(obj, group[0].counterexample, {}))
        t.layouts += 1
        t.modes["counterexample"] += 1
        for s in group:
            ce = s.counterexample
            k = (s.section, s.offset, s.reloc)
            t.ce_checks += 1
            lay = ce_layout(obj, ce, {})
            v = value(mine[k], lay)
            if v != ce.value:
                disagree("(c) counterexample value differs", k, f"reachsolve {ce.value:#x}, computed {v:#x}")
            r_k = r
            why = _unmade(obj, r, made, mine[k], v)
            if why:
                r_k = harness(mine[k], lay, v, why, text)
                if r_k is None:
                    continue
            if "lld" in ce.rejected_by and k not in r_k.rejected:
                disagree("(c) ld.lld accepts a counterexample", k, f"value {v:#x}: {s.reason}")
    for _ in range(builds):
        g = grow(rng, sc, sizes)
        objs = [path]
        if g.grown:
            objs = [assemble_text(grown_source(src, g), work / "g.o")]
        if g.pads:
            objs.append(assemble_text(pad_source(g, kinds), work / "pad.o"))
        if g.grown:
            # Growth at a section's end keeps every site's offset: the same keys.
            gobj = read(objs[0])
            if {r.key for r in gobj.rels} != set(mine):
                disagree("harness: growth moved a site", None, repr(sorted(g.grown.items())))
                continue
        res, mp = link_map(objs, lds, work, tbss)
        if g.grown:
            # The map names the grown object g.o; read its sections under the object's names.
            mp = mp.replace("g.o:(", "o.o:(")
        compare(res, mp, False)
    return t


#: The campaign's kinds: the check of one object in ``layouts`` layouts (or grown builds).
CHECKS = {"free": check_object, "weak": check_weak_object, "script": check_script_object}
