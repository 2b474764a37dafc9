"""--max-memory at any value ends in a report or in one-line errors, never in a crash.

z3 cannot survive a failed context allocation (it segfaults on the NULL it gets),
so the limit is checked against what the process already holds, and what z3
would allocate unchecked is allocated before the limit is set."""
from __future__ import annotations

import subprocess
import sys

import pytest

from reachsolve.cli import demo_object

VALUES = ("1M", "20M", "50M", "80M", "100M", "112M", "116M", "120M", "124M", "128M", "160M", "256M", "1G")


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "reachsolve", "check", *args], capture_output=True, text=True,
                          timeout=300)  # a hang guard, not a speed check


@pytest.fixture(scope="module")
def unlimited():
    return _run(demo_object(), "--model", "arm64-kernel")


@pytest.mark.parametrize("jobs", ["1", "2"])
@pytest.mark.parametrize("value", VALUES)
def test_any_memory_limit_ends_cleanly(value, jobs, unlimited):
    p = _run(demo_object(), demo_object(), "--model", "arm64-kernel", "--max-memory", value, "-j", jobs)
    assert p.returncode in (1, 2), (p.returncode, p.stderr[-2000:])   # never a signal (134, 139) or a traceback
    assert "Traceback" not in p.stderr
    for line in p.stderr.splitlines():
        assert line.startswith("reachsolve: error: "), line
    if p.returncode == 2:
        # either refused up front, in one line naming the option, or each object ran out on its own
        assert p.stderr.count("\n") in (1, 2), p.stderr
        assert "--max-memory" in p.stderr or "out of memory" in p.stderr
        if "--max-memory" in p.stderr:
            assert "use at least" in p.stderr and not p.stdout
    if value in ("256M", "1G"):
        one = _run(demo_object(), "--model", "arm64-kernel", "--max-memory", value, "-j", jobs)
        assert (one.returncode, one.stdout) == (unlimited.returncode, unlimited.stdout) and one.returncode == 1


def test_a_limit_too_small_names_the_least_that_works():
    p = _run(demo_object(), "--max-memory", "20M")
    assert p.returncode == 2 and "Traceback" not in p.stderr
    least = p.stderr.rsplit("use at least ", 1)[1].strip()
    ok = _run(demo_object(), "--max-memory", least)
    assert ok.returncode in (1, 2) and "Traceback" not in ok.stderr and "too small" not in ok.stderr
