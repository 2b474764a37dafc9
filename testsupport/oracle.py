"""An oracle written independently of reachsolve: what ld.lld and GNU ld do with a layout.

- the object as this harness reads it (pyelftools, not reachsolve's reader);
- the "free" model's layouts (fixed image base, 128 MiB) and what makes one invalid;
- each relocation's value in a layout (AAELF64 formulas) and ld.lld 14's checks on it;
- the thread pointer of TP-relative (TLSLE) values, as ld.lld 14 computes it;
- a linker script that pins a layout (TLS sections included), an ld.lld link through
  it, and the parsing of ld.lld's and GNU ld's rejections;
- what the installed linkers refuse outright, and reading a linked word back.

Nothing here imports reachsolve: agreement with it must mean something.
"""
from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from .toolchain import tool

IMAGE_BASE = 0x40000000
IMAGE_MAX = 128 << 20
IMAGE_END = IMAGE_BASE + IMAGE_MAX
SYM_ALIGN = 16  # undefined symbols: at least what any relocation needs (LDST128)
SHF_TLS = 0x400
TCB = 16        # AArch64 TLS variant 1: the thread control block, two words above TP
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
    # signed MOVW groups: checkInt(val, 17/33/49) in lld's AArch64::relocate
    "R_AARCH64_MOVW_SABS_G0": (-(1 << 16), (1 << 16) - 1, 1, True, False),
    "R_AARCH64_MOVW_SABS_G1": (-(1 << 32), (1 << 32) - 1, 1, True, False),
    "R_AARCH64_MOVW_SABS_G2": (-(1 << 48), (1 << 48) - 1, 1, True, False),
    "R_AARCH64_MOVW_PREL_G0": (-(1 << 16), (1 << 16) - 1, 1, True, False),
    "R_AARCH64_MOVW_PREL_G1": (-(1 << 32), (1 << 32) - 1, 1, True, False),
    "R_AARCH64_MOVW_PREL_G2": (-(1 << 48), (1 << 48) - 1, 1, True, False),
    # TLS local-exec, S+A-TP (see thread_pointer): lld 14 AArch64::relocate checkInt 17/33/49
    # for the checked MOVW groups, checkUInt 24 for HI12 (a negative value read as unsigned
    # fails), checkAlignment 2/4/8/16 for the lo12 loads and stores (no range). Measured with
    # ld.lld 14.0.6 at both sides of each bound (-0x10001/-0x10000/0xffff/0x10000 for G0, the
    # same at 2^32 and 2^48 for G1 and G2, -1/0/0xffffff/0x1000000 for HI12, values off by
    # 1..granule-1 for the lo12 forms).
    "R_AARCH64_TLSLE_MOVW_TPREL_G0": (-(1 << 16), (1 << 16) - 1, 1, True, False),
    "R_AARCH64_TLSLE_MOVW_TPREL_G1": (-(1 << 32), (1 << 32) - 1, 1, True, False),
    "R_AARCH64_TLSLE_MOVW_TPREL_G2": (-(1 << 48), (1 << 48) - 1, 1, True, False),
    "R_AARCH64_TLSLE_ADD_TPREL_HI12": (0, (1 << 24) - 1, 1, True, False),
    "R_AARCH64_TLSLE_LDST16_TPREL_LO12_NC": (None, None, 2, True, False),
    "R_AARCH64_TLSLE_LDST32_TPREL_LO12_NC": (None, None, 4, True, False),
    "R_AARCH64_TLSLE_LDST64_TPREL_LO12_NC": (None, None, 8, True, False),
    "R_AARCH64_TLSLE_LDST128_TPREL_LO12_NC": (None, None, 16, True, False),
}
# ELF r_type numbers (AAELF64), named here rather than by pyelftools, which lacks some.
NUMBERS = {280: "R_AARCH64_CONDBR19", 273: "R_AARCH64_LD_PREL_LO19", 279: "R_AARCH64_TSTBR14",
           282: "R_AARCH64_JUMP26", 283: "R_AARCH64_CALL26", 274: "R_AARCH64_ADR_PREL_LO21",
           275: "R_AARCH64_ADR_PREL_PG_HI21", 262: "R_AARCH64_PREL16", 261: "R_AARCH64_PREL32",
           284: "R_AARCH64_LDST16_ABS_LO12_NC", 285: "R_AARCH64_LDST32_ABS_LO12_NC",
           286: "R_AARCH64_LDST64_ABS_LO12_NC", 299: "R_AARCH64_LDST128_ABS_LO12_NC",
           270: "R_AARCH64_MOVW_SABS_G0", 271: "R_AARCH64_MOVW_SABS_G1", 272: "R_AARCH64_MOVW_SABS_G2",
           287: "R_AARCH64_MOVW_PREL_G0", 289: "R_AARCH64_MOVW_PREL_G1", 291: "R_AARCH64_MOVW_PREL_G2",
           544: "R_AARCH64_TLSLE_MOVW_TPREL_G2", 545: "R_AARCH64_TLSLE_MOVW_TPREL_G1",
           547: "R_AARCH64_TLSLE_MOVW_TPREL_G0", 549: "R_AARCH64_TLSLE_ADD_TPREL_HI12",
           555: "R_AARCH64_TLSLE_LDST16_TPREL_LO12_NC", 557: "R_AARCH64_TLSLE_LDST32_TPREL_LO12_NC",
           559: "R_AARCH64_TLSLE_LDST64_TPREL_LO12_NC", 571: "R_AARCH64_TLSLE_LDST128_TPREL_LO12_NC"}
