"""Random linker scripts for a random object, and "grown" builds of the ordered model.

``make_script(rng, sections)`` lays the object's sections out in output sections
with several input descriptions each, between location-counter statements
(``. = ALIGN(n)``, ``. += k``), symbol assignments and ``ASSERT``s. Every
description names its input sections by name (file pattern ``*``), so an input
section of another file with the same name lands in the same description,
after the object's ones: that is where the ordered model lets more input lie.

``grow(rng, script)`` samples a grown build: padding sections (a second object,
linked after the first) at the end of chosen descriptions, and sections of the
object itself grown at their end (the object assembled again with more bytes).
Both are growth the ordered model allows; linking them with ld.lld and the
same script gives real layouts to compare reachsolve's verdicts with.

TLS sections (.tdata.N, .tbss.N) go to two output sections of their own, .tdata then
.tbss, one after the other and last: ld.lld wants the RELRO .tdata output sections
adjacent and makes one PT_TLS segment of the TLS output sections, and the layout model
follows a .tbss output section only when nothing comes after it.
"""
from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field

BASE = 0x40000000
ASSERT_MSG = "randscript-assert"


@dataclass
class Script:
    text: str
    descriptions: list[list[str]]       # each description's section names, in script order
    section_names: list[str]            # the object's sections the script places
    symbols: list[str] = field(default_factory=list)


def make_script(rng: random.Random, sections: list[tuple[str, int]]) -> Script:
    """A script placing every section of ``sections`` ((name, size) pairs) exactly once."""
    names = [n for n, _ in sections]
    tls = [n for n in names if is_tls(n)]
    order = [n for n in names if not is_tls(n)]
    rng.shuffle(order)
    # Group the sections into output sections of 1-3 descriptions, each of 1-2 sections.
    outs: list[list[list[str]]] = []
    i = 0
    while i < len(order):
        descs = []
        for _ in range(rng.randint(1, 3)):
            if i >= len(order):
                break
            k = rng.choice((1, 1, 2))
            descs.append(order[i:i + k])
            i += k
        outs.append(descs)
    out_names = [f".out{k}" for k in range(len(outs))]
    tls_outs: list[tuple[str, list]] = []
    if tls:   # drawn only for an object with TLS: the other objects' scripts stay as they were
        for kind in (".tdata.", ".tbss."):
            group = [n for n in tls if n.startswith(kind)]
            rng.shuffle(group)
            if group:
                descs = [group[i:i + 2] if rng.random() < 0.3 else group[i:i + 1] for i in range(0, len(group))]
                tls_outs.append((kind.rstrip("."), _cover(group, descs)))
    lines = ["SECTIONS", "{", f"  . = {BASE + rng.choice((0, 0, rng.randrange(0, 1 << 16, 4))):#x};"]
    syms: list[str] = []
    nsym = 0

    def statement(indent: str) -> str | None:
        nonlocal nsym
        r = rng.random()
        if r < 0.3:
            return f"{indent}. = ALIGN({1 << rng.choice((2, 3, 4, 6, 8, 12, 16))});"
        if r < 0.5:
            return f"{indent}. += {rng.choice((4, 16, 0x100, rng.randrange(0, 1 << 14), rng.randrange(0, 1 << 18)))};"
        if r < 0.75:
            nsym += 1
            syms.append(f"__rs_{nsym}")
            return f"{indent}__rs_{nsym} = .;"
        if r < 0.9 and syms:
            # Generous ASSERTs: most grown builds keep them; the ones that break one are not builds.
            lim = rng.choice((16 << 20, 48 << 20, 96 << 20))
            # Inside an output section GNU ld needs the ';'; directly inside SECTIONS both
            # linkers refuse one.
            end = ";" if len(indent) > 2 else ""   # "    ": inside an output section
            return f'{indent}ASSERT(. - {rng.choice(syms)} < {lim:#x}, "{ASSERT_MSG}"){end}'
        return None

    def output(name: str, descs: list) -> None:
        for _ in range(rng.randint(0, 2)):
            st = statement("  ")
            if st:
                lines.append(st)
        lines.append(f"  {name} : {{")
        for d in descs:
            if rng.random() < 0.3:
                st = statement("    ")
                if st:
                    lines.append(st)
            lines.append(f"    *({' '.join(d)})")
        lines.append("  }")

    for k, descs in enumerate(outs):
        output(out_names[k], descs)
    lines.append("  .rest : { *(.text .data .bss) }")
    # The TLS output sections last, .tdata then .tbss, adjacent (one PT_TLS): ld.lld does not
    # move the location counter over a .tbss output section, which the layout model follows
    # only when nothing comes after it.
    for name, descs in tls_outs:
        output(name, descs)
    lines.append("}")
    descriptions = [d for descs in outs for d in descs] + [d for _, descs in tls_outs for d in descs]
    return Script("\n".join(lines) + "\n", descriptions, names, syms)


