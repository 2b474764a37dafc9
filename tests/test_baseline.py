"""Baselines and diffs: findings matched across builds by fingerprint, not by offset.

Build 2 of the fixture pair inserts a function before the sites' function, so
every section offset moves; the findings must stay "unchanged", and the one
finding build 2 adds is "new". Removing the sites makes them "absent" (fixed).
"""
from __future__ import annotations

import json

import pytest

from reachsolve.cli import main
from testsupport.toolchain import FIXTURES, assemble, assemble_text

PAIR = FIXTURES / "baseline"
SCRIPT = str(FIXTURES / "ordered" / "ordered.lds")


@pytest.fixture(scope="module")
def builds(objdir, tmp_path_factory):
    d = tmp_path_factory.mktemp("builds")
    for v in ("v1", "v2"):
        (d / v).mkdir()
        assemble(PAIR / f"{v}.S", d / v).rename(d / v / "site.o")
    fixed = (PAIR / "v1.S").read_text().replace("\tcbz\tx0, far_fn", "\tnop").replace("\tadr\tx1, far_fn", "\tnop")
    (d / "v3").mkdir()
    assemble_text(fixed, d / "v3" / "site.o")
    return d


def _check(build, *args, cwd, monkeypatch, capsys, json_out=None):
    monkeypatch.chdir(cwd / build)
    extra = ["--json", str(json_out)] if json_out else []
    rc = main(["check", "--linker-script", SCRIPT, *extra, *args, "site.o"])
    out = capsys.readouterr()
    return rc, out.out, out.err


def _doc(path):
    return json.loads(path.read_text())


def test_inserted_code_leaves_findings_unchanged(builds, tmp_path, monkeypatch, capsys):
    old, new = tmp_path / "v1.json", tmp_path / "v2.json"
    _check("v1", cwd=builds, monkeypatch=monkeypatch, capsys=capsys, json_out=old)
    rc, out, _ = _check("v2", "--baseline", str(old), cwd=builds, monkeypatch=monkeypatch, capsys=capsys,
                        json_out=new)
    doc = _doc(new)
    marks = {(s["function"]["name"], s["function"]["offset"], s["reloc"]): s["baseline"]["state"]
             for s in doc["sites"]}
    assert marks == {("site_fn", 0, "R_AARCH64_CONDBR19"): "unchanged",
                     ("site_fn", 4, "R_AARCH64_ADR_PREL_LO21"): "unchanged",
                     ("other_fn", 0, "R_AARCH64_TSTBR14"): "new"}
    offsets = {s["reloc"]: s["offset"] for s in doc["sites"]}
    assert offsets["R_AARCH64_CONDBR19"] == 0x10 and offsets["R_AARCH64_ADR_PREL_LO21"] == 0x14
    assert doc["absent"] == [] and doc["not_compared"] == []
    assert "baseline " in out and "1 new, 2 unchanged, 0 updated, 0 absent (fixed), 0 not compared" in out
    # --fail-on new fails on the new finding alone; the unchanged ones pass it
    assert rc == 1
    rc, _, _ = _check("v2", "--baseline", str(old), "--fail-on", "new", cwd=builds, monkeypatch=monkeypatch,
                      capsys=capsys)
    assert rc == 1
    rc, _, _ = _check("v1", "--baseline", str(old), "--fail-on", "new", cwd=builds, monkeypatch=monkeypatch,
                      capsys=capsys)
    assert rc == 0


