"""Soundness campaign against a real linker (ld.lld 14).

Random relocatable objects are generated from a seed, random layouts of the
"free" model (fixed image base) are sampled for each, and every layout is linked
with ld.lld through a linker script that pins every section and defines every
undefined symbol. The linker is the oracle:

(a) ld.lld never rejects a site that reachsolve calls robust;
(b) every site ld.lld rejects in some layout is vulnerable or broken (an
    ``unknown`` counts as a disagreement unless the solver gave up);
(c) every counterexample, turned into a script by ``linker_script``, makes ld.lld
    reject that same site (or, when no ld.lld check applies, leaves ld.lld silent
    while the value is really misaligned), and is a layout of the model.

Two independent checks come with the same links: the relocation value each site
takes in each layout is computed here from the ELF (pyelftools, not reachsolve),
so (d) a robust site must fit, a broken one must not, in every sampled layout
(this also covers what ld.lld truncates silently), and (e) what ld.lld reports
must be exactly what that computation predicts: a check on this harness itself.

The generator, sampler and checker live here; benchmarks/soundness.py imports
them for longer runs.
"""
from __future__ import annotations

import math
import multiprocessing
import random
import re
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

IMAGE_BASE = 0x40000000
IMAGE_MAX = 128 << 20
IMAGE_END = IMAGE_BASE + IMAGE_MAX
SYM_ALIGN = 16  # undefined symbols: at least what any relocation needs (LDST128)
PAGE = 4096
MiB = 1 << 20

# ---------------------------------------------------------------------------
# ld.lld 14's checks, written down independently of reachsolve's catalogue:
# type -> (lo, hi, granule, lld reports misalignment, b/bl thunk)
# PAGE: the value is Page(S+A) - Page(P); LDST: the value is S+A (no range).
# ---------------------------------------------------------------------------
LLD = {
    "R_AARCH64_CONDBR19": (-(1 << 20), (1 << 20) - 1, 4, True, False),
    "R_AARCH64_LD_PREL_LO19": (-(1 << 20), (1 << 20) - 1, 4, True, False),
    "R_AARCH64_TSTBR14": (-(1 << 15), (1 << 15) - 1, 4, False, False),
    "R_AARCH64_JUMP26": (-(1 << 27), (1 << 27) - 1, 4, False, True),
    "R_AARCH64_CALL26": (-(1 << 27), (1 << 27) - 1, 4, False, True),
    "R_AARCH64_ADR_PREL_LO21": (-(1 << 20), (1 << 20) - 1, 1, True, False),
    "R_AARCH64_ADR_PREL_PG_HI21": (-(1 << 32), (1 << 32) - 1, PAGE, True, False),
    "R_AARCH64_PREL16": (-(1 << 15), (1 << 16) - 1, 1, True, False),
    "R_AARCH64_PREL32": (-(1 << 31), (1 << 32) - 1, 1, True, False),
    "R_AARCH64_LDST16_ABS_LO12_NC": (None, None, 2, True, False),
    "R_AARCH64_LDST32_ABS_LO12_NC": (None, None, 4, True, False),
    "R_AARCH64_LDST64_ABS_LO12_NC": (None, None, 8, True, False),
    "R_AARCH64_LDST128_ABS_LO12_NC": (None, None, 16, True, False),
}
# ELF r_type numbers (AAELF64), named here rather than by pyelftools, which lacks some.
NUMBERS = {280: "R_AARCH64_CONDBR19", 273: "R_AARCH64_LD_PREL_LO19", 279: "R_AARCH64_TSTBR14",
           282: "R_AARCH64_JUMP26", 283: "R_AARCH64_CALL26", 274: "R_AARCH64_ADR_PREL_LO21",
           275: "R_AARCH64_ADR_PREL_PG_HI21", 262: "R_AARCH64_PREL16", 261: "R_AARCH64_PREL32",
           284: "R_AARCH64_LDST16_ABS_LO12_NC", 285: "R_AARCH64_LDST32_ABS_LO12_NC",
           286: "R_AARCH64_LDST64_ABS_LO12_NC", 299: "R_AARCH64_LDST128_ABS_LO12_NC"}
ABS_TYPES = {t for t in LLD if "LDST" in t}
PAGE_TYPES = {"R_AARCH64_ADR_PREL_PG_HI21"}
GAVE_UP = re.compile(r"solver gave up|timeout|timed out|resource limit|canceled|rlimit", re.I)