def is_tls(name: str) -> bool:
    """A TLS section of testsupport.randobj's objects (by its name)."""
    return name.startswith((".tdata.", ".tbss."))


def _cover(group: list[str], descs: list[list[str]]) -> list[list[str]]:
    """Descriptions of 1-2 sections that take each section of ``group`` once, in order."""
    out, seen = [], set()
    for d in descs:
        d = [n for n in d if n not in seen]
        if d:
            out.append(d)
            seen.update(d)
    return out


@dataclass
class Growth:
    pads: list[tuple[str, int, int]]    # (section name, bytes, p2align) of the padding object
    grown: dict[str, int]               # object section -> bytes added at its end

    @property
    def empty(self) -> bool:
        return not self.pads and not self.grown


def _amount(rng: random.Random) -> int:
    r = rng.random()
    if r < 0.3:
        return rng.randint(1, 256)
    return int(math.exp(rng.uniform(0, math.log(3 << 20))))


def grow(rng: random.Random, sc: Script, sizes: dict[str, int]) -> Growth:
    """One grown build: padding after 1-3 descriptions, and sometimes 1-2 sections grown."""
    pads = []
    for d in rng.sample(sc.descriptions, min(len(sc.descriptions), rng.randint(1, 3))):
        pads.append((rng.choice(d), _amount(rng), rng.choice((0, 0, 2, 3, 4))))
    grown = {}
    if rng.random() < 0.3:
        growable = [n for n in sc.section_names if sizes.get(n, 0) > 0 and not n.startswith((".bss", ".tbss"))]
        for n in rng.sample(growable, min(len(growable), rng.randint(1, 2))):
            grown[n] = _amount(rng)
    return Growth(pads, grown)


def pad_source(g: Growth, kinds: dict[str, str]) -> str:
    """Assembly of the padding object: sections named like the object's, so that each
    lands in the description that took the object's section of that name."""
    out = []
    for k, (name, size, p2) in enumerate(g.pads):
        flags, typ = kinds.get(name, ("a", "progbits"))
        out.append(f'\t.section {name},"{flags}",%{typ}')
        out.append(f"\t.p2align {p2}")
        out.append(f"\t.space {size}")
    return "\n".join(out) + "\n"


def grown_source(src: str, g: Growth) -> str:
    """The object's source with ``g.grown`` bytes appended to those sections: a section's
    contents run until the next .section directive, so the bytes go just before it."""
    if not g.grown:
        return src
    lines = src.splitlines()
    out, cur = [], None
    for line in lines + ["\t.section .end_of_source"]:
        m = re.match(r"\t\.section (\S+?),", line) or re.match(r"\t\.section (\S+)$", line)
        if m:
            if cur in g.grown:
                out.append(f"\t.space {g.grown[cur]}")
            cur = m.group(1)
        out.append(line)
    return "\n".join(out[:-1]) + "\n"


MAP_LINE = re.compile(r"^\s*([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)\s+(\d+)\s+(\S+):\((\S+)\)\s*$")


def read_map(text: str, obj_name: str, alloc: set[str]) -> tuple[dict[str, int], int, int]:
    """Input-section addresses of ``obj_name`` from an ld.lld -Map file, with the lowest
    start and highest end of the input sections named in ``alloc`` (the image's extent)."""
    addrs, lo, hi = {}, None, 0
    for line in text.splitlines():
        m = MAP_LINE.match(line)
        if not m or m.group(5) not in alloc or m.group(4).startswith("<"):
            continue
        a, size = int(m.group(1), 16), int(m.group(2), 16)
        lo = a if lo is None else min(lo, a)
        hi = max(hi, a + size)
        if m.group(4).endswith(obj_name):
            addrs.setdefault(m.group(5), a)
    return addrs, lo or 0, hi
