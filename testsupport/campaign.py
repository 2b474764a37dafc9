"""The soundness campaign: reachsolve's verdicts against ld.lld on random objects and layouts.

Each object (:mod:`testsupport.randobj`) is analyzed by reachsolve under the free
model, then linked by ld.lld in every counterexample reachsolve gives and in
sampled layouts; :mod:`testsupport.oracle` says what each relocation's value is
and what ld.lld must report. The checks (a)-(e) are described in
tests/test_soundness.py; benchmarks/soundness.py runs longer campaigns.
"""
from __future__ import annotations

import multiprocessing
import random
import re
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .oracle import IMAGE_BASE, IMAGE_MAX, Layout, LinkResult, fits, lld_link, lld_rejects, problems, read, script, value
from .randobj import generate, sample_layout
from .toolchain import assemble_text

GAVE_UP = re.compile(r"solver gave up|timeout|timed out|resource limit|canceled|rlimit", re.I)


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
    examples: list = field(default_factory=list)     # a few disagreements per kind, to reproduce
    seconds: float = 0.0

    COUNTS = ("objects", "sites", "layouts", "checks", "ce_checks", "lld_rejections", "gave_up")

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

    @property
    def disagreements(self) -> int:
        return sum(self.kinds.values())

    def summary(self) -> dict:
        return {"objects": self.objects, "sites": self.sites, "layouts": self.layouts,
                "site_layout_checks": self.checks, "counterexamples_checked": self.ce_checks,
                "lld_rejections": self.lld_rejections, "verdicts": dict(sorted(self.verdicts.items())),
                "layout_modes": dict(sorted(self.modes.items())), "solver_gave_up": self.gave_up,
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
        for e in self.examples:
            out.append(f"--- seed {e['seed']!r}: {e['kind']}: {e['detail']}")
            if e.get("script"):
                out.append(e["script"].rstrip())
        return "\n".join(out)


def _where(k) -> str:
    return f"{k[0]}+{k[1]:#x} {k[2]}"


def check_object(seed: str, layouts: int, work: Path) -> Tally:
    """Generate, analyze and link one object: its counterexamples, then ``layouts`` sampled layouts."""
    from reachsolve import LayoutModel, analyze
    from reachsolve.report.repro import linker_script

    t = Tally(objects=1)
    work.mkdir(parents=True, exist_ok=True)
    path = assemble_text(generate(seed), work / "o.o")
    obj = read(path)
    rng = random.Random(seed + "/layouts")
    seen: set = set()

    def disagree(kind: str, where, detail: str, lay: Layout | None = None) -> None:
        t.kinds[kind] += 1
        if (kind, where) in seen and where is not None:
            return
        seen.add((kind, where))
        t.sites_by_kind[kind] += 1
        if sum(e["kind"] == kind for e in t.examples) < 3:
            t.examples.append({"seed": seed, "kind": kind, "detail": f"{_where(where) if where else ''} {detail}",
                               "script": script(lay) if lay else None})

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
        lay = Layout({p.section: p.address for p in ce.layout},
                     {p.name: p.address for p in ce.symbols if p.kind == "undefined"}, "counterexample")
        bad = problems(obj, lay)
        if bad:
            disagree("(c) counterexample outside the model", k, "; ".join(bad), lay)
            continue
        scripts.setdefault(linker_script(s, "lld"), []).append((s, lay))
    for text, group in sorted(scripts.items()):
        lay = group[0][1]
        res = lld_link(path, text, work)
        t.layouts += 1
        t.modes["counterexample"] += 1
        compare(lay, res)
        for s, _ in group:
            t.ce_checks += 1
            ce = s.counterexample
            k = (s.section, s.offset, s.reloc)
            rel = mine.get(k)
            if rel is None:
                continue
            v = value(rel, lay)
            if v != ce.value:
                disagree("(c) counterexample value differs", k, f"reachsolve {ce.value:#x}, computed {v:#x}", lay)
            if "lld" in ce.rejected_by:
                if k not in res.rejected:
                    disagree("(c) ld.lld accepts a counterexample", k, f"value {v:#x}: {s.reason}", lay)
                elif ce.problem not in res.rejected[k]:
                    disagree("(c) ld.lld rejects a counterexample for another reason", k,
                             f"{ce.problem} vs {sorted(res.rejected[k])}", lay)
            else:
                # No ld.lld check applies (b/bl thunks, silently dropped low bits): the
                # linker stays silent, and the value must really be wrong.
                if k in res.rejected:
                    disagree("(c) ld.lld rejects a counterexample said to pass silently", k, "", lay)
                if fits(rel, v):
                    disagree("(c) a silent counterexample fits", k, f"value {v:#x}", lay)
    # (a), (b), (d) in sampled layouts
    for _ in range(layouts):
        lay = sample_layout(rng, obj)
        res = lld_link(path, script(lay), work)
        t.layouts += 1
        t.modes[lay.mode] += 1
        compare(lay, res)
    return t


def _job(args) -> Tally:
    seed, layouts, root = args
    d = Path(root) / re.sub(r"\W", "_", seed)
    t0 = time.monotonic()
    try:
        t = check_object(seed, layouts, d)
    except Exception as exc:  # a crash is a finding, not a reason to stop the campaign
        t = Tally(objects=1)
        t.kinds["harness crash"] += 1
        t.sites_by_kind["harness crash"] += 1
        t.examples.append({"seed": seed, "kind": "harness crash", "detail": repr(exc), "script": None})
    t.seconds = time.monotonic() - t0
    shutil.rmtree(d, ignore_errors=True)
    return t


def campaign(seed: int, objects: int, layouts: int, jobs: int = 2, progress=None,
             deadline: float | None = None) -> Tally:
    """Objects named "SEED/0" ... "SEED/objects-1", each checked in ``layouts`` sampled layouts
    (objects finish in any order; past ``deadline`` seconds the rest are dropped)."""
    import reachsolve.prove.pipeline, reachsolve.report.repro  # noqa: F401  (loaded once, before the workers fork)

    total = Tally()
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="soundness-") as root:
        tasks = [(f"{seed}/{i}", layouts, root) for i in range(objects)]
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