# ---------------------------------------------------------------------------
# 1. Random objects
# ---------------------------------------------------------------------------
# kind -> (relocation, container bytes, templates); {t} is the target expression
KINDS = {
    "condbr": ("R_AARCH64_CONDBR19", 4, ("cbz x0, {t}", "cbnz w3, {t}", "b.eq {t}", "b.hs {t}")),
    "tbz": ("R_AARCH64_TSTBR14", 4, ("tbz x0, #3, {t}", "tbnz w1, #0, {t}")),
    "ldr": ("R_AARCH64_LD_PREL_LO19", 4, ("ldr x0, {t}", "ldr w2, {t}")),
    "adr": ("R_AARCH64_ADR_PREL_LO21", 4, ("adr x0, {t}",)),
    "adrp": ("R_AARCH64_ADR_PREL_PG_HI21", 4, ("adrp x1, {t}",)),
    "b": ("R_AARCH64_JUMP26", 4, ("b {t}",)),
    "bl": ("R_AARCH64_CALL26", 4, ("bl {t}",)),
    "prel32": ("R_AARCH64_PREL32", 4, (".word {t} - .",)),
    "prel16": ("R_AARCH64_PREL16", 2, (".hword {t} - .",)),
    "ldst16": ("R_AARCH64_LDST16_ABS_LO12_NC", 4, ("ldrh w0, [x1, :lo12:{t}]",)),
    "ldst32": ("R_AARCH64_LDST32_ABS_LO12_NC", 4, ("ldr w0, [x1, :lo12:{t}]",)),
    "ldst64": ("R_AARCH64_LDST64_ABS_LO12_NC", 4, ("ldr x0, [x1, :lo12:{t}]",)),
    "ldst128": ("R_AARCH64_LDST128_ABS_LO12_NC", 4, ("ldr q0, [x1, :lo12:{t}]",)),
}
INSN_KINDS = tuple(k for k in KINDS if not k.startswith("prel"))
# How often each kind is drawn in executable sections (short ranges weigh more).
INSN_WEIGHTS = {"condbr": 5, "tbz": 4, "ldr": 4, "adr": 4, "adrp": 2, "b": 2, "bl": 2,
                "ldst16": 1, "ldst32": 1, "ldst64": 1, "ldst128": 1}


@dataclass
class Label:
    name: str
    offset: int
    glob: bool


@dataclass
class SecGen:
    name: str
    kind: str          # text | data | rodata | bss (labels only)
    size: int
    p2align: int
    labels: list = field(default_factory=list)
    sites: list = field(default_factory=list)   # (offset, kind, target text)


def _size(rng: random.Random) -> int:
    r = rng.random()
    if r < 0.45:
        return rng.randint(16, 4096)
    if r < 0.75:
        return rng.randint(4096, 96 << 10)
    if r < 0.88:
        return rng.randint(96 << 10, 512 << 10)
    return rng.randint(512 << 10, 1536 << 10)


def _addend(rng: random.Random) -> int:
    r = rng.random()
    if r < 0.45:
        return rng.randint(-16, 16)
    if r < 0.7:
        return 4 * rng.randint(-256, 256)
    if r < 0.9:
        return 4 * rng.randint(-(1 << 16), 1 << 16)
    return rng.choice((-1, 1)) * rng.choice((1 << 20, (1 << 20) + 4, 1 << 15, (1 << 16) + 4, 3 << 20,
                                            rng.randint(1 << 15, 4 << 20)))


def generate(seed: str) -> str:
    """Assembly source of one random object (deterministic in ``seed``)."""
    rng = random.Random(seed)
    secs: list[SecGen] = []
    n = 0
    for kind, count in (("text", rng.randint(2, 4)), ("data", rng.randint(1, 3)), ("rodata", rng.randint(0, 2)),
                        ("bss", rng.choice((0, 0, 1)))):
        for _ in range(count):
            n += 1
            p2 = rng.choice((0, 0, 1, 2, 2, 2, 3, 4, 4, 5, 6, 8, 10, 12))
            secs.append(SecGen(f".{kind}.{n}", kind, _size(rng), p2))
    undef = [f"ext_{i}" for i in range(rng.randint(0, 3))]
    # Site places first: instruction sites 4-aligned; data words anywhere (usually aligned).
    for s in secs:
        nsites = rng.randint(6, 24) if s.kind == "text" else 0 if s.kind == "bss" else rng.randint(0, 8)
        taken: set[int] = set()
        for _ in range(nsites if s.size >= 8 else 0):
            if s.kind == "text" and rng.random() < 0.85:
                kind = rng.choices(list(INSN_WEIGHTS), weights=list(INSN_WEIGHTS.values()))[0]
            else:
                kind = rng.choice(("prel32", "prel16"))
            width = KINDS[kind][1]
            if kind in INSN_KINDS:
                off = rng.randrange(0, s.size - 4 + 1) & ~3
            else:
                off = rng.randrange(0, s.size - width + 1)
                if rng.random() < 0.7:
                    off &= ~(width - 1)
            if any(o in taken for o in range(off - 1, off + width + 1)):
                continue
            taken.update(range(off, off + width))
            s.sites.append([off, kind, None])
    # Labels at random offsets, never strictly inside a site's bytes.
    nl = 0
    for s in secs:
        inside = lambda o: any(p < o < p + KINDS[k][1] for p, k, _ in s.sites)
        for glob, count in ((True, rng.randint(1, 5)), (False, rng.randint(0, 3))):
            for _ in range(count):
                off = rng.choice((0, s.size, rng.randrange(s.size + 1), rng.randrange(s.size + 1) & ~3))
                if not inside(off):
                    nl += 1
                    s.labels.append(Label(f"g_{nl}" if glob else f".Ll_{nl}", off, glob))
    for s in secs:
        for site in s.sites:
            site[2] = _target(rng, s, secs, undef)
    return _emit(secs, undef)


