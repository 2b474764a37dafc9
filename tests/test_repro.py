"""Repro folders (`--emit-linker-script DIR`): each counterexample, linked by the real linkers.

For every fixture (and tests/fixtures/repro/samename.S, whose sections share a
name), each vulnerable or broken site's repro.sh is run as a user would run it.
Each linker in the site's rejected_by must report that very site; a linker of the
model that does not check it must link and show the instruction it wrote, whose
target is not the intended one (a silent fault). Both ld.lld and GNU ld run.
"""
from __future__ import annotations

import re
import struct
import subprocess
from pathlib import Path

import pytest

from reachsolve import analyze
from reachsolve.api import emit_repro
from reachsolve.cli import demo_object, main
from reachsolve.objfile.elf import read_object
from reachsolve.objfile.rename import renamed_copy, unique_names
from testsupport.oracle import rejection, unsupported
from testsupport.toolchain import FIXTURES, assemble, tool

SOURCES = sorted(FIXTURES.glob("*.S")) + [FIXTURES / "repro" / "samename.S", "demo"]
LABEL = {"lld": "ld.lld", "bfd": "GNU ld"}


def _run(sh: str) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "LLD": tool("lld"), "BFD": tool("bfd")}
    return subprocess.run(["sh", sh], capture_output=True, text=True, timeout=300, env=env)


def _blocks(out: str) -> dict[str, str]:
    """repro.sh's output, split by linker ("== ld.lld: ..." headers)."""
    parts = re.split(r"^== (ld\.lld|GNU ld): .*$", out, flags=re.M)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: getattr(p, "stem", p))
def test_repro_scripts_show_each_linker_failing_at_the_site(src, objdir, tmp_path):
    obj = Path(demo_object()) if src == "demo" else assemble(src, objdir)
    report = analyze([str(obj)])
    paths = emit_repro(report, str(tmp_path / "repro"))
    relocs = {s.reloc for s in report.sites}
    sites = [s for s in report.listed if s.verdict in ("vulnerable", "broken")]
    assert sites and set(paths) == {s.key for s in sites if s.counterexample}
    o = read_object(str(obj), obj.read_bytes())
    names = unique_names([(s.index, s.name) for s in o.sections if s.alloc], {s.name for s in o.sections})
    for s in sites:
        checked = silent = 0
        proc = _run(paths[s.key])
        blocks = _blocks(proc.stdout)
        sec = names.get(s.section_index, s.section)
        for ld in ("lld", "bfd"):
            out = blocks.get(LABEL[ld], "")
            refusal = unsupported(ld, relocs)
            if refusal:  # this linker does not implement a type of the object at all
                assert refusal in out, proc.stdout
                continue
            if ld in s.counterexample.rejected_by:
                # ld.lld names a place in a sized function "(function NAME: .text+0x0)"
                plain = re.sub(r"\(function [^:]*: ", "(", out)
                assert rejection(ld, sec, s.offset, s.reloc).search(plain), proc.stdout
                checked += 1
            elif "not run: it" in proc.stdout.split(f"== {LABEL[ld]}: ", 1)[-1].split("\n", 1)[0]:
                continue  # the linker repairs or accepts the value (a veneer; its own wider range)
            else:  # silent: the instruction written is not the one meant
                m = re.search(r"it wrote:\n\s+([0-9a-f]+):\s+(\S+)\s+(.*)\n\s+intended: target (0x[0-9a-f]+)", out)
                assert m, proc.stdout
                written = re.findall(r"0x[0-9a-f]+", m.group(3))
                assert written and int(written[-1], 16) != int(m.group(4), 16), proc.stdout
                silent += 1
        if not any(unsupported(ld, relocs) for ld in ("lld", "bfd")):
            assert proc.returncode == 0, proc.stdout + proc.stderr
            assert checked + silent >= 1, proc.stdout  # every site fails with a linker, loudly or not


def test_silent_faults_are_shown_disassembled(objdir, tmp_path):
    """CONDBR19 misaligned: ld.lld reports it, GNU ld drops the low bits without a word."""
    obj = assemble(FIXTURES / "condbr19.S", objdir)
    report = analyze([str(obj)])
    paths = emit_repro(report, str(tmp_path / "r"))
    (s,) = [s for s in report.listed if s.counterexample and s.counterexample.problem == "improper alignment"]
    out = _blocks(_run(paths[s.key]).stdout)
    assert "improper alignment for relocation R_AARCH64_CONDBR19" in out["ld.lld"]
    assert f"{s.counterexample.place:x}:\tcbnz" in out["GNU ld"].replace("      \t", "\t").replace(": \t", ":\t") \
        or re.search(rf"{s.counterexample.place:x}:\s+cbnz\s+x0, 0x{s.counterexample.place:x}", out["GNU ld"])
    assert f"intended: target {s.counterexample.target:#x}" in out["GNU ld"]


def test_renamed_copy_changes_only_the_names(objdir):
    obj = assemble(FIXTURES / "repro" / "samename.S", objdir)
    data = obj.read_bytes()
    o = read_object("a.o", data)
    names = unique_names([(s.index, s.name) for s in o.sections if s.alloc], {s.name for s in o.sections})
    assert sorted(names.values()) == sorted(f".text.dup.rs{s.index}" for s in o.sections if s.name == ".text.dup"
                                            and s.alloc)
    new = renamed_copy(data, names)
    c = read_object("b.o", new)
    assert [s.name for s in c.sections] == [names.get(s.index, s.name) for s in o.sections]
    # Byte-identical but for the name-table header's offset and size and the renamed sh_names.
    shoff, shstrndx = struct.unpack_from("<Q", data, 0x28)[0], struct.unpack_from("<H", data, 0x3e)[0]
    changed = {i for i in range(len(data)) if data[i] != new[i]}
    allowed = set(range(shoff + shstrndx * 64 + 24, shoff + shstrndx * 64 + 40))
    for i in names:
        allowed |= set(range(shoff + i * 64, shoff + i * 64 + 4))
    assert changed and changed <= allowed
    assert renamed_copy(data, {}) == data


def test_text_prints_each_repro_script(objdir, tmp_path, monkeypatch, capsys):
    obj = assemble(FIXTURES / "condbr19.S", objdir)
    monkeypatch.chdir(obj.parent)
    capsys.readouterr()
    assert main(["check", "--emit-linker-script", str(tmp_path / "d"), obj.name]) == 1
    out = capsys.readouterr().out
    shown = re.findall(r"^  >>> repro: (.*)$", out, flags=re.M)
    report = analyze([obj.name])
    want = [s for s in report.listed if s.verdict in ("vulnerable", "broken")]
    assert len(shown) == len(want) and all(Path(p).is_file() for p in shown)
    # an unknown site has no counterexample and no repro folder
    unknown = [s for s in report.listed if s.verdict == "unknown"]
    assert unknown and not any(f"+{s.offset:#x}." in p for s in unknown for p in shown)


def test_a_directory_that_cannot_be_written_is_one_line(objdir, tmp_path, capsys):
    obj = assemble(FIXTURES / "condbr19.S", objdir)
    (tmp_path / "file").write_text("")
    capsys.readouterr()
    assert main(["check", "--emit-linker-script", str(tmp_path / "file"), str(obj)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("reachsolve: error: ")
