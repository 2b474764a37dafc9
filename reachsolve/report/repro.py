"""A GNU-ld/lld linker script that reproduces a counterexample layout.

Every allocated input section becomes an output section of the same name at
the counterexample's address; undefined symbols, and those a model's script
defines, are defined at their values in that layout. Linking
the object with it makes the real linker perform the failing relocation.
"""
from __future__ import annotations

from collections import Counter

from .document import SiteResult


def _quote(name: str) -> str:
    return f'"{name}"' if any(ch in name for ch in ' ,;()"') else name


# Where a linker puts the first GOT entry inside .got: GNU ld reserves .got[0].
GOT_HEADER = {"lld": 0, "bfd": 8}


def linker_script(site: SiteResult, linker: str = "lld") -> str:
    """The script for ``linker`` ("lld" or "bfd"; they differ only in the GOT header)."""
    ce = site.counterexample
    if ce is None:
        raise ValueError("site has no counterexample")
    dup = {n for n, k in Counter(p.section for p in ce.layout).items() if k > 1}
    if dup:
        raise ValueError(f"sections share a name ({', '.join(sorted(dup))}); a script cannot place them apart")
    lines = ["SECTIONS", "{"]
    for p in sorted(ce.layout, key=lambda p: (p.address, p.index)):
        lines.append(f"  {_quote(p.section)} {p.address:#x} : {{ *({_quote(p.section)}) }}")
    got = [s for s in ce.symbols if s.kind == "got"] if "GOT" in site.reloc else []
    if got:  # only a GOT-relative site depends on where the GOT lies
        if len(got) > 1:
            raise ValueError("several GOT slots: their order inside .got is the linker's choice")
        lines.append(f"  .got {got[0].address - GOT_HEADER[linker]:#x} : {{ *(.got) }}")
    lines.append("}")
    for s in ce.symbols:
        if s.kind in ("undefined", "script"):  # script symbols at their values in this layout
            lines.append(f"{s.name} = {s.address:#x};")
    return "\n".join(lines) + "\n"