def _target(rng: random.Random, here: SecGen, secs: list[SecGen], undef: list[str]) -> str:
    r = rng.random()
    others = [s for s in secs if s is not here and s.labels]
    if r < 0.18 and undef:
        name = rng.choice(undef)
    elif r < 0.25 and any(l.glob for l in here.labels):
        name = rng.choice([l for l in here.labels if l.glob]).name        # same section, global
    else:
        if not others:
            others = [here]
        s = rng.choice(others)
        cands = [l for l in s.labels if (l.glob or s is not here)]
        if not cands:
            cands = [l for l in here.labels if l.glob] or [Label("ext_x", 0, True)]
        if rng.random() < 0.3:
            loc = [l for l in cands if not l.glob]
            if loc:
                cands = loc
        name = rng.choice(cands).name
    if rng.random() < 0.4:
        k = _addend(rng)
        if k:
            return f"({name} {'+' if k > 0 else '-'} {abs(k)})"
    return name


def _emit(secs: list[SecGen], undef: list[str]) -> str:
    out = ["// generated by tests/test_soundness.py"]
    for s in secs:
        flags = {"text": "ax", "data": "aw", "rodata": "a", "bss": "aw"}[s.kind]
        out.append(f'\t.section {s.name},"{flags}",%{"nobits" if s.kind == "bss" else "progbits"}')
        out.append(f"\t.p2align {s.p2align}")
        events = [(l.offset, 0, l) for l in s.labels] + [(o, 1, (k, t)) for o, k, t in s.sites]
        events.sort(key=lambda e: (e[0], e[1]))
        cur = 0
        rng = random.Random(s.name)
        for off, what, item in events:
            if off > cur:
                out.append(f"\t.{rng.choice(('space', 'skip'))} {off - cur}")
                cur = off
            if what == 0:
                if item.glob:
                    out.append(f"\t.globl {item.name}")
                out.append(f"{item.name}:")
            else:
                kind, t = item
                tmpl = rng.choice(KINDS[kind][2])
                out.append("\t" + tmpl.format(t=t))
                cur += KINDS[kind][1]
        if s.size > cur:
            out.append(f"\t.space {s.size - cur}")
    return "\n".join(out) + "\n"


def assemble(src: str, out: Path) -> Path:
    s = out.with_suffix(".S")
    s.write_text(src)
    subprocess.run([shutil.which("clang") or "clang", "--target=aarch64-linux-gnu", "-c", str(s), "-o", str(out)],
                   check=True, capture_output=True, text=True)
    return out


# ---------------------------------------------------------------------------
# The object as this harness reads it (pyelftools; independent of reachsolve)
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Sec:
    index: int
    name: str
    size: int
    align: int


@dataclass(frozen=True)
class Rel:
    section: str       # place section
    offset: int
    type: str
    sym: str           # symbol name ('' for a section symbol)
    target: str | None  # target section name, None for undefined
    value: int         # st_value (section symbols: 0)
    addend: int

    @property
    def key(self):
        return (self.section, self.offset, self.type)


@dataclass
class Obj:
    path: Path
    secs: list[Sec]
    undef: list[str]
    rels: list[Rel]       # every range-checked relocation (types in LLD)
    others: list[Rel]     # relocations of other types
    sym_align: dict = field(default_factory=dict)  # the model: what an undefined symbol's relocations need


