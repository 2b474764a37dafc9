"""The real toolchain: clang, ld.lld, GNU ld (aarch64) and llvm-ar.

A missing tool is an error, never a skip: an oracle test must not pass by not
running.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
TOOLS = {"clang": "clang", "lld": "ld.lld", "bfd": "aarch64-linux-gnu-ld", "ar": "llvm-ar"}


class ToolMissing(RuntimeError):
    """A tool of the toolchain is not installed."""


def tool(name: str) -> str:
    """Path of toolchain part ``name`` (a key of TOOLS); raises ToolMissing when absent."""
    path = shutil.which(TOOLS[name])
    if path is None:
        raise ToolMissing(f"{TOOLS[name]} is not installed; run the README's test command, which installs it")
    return path


_cache: dict[tuple, Path] = {}


def assemble(src: Path, out_dir: Path, big_endian: bool = False) -> Path:
    """Assemble one .S fixture with clang into ``out_dir`` (cached per process).

    A ``// defsym: name=value ...`` line in the source adds absolute symbols with
    ``ld.lld -r``, as ``ld -r`` leaves them in a kernel's vmlinux.o."""
    key = (Path(src), Path(out_dir), big_endian)
    if key in _cache and _cache[key].exists():
        return _cache[key]
    target = "aarch64_be-linux-gnu" if big_endian else "aarch64-linux-gnu"
    out = Path(out_dir) / f"{Path(src).stem}{'.be' if big_endian else ''}.o"
    defsyms = [d for line in Path(src).read_text().splitlines() if line.startswith("// defsym:")
               for d in line.split(":", 1)[1].split()]
    first = out.with_suffix(".s.o") if defsyms else out
    subprocess.run([tool("clang"), f"--target={target}", "-I", str(FIXTURES), "-c", str(src), "-o", str(first)],
                   check=True, capture_output=True, text=True)
    if defsyms:
        cmd = [tool("lld"), "-r", str(first), "-o", str(out)]
        for d in defsyms:
            cmd += ["--defsym", d]
        subprocess.run(cmd, check=True, capture_output=True, text=True)
    _cache[key] = out
    return out


def assemble_text(src: str, out: Path, big_endian: bool = False) -> Path:
    """Assemble source text (written beside ``out`` as ``<out>.S``) into ``out``."""
    s = Path(out).with_suffix(".S")
    s.write_text(src)
    target = "aarch64_be-linux-gnu" if big_endian else "aarch64-linux-gnu"
    subprocess.run([tool("clang"), f"--target={target}", "-c", str(s), "-o", str(out)],
                   check=True, capture_output=True, text=True)
    return Path(out)


def link(linker: str, obj: Path, script: str, work: Path, big_endian: bool = False,
         keep_going: bool = False, extra: list[str] = ()) -> subprocess.CompletedProcess:
    """Link ``obj`` with a linker script; returns the finished process (never raises).

    ``keep_going`` asks for an output file despite errors elsewhere, so that what a
    linker silently wrote at one site can be read back."""
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    lds = work / f"{linker}.lds"
    lds.write_text(script)
    out = work / f"{linker}.out"
    # Veneers the linker adds grow a section beyond the object's size; the layout
    # model does not reserve room for them, so overlap checks are not the question.
    cmd = [tool(linker), "-T", str(lds), str(obj), "-o", str(out), "-e", "0", "--no-check-sections"]
    if linker == "bfd":
        cmd[1:1] = ["-EB" if big_endian else "-EL", "--no-warn-rwx-segments"]
    # Report every failing site: ld.lld stops at 20 errors, GNU ld at 10 overflows.
    # ld.lld 14 would turn an adrp/ldr GOT pair into a direct adrp/add; the model is the GOT.
    cmd += ["--error-limit=0", "--no-relax"] if linker == "lld" else ["--verbose"]
    if keep_going:
        cmd.append("--noinhibit-exec")
    cmd += list(extra)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)
