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


KERNEL_BLOCKS = re.findall(r"```python corpus\n(.*?)```", DOC.read_text(), re.S)


@pytest.mark.corpus
@pytest.mark.parametrize("k", range(len(KERNEL_BLOCKS)))
def test_kernel_doc_example_runs_on_a_real_vmlinux(k, tmp_path, monkeypatch, capsys):
    """The kernel examples, verbatim, from a tree holding the pre-fix tiny kernel's
    vmlinux.o and arch/arm64/kernel/vmlinux.lds: they print its two 2021 findings."""
    from testsupport.corpora import corpus_path
    built = corpus_path("tiny-prefix")
    if built is None or not (built / "vmlinux.o").exists():
        pytest.skip("corpus tiny-prefix not built (python -m benchmarks.corpus tiny-prefix)")
    (tmp_path / "arch/arm64/kernel").mkdir(parents=True)
    (tmp_path / "vmlinux.o").symlink_to(built / "vmlinux.o")
    (tmp_path / "arch/arm64/kernel/vmlinux.lds").symlink_to(built / "vmlinux.lds")
    monkeypatch.chdir(tmp_path)
    exec(compile(KERNEL_BLOCKS[k], f"{DOC.name} kernel example {k + 1}", "exec"), {"__name__": "__doc_example__"})
    out = capsys.readouterr().out
    assert out.count("vulnerable") == 2 and "R_AARCH64_CONDBR19" in out and "R_AARCH64_ADR_PREL_LO21" in out


def test_every_cli_option_is_in_the_option_table():
    """docs/README.md's table names each `reachsolve check` option (CLI | model file | keyword)."""
    from reachsolve.cli import main
    import contextlib
    import io
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), pytest.raises(SystemExit):
        main(["check", "--help"])
    options = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]+)", buf.getvalue())) - {"--help", "--colour"}
    text = DOC.read_text()
    table = text[text.index("Every option, in the three places"):]
    table = table[:table.index("\n\n", table.index("| CLI |"))]
    missing = sorted(o for o in options if f"`{o}" not in table and f", `{o}" not in table and o not in table)
    assert not missing, f"options missing from the docs table: {missing}"