def read(path: Path) -> Obj:
    from elftools.elf.elffile import ELFFile
    from elftools.elf.relocation import RelocationSection
    from elftools.elf.descriptions import describe_reloc_type

    with open(path, "rb") as f:
        elf = ELFFile(f)
        names = {i: s.name for i, s in enumerate(elf.iter_sections())}
        secs = [Sec(i, s.name, s["sh_size"], max(1, s["sh_addralign"]))
                for i, s in enumerate(elf.iter_sections()) if s["sh_flags"] & 2]
        symtab = elf.get_section_by_name(".symtab")
        syms = list(symtab.iter_symbols())
        undef = sorted({s.name for s in syms if s["st_shndx"] == "SHN_UNDEF" and s.name})
        rels, others = [], []
        for rs in elf.iter_sections():
            if not isinstance(rs, RelocationSection):
                continue
            place = names[rs["sh_info"]]
            for r in rs.iter_relocations():
                ty = NUMBERS.get(r["r_info_type"]) or describe_reloc_type(r["r_info_type"], elf)
                sym = syms[r["r_info_sym"]]
                shn = sym["st_shndx"]
                tgt = None if shn == "SHN_UNDEF" else names[shn]
                rel = Rel(place, r["r_offset"], ty, sym.name if sym["st_info"]["type"] != "STT_SECTION" else "",
                          tgt, sym["st_value"], r["r_addend"])
                (rels if ty in LLD else others).append(rel)
    need = {n: 1 for n in undef}
    for r in rels:
        if r.target is None and r.sym in need and r.type not in PAGE_TYPES:
            need[r.sym] = max(need[r.sym], LLD[r.type][2])
    return Obj(path, secs, undef, rels, others, need)


# ---------------------------------------------------------------------------
# 2. Layouts of the "free" model
# ---------------------------------------------------------------------------
@dataclass
class Layout:
    secs: dict      # section name -> address
    syms: dict      # undefined symbol -> address
    mode: str


