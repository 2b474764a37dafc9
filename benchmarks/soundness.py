#!/usr/bin/env python3
"""Long soundness campaign of reachsolve against ld.lld.

    python3 benchmarks/soundness.py --n 400 --seed 1

generates N random objects from SEED ("SEED/0" ... "SEED/N-1"), links each in
--layouts sampled layouts of the free model (image base 0x40000000, 128 MiB) and
in every counterexample reachsolve gives, and compares ld.lld's verdicts with
reachsolve's (the checks are described in tests/test_soundness.py; the
generator and sampler are testsupport/randobj.py, the independent oracle
testsupport/oracle.py, the checker testsupport/campaign.py; about 30% of the objects have
TLS sections and TLS local-exec sites). Prints the counts and writes a JSON summary
to benchmarks/results/. Exit status 1 when there is a disagreement.

    python3 benchmarks/soundness.py --show 1/17 [-o DIR]

prints the source of one generated object (with -o: assembles it into DIR).
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
from testsupport.oracle import IMAGE_BASE, IMAGE_MAX  # noqa: E402
from testsupport.randobj import generate  # noqa: E402
from testsupport.toolchain import assemble_text  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100, help="objects to generate")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--layouts", type=int, default=30, help="sampled layouts per object")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--max-seconds", type=float, default=None, help="stop taking results after this long")
    ap.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    ap.add_argument("--show", metavar="SEED/I", help="print one object's source and exit")
    ap.add_argument("-o", type=Path, help="with --show: assemble the object into this directory")
    a = ap.parse_args(argv)

    if a.show:
        src = generate(a.show)
        if a.o:
            a.o.mkdir(parents=True, exist_ok=True)
            print(assemble_text(src, a.o / "o.o"))
        else:
            sys.stdout.write(src)
        return 0

    last = [0.0]

    def progress(t: S.Tally, secs: float) -> None:
        if secs - last[0] >= 30 or t.objects == a.n:
            last[0] = secs
            print(f"[{secs:7.0f} s] {t.line()}", file=sys.stderr, flush=True)

    t = S.campaign(a.seed, a.n, a.layouts, jobs=a.jobs, progress=progress, deadline=a.max_seconds)
    s = t.summary()
    print(f"seed {a.seed}: {t.objects} objects, {t.layouts} layouts ({s['layout_modes'].get('counterexample', 0)} "
          f"of them counterexamples), {t.checks} site x layout checks, {t.ce_checks} counterexamples checked, "
          f"{t.disagreements} disagreements, {t.seconds:.0f} s")
    print(f"sites {t.sites}, verdicts {s['verdicts']}, ld.lld rejections {t.lld_rejections}, "
          f"solver gave up at {t.gave_up}")
    print(f"TLS: {t.tls_checks} site x layout checks of TLSLE sites; {t.repro_unmade} counterexamples that "
          f"reachsolve's repro script does not make with ld.lld 14 (linked through the harness's script)")
    print(f"layouts {s['layout_modes']}")
    if t.disagreements:
        print(t.explain())
    lld = subprocess.run(["ld.lld", "--version"], capture_output=True, text=True).stdout.strip()
    import reachsolve
    git = lambda *c: subprocess.run(["git", "-C", str(ROOT), *c], capture_output=True, text=True).stdout.strip()
    doc = {"campaign": "soundness against ld.lld", "seed": a.seed, "n": a.n, "layouts_per_object": a.layouts,
           "jobs": a.jobs, "seconds": round(t.seconds, 1), "image_base": IMAGE_BASE, "image_max": IMAGE_MAX,
           "reachsolve": reachsolve.__version__, "commit": git("rev-parse", "HEAD"),
           "uncommitted": git("status", "--porcelain", "reachsolve").splitlines(), "linker": lld, **s,
           "examples": [{k: e[k] for k in ("seed", "kind", "detail")} for e in t.examples]}
    a.results.mkdir(parents=True, exist_ok=True)
    out = a.results / f"soundness-seed{a.seed}-n{a.n}.json"
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"summary written to {out}")
    return 1 if t.disagreements else 0


if __name__ == "__main__":
    sys.exit(main())