def test_fixed_sites_are_absent_and_margins_are_compared(builds, tmp_path, monkeypatch, capsys):
    old, new = tmp_path / "v1.json", tmp_path / "v3.json"
    _check("v1", cwd=builds, monkeypatch=monkeypatch, capsys=capsys, json_out=old)
    rc, out, _ = _check("v3", "--baseline", str(old), cwd=builds, monkeypatch=monkeypatch, capsys=capsys,
                        json_out=new)
    doc = _doc(new)
    assert doc["sites"] == [] and rc == 0
    assert sorted(s["reloc"] for s in doc["absent"]) == ["R_AARCH64_ADR_PREL_LO21", "R_AARCH64_CONDBR19"]
    assert out.count("fixed since the baseline (was vulnerable)") == 2
    # the other direction: both are new
    rc, _, _ = _check("v1", "--baseline", str(new), cwd=builds, monkeypatch=monkeypatch, capsys=capsys,
                      json_out=old)
    assert {s["baseline"]["state"] for s in _doc(old)["sites"]} == {"new"}
    # diff without analysing again
    capsys.readouterr()
    assert main(["diff", str(old), str(new)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == "0 new, 2 fixed, 0 margins shrank, 0 grew, 0 otherwise changed, 0 not compared"
    assert main(["diff", str(new), str(old)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert [x.split(":")[0] for x in lines[:2]] == ["new", "new"]
    assert "site.o:(.text.a+0x0) site_fn+0x0 R_AARCH64_CONDBR19 -> far_fn: vulnerable, margin 0xbfff4" in lines[0]


def test_diff_reports_a_margin_that_shrank_by_the_bytes(builds, tmp_path, monkeypatch, capsys):
    old, new = tmp_path / "a.json", tmp_path / "b.json"
    _check("v1", cwd=builds, monkeypatch=monkeypatch, capsys=capsys, json_out=old)
    grown = (PAIR / "v1.S").read_text().replace(".space\t0x40000", ".space\t0x42800")
    (builds / "grown").mkdir(exist_ok=True)
    assemble_text(grown, builds / "grown" / "site.o")
    rc, out, _ = _check("grown", "--baseline", str(old), cwd=builds, monkeypatch=monkeypatch, capsys=capsys,
                        json_out=new)
    states = {s["reloc"]: s["baseline"] for s in _doc(new)["sites"]}
    assert states["R_AARCH64_CONDBR19"] == {"state": "updated",
                                            "old": {"verdict": "vulnerable", "margin": 0xbfff4, "near": False}}
    assert "baseline: updated: was vulnerable, margin 0xbfff4; now vulnerable, margin 0xbd7f4 (-0x2800 bytes)" in out
    capsys.readouterr()
    assert main(["diff", str(old), str(new)]) == 1
    lines = capsys.readouterr().out.splitlines()
    # closest to breaking first: the cbz has the smaller margin
    assert lines[0].startswith("margin shrank: site.o:(.text.a+0x0) site_fn+0x0 R_AARCH64_CONDBR19")
    assert lines[0].endswith("0xbfff4 -> 0xbd7f4 (-0x2800 bytes)")
    assert "R_AARCH64_ADR_PREL_LO21" in lines[1]


def test_a_file_missing_from_the_new_run_is_not_compared(builds, tmp_path, monkeypatch, capsys):
    old = tmp_path / "v1.json"
    _check("v1", cwd=builds, monkeypatch=monkeypatch, capsys=capsys, json_out=old)
    new = tmp_path / "none.json"
    monkeypatch.chdir(builds / "v1")
    rc = main(["check", "--linker-script", SCRIPT, "--baseline", str(old), "--json", str(new), "missing.o"])
    capsys.readouterr()
    doc = _doc(new)
    assert rc == 2 and doc["absent"] == [] and len(doc["not_compared"]) == 2


def test_baseline_and_fail_on_new_usage_errors(builds, tmp_path, monkeypatch, capsys):
    rc, _, err = _check("v1", "--fail-on", "new", cwd=builds, monkeypatch=monkeypatch, capsys=capsys)
    assert rc == 2 and err == "reachsolve: error: --fail-on new needs --baseline OLD.json\n"
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": 1, "tool": {"name": "reachsolve"}, "sites": []}')
    rc, _, err = _check("v1", "--baseline", str(bad), cwd=builds, monkeypatch=monkeypatch, capsys=capsys)
    assert rc == 2 and err.count("\n") == 1 and f"{bad}: report schema 1 has no fingerprints" in err
    bad.write_text("[1, 2")
    rc, _, err = _check("v1", "--baseline", str(bad), cwd=builds, monkeypatch=monkeypatch, capsys=capsys)
    assert rc == 2 and err.count("\n") == 1 and f"{bad}: not a JSON report" in err
    assert main(["diff", str(bad), str(bad)]) == 2


def test_min_margin_flags_near_sites(builds, tmp_path, monkeypatch, capsys):
    out_json = tmp_path / "near.json"
    rc, out, _ = _check("v1", "--min-margin", "0xbfff6", cwd=builds, monkeypatch=monkeypatch, capsys=capsys,
                        json_out=out_json)
    near = {s["reloc"]: s["near"] for s in _doc(out_json)["sites"]}
    assert near == {"R_AARCH64_CONDBR19": True, "R_AARCH64_ADR_PREL_LO21": False}
    assert "near: the margin 0xbfff4 is below --min-margin 0xbfff6" in out and "1 near" in out
    assert _check("v1", "--min-margin", "0xbfff6", "--fail-on", "near", cwd=builds, monkeypatch=monkeypatch,
                  capsys=capsys)[0] == 1
    assert _check("v1", "--min-margin", "0xbfff0", "--fail-on", "near", cwd=builds, monkeypatch=monkeypatch,
                  capsys=capsys)[0] == 0
    # a model without margins cannot say "near"
    monkeypatch.chdir(builds / "v1")
    assert main(["check", "--min-margin", "4K", "site.o"]) == 2
    assert "min_margin needs a model that gives margins" in capsys.readouterr().err


def test_suppressions_report_but_do_not_fail(builds, tmp_path, monkeypatch, capsys):
    first = tmp_path / "first.json"
    _check("v1", cwd=builds, monkeypatch=monkeypatch, capsys=capsys, json_out=first)
    fps = [s["fingerprint"] for s in _doc(first)["sites"]]
    quiet = tmp_path / "quiet.toml"
    quiet.write_text("".join(f'[[suppress]]\nfingerprint = "{fp}"\nreason = "hyp_panic is placed next to '
                             f'the entry code by the script"\n' for fp in fps))
    out_json = tmp_path / "q.json"
    rc, out, _ = _check("v1", "--suppressions", str(quiet), cwd=builds, monkeypatch=monkeypatch, capsys=capsys,
                        json_out=out_json)
    assert rc == 0 and out.count("suppressed: hyp_panic is placed") == 2 and "2 suppressed" in out
    assert all(s["suppression"]["reason"].startswith("hyp_panic") for s in _doc(out_json)["sites"])
    quiet.write_text('[[suppress]]\nfingerprint = "abc"\nreason = "x"\n')
    rc, _, err = _check("v1", "--suppressions", str(quiet), cwd=builds, monkeypatch=monkeypatch, capsys=capsys)
    assert rc == 2 and err == f"reachsolve: error: {quiet}: line 1: fingerprint must be 32 hex digits as the " \
                              f"report gives it\n"
    quiet.write_text(f'[[suppress]]\nfingerprint = "{fps[0]}"\n')
    rc, _, err = _check("v1", "--suppressions", str(quiet), cwd=builds, monkeypatch=monkeypatch, capsys=capsys)
    assert rc == 2 and "line 1: a suppression needs a written reason" in err
