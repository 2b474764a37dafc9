"""Fixtures and options shared by the tests.

The toolchain helpers (tool, assemble, link, FIXTURES), the random objects and
the independent linker oracle live in the top-level package ``testsupport``
(importable through ``pythonpath = ["."]`` in pyproject.toml), which tests
import directly; benchmarks/ imports it too. A missing clang or linker fails
the run: an oracle test must never be skipped silently.

No test depends on the wall clock: hypothesis' per-example deadline and its
too-slow health check are off for every test (the profile below), and timeouts
given to subprocesses only stop a hang.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("reachsolve", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("reachsolve")

# Every JSON and SARIF report the CLI writes in a test (in-process or in a subprocess) is
# validated against reachsolve's JSON schema and the OASIS SARIF schema before it is written.
os.environ["REACHSOLVE_SELF_CHECK"] = "1"


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true", default=False,
                     help="rewrite tests/golden/* from the current output instead of comparing with it")


@pytest.fixture(scope="session")
def update_golden(request) -> bool:
    return request.config.getoption("--update-golden")


@pytest.fixture(scope="session")
def objdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("objs")
