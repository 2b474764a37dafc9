"""Where the large external corpora live once benchmarks/corpus.py has built them.

The cache is ``$REACHSOLVE_CORPUS`` or ``~/.cache/reachsolve-corpus``; every build
step writes ``<cache>/stamps/<corpus>.<step>.json`` when it finishes, and a corpus
is complete when the stamp of its final step exists. Only the standard library is
used, so benchmarks/corpus.py imports this as it is.
"""
from __future__ import annotations

import os
from pathlib import Path

CORPORA = ("tiny", "tiny-prefix", "modules", "big", "big-prefix", "defconfig", "tiny-debug",
           "tiny-debug-prefix", "openblas", "openblas-loose")
#: The step whose stamp means "this corpus is complete".
FINAL_STEP = {name: "collect" for name in CORPORA}


def cache_dir() -> Path:
    """The corpus cache: ``$REACHSOLVE_CORPUS`` or ``~/.cache/reachsolve-corpus``."""
    env = os.environ.get("REACHSOLVE_CORPUS")
    if env:
        return Path(env).expanduser().resolve()
    return Path.home() / ".cache" / "reachsolve-corpus"


def stamp_path(corpus: str, step: str) -> Path:
    """The stamp file step ``step`` of ``corpus`` writes when it finishes."""
    return cache_dir() / "stamps" / f"{corpus}.{step}.json"


def corpus_path(name: str) -> Path | None:
    """Where the finished corpus *name* lives, or None when it is not built.

    ``tiny``, ``tiny-prefix``, ``tiny-debug`` and ``tiny-debug-prefix``: a directory holding ``vmlinux.o``,
    ``vmlinux.lds``, ``config`` and ``info.json``.  ``modules``: a directory
    holding ``<kernel version>/kernel/**/*.ko``, ``modules.txt`` (one relative
    path a line) and ``info.json``. ``openblas``: ``libopenblas.a`` and ``info.json``.
    ``openblas-loose``: that archive's members as ``members/NNNNN-<name>`` (numbered
    from 1 in archive order), ``members.txt`` (one relative path a line) and ``info.json``.
    """
    if name not in CORPORA:
        raise ValueError(f"unknown corpus {name!r}; known: {', '.join(CORPORA)}")
    path = cache_dir() / name
    if stamp_path(name, FINAL_STEP[name]).is_file() and path.is_dir():
        return path
    return None
