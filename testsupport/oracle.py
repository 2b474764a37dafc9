"""An oracle written independently of reachsolve: what ld.lld and GNU ld do with a layout.

- the object as this harness reads it (pyelftools, not reachsolve's reader);
- the "free" model's layouts (fixed image base, 128 MiB) and what makes one invalid;
- each relocation's value in a layout (AAELF64 formulas) and ld.lld 14's checks on it;
- a linker script that pins a layout, an ld.lld link through it, and the parsing of
  ld.lld's and GNU ld's rejections;
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
}
# ELF r_type numbers (AAELF64), named here rather than by pyelftools, which lacks some.
NUMBERS = {280: "R_AARCH64_CONDBR19", 273: "R_AARCH64_LD_PREL_LO19", 279: "R_AARCH64_TSTBR14",
           282: "R_AARCH64_JUMP26", 283: "R_AARCH64_CALL26", 274: "R_AARCH64_ADR_PREL_LO21",
           275: "R_AARCH64_ADR_PREL_PG_HI21", 262: "R_AARCH64_PREL16", 261: "R_AARCH64_PREL32",
           284: "R_AARCH64_LDST16_ABS_LO12_NC", 285: "R_AARCH64_LDST32_ABS_LO12_NC",
           286: "R_AARCH64_LDST64_ABS_LO12_NC", 299: "R_AARCH64_LDST128_ABS_LO12_NC",
           270: "R_AARCH64_MOVW_SABS_G0", 271: "R_AARCH64_MOVW_SABS_G1", 272: "R_AARCH64_MOVW_SABS_G2",
           287: "R_AARCH64_MOVW_PREL_G0", 289: "R_AARCH64_MOVW_PREL_G1", 291: "R_AARCH64_MOVW_PREL_G2"}
ABS_TYPES = {t for t in LLD if "LDST" in t or "SABS" in t}
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
    """Sections, undefined symbols and relocations of an object, read with pyelftools."""
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
# Layouts of the "free" model: image base IMAGE_BASE, at most IMAGE_MAX bytes
# ---------------------------------------------------------------------------
@dataclass
class Layout:
    secs: dict      # section name -> address
    syms: dict      # undefined symbol -> address
    mode: str


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


# ---------------------------------------------------------------------------
# Linking: a script that pins a layout, ld.lld through it, the linkers' messages
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


def lld_link(obj: Path, text: str, work: Path) -> LinkResult:
    lds = work / "l.lds"
    lds.write_text(text)
    out = work / "a.out"
    # As testsupport.toolchain.link links: no relaxation, every error, overlap checks off
    # (thunks grow a section beyond the object's size; the model does not count them).
    cmd = [tool("lld"), "-T", str(lds), str(obj), "-o", str(out), "-e", "0",
           "--no-check-sections", "--error-limit=0", "--no-relax", "--threads=1"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    rejected, other = parse_stderr(p.stderr)
    if p.returncode and not rejected and not other:
        other.append(f"exit status {p.returncode}: {p.stderr.strip()[:300]}")
    out.unlink(missing_ok=True)
    return LinkResult(rejected, other, p.returncode)


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