TPREL_TYPES = {t for t in LLD if "TPREL" in t}
ABS_TYPES = {t for t in LLD if ("LDST" in t or "SABS" in t) and t not in TPREL_TYPES}
PAGE_TYPES = {"R_AARCH64_ADR_PREL_PG_HI21"}


# ---------------------------------------------------------------------------
# The object as this harness reads it (pyelftools; independent of reachsolve)
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Sec:
    index: int
    name: str
    size: int
    align: int
    tls: bool = False      # SHF_TLS: part of the PT_TLS segment
    nobits: bool = False   # SHT_NOBITS (.bss, .tbss)

    @property
    def tbss(self) -> bool:
        """A TLS SHT_NOBITS section: it takes no address space (gABI), a point in the image."""
        return self.tls and self.nobits

    @property
    def extent(self) -> int:
        """Bytes of address space it takes in the image."""
        return 0 if self.tbss else self.size


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

    @property
    def tls(self) -> list[Sec]:
        """The TLS sections: contents (.tdata) first, then .tbss, as the PT_TLS segment orders them."""
        return [s for s in self.secs if s.tls and not s.nobits] + [s for s in self.secs if s.tbss]

    @property
    def tls_align(self) -> int:
        """p_align of this object's PT_TLS segment: the largest TLS section alignment."""
        return max((s.align for s in self.secs if s.tls), default=1)


