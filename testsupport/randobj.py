"""Random relocatable objects and random layouts of the "free" model, deterministic in a seed.

``generate(seed)`` gives the assembly source of one object (sections of every kind,
labels, range-checked sites with addends; in some seeds TLS sections, .tdata and .tbss,
with TLS local-exec sites against their symbols); ``sample_layout(rng, obj)`` gives a
valid layout of the free model for an object read by :func:`testsupport.oracle.read`,
packed, spread, pushed against the image's ends, or with one site moved to the
edge of its range. An object's TLS sections are placed as one block (.tdata, then
.tbss), as ld.lld makes the PT_TLS segment.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from .oracle import (IMAGE_BASE, IMAGE_END, IMAGE_MAX, LLD, SYM_ALIGN, TPREL_TYPES, MiB, Layout, Obj, Sec, problems,
                     value, with_tp)

# ---------------------------------------------------------------------------
# Random objects
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
    # signed MOVW (movz/movn chosen by the value's sign when linked)
    "sabs0": ("R_AARCH64_MOVW_SABS_G0", 4, ("movz x0, #:abs_g0_s:{t}", "movn x3, #:abs_g0_s:{t}")),
    "sabs1": ("R_AARCH64_MOVW_SABS_G1", 4, ("movz x0, #:abs_g1_s:{t}",)),
    "sabs2": ("R_AARCH64_MOVW_SABS_G2", 4, ("movn x2, #:abs_g2_s:{t}",)),
    "movprel0": ("R_AARCH64_MOVW_PREL_G0", 4, ("movz x0, #:prel_g0:{t}", "movn x1, #:prel_g0:{t}")),
    "movprel1": ("R_AARCH64_MOVW_PREL_G1", 4, ("movz x1, #:prel_g1:{t}",)),
    "movprel2": ("R_AARCH64_MOVW_PREL_G2", 4, ("movz x4, #:prel_g2:{t}",)),
}
# TLS local-exec sites: S+A-TP of a symbol in one of the object's TLS sections.
TLS_KINDS = {
    "tprel0": ("R_AARCH64_TLSLE_MOVW_TPREL_G0", 4, ("movz x0, #:tprel_g0:{t}", "movn x1, #:tprel_g0:{t}")),
    "tprel1": ("R_AARCH64_TLSLE_MOVW_TPREL_G1", 4, ("movz x2, #:tprel_g1:{t}",)),
    "tprel2": ("R_AARCH64_TLSLE_MOVW_TPREL_G2", 4, ("movz x3, #:tprel_g2:{t}",)),
    "tphi12": ("R_AARCH64_TLSLE_ADD_TPREL_HI12", 4, ("add x0, x0, #:tprel_hi12:{t}, lsl #12",)),
    "tpldst16": ("R_AARCH64_TLSLE_LDST16_TPREL_LO12_NC", 4, ("ldrh w0, [x1, #:tprel_lo12_nc:{t}]",)),
    "tpldst32": ("R_AARCH64_TLSLE_LDST32_TPREL_LO12_NC", 4, ("ldr w0, [x1, #:tprel_lo12_nc:{t}]",
                                                           "str w2, [x1, #:tprel_lo12_nc:{t}]")),
    "tpldst64": ("R_AARCH64_TLSLE_LDST64_TPREL_LO12_NC", 4, ("ldr x0, [x1, #:tprel_lo12_nc:{t}]",)),
    "tpldst128": ("R_AARCH64_TLSLE_LDST128_TPREL_LO12_NC", 4, ("ldr q0, [x1, #:tprel_lo12_nc:{t}]",)),
}
TLS_WEIGHTS = {"tprel0": 3, "tprel1": 1, "tprel2": 1, "tphi12": 3,
               "tpldst16": 1, "tpldst32": 1, "tpldst64": 1, "tpldst128": 1}
# The value bounds a near-limit addend aims at (the TPREL rows of oracle.LLD).
TLS_LIMITS = {k: LLD[reloc][:2] for k, (reloc, _, _) in TLS_KINDS.items()}
KINDS.update(TLS_KINDS)
TLS_SHARE = 0.3   # the share of seeds whose object has TLS sections
INSN_KINDS = tuple(k for k in KINDS if not k.startswith("prel"))
# How often each kind is drawn in executable sections (short ranges weigh more).
INSN_WEIGHTS = {"condbr": 5, "tbz": 4, "ldr": 4, "adr": 4, "adrp": 2, "b": 2, "bl": 2,
                "ldst16": 1, "ldst32": 1, "ldst64": 1, "ldst128": 1,
                "sabs0": 1, "sabs1": 1, "sabs2": 1, "movprel0": 2, "movprel1": 1, "movprel2": 1}


@dataclass
class Label:
    name: str
    offset: int
    glob: bool


@dataclass
class SecGen:
    name: str
    kind: str          # text | data | rodata | bss (labels only) | tdata | tbss (TLS)
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
    trng = random.Random(seed + "/tls")  # apart: the other seeds' objects stay as they were
    if trng.random() < TLS_SHARE:
        _add_tls(trng, secs, nl)
    return _emit(secs, undef)


def _tls_size(rng: random.Random, bss: bool) -> int:
    r = rng.random()
    if r < 0.45:
        return rng.randint(8, 4096)
    if r < 0.8:
        return rng.randint(4096, 96 << 10)
    if r < 0.93 or not bss:
        return rng.randint(96 << 10, 1 << 20)
    return rng.randint(1 << 20, 20 << 20)   # .tbss past 16 MiB: TPREL_HI12's reach


def _tls_addend(rng: random.Random, kind: str, span: int) -> int:
    """Mostly small; sometimes next to the bounds of the kind's range (``span``: the TLS
    block's rough size, what the symbol's own offset from TP adds)."""
    r = rng.random()
    if r < 0.4:
        return rng.randint(-16, 16)
    if r < 0.6:
        return rng.choice((8, 16)) * rng.randint(-64, 64)
    if r < 0.75:
        return 4 * rng.randint(-(1 << 14), 1 << 14)
    lo, hi = TLS_LIMITS[kind]
    if lo is None:
        return rng.randint(-(1 << 12), 1 << 12)
    near = rng.randint(0, max(64, 2 * span))
    return rng.choice((hi + 1 - near, lo - 16 + near, hi - 16 - rng.randint(0, 64), lo - rng.randint(0, 64)))


def _add_tls(rng: random.Random, secs: list[SecGen], nl: int) -> None:
    """TLS sections (.tdata with contents, .tbss with zeros), labels in them, and TLS
    local-exec sites against those labels at free places of the text sections."""
    n = len(secs)
    kinds = rng.choice((("tdata",), ("tbss",), ("tdata", "tbss"), ("tdata", "tbss"), ("tdata", "tdata", "tbss"),
                        ("tdata", "tbss", "tbss"), ("tbss", "tbss")))
    tls = []
    for kind in kinds:
        n += 1
        p2 = rng.choice((0, 2, 3, 3, 4, 4, 4, 5, 6, 8, 12))
        tls.append(SecGen(f".{kind}.{n}", kind, _tls_size(rng, kind == "tbss"), p2))
    for s in tls:
        for glob, count in ((True, rng.randint(1, 4)), (False, rng.randint(0, 2))):
            for _ in range(count):
                off = rng.choice((0, s.size, rng.randrange(s.size + 1), rng.randrange(s.size + 1) & ~15))
                nl += 1
                s.labels.append(Label(f"tl_{nl}" if glob else f".Ltl_{nl}", off, glob))
    span = sum(s.size for s in tls)
    for s in secs:
        if s.kind != "text" or s.size < 8:
            continue
        for _ in range(rng.choice((0, 1, 2, 2, 3, 4))):
            off = rng.randrange(0, s.size - 4 + 1) & ~3
            if any(p - 1 <= off + 4 and off - 1 <= p + KINDS[k][1] for p, k, _ in s.sites) \
                    or any(off < l.offset < off + 4 for l in s.labels):
                continue
            kind = rng.choices(list(TLS_WEIGHTS), weights=list(TLS_WEIGHTS.values()))[0]
            t = rng.choice(tls)
            name = rng.choice(t.labels).name
            if rng.random() < 0.5:
                k = _tls_addend(rng, kind, span)
                if k:
                    name = f"({name} {'+' if k > 0 else '-'} {abs(k)})"
            s.sites.append([off, kind, name])
    secs.extend(tls)


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
    out = ["// generated by testsupport/randobj.py"]
    for s in secs:
        flags = {"text": "ax", "data": "aw", "rodata": "a", "bss": "aw", "tdata": "awT", "tbss": "awT"}[s.kind]
        nobits = s.kind in ("bss", "tbss")
        out.append(f'\t.section {s.name},"{flags}",%{"nobits" if nobits else "progbits"}')
        out.append(f"\t.p2align {s.p2align}")
        events = [(l.offset, 0, l) for l in s.labels] + [(o, 1, (k, t)) for o, k, t in s.sites]
        events.sort(key=lambda e: (e[0], e[1]))
        cur = 0
        rng = random.Random(s.name)
        for off, what, item in events:
            if off > cur:
                if s.kind == "tdata" and rng.random() < 0.5:   # initial values of TLS data
                    out.append(f"\t.fill {off - cur}, 1, {rng.randrange(1, 256):#x}")
                else:
                    fill = ("zero", "skip") if s.kind == "tbss" else ("space", "skip")
                    out.append(f"\t.{rng.choice(fill)} {off - cur}")
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
            out.append(f"\t.{'zero' if s.kind == 'tbss' else 'space'} {s.size - cur}")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------
# Random layouts of the free model (valid by testsupport.oracle.problems)
# ---------------------------------------------------------------------------
def _up(x: int, a: int) -> int:
    return -(-x // a) * a


def _inside(a: int, spans) -> bool:
    return any(lo < a < hi for lo, hi in spans)


def _place_points(rng, obj: Obj, lay: Layout, spread: bool) -> None:
    spans = [(a, a + s.size) for s in obj.secs for a in [lay.secs[s.name]] if s.size]   # .tbss too
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


def _sequential(rng, secs: list[Sec], mode: str) -> Layout | None:
    order = list(secs)
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


def _ends(rng, secs: list[Sec]) -> Layout | None:
    """Sections pushed against both ends of the image: where the extremes of a distance lie."""
    order = list(secs)
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


def _spread(rng, secs: list[Sec]) -> Layout | None:
    lay = Layout({}, {}, "spread")
    spans = []
    for s in sorted(secs, key=lambda s: -s.size):
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



def _edge_tls(rng, obj: Obj, lay: Layout, r, delta: int) -> Layout:
    """Move a TPREL site's target section, and the TLS sections above it, by about
    ``delta`` (TP stays: it follows the lowest TLS section, which does not move)."""
    new = Layout(dict(lay.secs), dict(lay.syms), lay.mode + "+edge")
    tls = sorted(obj.tls, key=lambda s: (lay.secs[s.name], s.name))
    k = next(i for i, s in enumerate(tls) if s.name == r.target)
    if k == 0:
        return lay
    moved = tls[k:] if rng.random() < 0.7 else [tls[k]]
    al = max(s.align for s in moved)
    d = (delta // al) * al if rng.random() < 0.5 else _up(delta, al)
    for s in moved:
        new.secs[s.name] += d
    new.tp = None
    with_tp(obj, new)
    if new.tp != lay.tp:
        return lay
    return new


def _realizable(obj: Obj, lay: Layout) -> bool:
    """Can oracle.script pin every .tbss where ``lay`` puts it (none overlapping another)?"""
    bss = sorted((lay.secs[s.name], lay.secs[s.name] + max(s.size, 1)) for s in obj.secs if s.tbss)
    return all(b[0] >= a[1] for a, b in zip(bss, bss[1:]))


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
        if r.type in TPREL_TYPES:
            new = _edge_tls(rng, obj, lay, r, delta)
            if new is not lay and not problems(obj, new) and _realizable(obj, new):
                return new
            continue
        new = Layout(dict(lay.secs), dict(lay.syms), lay.mode + "+edge", lay.tp)
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
            new.secs[move] += d   # never a TLS section: no site lies in one, none but TPREL targets one
        if not problems(obj, new):
            return new
    return lay


TLS_BLOCK = "<tls>"


def _tls_gap(rng, bss: bool) -> int:
    r = rng.random()
    if r < 0.55:
        return 0
    if r < 0.8:
        return rng.randint(0, 256)
    if r < 0.95 or not bss:
        return rng.randint(0, 96 << 10)
    return int(math.exp(rng.uniform(0, math.log(20 * MiB))))   # TPREL_HI12's 16 MiB, and beyond


def _tls_block(rng, obj: Obj) -> tuple[Sec, dict]:
    """The object's TLS sections as one unit: .tdata in a random order, then .tbss, with
    gaps; offsets from the unit's start, which is aligned to the largest TLS alignment. The
    first section may start off that alignment (then p_vaddr is not a multiple of p_align)."""
    al = obj.tls_align
    data = [s for s in obj.tls if not s.nobits]
    bss = [s for s in obj.tls if s.nobits]
    rng.shuffle(data)
    rng.shuffle(bss)
    first = (data + bss)[0]
    off = 0
    if first.align < al and rng.random() < 0.4:
        off = first.align * rng.randrange(al // first.align)
    offs = {}
    for s in data + bss:
        off = _up(off + (_tls_gap(rng, s.nobits) if offs else 0), s.align)
        offs[s.name] = off
        off += s.size
    return Sec(-1, TLS_BLOCK, off, al), offs


def _units(rng, obj: Obj) -> tuple[list[Sec], dict]:
    if not obj.tls:
        return list(obj.secs), {}
    block, offs = _tls_block(rng, obj)
    return [s for s in obj.secs if not s.tls] + [block], offs


def _expand(lay: Layout, offs: dict) -> Layout:
    if offs:
        start = lay.secs.pop(TLS_BLOCK)
        for n, o in offs.items():
            lay.secs[n] = start + o
    return lay


def sample_layout(rng: random.Random, obj: Obj) -> Layout:
    """A valid layout of the free model for ``obj``, drawn from ``rng``; its TP is the
    one a link of this object alone gives (oracle.natural_tp)."""
    for _ in range(50):
        units, offs = _units(rng, obj)
        r = rng.random()
        if r < 0.3:
            lay = _sequential(rng, units, "packed")
        elif r < 0.65:
            lay = _sequential(rng, units, "medium")
        elif r < 0.85:
            lay = _spread(rng, units)
        else:
            lay = _ends(rng, units)
        if lay is None:
            continue
        lay = with_tp(obj, _expand(lay, offs))
        _place_points(rng, obj, lay, lay.mode == "spread" and rng.random() < 0.7)
        if rng.random() < 0.5:
            lay = _edge(rng, obj, lay)
        if not problems(obj, lay):
            return lay
    raise RuntimeError("could not sample a valid layout")

