"""The package's shape: layers, light imports, module size, and tests that use only
public names.

(a) import-linter keeps the contracts in pyproject.toml [tool.importlinter]: the
    pipeline's layers, and one owner for each of z3, capstone and pyelftools;
(b) importing reachsolve, or parsing a linker script, loads neither z3 nor capstone;
(c) no module is over 600 lines (the linker-script parser excepted);
(d) tests/, benchmarks/ and testsupport/ reach reachsolve only through public names;
(e) no test imports benchmarks (shared code lives in testsupport/), and no assert
    in tests/ or testsupport/ looks at the wall clock.
"""
from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "reachsolve"
MAX_LINES = 600
LONG_ALLOWED = {"reachsolve/script/parser.py"}
HEAVY = ("z3", "capstone")


def test_import_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    assert lint.exists(), f"{lint} is missing: pip install -e '.[test]'"
    p = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, f"lint-imports exit status {p.returncode}:\n{p.stdout}\n{p.stderr}"


def _loaded_after(code: str) -> list[str]:
    probe = code + (
        "\nimport sys\n"
        f"print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})))\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    p = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    return p.stdout.split()


@pytest.mark.parametrize("code", [
    "import reachsolve",
    "import reachsolve\nreachsolve.__version__\nreachsolve.ModelError\nreachsolve.LayoutModel()",
    "import reachsolve.script\n"
    "s = reachsolve.script.parse('SECTIONS { . = 0x1000; .text : { *(.text*) } }', 'x.lds')\n"
    "assert s is not None",
], ids=["import", "light-names", "script-parse"])
def test_light_imports_load_no_solver_or_disassembler(code):
    assert _loaded_after(code) == []


def test_probe_sees_heavy_imports():
    """The probe itself works: analyzing the demo does load both."""
    code = "import reachsolve\nfrom reachsolve.cli import demo_object\nreachsolve.analyze([demo_object()])"
    assert set(HEAVY) <= set(_loaded_after(code))


def test_no_module_is_too_long():
    long = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        n = len(path.read_text().splitlines())
        if n > MAX_LINES and rel not in LONG_ALLOWED:
            long[rel] = n
    assert long == {}, f"modules over {MAX_LINES} lines: {long}"


# -- (d) public names only ---------------------------------------------------------


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _is_module(dotted: str) -> bool:
    """Is ``dotted`` (reachsolve or below) a module or package in the source tree?"""
    parts = dotted.split(".")
    if parts[0] != "reachsolve":
        return False
    base = ROOT.joinpath(*parts)
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        head = _dotted(node.value)
        return f"{head}.{node.attr}" if head else None
    return None


def private_uses(source: str, filename: str = "<string>") -> list[str]:
    """Every import of a private reachsolve name and every ``<reachsolve module>._x`` in ``source``."""
    tree = ast.parse(source, filename)
    modules: dict[str, str] = {}  # local name -> reachsolve module it is bound to
    found = []

    def where(node) -> str:
        return f"{filename}:{node.lineno}"

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "reachsolve":
                    if any(_is_private(p) for p in a.name.split(".")):
                        found.append(f"{where(node)}: import {a.name}")
                    if a.asname:
                        modules[a.asname] = a.name
                    else:
                        modules["reachsolve"] = "reachsolve"
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                and node.module.split(".")[0] == "reachsolve":
            if any(_is_private(p) for p in node.module.split(".")):
                found.append(f"{where(node)}: from {node.module} import ...")
            for a in node.names:
                if _is_private(a.name):
                    found.append(f"{where(node)}: from {node.module} import {a.name}")
                if _is_module(f"{node.module}.{a.name}"):
                    modules[a.asname or a.name] = f"{node.module}.{a.name}"

    def module_of(expr: ast.AST) -> str | None:
        d = _dotted(expr)
        if d is None:
            return None
        head, _, rest = d.partition(".")
        if head not in modules:
            return None
        full = modules[head] + (f".{rest}" if rest else "")
        return full if _is_module(full) else None

    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _is_private(node.attr) and module_of(node.value):
            found.append(f"{where(node)}: {module_of(node.value)}.{node.attr}")
        elif isinstance(node, ast.Call) and len(node.args) >= 2:
            # getattr(mod, "_x"), setattr(...), monkeypatch.setattr(mod, "_x", ...), delattr(...)
            fn = _dotted(node.func) or ""
            name = node.args[1]
            if fn.split(".")[-1] in ("getattr", "setattr", "delattr", "hasattr") and module_of(node.args[0]) \
                    and isinstance(name, ast.Constant) and isinstance(name.value, str) and _is_private(name.value):
                found.append(f"{where(node)}: {fn}({module_of(node.args[0])}, {name.value!r})")
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str) and (_dotted(node.func) or "").endswith("setattr"):
            # monkeypatch.setattr("reachsolve.mod._x", value)
            target = node.args[0].value
            if target.startswith("reachsolve.") and any(_is_private(p) for p in target.split(".")):
                found.append(f"{where(node)}: setattr({target!r})")
    return sorted(set(found))