def read(path: Path) -> Obj:
    """Sections, undefined symbols and relocations of an object, read with pyelftools."""
    from elftools.elf.elffile import ELFFile
    from elftools.elf.relocation import RelocationSection
    from elftools.elf.descriptions import describe_reloc_type

    with open(path, "rb") as f:
        elf = ELFFile(f)
        names = {i: s.name for i, s in enumerate(elf.iter_sections())}
        secs = [Sec(i, s.name, s["sh_size"], max(1, s["sh_addralign"]), bool(s["sh_flags"] & SHF_TLS),
                    s["sh_type"] == "SHT_NOBITS")
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
# Layouts of the "free" model: image base IMAGE_BASE, at most IMAGE_MAX bytes
# ---------------------------------------------------------------------------
@dataclass
class Layout:
    secs: dict      # section name -> address
    syms: dict      # undefined symbol -> address
    mode: str
    tp: int | None = None  # the thread pointer of TPREL values (objects with TLS sections)


def thread_pointer(p_vaddr: int, p_align: int) -> int:
    """TP as ld.lld 14 computes it for AArch64 (TLS variant 1): getTlsTpOffset makes
    TPREL(S) = S - p_vaddr + 16 + ((p_vaddr - 16) & (p_align - 1)), that is S - TP with
    TP = alignDown(p_vaddr - 16, p_align). Checked against ld.lld 14.0.6 with p_vaddr
    aligned and not aligned to p_align (.tdata 8-aligned at 0x200008 and 0x200018, .tbss
    64-aligned: TPREL 0x48 and 0x18 for the first .tdata byte)."""
    return (p_vaddr - TCB) & -max(p_align, 1)


def natural_tp(obj: Obj, secs: dict) -> int | None:
    """TP of a link of this object alone: PT_TLS starts at its lowest TLS section and is
    aligned to the largest TLS alignment (None: no TLS section)."""
    starts = [secs[s.name] for s in obj.tls if s.name in secs]
    return thread_pointer(min(starts), obj.tls_align) if starts else None


def with_tp(obj: Obj, lay: Layout) -> Layout:
    """``lay`` with the TP a link of this object alone gives (unless it has one)."""
    if lay.tp is None and obj.tls:
        lay.tp = natural_tp(obj, lay.secs)
    return lay


def problems(obj: Obj, lay: Layout) -> list[str]:
    """Every way ``lay`` leaves the free model (empty: valid). A .tbss takes no address
    space: it is a point, as an empty section is. TLS (docs/README.md, the free model):
    .tbss lies at or above the end of every .tdata; TP is a multiple of the TLS alignment,
    at least 16 below every TLS section, and less than 16 + max(16, TLS alignment) below
    the image (the segment starts in the image, p_align is no larger)."""
    out = []
    spans = []
    for s in obj.secs:
        a = lay.secs.get(s.name)
        if a is None:
            out.append(f"{s.name} not placed")
            continue
        if a % s.align:
            out.append(f"{s.name} at {a:#x} not aligned to {s.align}")
        if a < IMAGE_BASE or a + s.extent > IMAGE_END:
            out.append(f"{s.name} [{a:#x}, {a + s.extent:#x}) outside the image")
        spans.append((a, a + s.extent, s.name))
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
    tls = [s for s in obj.tls if s.name in lay.secs]
    if tls:
        data_ends = [lay.secs[s.name] + s.size for s in tls if not s.nobits]
        for s in tls:
            if s.nobits and data_ends and lay.secs[s.name] < max(data_ends):
                out.append(f"{s.name} at {lay.secs[s.name]:#x} lies below the end of .tdata at {max(data_ends):#x}")
        tp, al = lay.tp, obj.tls_align
        if tp is None:
            out.append("no thread pointer")
        else:
            if tp % al:
                out.append(f"TP {tp:#x} not aligned to {al}")
            if tp <= IMAGE_BASE - TCB - max(TCB, al):
                out.append(f"TP {tp:#x} too far below the image")
            for s in tls:
                if lay.secs[s.name] - tp < TCB:
                    out.append(f"{s.name} at {lay.secs[s.name]:#x} less than {TCB} above TP {tp:#x}")
    return out



def value(rel: Rel, lay: Layout) -> int:
    """The relocation's value in ``lay`` (AAELF64: S+A-P, Page(S+A)-Page(P), S+A, S+A-TP)."""
    s = (lay.secs[rel.target] + rel.value) if rel.target else lay.syms[rel.sym]
    sa = s + rel.addend
    p = lay.secs[rel.section] + rel.offset
    if rel.type in TPREL_TYPES:
        if lay.tp is None:
            raise ValueError(f"a TPREL value in a layout without a thread pointer ({lay.mode})")
        return sa - lay.tp
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


# ---------------------------------------------------------------------------
# Linking: a script that pins a layout, ld.lld through it, the linkers' messages
# ---------------------------------------------------------------------------
def script(lay: Layout, obj: Obj | None = None, keep: tuple = ()) -> str:
    """A script that links ``obj`` (or any object without TLS) at ``lay``: each section an
    output section of its own at its address; for TLS, see tls_plan."""
    if obj is None or not obj.tls:
        lines = ["SECTIONS", "{"]
        for name, a in sorted(lay.secs.items(), key=lambda kv: (kv[1], kv[0])):
            lines.append(f"  {name} {a:#x} : {{ *({name}) }}")
        lines.append("}")
        lines += [f"{n} = {a:#x};" for n, a in sorted(lay.syms.items())]
        return "\n".join(lines) + "\n"
    return script_for_plan(tls_plan(obj, lay, keep), obj)


def script_for_plan(plan: "TlsPlan", obj: Obj) -> str:
    lay = plan.layout
    tls = {s.name for s in obj.tls}
    others = sorted(((a, n) for n, a in lay.secs.items() if n not in tls))
    start = plan.start
    block = []
    if plan.pad is not None:
        block += [f"  . = {plan.pad:#x};", f"  {TLS_PAD} : {{ *({TLS_PAD}) }}"]
    block += [f"  {n} {a:#x} : {{ *({n}) }}" for n, a in plan.tdata]
    for n, a in plan.tbss:
        block += [f"  . = {a:#x};", f"  {n} : {{ . = {a:#x}; *({n}) }}"]
    lines = ["SECTIONS", "{"]
    lines += [f"  {n} {a:#x} : {{ *({n}) }}" for a, n in others if a < start]
    lines += block
    lines += [f"  {n} {a:#x} : {{ *({n}) }}" for a, n in others if a >= start]
    lines.append("}")
    lines += [f"{n} = {a:#x};" for n, a in sorted(lay.syms.items())]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------
# TLS sections in a pinned link (ld.lld 14.0.6, measured)
# ---------------------------------------------------------------------------
# - ld.lld ignores the address of a TLS SHT_NOBITS output section (".tbss.1 0x200100 : ..."):
#   the first one starts at the location counter, each later one where the previous ended;
#   a ". = A;" inside it puts its input section at A. So a .tbss is pinned with ". = A"
#   before and inside its output section, in address order, none overlapping the last.
# - .tdata is RELRO: its output sections must follow one another in the script ("section:
#   .tdata.2 is not contiguous with other relro sections" otherwise); the .tbss ones need no
#   PT_LOAD and may lie anywhere. The TLS block is written where its first section's address
#   falls among the others; a section after it in the script starts a new PT_LOAD.
# - PT_TLS starts at the first TLS output section in script order, its p_align the largest
#   TLS output alignment. A TP below the one this object alone gives (other objects' TLS
#   first, as the model allows) is made by an empty TLS section of another object at TP + 16.
TLS_PAD = ".tbss.rs_pad"
TLS_PAD_SOURCE = f'\t.section {TLS_PAD},"awT",%nobits\n'


@dataclass
class TlsPlan:
    pad: int | None          # address of the empty TLS section that starts PT_TLS, if needed
    tdata: list              # (name, address) in address order
    tbss: list               # (name, address) in address order, none overlapping the previous
    layout: Layout           # the layout this script gives (the asked one, but for moved .tbss)

    @property
    def start(self) -> int:
        return min([a for _, a in self.tdata + self.tbss] + ([self.pad] if self.pad is not None else []))


def tls_plan(obj: Obj, lay: Layout, keep: tuple = ()) -> TlsPlan:
    """How the script places ``obj``'s TLS sections for ``lay``: .tdata where asked; .tbss
    where asked unless it overlaps one placed before it (sections named in ``keep`` are
    placed first), then at the first aligned address past the ones it overlaps; an empty pad
    section at TP + 16 when ``lay.tp`` lies below the TP the object's sections give."""
    secs = dict(lay.secs)
    tdata = sorted((lay.secs[s.name], s.name) for s in obj.tls if not s.nobits and s.name in lay.secs)
    bss = [s for s in obj.tls if s.nobits and s.name in lay.secs]
    bss.sort(key=lambda s: (s.name not in keep, lay.secs[s.name], s.name))
    taken: list[tuple[int, int]] = []
    # where a moved .tbss must not start either: inside a section (a point of the model never does)
    full = [(lay.secs[s.name], lay.secs[s.name] + s.size) for s in obj.secs
            if not s.tbss and s.size and s.name in lay.secs]
    for s in bss:
        a = lay.secs[s.name]
        while True:
            # an empty one must not start inside another either (its ". = A" would go back)
            hit = [hi for lo, hi in taken if lo < a + max(s.size, 1) and a < hi]
            if a != lay.secs[s.name]:
                hit += [hi for lo, hi in full if lo < a < hi]
            if not hit:
                break
            a = -(-max(hit) // s.align) * s.align
        taken.append((a, a + s.size))
        secs[s.name] = a
    natural = natural_tp(obj, secs)
    pad, tp = None, natural
    if lay.tp is not None and natural is not None and lay.tp < natural and lay.tp % obj.tls_align == 0:
        pad, tp = lay.tp + TCB, lay.tp
    size = {s.name: s.size for s in bss}
    order = sorted(size, key=lambda n: (secs[n], secs[n] + size[n], n))
    return TlsPlan(pad, [(n, a) for a, n in tdata], [(n, secs[n]) for n in order],
                   Layout(secs, dict(lay.syms), lay.mode, tp))


REJECT = re.compile(r"\(([^()+]+)\+0x([0-9a-f]+)\): (?:relocation (R_AARCH64_\w+) (out of range)"
                    r"|(improper alignment) for relocation (R_AARCH64_\w+))")


@dataclass
class LinkResult:
    rejected: dict         # (section, offset, type) -> {"out of range", "improper alignment"}
    other: list            # error lines this harness does not understand
    returncode: int
    map: str = ""          # the -Map file, when asked for


def parse_stderr(stderr: str) -> tuple[dict, list[str]]:
    """ld.lld's messages: the sites it rejects ((section, offset, type) -> reasons) and any
    other error or warning line."""
    rejected: dict = {}
    other = []
    for line in stderr.splitlines():
        m = REJECT.search(line)
        if m:
            key = (m.group(1), int(m.group(2), 16), m.group(3) or m.group(6))
            rejected.setdefault(key, set()).add(m.group(4) or m.group(5))
        elif "error:" in line or "warning:" in line:
            other.append(line)
    return rejected, other


# ld.lld's warning for an output section whose start is not aligned: a .tbss output section
# starts where the previous one ended (its input section is pinned inside it).
UNALIGNED_TBSS = re.compile(r"warning: address \(0x[0-9a-f]+\) of section (\S+) is not a multiple of alignment")


def lld_link(obj: Path, text: str, work: Path, extra: tuple = (), want_map: bool = False,
             tbss: frozenset = frozenset()) -> LinkResult:
    """ld.lld -T script obj [extra...]; with ``want_map`` the -Map text comes back (ld.lld
    writes it before it relocates, so also when it reports sites). Warnings that a section
    named in ``tbss`` starts unaligned are dropped (see UNALIGNED_TBSS)."""
    lds = work / "l.lds"
    lds.write_text(text)
    out = work / "a.out"
    mp = work / "a.map"
    # As testsupport.toolchain.link links: no relaxation, every error, overlap checks off
    # (thunks grow a section beyond the object's size; the model does not count them).
    cmd = [tool("lld"), "-T", str(lds), str(obj), *map(str, extra), "-o", str(out), "-e", "0",
           "--no-check-sections", "--error-limit=0", "--no-relax", "--threads=1"]
    if want_map:
        cmd += ["-Map", str(mp)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    stderr = p.stderr
    if tbss:
        stderr = "\n".join(line for line in stderr.splitlines()
                            if not ((m := UNALIGNED_TBSS.search(line)) and m.group(1) in tbss))
    rejected, other = parse_stderr(stderr)
    if p.returncode and not rejected and not other:
        other.append(f"exit status {p.returncode}: {p.stderr.strip()[:300]}")
    out.unlink(missing_ok=True)
    text_map = ""
    if want_map and mp.exists():
        text_map = mp.read_text()
        mp.unlink()
    return LinkResult(rejected, other, p.returncode, text_map)


# ld.lld -Map: "VMA LMA Size Align Out In Symbol", an output section's name in the Out
# column, its input sections ("file:(name)") in the In column, symbols further right.
MAP_ROW = re.compile(r"^\s*([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)\s+(\d+)\s+(\S.*)$")


def read_map_sections(text: str) -> list[tuple[str, int, int, int, list]]:
    """Output sections of an ld.lld map in order: (name, address, size, align, inputs), each
    input (file, section name, address, size)."""
    lines = text.splitlines()
    if not lines:
        return []
    col_out, col_in = lines[0].find(" Out") + 1, lines[0].find(" In ") + 1
    outs: list = []
    for line in lines[1:]:
        m = MAP_ROW.match(line)
        if not m:
            continue
        at = m.start(4)
        name = m.group(4).strip()
        a, size, align = int(m.group(1), 16), int(m.group(2), 16), int(m.group(3))
        if at <= col_out:
            outs.append((name, a, size, align, []))
        elif at <= col_in and outs:
            f = re.match(r"(.*):\((.*)\)$", name)
            if f:
                outs[-1][4].append((f.group(1), f.group(2), a, size))
    return outs


def map_layout(text: str, obj: Obj, syms: dict, mode: str, base: dict | None = None) -> Layout | None:
    """The layout an ld.lld map shows for ``obj``: its input sections' addresses (``base``
    for those the map does not list), TP from the PT_TLS segment: the first output section
    holding a TLS input section (named as one of ``obj``'s or TLS_PAD, from any file) and the
    largest alignment among those."""
    outs = read_map_sections(text)
    if not outs:
        return None
    names = {s.name for s in obj.secs}
    tls = {s.name for s in obj.tls} | {TLS_PAD}
    secs: dict = dict(base or {})
    seen: set = set()
    tls_outs = []
    for name, a, size, align, ins in outs:
        for f, n, ia, _ in ins:
            if Path(f).name == obj.path.name and n in names and n not in seen:
                seen.add(n)
                secs[n] = ia
        if any(n in tls for _, n, _, _ in ins):
            tls_outs.append((a, align))
    tp = thread_pointer(tls_outs[0][0], max(al for _, al in tls_outs)) if tls_outs else None
    return Layout(secs, dict(syms), mode, tp if obj.tls else None)


def _pad_object(work: Path) -> Path:
    from .toolchain import assemble_text
    p = work / "tlspad.o"
    if not p.exists():
        assemble_text(TLS_PAD_SOURCE, p)
    return p


def link_layout(obj: Obj, lay: Layout, work: Path, keep: tuple = ()) -> tuple[LinkResult, Layout]:
    """Link ``obj`` at ``lay`` through script(); the layout ld.lld made (for an object with TLS
    sections read back from its map: a .tbss tls_plan had to move, or a TP it could not make,
    shows there)."""
    if not obj.tls:
        return lld_link(obj.path, script(lay), work), lay
    plan = tls_plan(obj, lay, keep)
    text = script_for_plan(plan, obj)
    extra = (_pad_object(work),) if plan.pad is not None else ()
    res = lld_link(obj.path, text, work, extra, want_map=True, tbss=_tbss_names(obj))
    real = map_layout(res.map, obj, lay.syms, lay.mode, plan.layout.secs)
    if real is None:
        return res, plan.layout
    moved = [f"{s.name} {plan.layout.secs[s.name]:#x} -> {real.secs.get(s.name, -1):#x}" for s in obj.secs
             if real.secs.get(s.name) != plan.layout.secs[s.name]]
    if moved or real.tp != plan.layout.tp:
        # a check on this harness: the script must make the layout it was written for
        res.other.append(f"harness: ld.lld did not make the layout of its script: TP {plan.layout.tp:#x} -> "
                         f"{real.tp if real.tp is None else hex(real.tp)}; " + ", ".join(moved))
    return res, real


def link_text(obj: Obj, text: str, work: Path, lay: Layout) -> tuple[LinkResult, Layout]:
    """Link ``obj`` through a given script (a counterexample's); the layout ld.lld made, as
    link_layout reads it (``lay``: the symbols, and the layout when there is no TLS)."""
    if not obj.tls:
        return lld_link(obj.path, text, work), lay
    res = lld_link(obj.path, text, work, want_map=True, tbss=_tbss_names(obj))
    real = map_layout(res.map, obj, lay.syms, lay.mode, lay.secs)
    return res, real if real is not None else lay


def _tbss_names(obj: Obj) -> frozenset:
    return frozenset({s.name for s in obj.secs if s.tbss} | {TLS_PAD})


def rejection(linker: str, section: str, offset: int, reloc: str) -> re.Pattern:
    """How ``linker`` ("lld" or "bfd") reports the site ``section+offset`` of type ``reloc``."""
    where = re.escape(f"({section}+{offset:#x})")
    name = re.escape(reloc)
    if linker == "lld":
        return re.compile(where + rf": (relocation {name} out of range|improper alignment for relocation {name})")
    return re.compile(where + rf": relocation truncated to fit: {name}\b")


#: Types the installed linkers do not implement at all: they refuse the whole object.
UNSUPPORTED = {("bfd", "R_AARCH64_PLT32"): "unrecognized relocation type 0x13a",      # GNU ld 2.40
               ("lld", "R_AARCH64_GOT_LD_PREL19"): "unknown relocation (309)"}       # ld.lld 14


def unsupported(linker: str, relocs) -> str | None:
    """The refusal ``linker`` prints for an object holding relocation types ``relocs``, or None."""
    for r in relocs:
        msg = UNSUPPORTED.get((linker, r))
        if msg:
            return msg
    return None


def linked_word(out: Path, section: str, address: int, size: int, big_endian: bool) -> int | None:
    """The ``size``-byte word at ``address`` of ``section`` in a linked file, or None."""
    from elftools.elf.elffile import ELFFile

    if not Path(out).exists():
        return None
    with open(out, "rb") as f:
        for sec in ELFFile(f).iter_sections():
            if (sec.name == section and sec["sh_addr"] <= address < sec["sh_addr"] + sec["sh_size"]
                    and sec["sh_type"] != "SHT_NOBITS"):
                raw = sec.data()[address - sec["sh_addr"]:address - sec["sh_addr"] + size]
                return int.from_bytes(raw, "big" if big_endian else "little")
    return None
