"""Which input description takes which input section: the linkers' first-match rule.

Every allocated section of the object goes to the first input description in
script order whose file and section patterns match it (GNU ld and lld both
take the first match), or to /DISCARD/, or is an orphan. Sorting keywords
then order the sections one description took.
"""
from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass, field

from ..errors import ModelError
from ..objfile.elf import ObjectFile
from . import ast as L


class ScriptModelError(ModelError):
    """A script the layout model cannot follow; names the file, line and column."""

    def __init__(self, path: str, line: int, col: int, message: str):
        super().__init__(f"{path}:{line}:{col}: {message}")


def glob(pattern: str) -> re.Pattern:
    return re.compile(fnmatch.translate(pattern), re.DOTALL)


@dataclass
class Assignment:
    """The outcome of matching: per description (in script order) the sections it takes."""

    specs: list[tuple[str, L.InputSpec]]          # (output section, description)
    members: dict[int, list[tuple[int, object]]]  # description -> [(section index, pattern hit)]
    spec_of: dict[int, int] = field(default_factory=dict)
    discarded: set[int] = field(default_factory=set)
    orphans: list[int] = field(default_factory=list)


def input_specs(script: L.Script, path: str) -> list[tuple[str, L.InputSpec]]:
    """Every input description of the script, in order, with its output section."""
    specs: list[tuple[str, L.InputSpec]] = []
    for cmd in script.commands:
        if isinstance(cmd, L.Sections):
            for st in cmd.body:
                if isinstance(st, L.OutputSection):
                    specs += [(st.name, x) for x in st.body if isinstance(x, L.InputSpec)]
                elif isinstance(st, L.Overlay):
                    raise ScriptModelError(path, st.line, st.col, "OVERLAY is not supported by the layout model")
    return specs


def assign(script: L.Script, obj: ObjectFile, path: str) -> Assignment:
    specs = input_specs(script, path)
    fname = os.path.basename(obj.name.split("(")[0])
    compiled = []
    for out, sp in specs:
        if not glob(sp.file).match(fname) or any(glob(x).match(fname) for x in sp.exclude_files):
            compiled.append(None)
            continue
        pats = [(glob(p.glob), p) for p in sp.patterns if not any(glob(x).match(fname) for x in p.exclude_files)]
        compiled.append(pats if sp.patterns else [(re.compile(".*", re.DOTALL), None)])
    out = Assignment(specs, {k: [] for k in range(len(specs))})
    # One alternation of every pattern, in script order: the regex engine tries the
    # alternatives left to right, so the first match is the first description that
    # takes the section (the linkers' rule), found in one pass per section name.
    alts, which = [], {}
    for k, pats in enumerate(compiled):
        for rx, p in pats or ():
            which[f"g{len(alts)}"] = (k, p)
            alts.append(f"(?P<g{len(alts)}>{rx.pattern})")
    first = re.compile("|".join(alts), re.DOTALL) if alts else None
    for sec in obj.sections:
        if not sec.alloc:
            continue
        m = first.match(sec.name) if first is not None else None
        if m is None:
            out.orphans.append(sec.index)
            continue
        k, hit = which[m.lastgroup]
        if specs[k][0] == "/DISCARD/":
            out.discarded.add(sec.index)
        else:
            out.spec_of[sec.index] = k
            out.members[k].append((sec.index, hit))
    for mem in out.members.values():
        sorts = {p.sort for _, p in mem if p is not None and p.sort}
        if sorts:
            if any("ALIGNMENT" in s for s in sorts):
                mem.sort(key=lambda m: (-obj.sections[m[0]].align, m[0]))
            elif any(s.startswith(("SORT_BY_NAME", "SORT(", "SORT_BY_INIT")) or s == "SORT" for s in sorts):
                mem.sort(key=lambda m: (obj.sections[m[0]].name, m[0]))
    return out
