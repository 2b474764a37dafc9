"""Solver limits, parallel runs and memory caps never turn into wrong verdicts."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from testsupport.toolchain import FIXTURES, assemble
from reachsolve import LayoutModel, analyze
from reachsolve.cli import demo_object, main
from reachsolve.report.render import json_site_rows


def _objs(objdir):
    return [str(assemble(p, objdir)) for p in sorted(FIXTURES.glob("*.S"))]


def test_solver_giving_up_is_unknown_never_robust(objdir):
    """z3's deterministic resource limit provokes a give-up in every solver query."""
    full = analyze(_objs(objdir), LayoutModel())
    starved = analyze(_objs(objdir), LayoutModel(rlimit=1))
    assert len(full.sites) == len(starved.sites)
    gave_up = 0
    for a, b in zip(full.sites, starved.sites):
        assert a.key == b.key
        if b.verdict == "unknown" and "solver gave up" in b.reason:
            gave_up += 1
            assert "rlimit 1" in b.reason
            continue
        # Only verdicts that need no solver survive: fixed values, interval (span) proofs,
        # alignment that fails in every layout, instruction mismatches.
        assert b.verdict == a.verdict and b.reason == a.reason
        assert ("fixed at" in b.reason or b.reason.startswith(("same section", "both ends lie inside", "no range applies"))
                or b.verdict == "unknown" or b.counterexample is not None)
    assert gave_up >= 10
    assert not any(s.verdict == "robust" and "solver" in s.reason for s in starved.sites)


def test_timeout_option_reaches_the_model(tmp_path):
    out = tmp_path / "r.json"
    main(["check", "--timeout", "0.5", "--rlimit", "5000000", "--format", "json", "-o", str(out), demo_object()])
    model = json.loads(out.read_text())["model"]
    assert model["timeout_ms"] == 500 and model["rlimit"] == 5000000


@pytest.mark.parametrize("fmt", [["--format", "json"], ["--format", "json", "--all-sites"],
                                 ["--format", "sarif"]])
def test_jobs_and_hash_seed_do_not_change_json_or_sarif(objdir, fmt):
    objs = _objs(objdir)
    outs = set()
    for jobs, seed in (("1", "0"), ("2", "1"), ("3", "99")):
        p = subprocess.run([sys.executable, "-m", "reachsolve", "check", "--jobs", jobs, *fmt, *objs],
                           capture_output=True, env=dict(os.environ, PYTHONHASHSEED=seed))
        assert p.returncode == 1, p.stderr
        outs.add(p.stdout)
    assert len(outs) == 1


def test_many_objects_in_pool_chunks_give_the_same_report(objdir, tmp_path):
    """Enough objects that the pool sends them in chunks of several (pipeline.analyze)."""
    import shutil
    objs = []
    for k in range(24):
        for o in _objs(objdir)[:4]:
            dst = tmp_path / f"{k:02d}-{os.path.basename(o)}"
            shutil.copyfile(o, dst)
            objs.append(str(dst))
    outs = {subprocess.run([sys.executable, "-m", "reachsolve", "check", "--jobs", jobs, "--format", "json", *objs],
                           capture_output=True).stdout for jobs in ("1", "2")}
    assert len(outs) == 1 and len(objs) // (2 * 16) >= 2


def test_sarif_is_deterministic_and_lists_failing_sites(objdir):
    objs = _objs(objdir)
    runs = [subprocess.run([sys.executable, "-m", "reachsolve", "check", "--format", "sarif", *objs],
                           capture_output=True, env=dict(os.environ, PYTHONHASHSEED=str(i))) for i in (1, 2)]
    assert runs[0].stdout == runs[1].stdout
    doc = json.loads(runs[0].stdout)
    assert doc["version"] == "2.1.0"
    results = doc["runs"][0]["results"]
    report = analyze(objs)
    assert len(results) == sum(1 for s in report.sites if s.verdict != "robust")
    for r in results:
        loc = r["relatedLocations"][0]["physicalLocation"]
        assert loc["artifactLocation"]["uri"] and isinstance(loc["address"]["relativeAddress"], int)
        assert r["ruleId"].split("/")[0] in ("reach", "align", "undecided")


def test_memory_cap_stops_cleanly_and_other_files_go_on(tmp_path):
    big = tmp_path / "huge.o"
    with open(big, "wb") as f:  # sparse: no disk used, but reading it needs 3 GiB
        f.truncate(3 << 30)
    p = subprocess.run([sys.executable, "-m", "reachsolve", "check", "--max-memory", "1G", "--format", "json",
                        str(big), demo_object()], capture_output=True, text=True)
    assert p.returncode == 2
    assert "Traceback" not in p.stderr
    errors, rest = [], []
    for line in p.stderr.strip().splitlines():
        (errors if line.startswith("reachsolve: error:") else rest).append(line)
    assert len(errors) == 1 and str(big) in errors[0] and "memory" in errors[0]
    # Exit status 2 hides the findings' 1: one more line keeps them visible.
    assert rest == ["reachsolve: 2 vulnerable in the objects analyzed; 1 input error"]
    assert any(s["file"] == demo_object() for s in json_site_rows(json.loads(p.stdout)))


def test_one_object_screened_in_threads_gives_the_same_report(objdir, tmp_path, monkeypatch):
    """--jobs with one object screens its chunks in threads (prove/screen.py): the table is
    the one a single thread makes. Chunks of 2 rows make several of most fixtures."""
    from reachsolve.prove import screen
    from reachsolve.report.render import json_chunks
    monkeypatch.setattr(screen, "CHUNK", 2)
    seen = set()
    for obj in _objs(objdir):
        outs = set()
        for jobs in (1, 3):
            rep = analyze([obj], LayoutModel(), jobs=jobs)
            outs.add("".join(json_chunks(rep, all_sites=True)))
            seen.add(len(rep.proved[0]) > 2 if rep.proved else False)
        assert len(outs) == 1, obj
    assert True in seen  # some object had more than one chunk


def test_proof_rows_are_ordered_as_lexsort_orders_them():
    """The proof table's order comes from a stable sort on the section where each section's
    rows already ascend (prove/screen.py); it must be np.lexsort's on every input, in order
    or not."""
    import numpy as np
    from reachsolve.prove.screen import row_order
    rng = np.random.default_rng(7)
    paths = set()
    for t in range(2000):
        n = int(rng.integers(0, 40))
        sec, off, rank = rng.integers(0, 4, n), rng.integers(0, 5, n), rng.integers(0, 3, n)
        if t % 2:  # each section's rows in order, the sections not: the fast path
            o = np.lexsort((rank, off))
            sec, off, rank = rng.permutation(sec), off[o], rank[o]
        want = np.lexsort((rank, off, sec))
        got = row_order(sec, off, rank)
        assert got.tolist() == want.tolist(), (sec, off, rank)
        paths.add((np.argsort(sec, kind="stable") == want).all())
    assert paths == {True, False}
