"""Reproducing a counterexample with the real linkers.

``linker_script``: every allocated input section becomes an output section of
its own at the counterexample's address; undefined symbols, and those a
model's script defines, are defined at their values in that layout. Linking
the object with it makes the real linker perform the failing relocation.

``write_site`` writes a site's repro folder: the scripts for ld.lld and GNU ld
and a ``repro.sh`` that runs each linker that rejects the site and prints its
messages about it; where a linker is silent (a misaligned branch whose low bits
GNU ld drops), it links anyway and prints the instruction the linker wrote,
disassembled by llvm-objdump, beside the intended target. Sections that share
a name are told apart by a renamed copy of the object (objfile/rename.py); the
caller passes the names the copy uses (reachsolve.api.emit_repro).
"""
from __future__ import annotations

import os
import re
import shlex
from collections import Counter
from pathlib import Path

from ..target.catalogue import BY_NAME
from ..target.policy import PROFILE_LABEL
from .document import SiteResult


def _quote(name: str) -> str:
    return f'"{name}"' if any(ch in name for ch in ' ,;()"') else name


# Where a linker puts the first GOT entry inside .got: GNU ld reserves .got[0].
GOT_HEADER = {"lld": 0, "bfd": 8}


def linker_script(site: SiteResult, linker: str = "lld", names: dict[int, str] | None = None,
                  others: tuple[str, ...] = ()) -> str:
    """The script for ``linker`` ("lld" or "bfd"; they differ only in the GOT header).
    ``names``: section index -> the name a renamed copy of the object gives it;
    ``others``: the object's other undefined symbols, defined at the image base so that
    the link gets as far as relocating (no range-checked site of the layout uses them)."""
    ce = site.counterexample
    if ce is None:
        raise ValueError("site has no counterexample")
    names = names or {}
    name = {p.index: names.get(p.index, p.section) for p in ce.layout}
    dup = {n for n, k in Counter(name.values()).items() if k > 1}
    if dup:
        raise ValueError(f"sections share a name ({', '.join(sorted(dup))}); a script cannot place them apart "
                         f"(reachsolve.api.emit_repro writes a copy of the object with unique names)")
    lines = ["SECTIONS", "{"]
    for p in sorted(ce.layout, key=lambda p: (p.address, p.index)):
        n = _quote(name[p.index])
        lines.append(f"  {n} {p.address:#x} : {{ *({n}) }}")
    got = [s for s in ce.symbols if s.kind == "got"] if "GOT" in site.reloc else []
    if got:  # only a GOT-relative site depends on where the GOT lies
        if len(got) > 1:
            raise ValueError("several GOT slots: their order inside .got is the linker's choice")
        lines.append(f"  .got {got[0].address - GOT_HEADER[linker]:#x} : {{ *(.got) }}")
    lines.append("}")
    placed = set()
    for s in ce.symbols:
        if s.kind in ("undefined", "script"):  # script symbols at their values in this layout
            lines.append(f"{s.name} = {s.address:#x};")
            placed.add(s.name)
    lines += [f"{_quote(n)} = {ce.image_base:#x};" for n in others if n not in placed]
    return "\n".join(lines) + "\n"


#: The commands repro.sh runs; each can be overridden from the environment (LLD=..., ...).
TOOLS = {"LLD": "ld.lld", "BFD": "aarch64-linux-gnu-ld", "OBJDUMP": "llvm-objdump"}
_FLAGS = {"lld": "--error-limit=0 --no-relax", "bfd": "--no-warn-rwx-segments"}


def folder_name(site: SiteResult, names: dict[int, str] | None = None) -> str:
    """A site's repro folder, readable and safe as a path part: text+0x14.R_AARCH64_CONDBR19
    (the section as the renamed copy names it, if it does)."""
    sec = (names or {}).get(site.section_index, site.section)
    raw = f"{sec.lstrip('.')}+{site.offset:#x}.{site.reloc}"
    return re.sub(r"[^A-Za-z0-9._+-]", "_", raw) or "site"


def object_folder(file: str) -> str:
    """An object's folder under the repro directory (archive members and paths made safe)."""
    return re.sub(r"[^A-Za-z0-9._+-]", "_", os.path.basename(file) if "(" not in file else file) or "object"


