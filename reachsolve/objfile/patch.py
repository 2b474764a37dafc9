"""A copy of an object with some instructions replaced by longer sequences.

What an assembler would emit had the source said the longer sequence: the
section grows at the site, every later byte of it moves (relocation offsets,
symbol values, function sizes, and S+A of every relocation that points past the
site), the replaced relocation is dropped and the sequence's own are added
against the same symbol and addend (a section symbol's addend, the assembler's form
of a local label, moves with the bytes it points at). The copy keeps the original bytes and appends
the changed tables after them, with a new section header table (ELF permits any
order of contents). PC-relative instructions the assembler resolved itself (no
relocation, in code: $x mapping-symbol regions) whose target lies across a site
are re-encoded; one the growth puts out of reach is listed (``Growth.unreachable``:
the assembler would reject the rewritten source there).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..target.catalogue import BY_NAME, Field
from ..target.encoding import extract, insert
from .elf import SHF_EXECINSTR, SHT_NOBITS, SHT_REL, SHT_RELA, STT_SECTION, ObjectFile


@dataclass(frozen=True)
class Edit:
    """Replace the instruction at ``section``+``offset`` (whose relocation of type ``rtype``
    is dropped) by ``words`` (little-endian instructions) carrying ``relocs``: (offset from
    the site, type) against the dropped relocation's symbol and addend."""

    section: int
    offset: int
    rtype: int
    words: tuple[int, ...]
    relocs: tuple[tuple[int, int], ...]

    @property
    def growth(self) -> int:
        return 4 * len(self.words) - 4


class Growth:
    """Where each offset of the edited sections moves: by the growth of every edit before
    it (an edit at ``o`` moves offsets above ``o``; ``o`` itself starts the new sequence)."""

    def __init__(self, edits: list[Edit]):
        self.by_section: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for sec in sorted({e.section for e in edits}):
            es = sorted((e for e in edits if e.section == sec), key=lambda e: e.offset)
            offs = np.array([e.offset for e in es], dtype=np.int64)
            cum = np.concatenate([[0], np.cumsum([e.growth for e in es])]).astype(np.int64)
            self.by_section[sec] = (offs, cum)

    def shift(self, section: int, x):
        """Bytes by which offset ``x`` (an int or an int64 array) of ``section`` moves."""
        t = self.by_section.get(section)
        if t is None:
            return x * 0
        offs, cum = t
        return cum[np.searchsorted(offs, x, side="left")]

    def moved(self, section: int, x: int) -> int:
        return int(x + self.shift(section, x))

    unreachable: tuple[tuple[int, int, str], ...] = ()  # (section, original offset, class)

    def total(self, section: int) -> int:
        t = self.by_section.get(section)
        return int(t[1][-1]) if t is not None else 0


class PatchError(Exception):
    """The object cannot be rewritten (the words say why)."""


