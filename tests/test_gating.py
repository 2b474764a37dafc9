"""Exit status as a CI gate: an undecided site fails by default, --fail-on chooses, and a
bad file does not hide the findings of the good ones."""
from __future__ import annotations

from reachsolve.cli import demo_object, main

import shutil
import subprocess

import pytest


@pytest.fixture(scope="module")
def cbz(tmp_path_factory):
    """One cbz to another section: the free model needs the solver to bound it."""
    d = tmp_path_factory.mktemp("gate")
    (d / "cbz.S").write_text('\t.text\n\tcbz x0, far\n\t.section .text.far, "ax"\nfar:\tret\n')
    subprocess.run([shutil.which("clang"), "--target=aarch64-linux-gnu", "-c", str(d / "cbz.S"), "-o",
                    str(d / "cbz.o")], check=True)
    return str(d / "cbz.o")


def _run(capsys, *args):
    rc = main(["check", *args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_rlimit_unknown_fails_the_gate_and_fail_on_broken_passes_it(cbz, capsys):
    rc, out, _ = _run(capsys, "--rlimit", "1", cbz)
    assert "0 robust, 0 vulnerable, 0 broken, 1 unknown" in out and "solver gave up" in out
    assert rc == 1
    assert _run(capsys, "--rlimit", "1", cbz, "--fail-on", "broken")[0] == 0
    assert _run(capsys, cbz)[0] == 1                     # decided: vulnerable


def test_fail_on_selects_verdicts(capsys):
    demo = demo_object()                                   # two vulnerable sites, nothing else
    assert _run(capsys, demo)[0] == 1
    assert _run(capsys, demo, "--fail-on", "broken")[0] == 0
    assert _run(capsys, demo, "--fail-on", "unknown,broken")[0] == 0
    assert _run(capsys, demo, "--fail-on", "vulnerable")[0] == 1


def test_fail_on_rejects_what_it_does_not_know(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["check", demo_object(), "--fail-on", "robust"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.count("\n") == 1 and "'robust' is not a kind to fail on" in err


def test_a_bad_file_does_not_hide_the_findings(tmp_path, capsys):
    bad = tmp_path / "bad.o"
    bad.write_bytes(b"not an object")
    rc, out, err = _run(capsys, str(bad), demo_object())
    lines = err.splitlines()
    assert rc == 2
    assert lines[0] == f"reachsolve: error: {bad}: not an ELF file (bad magic)"
    assert lines[-1] == "reachsolve: 2 vulnerable in the objects analyzed; 1 input error"
    assert out.count("vulnerable: fails in some layouts") == 2    # the good file, in full


def test_one_run_writes_several_formats(tmp_path, capsys):
    j, s = tmp_path / "r.json", tmp_path / "r.sarif"
    rc, out, err = _run(capsys, demo_object(), "--json", str(j), "--sarif", str(s))
    assert rc == 1 and err == "" and "2 vulnerable" in out          # text on stdout, as --format says
    _run(capsys, demo_object(), "--format", "json", "-o", str(tmp_path / "alone.json"))
    _run(capsys, demo_object(), "--format", "sarif", "-o", str(tmp_path / "alone.sarif"))
    assert j.read_bytes() == (tmp_path / "alone.json").read_bytes()      # the same bytes as a run of its own
    assert s.read_bytes() == (tmp_path / "alone.sarif").read_bytes()
    rc, _, err = _run(capsys, demo_object(), "--json", str(tmp_path / "no" / "such" / "dir.json"))
    assert rc == 2 and err.startswith("reachsolve: error: ") and err.count("\n") == 1