def repro_sh(site: SiteResult, obj: str, profiles: tuple[str, ...], big_endian: bool = False,
             names: dict[int, str] | None = None) -> str:
    """The shell script of a site's repro folder. ``obj``: the object to link (absolute, or
    relative to the folder); ``profiles``: the model's linker profiles."""
    ce = site.counterexample
    if ce is None:
        raise ValueError("site has no counterexample")
    sec = (names or {}).get(site.section_index, site.section)
    where = f"({sec}+{site.offset:#x})"
    rejecting = [p for p in ce.rejected_by if p in ("lld", "bfd")]
    spec = BY_NAME.get(site.reloc)
    fine: dict[str, str] = {}   # linkers of the model that neither reject the value nor garble it
    silent = []
    for p in profiles:
        if p not in ("lld", "bfd") or p in ce.rejected_by or spec is None:
            continue
        lim = spec.limits[p]
        iv = lim.interval()
        if ce.problem == "improper alignment" and not lim.aligns:
            silent.append(p)          # drops the low bits without a word
        elif ce.problem == "out of range" and iv is not None and not iv[0] <= ce.value <= iv[1] and not lim.reports:
            silent.append(p)          # wraps the value without a word
        elif ce.problem == "out of range" and spec.veneer and (iv is None or not iv[0] <= ce.value <= iv[1]):
            fine[p] = "repairs this branch with a veneer"
        else:
            fine[p] = "accepts this value: it lies within that linker's own range"
    if not rejecting and not silent and not fine:
        silent = ["lld"]  # the module loader's rules: ld.lld shows what the code would say
    rng = f"[{site.range[0]:#x}, {site.range[1]:#x}]" if site.range else "(no range)"
    obj_ref = obj if os.path.isabs(obj) else f"$here/{obj}"
    out = ["#!/bin/sh",
           f"# Reproduces reachsolve's counterexample for {site.file}:({site.section}+{site.offset:#x}) "
           f"{site.reloc} ({site.verdict}).",
           f"# In this layout the site lies at {ce.place:#x}; its value is {ce.value:#x} ({ce.problem}; "
           f"range {rng}, granule {site.granule}); wanted {ce.wanted}.",
           "# Rejected by: " + (", ".join(PROFILE_LABEL[p] for p in ce.rejected_by) or "no linker (a silent fault)"),
           ]
    if names and site.section_index in names:
        out.append(f"# The object is a copy with unique section names: {site.section} is {sec} here.")
    if "kmod" in ce.rejected_by:
        out.append("# The arm64 module loader rejects it when the module is loaded; no linker to run for that.")
    out += ['here=$(cd "$(dirname "$0")" && pwd)',
            f'obj="{obj_ref}"',
            *(f'{k}=${{{k}:-{v}}}' for k, v in TOOLS.items()),
            'tmp=$(mktemp -d)', "trap 'rm -rf \"$tmp\"' EXIT",
            # ld.lld names a place inside a sized function "(function NAME: .text+0x0)"
            f"site={shlex.quote(where)}", f"in_function={shlex.quote(': ' + where[1:])}", "status=0",
            "link() {  # linker, script, output[, option]: link the object at the counterexample's addresses",
            '  extra=${4:-}',
            f'  case $1 in lld) set -- "$LLD" {_FLAGS["lld"]} -T "$here/$2" -o "$tmp/$3" ;;',
            f'             bfd) set -- "$BFD" {"-EB" if big_endian else "-EL"} {_FLAGS["bfd"]} -T "$here/$2" '
            f'-o "$tmp/$3" ;; esac',
            '  "$@" "$obj" -e 0 --no-check-sections $extra >"$tmp/log" 2>&1',
            "}",
            "show() {  # output file: the instruction the linker wrote at the site, and what was meant",
            f'  echo "  at {ce.place:#x} it wrote:"',
            f'  "$OBJDUMP" {"-s" if site.instruction.startswith(".") else "-d --no-show-raw-insn"} '
            f'--start-address={ce.place:#x} --stop-address={ce.place + 4:#x} "$tmp/$1" '
            f'| grep -i "^ *0*{ce.place:x}{" " if site.instruction.startswith(".") else ":"}" | sed "s/^/    /"',
            f'  echo "  intended: {ce.wanted}"',
            "}"]
    for p in ("lld", "bfd"):
        label = PROFILE_LABEL[p]
        if p in rejecting:
            out += [f'echo "== {label}: expected to reject the site"',
                    f"link {p} {p}.lds {p}.out",
                    'if grep -F -e "$site" -e "$in_function" "$tmp/log" >/dev/null; then',
                    f'  echo "{label} rejects it:"; grep -F -e "$site" -e "$in_function" "$tmp/log" | sed "s/^/  /"',
                    "else",
                    f'  echo "{label} did not report the site; its messages:"; sed "s/^/  /" "$tmp/log"',
                    f'  [ -f "$tmp/{p}.out" ] && show {p}.out',
                    "  status=1",
                    "fi"]
        elif p in silent:
            out += [f'echo "== {label}: does not check this; links it and writes the wrong code"',
                    f"link {p} {p}.lds {p}.out --noinhibit-exec",
                    'grep -F -e "$site" -e "$in_function" "$tmp/log" | sed "s/^/  /"',
                    f'if [ -f "$tmp/{p}.out" ]; then show {p}.out; else echo "  no output; its messages:"; '
                    f'sed "s/^/  /" "$tmp/log"; status=1; fi']
        if p in fine:
            out.append(f'echo "== {label}: not run: it {fine[p]}"')
    out.append('exit $status')
    return "\n".join(out) + "\n"


def write_site(site: SiteResult, folder: Path, obj: str, profiles: tuple[str, ...], big_endian: bool = False,
               names: dict[int, str] | None = None, others: tuple[str, ...] = ()) -> Path:
    """Write ``site``'s repro folder (lld.lds, bfd.lds, repro.sh); returns the script's path."""
    folder.mkdir(parents=True, exist_ok=True)
    for ld in ("lld", "bfd"):
        (folder / f"{ld}.lds").write_text(linker_script(site, ld, names, others))
    sh = folder / "repro.sh"
    sh.write_text(repro_sh(site, obj, profiles, big_endian, names))
    sh.chmod(0o755)
    return sh