def patched(obj: ObjectFile, edits: list[Edit]) -> tuple[bytes, Growth]:
    """The object's bytes with ``edits`` applied, and where offsets moved."""
    if len({(e.section, e.offset) for e in edits}) != len(edits):
        raise PatchError("two rewrites of one site")
    grow = Growth(edits)
    shdr, shoff, dt = obj.header_tables()
    sh = shdr.copy()
    out = bytearray(obj.data)

    def append(blob: bytes) -> int:
        out.extend(b"\0" * (-len(out) % 16))
        at = len(out)
        out.extend(blob)
        return at

    relocated = _relocated_offsets(obj, dt, set(grow.by_section))
    unreachable = []
    for sec in grow.by_section:
        s = obj.sections[sec]
        if s.type == SHT_NOBITS:
            raise PatchError(f"{s.name} has no contents")
        data, parts, at = _resolve_local(obj, sec, grow, relocated.get(sec, set()), unreachable), [], 0
        for e in sorted((e for e in edits if e.section == sec), key=lambda e: e.offset):
            parts += [data[at:e.offset], b"".join(w.to_bytes(4, "little") for w in e.words)]
            at = e.offset + 4
        parts.append(data[at:])
        blob = b"".join(parts)
        sh["offset"][sec], sh["size"][sec] = append(blob), len(blob)
    edited = np.array(sorted(grow.by_section), dtype=np.int64)
    where = obj.symbol_section
    old_value = obj.symbols["value"].astype(np.int64)
    new_value = old_value.copy()
    if len(obj.symbols):
        syms = obj.symbols.copy()
        size = syms["size"].astype(np.int64)
        for sec in grow.by_section:
            m = where == sec
            v = old_value[m]
            new_value[m] = v + grow.shift(sec, v)
            end = v + size[m]
            sized = size[m] > 0
            size_new = np.where(sized, end + grow.shift(sec, end) - new_value[m], 0)
            syms["value"][m] = new_value[m].astype(np.uint64)
            syms["size"][m] = size_new.astype(np.uint64)
        sh["offset"][obj.symtab_index] = append(syms.astype(obj.symbols.dtype, copy=False).tobytes())
    # Only a section symbol's addend names a place (the assembler's form of a local label);
    # a named symbol's addend is the constant the source wrote, and stays.
    sect_sym = (obj.symbols["info"] & 0xF) == STT_SECTION if len(where) else np.zeros(0, dtype=bool)
    in_edited = np.isin(where, edited) & sect_sym if len(where) else np.zeros(0, dtype=bool)
    for s in obj.sections:
        if s.type not in (SHT_RELA, SHT_REL) or not s.size:
            continue
        kind = dt["rela" if s.type == SHT_RELA else "rel"]
        raw = np.frombuffer(obj.data, dtype=kind, count=s.size // kind.itemsize, offset=s.offset)
        sym = (raw["info"] >> np.uint64(32)).astype(np.int64)
        against = in_edited[sym] if len(in_edited) else np.zeros(len(raw), dtype=bool)
        if not (s.info in grow.by_section or against.any()):
            continue
        if s.type == SHT_REL:
            raise PatchError(f"{s.name} is SHT_REL: implicit addends are not rewritten")
        rel = raw.copy()
        offset = rel["offset"].astype(np.int64)
        addend = rel["addend"].astype(np.int64)
        for sec in grow.by_section:  # a local label past a site moves with the bytes it names
            m = against & (where[sym] == sec)
            t = old_value[sym[m]] + addend[m]
            addend[m] = t + grow.shift(sec, t) - new_value[sym[m]]
        keep = np.ones(len(rel), dtype=bool)
        extra = []
        if s.info in grow.by_section:
            rtype = (rel["info"] & np.uint64(0xFFFFFFFF)).astype(np.int64)
            for e in (e for e in edits if e.section == s.info):
                hit = np.nonzero(keep & (offset == e.offset) & (rtype == e.rtype))[0]
                if len(hit) != 1:
                    raise PatchError(f"{obj.sections[e.section].name}+{e.offset:#x}: {len(hit)} relocations "
                                     f"of type {e.rtype} where one was expected")
                k = int(hit[0])
                keep[k] = False
                o = grow.moved(e.section, e.offset)
                extra += [(o + d, (int(sym[k]) << 32) | t, int(addend[k])) for d, t in e.relocs]
            offset = offset + grow.shift(s.info, offset)
        rel["offset"] = offset.astype(np.uint64)
        rel["addend"] = addend
        rel = rel[keep]
        if extra:
            more = np.zeros(len(extra), dtype=rel.dtype)
            more["offset"] = [x[0] for x in extra]
            more["info"] = [x[1] for x in extra]
            more["addend"] = [x[2] for x in extra]
            rel = np.concatenate([rel, more])
            rel = rel[np.argsort(rel["offset"], kind="stable")]
        rel = rel.astype(kind, copy=False)  # concatenate may give the native byte order
        sh["offset"][s.index], sh["size"][s.index] = append(rel.tobytes()), rel.nbytes
    grow.unreachable = tuple(unreachable)
    at = append(sh.astype(shdr.dtype, copy=False).tobytes())
    out[0x28:0x30] = at.to_bytes(8, "big" if obj.big_endian else "little")
    return bytes(out), grow


def patch_object(obj: ObjectFile, edits: list[Edit]) -> tuple[ObjectFile, Growth]:
    """The rewritten object, read back (and so validated) like any input."""
    data, grow = patched(obj, edits)
    try:
        return ObjectFile(obj.name, data), grow
    except InputError as exc:  # a bug here, never the input's fault
        raise PatchError(f"the rewritten object does not read back: {exc.message}") from None


# PC-relative forms an assembler resolves within a section: (mask, match, field, the type
# whose range is the field's) -- Arm ARM C4.1 encodings.
_LOCAL = (("b", 0x7C000000, 0x14000000, Field.IMM26, "R_AARCH64_JUMP26"),
          ("b.cond", 0xFF000010, 0x54000000, Field.IMM19, "R_AARCH64_CONDBR19"),
          ("cbz", 0x7E000000, 0x34000000, Field.IMM19, "R_AARCH64_CONDBR19"),
          ("tbz", 0x7E000000, 0x36000000, Field.IMM14, "R_AARCH64_TSTBR14"),
          ("ldr-literal", 0x3B000000, 0x18000000, Field.IMM19, "R_AARCH64_LD_PREL_LO19"),
          ("adr", 0x9F000000, 0x10000000, Field.ADR, "R_AARCH64_ADR_PREL_LO21"))


def _relocated_offsets(obj: ObjectFile, dt, sections: set[int]) -> dict[int, set[int]]:
    """Offsets of ``sections`` that carry a relocation (the linker writes them, not the assembler)."""
    out: dict[int, set[int]] = {}
    for s in obj.sections:
        if s.type in (SHT_RELA, SHT_REL) and s.info in sections and s.size:
            kind = dt["rela" if s.type == SHT_RELA else "rel"]
            raw = np.frombuffer(obj.data, dtype=kind, count=s.size // kind.itemsize, offset=s.offset)
            out.setdefault(s.info, set()).update(raw["offset"].astype(np.int64).tolist())
    return out


def _code_mask(obj: ObjectFile, sec: int, n: int) -> np.ndarray:
    """Which of the section's ``n`` words are code: $x/$d mapping symbols (AAELF64 5.3), else
    the whole of an executable section."""
    code = np.full(n, bool(obj.sections[sec].flags & SHF_EXECINSTR))
    idx = np.nonzero(obj.symbol_section == sec)[0] if len(obj.symbols) else np.zeros(0, dtype=np.int64)
    marks = sorted((int(obj.symbols["value"][i]), name[1]) for i, name in zip(idx.tolist(), obj.symbol_names(idx))
                   if name[:2] in ("$x", "$d"))
    for k, (start, kind) in enumerate(marks):
        end = marks[k + 1][0] if k + 1 < len(marks) else 4 * n
        code[start // 4:(end + 3) // 4] = kind == "x"
    return code


def _sext(v: np.ndarray, bits: int) -> np.ndarray:
    v = v & ((1 << bits) - 1)
    return np.where(v >> (bits - 1), v - (1 << bits), v)


def _displacements(field: Field, w: np.ndarray) -> np.ndarray:
    """encoding.extract over a column of words (the same fields, Arm ARM C4.1)."""
    if field is Field.IMM26:
        return _sext(w, 26) << 2
    if field is Field.IMM19:
        return _sext(w >> 5, 19) << 2
    if field is Field.IMM14:
        return _sext(w >> 5, 14) << 2
    return _sext(((w >> 5) & 0x7FFFF) << 2 | (w >> 29) & 3, 21)  # ADR


def _resolve_local(obj: ObjectFile, sec: int, grow: Growth, relocated: set[int], unreachable: list) -> bytes:
    """The section's bytes with every assembler-resolved PC-relative field across a site
    re-encoded for the grown layout; those that no longer fit are added to ``unreachable``."""
    data = obj.section_data(sec)
    n = len(data) // 4
    if not n:
        return data
    words = np.frombuffer(data, dtype="<u4", count=n).astype(np.int64)
    code = _code_mask(obj, sec, n)
    if relocated:
        rel = np.array(sorted(relocated), dtype=np.int64)
        rel = rel[(rel % 4 == 0) & (rel < 4 * n)] // 4
        code[rel] = False
    out = bytearray(data)
    for klass, mask, match, field, rname in _LOCAL:
        k = np.nonzero(code & ((words & mask) == match))[0]
        if not len(k):
            continue
        x = k * 4
        disp = _displacements(field, words[k])
        moved = grow.shift(sec, x + disp) - grow.shift(sec, x)
        lo, hi = BY_NAME[rname].limits["lld"].interval()
        for i in np.nonzero(moved)[0].tolist():
            at, d = int(x[i]), int(disp[i] + moved[i])
            if extract(field, 0, int(words[k[i]])) != int(disp[i]):  # the column and the scalar reader differ
                raise PatchError(f"{obj.sections[sec].name}+{at:#x}: displacement misread")
            if not lo <= d <= hi:
                unreachable.append((sec, at, klass))
            else:
                out[at:at + 4] = insert(field, 0, int(words[k[i]]), d).to_bytes(4, "little")
    return bytes(out)
