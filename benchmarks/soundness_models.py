#!/usr/bin/env python3
"""Long soundness campaign over every kind: the free model, --final-link, script models.

    nice python3 benchmarks/soundness_models.py --seed 1 --free 300 --weak 80 --script 60

runs testsupport.campaign's three kinds one after the other (the newest first) (objects "SEED/0" ...):
``free`` (sampled layouts of the free model, as benchmarks/soundness.py), ``weak``
(undefined symbols made weak, some hidden, analyzed with final_link = "static" and
linked by ld.lld with them left undefined) and ``script`` (a random linker script
per object, the ordered model, the as-linked build and grown builds linked by
ld.lld with the same script). Prints each kind's counts, writes a JSON summary to
benchmarks/results/, exits 1 on any disagreement. Not run by CI (tests/
test_soundness*.py run small slices of the same checks).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from testsupport import campaign as S  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--free", type=int, default=300, help="objects of the free kind")
    ap.add_argument("--weak", type=int, default=80, help="objects of the --final-link kind")
    ap.add_argument("--script", type=int, default=60, help="objects of the script kind")
    ap.add_argument("--layouts", type=int, default=30, help="sampled layouts (free, weak) per object")
    ap.add_argument("--builds", type=int, default=40, help="grown builds per object (script)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--minutes", type=float, nargs=3, default=None, metavar=("SCRIPT", "WEAK", "FREE"),
                    help="stop taking each kind's results after this long (the counts say how far it got)")
    ap.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    a = ap.parse_args(argv)

    out = {}
    total = S.Tally()
    t0 = time.monotonic()
    limits = dict(zip(("script", "weak", "free"), a.minutes or (None, None, None)))
    for kind, n, per in (("script", a.script, a.builds), ("weak", a.weak, a.layouts), ("free", a.free, a.layouts)):
        if not n:
            continue
        last = [0.0]

        def progress(t: S.Tally, secs: float, kind=kind, n=n) -> None:
            if secs - last[0] >= 60 or t.objects == n:
                last[0] = secs
                print(f"[{kind} {secs:7.0f} s] {t.line()}", file=sys.stderr, flush=True)

        lim = limits[kind]
        t = S.campaign(a.seed, n, per, jobs=a.jobs, progress=progress, kind=kind,
                       deadline=None if lim is None else 60 * lim)
        total.add(t)
        out[kind] = {**t.summary(), "seconds": round(t.seconds, 1), "per_object": per,
                     "examples": [{k: e[k] for k in ("seed", "kind", "detail")} for e in t.examples]}
        print(f"{kind}: {t.line()}, {t.seconds:.0f} s; {t.gave_up} rejections at sites the solver gave up on, "
              f"{t.incomplete} at sites left unknown by a failed completion; {t.repro_unmade} counterexamples "
              f"(objects with TLS) reachsolve's script does not make with ld.lld 14; "
              f"verdicts {dict(sorted(t.verdicts.items()))}; "
              f"layouts {dict(sorted(t.modes.items()))}")
        if t.disagreements:
            print(t.explain())
    secs = time.monotonic() - t0
    print(f"all: {total.line()}, {secs:.0f} s")
    git = lambda *c: subprocess.run(["git", "-C", str(ROOT), *c], capture_output=True, text=True).stdout.strip()
    lld = subprocess.run(["ld.lld", "--version"], capture_output=True, text=True).stdout.strip()
    doc = {"campaign": "soundness against ld.lld: free, final-link, script models", "seed": a.seed,
           "jobs": a.jobs, "seconds": round(secs, 1), "commit": git("rev-parse", "HEAD"),
           "uncommitted": git("status", "--porcelain", "reachsolve", "testsupport").splitlines(), "linker": lld,
           "site_layout_checks": total.checks, "layouts": total.layouts, "objects": total.objects,
           "disagreements": total.disagreements, "kinds": out}
    a.results.mkdir(parents=True, exist_ok=True)
    path = a.results / f"soundness-models-seed{a.seed}.json"
    path.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"summary written to {path}")
    return 1 if total.disagreements else 0


if __name__ == "__main__":
    sys.exit(main())