def _up(x: int, a: int) -> int:
    return -(-x // a) * a


def problems(obj: Obj, lay: Layout) -> list[str]:
    """Every way ``lay`` leaves the free model (empty: valid)."""
    out = []
    spans = []
    for s in obj.secs:
        a = lay.secs.get(s.name)
        if a is None:
            out.append(f"{s.name} not placed")
            continue
        if a % s.align:
            out.append(f"{s.name} at {a:#x} not aligned to {s.align}")
        if a < IMAGE_BASE or a + s.size > IMAGE_END:
            out.append(f"{s.name} [{a:#x}, {a + s.size:#x}) outside the image")
        spans.append((a, a + s.size, s.name))
    full = sorted(x for x in spans if x[1] > x[0])
    for x, y in zip(full, full[1:]):
        if y[0] < x[1]:
            out.append(f"{x[2]} and {y[2]} overlap")
    points = [(a, n) for a, b, n in spans if a == b] + [(a, n) for n, a in lay.syms.items()]
    for a, n in points:
        if n in lay.syms and (a % obj.sym_align.get(n, 1) or not IMAGE_BASE <= a <= IMAGE_END):
            out.append(f"symbol {n} at {a:#x} misaligned or outside the image")
        for lo, hi, m in full:
            if lo < a < hi:
                out.append(f"{n} at {a:#x} lies inside {m}")
    for n in obj.undef:
        if n not in lay.syms:
            out.append(f"symbol {n} not placed")
    return out


def _inside(a: int, spans) -> bool:
    return any(lo < a < hi for lo, hi in spans)


def _place_points(rng, obj: Obj, lay: Layout, spread: bool) -> None:
    spans = [(a, a + s.size) for s in obj.secs for a in [lay.secs[s.name]] if s.size]
    lo = min((x for x, _ in spans), default=IMAGE_BASE)
    hi = max((y for _, y in spans), default=IMAGE_BASE)
    for n in obj.undef:
        for _ in range(100):
            r = rng.random()
            if r < 0.05:
                a = rng.choice((IMAGE_BASE, IMAGE_END))
            elif spread or r < 0.2:
                a = IMAGE_BASE + rng.randrange(0, IMAGE_MAX + 1, SYM_ALIGN)
            elif r < 0.6 and spans:
                x, y = rng.choice(spans)
                a = _up(rng.choice((x, y)), SYM_ALIGN) + SYM_ALIGN * rng.choice((0, 0, 0, -1, 1, rng.randint(-64, 64)))
            else:
                a = _up(rng.randint(max(IMAGE_BASE, lo - 2 * MiB), min(IMAGE_END, hi + 2 * MiB)), SYM_ALIGN)
            if IMAGE_BASE <= a <= IMAGE_END and not _inside(a, spans):
                lay.syms[n] = a
                break
        else:
            lay.syms[n] = IMAGE_END


def _gap(rng, mode: str) -> int:
    if mode == "packed":
        return rng.choice((0, 0, rng.randint(0, 64), rng.randint(0, 4096), rng.randint(0, 64 << 10)))
    return int(math.exp(rng.uniform(0, math.log(6 * MiB))))   # "medium": log-uniform up to 6 MiB


def _sequential(rng, obj: Obj, mode: str) -> Layout | None:
    order = list(obj.secs)
    rng.shuffle(order)
    cur = IMAGE_BASE + rng.choice((0, 0, rng.randint(0, 1 << 16), rng.randint(0, 8 * MiB)))
    lay = Layout({}, {}, mode)
    for s in order:
        a = _up(cur + _gap(rng, mode), s.align)
        if a + s.size > IMAGE_END:
            return None
        lay.secs[s.name] = a
        cur = a + s.size
    return lay


def _ends(rng, obj: Obj) -> Layout | None:
    """Sections pushed against both ends of the image: where the extremes of a distance lie."""
    order = list(obj.secs)
    rng.shuffle(order)
    k = rng.randint(0, len(order))
    lay = Layout({}, {}, "ends")
    cur = IMAGE_BASE
    for s in order[:k]:
        a = _up(cur + rng.choice((0, 0, 0, rng.randint(0, 64))), s.align)
        lay.secs[s.name] = a
        cur = a + s.size
    top = IMAGE_END
    for s in order[k:]:
        a = (top - s.size - rng.choice((0, 0, 0, rng.randint(0, 64)))) // s.align * s.align
        if a < cur:
            return None
        lay.secs[s.name] = a
        top = a
    return lay


def _spread(rng, obj: Obj) -> Layout | None:
    lay = Layout({}, {}, "spread")
    spans = []
    for s in sorted(obj.secs, key=lambda s: -s.size):
        for _ in range(200):
            a = _up(IMAGE_BASE + rng.randrange(0, IMAGE_MAX - s.size + 1), s.align)
            if a + s.size <= IMAGE_END and not any(a < y and x < a + s.size for x, y in spans) \
                    and not (s.size == 0 and _inside(a, spans)):
                break
        else:
            return None
        lay.secs[s.name] = a
        if s.size:
            spans.append((a, a + s.size))
    return lay


def value(rel: Rel, lay: Layout) -> int:
    """The relocation's value in ``lay`` (AAELF64: S+A-P, Page(S+A)-Page(P), S+A)."""
    s = (lay.secs[rel.target] + rel.value) if rel.target else lay.syms[rel.sym]
    sa = s + rel.addend
    p = lay.secs[rel.section] + rel.offset
    if rel.type in ABS_TYPES:
        return sa
    if rel.type in PAGE_TYPES:
        return (sa & ~(PAGE - 1)) - (p & ~(PAGE - 1))
    return sa - p


def fits(rel: Rel, v: int) -> bool:
    """Does value ``v`` meet the type's range and granule under ld.lld (veneers repair b/bl range)?"""
    lo, hi, g, _, thunk = LLD[rel.type]
    if v % g:
        return False
    return lo is None or thunk or lo <= v <= hi


def lld_rejects(rel: Rel, v: int) -> bool:
    """What ld.lld 14 reports for value ``v``."""
    lo, hi, g, aligns, thunk = LLD[rel.type]
    if aligns and v % g and rel.type not in PAGE_TYPES:
        return True
    return lo is not None and not thunk and not lo <= v <= hi


def _edge(rng, obj: Obj, lay: Layout) -> Layout:
    """Move one site's target (or place) so that its value sits at (or just past) a limit."""
    cands = [r for r in obj.rels if LLD[r.type][0] is not None and not LLD[r.type][4]
             and r.target != r.section]
    if not cands:
        return lay
    for _ in range(20):
        r = rng.choice(cands)
        lo, hi, g, _, _ = LLD[r.type]
        want = rng.choice((lo, hi, lo - 1, hi + 1, lo - g, hi + g, lo + g, hi - g, hi - (hi % g)))
        delta = want - value(r, lay)
        new = Layout(dict(lay.secs), dict(lay.syms), lay.mode + "+edge")
        if r.target is None and rng.random() < 0.7:
            new.syms[r.sym] = new.syms[r.sym] + _up(delta, SYM_ALIGN) if delta > 0 else \
                new.syms[r.sym] - _up(-delta, SYM_ALIGN)
            new.syms[r.sym] += rng.choice((0, 0, -SYM_ALIGN, SYM_ALIGN))
        else:
            move = r.target if r.target and rng.random() < 0.5 else r.section
            sign = 1 if move == r.target else -1
            al = next(s.align for s in obj.secs if s.name == move)
            d = sign * delta
            d = (d // al) * al if rng.random() < 0.5 else _up(d, al)
            new.secs[move] += d
        if not problems(obj, new):
            return new
    return lay


def sample_layout(rng: random.Random, obj: Obj) -> Layout:
    for _ in range(50):
        r = rng.random()
        if r < 0.3:
            lay = _sequential(rng, obj, "packed")
        elif r < 0.65:
            lay = _sequential(rng, obj, "medium")
        elif r < 0.85:
            lay = _spread(rng, obj)
        else:
            lay = _ends(rng, obj)
        if lay is None:
            continue
        _place_points(rng, obj, lay, lay.mode == "spread" and rng.random() < 0.7)
        if rng.random() < 0.5:
            lay = _edge(rng, obj, lay)
        if not problems(obj, lay):
            return lay
    raise RuntimeError("could not sample a valid layout")


# ---------------------------------------------------------------------------
# 3. Linking
# ---------------------------------------------------------------------------
def script(lay: Layout) -> str:
    lines = ["SECTIONS", "{"]
    for name, a in sorted(lay.secs.items(), key=lambda kv: (kv[1], kv[0])):
        lines.append(f"  {name} {a:#x} : {{ *({name}) }}")
    lines.append("}")
    lines += [f"{n} = {a:#x};" for n, a in sorted(lay.syms.items())]
    return "\n".join(lines) + "\n"


REJECT = re.compile(r"\(([^()+]+)\+0x([0-9a-f]+)\): (?:relocation (R_AARCH64_\w+) (out of range)"
                    r"|(improper alignment) for relocation (R_AARCH64_\w+))")


@dataclass
class LinkResult:
    rejected: dict         # (section, offset, type) -> {"out of range", "improper alignment"}
    other: list            # error lines this harness does not understand
    returncode: int


def lld_link(obj: Path, text: str, work: Path) -> LinkResult:
    lds = work / "l.lds"
    lds.write_text(text)
    out = work / "a.out"
    # As tests/conftest.py links: no relaxation, every error, overlap checks off
    # (thunks grow a section beyond the object's size; the model does not count them).
    cmd = [shutil.which("ld.lld") or "ld.lld", "-T", str(lds), str(obj), "-o", str(out), "-e", "0",
           "--no-check-sections", "--error-limit=0", "--no-relax", "--threads=1"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    rejected: dict = {}
    other = []
    for line in p.stderr.splitlines():
        m = REJECT.search(line)
        if m:
            key = (m.group(1), int(m.group(2), 16), m.group(3) or m.group(6))
            rejected.setdefault(key, set()).add(m.group(4) or m.group(5))
        elif "error:" in line or "warning:" in line:
            other.append(line)
    if p.returncode and not rejected and not other:
        other.append(f"exit status {p.returncode}: {p.stderr.strip()[:300]}")
    out.unlink(missing_ok=True)
    return LinkResult(rejected, other, p.returncode)


# ---------------------------------------------------------------------------
# 4. The campaign
# ---------------------------------------------------------------------------
@dataclass
class Tally:
    objects: int = 0
    sites: int = 0
    layouts: int = 0
    checks: int = 0              # site x layout comparisons
    ce_checks: int = 0           # counterexamples linked and checked at their site
    lld_rejections: int = 0      # site x layout pairs ld.lld rejected
    verdicts: Counter = field(default_factory=Counter)
    modes: Counter = field(default_factory=Counter)
    by_type: Counter = field(default_factory=Counter)  # (type, verdict) -> sites; (type, "rejected") -> checks
    unknown_reasons: Counter = field(default_factory=Counter)  # reason, numbers and names blotted out -> sites
    kinds: Counter = field(default_factory=Counter)   # disagreement kind -> checks
    sites_by_kind: Counter = field(default_factory=Counter)  # disagreement kind -> distinct sites
    gave_up: int = 0             # rejections at sites the solver gave up on (not disagreements)
    examples: list = field(default_factory=list)     # a few disagreements per kind, to reproduce
    seconds: float = 0.0

    COUNTS = ("objects", "sites", "layouts", "checks", "ce_checks", "lld_rejections", "gave_up")

    def add(self, other: "Tally", keep: int = 3) -> None:
        for k in self.COUNTS:
            setattr(self, k, getattr(self, k) + getattr(other, k))
        for k in ("verdicts", "modes", "by_type", "unknown_reasons", "kinds", "sites_by_kind"):
            getattr(self, k).update(getattr(other, k))
        have = Counter(e["kind"] for e in self.examples)
        for e in other.examples:
            if have[e["kind"]] < keep:
                have[e["kind"]] += 1
                self.examples.append(e)

    @property
    def disagreements(self) -> int:
        return sum(self.kinds.values())

    def summary(self) -> dict:
        return {"objects": self.objects, "sites": self.sites, "layouts": self.layouts,
                "site_layout_checks": self.checks, "counterexamples_checked": self.ce_checks,
                "lld_rejections": self.lld_rejections, "verdicts": dict(sorted(self.verdicts.items())),
                "layout_modes": dict(sorted(self.modes.items())), "solver_gave_up": self.gave_up,
                "unknown_reasons": dict(self.unknown_reasons.most_common()),
                "by_type": {ty: {k: n for (t2, k), n in sorted(self.by_type.items()) if t2 == ty}
                            for ty in sorted({ty for ty, _ in self.by_type})},
                "disagreements": self.disagreements,
                "disagreements_by_kind": {k: {"checks": n, "sites": self.sites_by_kind[k]}
                                          for k, n in sorted(self.kinds.items())}}

    def line(self) -> str:
        return (f"{self.objects} objects, {self.sites} sites, {self.layouts} layouts, "
                f"{self.checks} site x layout checks, {self.ce_checks} counterexamples, "
                f"{self.lld_rejections} ld.lld rejections, {self.disagreements} disagreements")

    def explain(self) -> str:
        out = [f"{k}: {n} checks at {self.sites_by_kind[k]} sites" for k, n in sorted(self.kinds.items())]
        for e in self.examples:
            out.append(f"--- seed {e['seed']!r}: {e['kind']}: {e['detail']}")
            if e.get("script"):
                out.append(e["script"].rstrip())
        return "\n".join(out)


def _where(k) -> str:
    return f"{k[0]}+{k[1]:#x} {k[2]}"


def check_object(seed: str, layouts: int, work: Path) -> Tally:
    """Generate, analyze and link one object: its counterexamples, then ``layouts`` sampled layouts."""
    from reachsolve import LayoutModel, analyze
    from reachsolve.script import linker_script

    t = Tally(objects=1)
    work.mkdir(parents=True, exist_ok=True)
    path = assemble(generate(seed), work / "o.o")
    obj = read(path)
    rng = random.Random(seed + "/layouts")
    seen: set = set()

    def disagree(kind: str, where, detail: str, lay: Layout | None = None) -> None:
        t.kinds[kind] += 1
        if (kind, where) in seen and where is not None:
            return
        seen.add((kind, where))
        t.sites_by_kind[kind] += 1
        if sum(e["kind"] == kind for e in t.examples) < 3:
            t.examples.append({"seed": seed, "kind": kind, "detail": f"{_where(where) if where else ''} {detail}",
                               "script": script(lay) if lay else None})

    report = analyze([str(path)], LayoutModel(image_base=IMAGE_BASE, image_max=IMAGE_MAX, linker="lld"))
    for e in report.errors:
        disagree("analysis error", None, f"{e.file}: {e.message}")
    by = {(s.section, s.offset, s.reloc): s for s in report.sites}
    mine = {r.key: r for r in obj.rels}
    t.sites = len(mine)
    for k in set(mine) - set(by):
        disagree("site not analyzed", k, "")
    for k in set(by) - set(mine):
        disagree("site unknown to the harness", k, "")
    for s in report.sites:
        t.verdicts[s.verdict] += 1
        t.by_type[(s.reloc, s.verdict)] += 1
        if s.verdict == "unknown":
            t.unknown_reasons[re.sub(r"(?:-?0x[0-9a-f]+|\.\w+\.\d+|\.text|ext_\d+)(?: lies inside #)?", "#",
                                     s.reason)] += 1

    def compare(lay: Layout, res: LinkResult) -> None:
        for line in res.other:
            disagree("unexpected linker message", None, line, lay)
        for k in set(res.rejected) - set(mine):
            disagree("ld.lld rejects a site reachsolve does not check", k, "", lay)
        for k, rel in mine.items():
            s = by.get(k)
            if s is None:
                continue
            t.checks += 1
            v = value(rel, lay)
            rej = k in res.rejected
            t.lld_rejections += rej
            t.by_type[(rel.type, "rejected")] += rej
            t.by_type[(rel.type, "checks")] += 1
            if rej != lld_rejects(rel, v):
                disagree("harness: ld.lld differs from the predicted check", k,
                         f"value {v:#x}: ld.lld {'rejects' if rej else 'accepts'}", lay)
            if s.verdict == "robust":
                if rej:
                    disagree("(a) ld.lld rejects a robust site", k, f"value {v:#x}: {s.reason}", lay)
                elif not fits(rel, v):
                    disagree("(d) a robust site does not fit (silently)", k, f"value {v:#x}: {s.reason}", lay)
            elif s.verdict == "broken" and fits(rel, v):
                disagree("(d) a broken site fits", k, f"value {v:#x}: {s.reason}", lay)
            elif s.verdict == "unknown" and rej:
                if GAVE_UP.search(s.reason):
                    t.gave_up += 1
                else:
                    disagree("(b) ld.lld rejects an unknown site", k, f"value {v:#x}: {s.reason}", lay)

    # (c) every counterexample: a layout of the model, rejected by ld.lld at its site
    scripts: dict[str, list] = {}
    for s in report.sites:
        ce = s.counterexample
        k = (s.section, s.offset, s.reloc)
        if s.verdict in ("vulnerable", "broken") and ce is None:
            disagree("(c) no counterexample", k, s.reason)
        if ce is None:
            continue
        lay = Layout({p.section: p.address for p in ce.layout},
                     {p.name: p.address for p in ce.symbols if p.kind == "undefined"}, "counterexample")
        bad = problems(obj, lay)
        if bad:
            disagree("(c) counterexample outside the model", k, "; ".join(bad), lay)
            continue
        scripts.setdefault(linker_script(s, "lld"), []).append((s, lay))
    for text, group in sorted(scripts.items()):
        lay = group[0][1]
        res = lld_link(path, text, work)
        t.layouts += 1
        t.modes["counterexample"] += 1
        compare(lay, res)
        for s, _ in group:
            t.ce_checks += 1
            ce = s.counterexample
            k = (s.section, s.offset, s.reloc)
            rel = mine.get(k)
            if rel is None:
                continue
            v = value(rel, lay)
            if v != ce.value:
                disagree("(c) counterexample value differs", k, f"reachsolve {ce.value:#x}, computed {v:#x}", lay)
            if "lld" in ce.rejected_by:
                if k not in res.rejected:
                    disagree("(c) ld.lld accepts a counterexample", k, f"value {v:#x}: {s.reason}", lay)
                elif ce.problem not in res.rejected[k]:
                    disagree("(c) ld.lld rejects a counterexample for another reason", k,
                             f"{ce.problem} vs {sorted(res.rejected[k])}", lay)
            else:
                # No ld.lld check applies (b/bl thunks, silently dropped low bits): the
                # linker stays silent, and the value must really be wrong.
                if k in res.rejected:
                    disagree("(c) ld.lld rejects a counterexample said to pass silently", k, "", lay)
                if fits(rel, v):
                    disagree("(c) a silent counterexample fits", k, f"value {v:#x}", lay)
    # (a), (b), (d) in sampled layouts
    for _ in range(layouts):
        lay = sample_layout(rng, obj)
        res = lld_link(path, script(lay), work)
        t.layouts += 1
        t.modes[lay.mode] += 1
        compare(lay, res)
    return t


def _job(args) -> Tally:
    seed, layouts, root = args
    d = Path(root) / re.sub(r"\W", "_", seed)
    t0 = time.monotonic()
    try:
        t = check_object(seed, layouts, d)
    except Exception as exc:  # a crash is a finding, not a reason to stop the campaign
        t = Tally(objects=1)
        t.kinds["harness crash"] += 1
        t.sites_by_kind["harness crash"] += 1
        t.examples.append({"seed": seed, "kind": "harness crash", "detail": repr(exc), "script": None})
    t.seconds = time.monotonic() - t0
    shutil.rmtree(d, ignore_errors=True)
    return t


def campaign(seed: int, objects: int, layouts: int, jobs: int = 2, progress=None,
             deadline: float | None = None) -> Tally:
    """Objects named "SEED/0" ... "SEED/objects-1", each checked in ``layouts`` sampled layouts
    (objects finish in any order; past ``deadline`` seconds the rest are dropped)."""
    import reachsolve.analyze, reachsolve.script  # noqa: F401  (loaded once, before the workers fork)

    total = Tally()
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="soundness-") as root:
        tasks = [(f"{seed}/{i}", layouts, root) for i in range(objects)]
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(jobs, maxtasksperchild=100) as pool:
            for t in pool.imap_unordered(_job, tasks):
                total.add(t)
                if progress:
                    progress(total, time.monotonic() - t0)
                if deadline is not None and time.monotonic() - t0 > deadline:
                    break
    total.seconds = time.monotonic() - t0
    return total


# ---------------------------------------------------------------------------
# The CI test
# ---------------------------------------------------------------------------
CI_SEED = 20240611
CI_OBJECTS = 28
CI_LAYOUTS = 24


def test_soundness_against_lld():
    from conftest import tool

    for name in ("clang", "lld"):
        tool(name)
    t = campaign(CI_SEED, CI_OBJECTS, CI_LAYOUTS, jobs=2)
    s = t.summary()
    print(f"\nsoundness (seed {CI_SEED}): {t.line()}, {t.seconds:.1f} s")
    print(f"verdicts {s['verdicts']}; layouts {s['layout_modes']}; solver gave up at {t.gave_up} rejections")
    assert t.checks >= 10_000
    assert t.lld_rejections and s["verdicts"].get("robust") and s["verdicts"].get("vulnerable")
    assert not t.disagreements, t.explain()
