"""The Python examples of docs/README.md run verbatim: a doc example that stops working fails CI."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parent.parent / "docs" / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)


def test_the_docs_have_python_examples():
    assert BLOCKS


@pytest.mark.parametrize("k", range(len(BLOCKS)))
def test_doc_example_runs(k, capsys):
    exec(compile(BLOCKS[k], f"{DOC.name} example {k + 1}", "exec"), {"__name__": "__doc_example__"})
    out = capsys.readouterr().out
    assert "vulnerable" in out   # the example prints the demo's findings
