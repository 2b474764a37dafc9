"""Golden files for what people read: the text report (`reachsolve check -v`) and
the SARIF report, for every fixture (little-endian, default model) and the demo.

As lld's tests pin the diagnostics a linker prints, these pin reachsolve's
output byte for byte: tests/golden/<fixture>.<mode>.txt and .sarif. Nothing is
normalized: the CLI runs from the object's directory on its bare file name, so
no temporary path appears. After an intended change of wording, rewrite them with

    python -m pytest tests/test_golden.py --update-golden

and review the diff of tests/golden/ like any other change.
"""
from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from reachsolve.cli import demo_object, main
from testsupport.toolchain import FIXTURES, assemble

GOLDEN = Path(__file__).parent / "golden"
MODE = "default"  # little-endian object, default model (free, 128 MiB, both linkers, veneers)
FORMATS = {"txt": ["check", "-v"], "sarif": ["check", "--format", "sarif"]}
SOURCES = {p.stem: p for p in sorted(FIXTURES.glob("*.S"))}
NAMES = [*SOURCES, "demo"]


def _object(name: str, objdir: Path) -> Path:
    return Path(demo_object()) if name == "demo" else assemble(SOURCES[name], objdir)


def _run(args: list[str], obj: Path, monkeypatch, capsys) -> str:
    monkeypatch.chdir(obj.parent)
    capsys.readouterr()
    status = main([*args, obj.name])
    out, err = capsys.readouterr()
    assert err == "", err
    assert status in (0, 1), out
    return out


def compare_golden(path: Path, actual: str, update: bool) -> None:
    """Fail with a unified diff unless ``actual`` is ``path``'s text (or rewrite it, with --update-golden)."""
    if update:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != actual:
            path.write_text(actual)
        return
    if not path.exists():
        pytest.fail(f"{path} is missing; run python -m pytest {Path(__file__).name} --update-golden")
    expected = path.read_text()
    if expected != actual:
        rel = path.relative_to(Path(__file__).parent.parent)
        diff = difflib.unified_diff(expected.splitlines(keepends=True), actual.splitlines(keepends=True),
                                    fromfile=str(rel), tofile="actual output")
        pytest.fail(f"output differs from {rel} (rewrite with --update-golden if intended):\n" + "".join(diff),
                    pytrace=False)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@pytest.mark.parametrize("name", NAMES)
def test_golden(name, fmt, objdir, monkeypatch, capsys, update_golden):
    out = _run(FORMATS[fmt], _object(name, objdir), monkeypatch, capsys)
    compare_golden(GOLDEN / f"{name}.{MODE}.{fmt}", out, update_golden)


def test_every_golden_file_has_a_test():
    """A stale golden file (its fixture renamed or gone) is an error, not dead weight."""
    want = {f"{n}.{MODE}.{f}" for n in NAMES for f in FORMATS}
    assert {p.name for p in GOLDEN.iterdir()} <= want