def _sources():
    for folder in ("tests", "benchmarks", "testsupport"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            yield path


def test_tests_and_benchmarks_use_only_public_names():
    found = []
    for path in _sources():
        found += private_uses(path.read_text(), path.relative_to(ROOT).as_posix())
    assert found == []


@pytest.mark.parametrize("source,hits", [
    ("from reachsolve.prove.screen import _rows", 1),
    ("from reachsolve.prove import _impl", 1),
    ("import reachsolve.prove._impl as m", 1),
    ("from reachsolve.prove import screen\nscreen._CHUNK", 1),
    ("import reachsolve.prove.screen as s\ns._x()", 1),
    ("import reachsolve\nreachsolve.prove.screen._x", 1),
    ("import reachsolve.prove.screen\nreachsolve.prove.screen._x", 1),
    ("from reachsolve.prove import screen\nmonkeypatch.setattr(screen, '_CHUNK', 3)", 1),
    ("monkeypatch.setattr('reachsolve.prove.screen._CHUNK', 3)", 1),
    ("from reachsolve import analyze\nanalyze([])._cache", 0),       # an object's attribute, not a module's
    ("from reachsolve.prove import screen\nscreen.CHUNK\nscreen.__name__", 0),
    ("import reachsolve\nreachsolve.__version__", 0),
    ("from testsupport.corpora import stamp_path as _stamp\nx._y", 0),
])
def test_private_name_scan_finds_what_it_should(source, hits):
    """The scan above is a test too: it must see each form of private access, and only those."""
    assert len(private_uses(source)) == hits, private_uses(source)


# -- (e) no benchmarks in tests, no wall clock in assertions --------------------------------

_CLOCK_CALLS = {"time", "monotonic", "perf_counter", "process_time", "thread_time", "monotonic_ns",
                "perf_counter_ns", "time_ns", "now", "utcnow"}
_CLOCK_WORDS = ("elapsed", "seconds", "duration", "wall", "t0")


def clock_asserts(source: str, filename: str = "<string>") -> list[str]:
    """Asserts that read a clock, or a name or attribute that holds a time."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if not isinstance(node, ast.Assert):
            continue
        for sub in ast.walk(node.test):
            name = sub.attr if isinstance(sub, ast.Attribute) else sub.id if isinstance(sub, ast.Name) else None
            called = isinstance(sub, ast.Call) and (_dotted(sub.func) or "").split(".")[-1] in _CLOCK_CALLS
            if called or (name and any(w == name.lower() or name.lower().endswith("_" + w)
                                       or name.lower().startswith(w + "_") for w in _CLOCK_WORDS)):
                found.append(f"{filename}:{node.lineno}: {ast.unparse(node.test)[:80]}")
                break
    return found


def test_no_test_imports_benchmarks_or_asserts_on_time():
    found = []
    for folder in ("tests", "testsupport"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            source = path.read_text()
            for node in ast.walk(ast.parse(source, rel)):
                mods = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                    [node.module or ""] if isinstance(node, ast.ImportFrom) else []
                found += [f"{rel}:{node.lineno}: imports {m}" for m in mods if m.split(".")[0] == "benchmarks"]
            found += clock_asserts(source, rel)
    assert found == []


@pytest.mark.parametrize("source,hits", [
    ("import time\nt0 = time.monotonic()\nassert time.monotonic() - t0 < 5", 1),
    ("assert t.seconds < 60", 1),
    ("assert elapsed_s < 1 or run_seconds > 2", 1),
    ("assert timeout_ms == 500 and model['rlimit'] == 5", 0),   # an option's value, not a measurement
    ("assert t.checks >= 10_000", 0),
])
def test_clock_scan_finds_what_it_should(source, hits):
    assert len(clock_asserts(source)) == hits, clock_asserts(source)
