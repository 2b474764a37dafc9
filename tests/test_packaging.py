"""The wheel, installed into a fresh virtual environment, works like the source tree.

The wheel is built by pip from a copy of the working tree (building in place would
leave build/ and its stale files in the repository), installed into a new venv
with its dependencies from the package index or pip's cache, and run from a
directory outside the repository. Its output must be the development install's,
byte for byte, but for where demo.o lives.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEV_BIN = Path(sys.executable).parent
IGNORE = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "*.pyc",
                                ".pytest_cache", ".hypothesis", ".import_linter_cache", "results")
DEMO_PATH = "from reachsolve.cli import demo_object; print(demo_object())"


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1", PYTHONNOUSERSITE="1")
    return env


def _run(cmd, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], cwd=cwd, env=_env(), capture_output=True, text=True,
                          timeout=timeout)


def _ok(p: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert p.returncode == 0, f"{' '.join(p.args)}: exit status {p.returncode}\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    return p


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(the wheel, the fresh venv's bin/, a working directory outside the repository)."""
    tmp = tmp_path_factory.mktemp("packaging")
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=IGNORE, symlinks=True)
    _ok(_run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", tmp / "wheels", src], tmp, timeout=300))
    (wheel,) = (tmp / "wheels").glob("reachsolve-*.whl")
    venv = tmp / "venv"
    _ok(_run([sys.executable, "-m", "venv", venv], tmp))
    _ok(_run([venv / "bin" / "python", "-m", "pip", "install", wheel], tmp, timeout=180))
    outside = tmp / "elsewhere"
    outside.mkdir()
    return wheel, venv / "bin", outside


def test_wheel_holds_the_package_and_its_data_only(installed):
    wheel, _, _ = installed
    names = zipfile.ZipFile(wheel).namelist()
    models = {f"reachsolve/models/{p.name}" for p in (ROOT / "reachsolve" / "models").glob("*.toml")}
    assert models and models <= set(names)
    assert {"reachsolve/data/demo.S", "reachsolve/data/demo.o"} <= set(names)
    tops = {n.split("/")[0] for n in names}
    assert not {"tests", "testsupport", "benchmarks"} & tops
    assert {t for t in tops if not t.startswith("reachsolve-")} == {"reachsolve"}, tops
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


@pytest.mark.parametrize("args", [["demo"], ["check", "--model", "arm64-kernel", "DEMO"]],
                         ids=["demo", "check-arm64-kernel"])
def test_installed_cli_prints_what_the_source_tree_prints(installed, args):
    _, bin_dir, outside = installed
    outputs = []
    for where in (bin_dir, DEV_BIN):
        demo = _ok(_run([where / "python", "-c", DEMO_PATH], outside)).stdout.strip()
        assert Path(demo).is_file()
        if where == bin_dir:
            assert Path(demo).is_relative_to(bin_dir.parent), demo  # the venv's copy, not the source tree's
        p = _run([where / "reachsolve", *[demo if a == "DEMO" else a for a in args]], outside)
        assert p.returncode == 1, f"{where}: exit status {p.returncode}\n{p.stderr}"  # 1: findings
        assert p.stderr == ""
        assert demo in p.stdout
        # A fingerprint hashes the object's path as given, which differs between the two.
        outputs.append(re.sub(r"fingerprint: [0-9a-f]{32}", "fingerprint: <fp>", p.stdout.replace(demo, "<demo.o>")))
    assert outputs[0] == outputs[1]
