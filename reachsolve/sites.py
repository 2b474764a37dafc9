"""Relocation sites: the range-limited places of an object, with what they refer to.

Relocation tables arrive as numpy columns; only entries whose type is in the
catalogue become :class:`Site` objects, and only those applying to allocated
sections (relocations of debug and other non-allocated sections never reach
a linker's range check).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .constraints import Lin, PageDiff, Var
from .disasm import Insn, decode
from .elf import (SHT_NOBITS, SYM_ABS, SYM_COMMON, SYM_UNDEF, STB_WEAK, ObjectFile, reloc_type_name)
from .encode import extract
from .errors import InputError
from .relocs import BY_NUMBER, Formula, RelocSpec, value_alignment

# Lookup table: is a type number in the catalogue? (the last slot stands for "larger")
_IS_CHECKED = np.zeros(max(BY_NUMBER) + 2, dtype=bool)
_IS_CHECKED[list(BY_NUMBER)] = True


@dataclass(frozen=True)
class Site:
    section: int
    offset: int
    spec: RelocSpec
    symbol: int            # symbol table index
    symbol_name: str
    addend: int
    anchor: Var | None     # ("sec", i) / ("sym", i) for undefined / None for absolute
    sym_value: int         # st_value (section-relative, or the absolute value)
    weak: bool
    word: int              # the container's contents (instruction or data)
    insn: Insn | None      # None for data relocations
    problem: str | None    # why the site cannot be judged (unknown)

    @property
    def target_section(self) -> int | None:
        return self.anchor[1] if self.anchor and self.anchor[0] == "sec" else None

    def got_var(self) -> Var:
        return ("got", self.symbol, self.addend)

    @cached_property
    def _value(self) -> Lin | PageDiff:
        return self._build_value()

    def value_expr(self) -> Lin | PageDiff:
        return self._value

    def _build_value(self) -> Lin | PageDiff:
        """The relocation value as IR over the layout (AAELF64 5.7 formulas)."""
        place = Lin.var(("sec", self.section)) + self.offset
        f = self.spec.formula
        if f.uses_got:
            s = Lin.var(self.got_var())
        else:
            s = (Lin.var(self.anchor) if self.anchor else Lin.of(0)) + (self.sym_value + self.addend)
        if f.paged:
            return PageDiff(s, place)
        if f is Formula.ABS:
            return s
        return s - place


@dataclass(frozen=True)
class Extraction:
    sites: tuple[Site, ...]
    unchecked: Counter         # type name -> count of relocations with no range check
    skipped_nonalloc: int      # relocations against non-allocated sections


def _read_word(obj: ObjectFile, data: bytes, off: int, size: int, is_insn: bool) -> int:
    order = "little" if (is_insn or not obj.big_endian) else "big"
    return int.from_bytes(data[off:off + size], order)


def extract_sites(obj: ObjectFile) -> Extraction:
    sites: list[Site] = []
    unchecked: Counter = Counter()
    skipped = 0
    secs = obj.sections
    symfacts = _Symbols(obj)
    for tab in obj.relocation_tables:
        target = secs[tab.target]
        if not target.alloc:
            skipped += len(tab.offsets)
            continue
        types = tab.types
        chk = _IS_CHECKED[np.minimum(types, len(_IS_CHECKED) - 1)]
        other = types[~chk]
        if len(other):
            for t, n in zip(*np.unique(other[(other != 0) & (other != 256)], return_counts=True)):
                unchecked[reloc_type_name(int(t))] += int(n)
        idx = np.nonzero(chk)[0]
        if not len(idx):
            continue
        if target.type == SHT_NOBITS:
            raise InputError(obj.name, f"relocations apply to {target.name}, which has no contents (SHT_NOBITS)")
        data = obj.section_data(target.index)
        offs = tab.offsets[idx].tolist()
        tys = types[idx].tolist()
        syms = tab.symbols[idx].tolist()
        adds = tab.addends[idx].tolist() if tab.addends is not None else None
        for k, off, ty, si in zip(range(len(idx)), offs, tys, syms):
            spec = BY_NUMBER[ty]
            size = spec.field.container
            if off + size > target.size:
                raise InputError(obj.name, f"relocation {reloc_type_name(ty)} at {target.name}+{off:#x} "
                                           f"lies past the end of the section ({target.size:#x} bytes)")
            is_insn = not spec.field.is_data
            word = _read_word(obj, data, off, size, is_insn)
            addend = adds[k] if adds is not None else extract(spec.field, spec.scale, word)
            sites.append(_site(obj, target.index, off, spec, si, addend, word, is_insn, symfacts))
    return Extraction(tuple(sites), unchecked, skipped)


class _Symbols:
    """Per-symbol facts as plain lists, read once (numpy scalar access per site is slow)."""

    def __init__(self, obj: ObjectFile):
        self.obj = obj
        self.where = obj.symbol_section.tolist()
        self.value = obj.symbols["value"].tolist()
        self.info = obj.symbols["info"].tolist()
        self._labels: dict[int, str] = {}

    def label(self, si: int) -> str:
        name = self._labels.get(si)
        if name is None:
            name = self._labels[si] = self.obj.symbol_label(si)
        return name


def _site(obj: ObjectFile, sec: int, off: int, spec: RelocSpec, si: int, addend: int,
          word: int, is_insn: bool, syms: _Symbols | None = None) -> Site:
    problem = None
    syms = syms or _Symbols(obj)
    if len(obj.symbols) == 0 or si == 0:
        anchor, value, name, weak = None, 0, "", False  # symbol 0: S is 0
    else:
        where = syms.where[si]
        value = syms.value[si]
        name = syms.label(si)
        weak = (syms.info[si] >> 4) == STB_WEAK
        if where == SYM_ABS:
            # Linkers compute in 64-bit two's complement: an absolute 0xffff...ffff is -1.
            anchor, value = None, value - (1 << 64) if value >> 63 else value
        elif where in (SYM_UNDEF, SYM_COMMON):
            anchor, value = ("sym", si), 0
        else:
            anchor = ("sec", where)
            tsec = obj.sections[where]
            if not tsec.alloc:
                problem = f"target {name} lies in {tsec.name}, which is not allocated"
    insn = None
    if is_insn:
        insn = decode(word, off)
        if insn.klass not in spec.insns:
            problem = problem or f"{spec.name} on '{insn.text}', which is not one of: {', '.join(sorted(spec.insns))}"
        elif insn.klass == "ldst" and insn.access != spec.granule:
            problem = problem or f"{spec.name} needs a {spec.granule}-byte access, but '{insn.text}' accesses {insn.access}"
    return Site(sec, off, spec, si, name, addend, anchor, value, weak, word, insn, problem)


def symbol_alignment(sites: tuple[Site, ...], obj: ObjectFile) -> dict[int, int]:
    """The alignment assumed for each undefined symbol: what its relocations need."""
    need: dict[int, int] = {}
    for s in sites:
        if s.anchor and s.anchor[0] == "sym":
            a = value_alignment(s.spec)
            if int(obj.symbol_section[s.symbol]) == SYM_COMMON:
                a = max(a, int(obj.symbols["value"][s.symbol]) or 1)  # COMMON: st_value is the alignment
            need[s.symbol] = max(need.get(s.symbol, 1), a)
    return need
