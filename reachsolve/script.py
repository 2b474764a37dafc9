"""A GNU-ld/lld linker script that reproduces a counterexample layout.

Every allocated input section becomes an output section of the same name at
the counterexample's address; undefined symbols are defined at theirs. Linking
the object with it makes the real linker perform the failing relocation.
"""
from __future__ import annotations

from .report import SiteResult


def _quote(name: str) -> str:
    return f'"{name}"' if any(ch in name for ch in ' ,;()"') else name


def linker_script(site: SiteResult) -> str:
    ce = site.counterexample
    if ce is None:
        raise ValueError("site has no counterexample")
    names = [p.section for p in ce.layout]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ValueError(f"sections share a name ({', '.join(sorted(dup))}); a script cannot place them apart")
    lines = ["SECTIONS", "{"]
    for p in sorted(ce.layout, key=lambda p: (p.address, p.index)):
        lines.append(f"  {_quote(p.section)} {p.address:#x} : {{ *({_quote(p.section)}) }}")
    got = [s for s in ce.symbols if s.kind == "got"]
    if got:
        lines.append(f"  .got {got[0].address:#x} : {{ *(.got) }}")
    lines.append("}")
    for s in ce.symbols:
        if s.kind == "undefined":
            lines.append(f"{s.name} = {s.address:#x};")
    return "\n".join(lines) + "\n"
