"""The terminal: a progress line and colour on a TTY (tested through a pseudo-terminal),
never in a pipe or a file; -q keeps only findings and errors; NO_COLOR is honoured."""
from __future__ import annotations

import os
import pty
import select
import subprocess
import sys

from reachsolve.cli import demo_object, main

ESC = "\x1b["


def _on_pty(*args: str, env_extra: dict | None = None) -> tuple[int, str]:
    """Run the CLI with stdout and stderr on a pseudo-terminal; return status and all output."""
    master, slave = pty.openpty()
    env = dict(os.environ, **(env_extra or {}))
    env.pop("NO_COLOR", None) if "NO_COLOR" not in (env_extra or {}) else None
    env["TERM"] = "xterm"
    p = subprocess.Popen([sys.executable, "-m", "reachsolve", "check", *args], stdin=slave, stdout=slave,
                         stderr=slave, env=env, close_fds=True)
    os.close(slave)
    out = b""
    while True:
        r, _, _ = select.select([master], [], [], 60)
        if not r:
            break
        try:
            chunk = os.read(master, 1 << 16)
        except OSError:      # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    rc = p.wait(timeout=120)
    os.close(master)
    return rc, out.decode(errors="replace")


def test_progress_and_colour_on_a_terminal():
    rc, out = _on_pty(demo_object())
    assert rc == 1
    assert "reachsolve: " in out and "files" in out and "sites decided" in out     # the progress line
    assert f"{ESC}1;33m" in out                                                     # a warning, in colour


def test_no_color_and_never_turn_colour_off_but_keep_progress():
    rc, out = _on_pty(demo_object(), env_extra={"NO_COLOR": "1"})
    assert ESC + "1;33m" not in out and "sites decided" in out
    rc, out = _on_pty("--color", "never", demo_object())
    assert ESC + "1;33m" not in out


def test_quiet_on_a_terminal_has_no_progress_and_no_summary():
    rc, out = _on_pty("-q", demo_object())
    assert rc == 1 and "sites decided" not in out and "range-checked sites" not in out
    assert out.count("R_AARCH64_") >= 2


def test_a_pipe_gets_neither_progress_nor_colour():
    p = subprocess.run([sys.executable, "-m", "reachsolve", "check", demo_object()], capture_output=True,
                       text=True, env=dict(os.environ, TERM="xterm"))
    assert p.returncode == 1 and p.stderr == "" and ESC not in p.stdout
    assert "6 range-checked sites in 1 objects" in p.stdout


def test_color_always_colours_a_pipe(capsys):
    main(["check", "--color", "always", demo_object()])
    assert ESC + "1;33m" in capsys.readouterr().out


def test_summary_table_and_clean_line(tmp_path, capsys):
    main(["check", demo_object()])
    out = capsys.readouterr().out.splitlines()
    i = next(k for k, line in enumerate(out) if line.startswith("relocation "))
    assert out[i].split() == ["relocation", "robust", "vulnerable", "broken", "unknown"]
    assert out[i + 1].split() == ["R_AARCH64_ADR_PREL_LO21", "0", "1", "0", "0"]
    src = tmp_path / "ok.S"
    src.write_text("\t.text\nf:\tadrp x0, g\n\t.data\ng:\t.word 0\n")
    from testsupport.toolchain import assemble
    obj = assemble(src, tmp_path)
    assert main(["check", str(obj)]) == 0
    assert capsys.readouterr().out == "clean: all 1 range-checked sites in 1 objects are robust\n"
