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

from ..errors import InputError
from ..ir import Lin, PageDiff, Var
from ..target.catalogue import BY_NUMBER, TP_VAR, RelocSpec, by_type, value_alignment
from ..target.decode import Insn, decode
from ..target.encoding import extract
from .elf import SHT_NOBITS, STB_WEAK, SYM_ABS, SYM_COMMON, SYM_UNDEF, ObjectFile, reloc_type_name

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
    word: int              # the container's contents (instruction or data)
    insn: Insn | None      # None for data relocations
    problem: str | None    # why the site cannot be judged (unknown)

    @property
    def target_section(self) -> int | None:
        return self.anchor[1] if self.anchor and self.anchor[0] == "sec" else None

    def got_var(self) -> Var:
        return got_var(self.spec, self.symbol, self.addend)

    @cached_property
    def value_expr(self) -> Lin | PageDiff:
        """The relocation value as IR over the layout (the catalogue's formula)."""
        place = Lin.var(("sec", self.section)) + self.offset
        f = self.spec.formula
        if f.uses_got:
            s = Lin.var(self.got_var())
        else:
            s = (Lin.var(self.anchor) if self.anchor else Lin.of(0)) + (self.sym_value + self.addend)
        return f.value(s, place, Lin.var(TP_VAR))


def got_var(spec: RelocSpec, symbol: int, addend: int) -> Var:
    """The GOT entry a GOT-relative site names: one per (symbol, addend) and kind of entry
    (an address, a TP offset, a TLS descriptor: each is a slot of its own in a link)."""
    kind = spec.formula.got_kind
    return ("got", symbol, addend, kind) if kind else ("got", symbol, addend)


# Objects with at most this many instruction sites check them through a dict, not np.unique.
_FEW_ROWS = 256

# anchor kinds in SiteColumns.kind (0: no symbol)
SEC_ANCHOR, SYM_ANCHOR, ABS_ANCHOR = 1, 2, 3


class SiteColumns:
    """Every range-checked relocation of an object as numpy columns, one row per site.

    Kernel objects hold hundreds of thousands of sites; most are decided by
    interval arithmetic over these columns (see screen.py), and only the rest
    become :class:`Site` objects, through :meth:`site`.
    """

    def __init__(self, obj: ObjectFile):
        self.obj = obj
        self.unchecked: Counter = Counter()
        self.skipped_nonalloc = 0
        secs = obj.sections
        rel = obj.read_relocations()
        alloc = obj.alloc_mask
        on_alloc = alloc[rel.target] if len(rel) else np.zeros(0, dtype=bool)
        self.skipped_nonalloc = int(len(rel) - np.count_nonzero(on_alloc))
        types = rel.type
        chk = on_alloc & _IS_CHECKED[np.minimum(types, len(_IS_CHECKED) - 1)]
        other = types[on_alloc & ~chk]
        other = other[(other != 0) & (other != 256)]
        for t, n in zip(*(a.tolist() for a in np.unique(other, return_counts=True))):
            self.unchecked[reloc_type_name(t)] += n
        idx = np.nonzero(chk)[0]
        target = rel.target[idx]
        offs = rel.offset[idx]
        tys = types[idx]
        shdr = obj.header_tables()[0]
        sec_type, sec_size, sec_off = (shdr[k].astype(t) for k, t in (
            ("type", np.int64), ("size", np.uint64), ("offset", np.uint64)))
        nobits = sec_type[target] == SHT_NOBITS
        if nobits.any():
            t = secs[int(target[np.argmax(nobits)])]
            raise InputError(obj.name, f"relocations apply to {t.name}, which has no contents (SHT_NOBITS)")
        size = _CONTAINER[tys]
        past = (offs > sec_size[target]) | (offs + size.astype(np.uint64) > sec_size[target])
        if past.any():
            k = int(np.argmax(past))
            t = secs[int(target[k])]
            raise InputError(obj.name, f"relocation {reloc_type_name(int(tys[k]))} at {t.name}+"
                                       f"{int(offs[k]):#x} lies past the end of the section ({t.size:#x} bytes)")
        self.section = target
        self.offset = offs.astype(np.int64)
        self.rtype = tys
        self.symbol = rel.symbol[idx]
        self.word = _words(obj, (sec_off[target] + offs).astype(np.int64), size, _IS_DATA[tys])
        self.addend = rel.addend[idx].copy()
        implicit = rel.rel[idx]
        if implicit.any():  # SHT_REL: the addend is the field's current contents
            for k in np.nonzero(implicit)[0].tolist():
                spec = BY_NUMBER[int(tys[k])]
                self.addend[k] = extract(spec.field, spec.scale, int(self.word[k]))
        self._symbols = _Symbols(obj)
        self._classify_anchors()
        self._check_instructions()

    def __len__(self) -> int:
        return len(self.offset)

    def _classify_anchors(self) -> None:
        obj, n = self.obj, len(self)
        self.kind = np.zeros(n, dtype=np.int8)
        self.anchor = np.zeros(n, dtype=np.int64)
        self.symval = np.zeros(n, dtype=np.uint64)
        self.weak = np.zeros(n, dtype=bool)
        # Rows decided one by one, never by columns: malformed sites and absolute symbols.
        self.special = np.zeros(n, dtype=bool)
        if not len(obj.symbols) or not n:
            return
        si = self.symbol
        real = si != 0
        where = obj.symbol_section[si]
        self.symval = np.where(real, obj.symbols["value"][si].astype(np.uint64), np.uint64(0))
        self.weak = real & ((obj.symbols["info"][si] >> 4) == STB_WEAK)
        undef = real & ((where == SYM_UNDEF) | (where == SYM_COMMON))
        insec = real & (where >= 0)
        self.kind[undef] = SYM_ANCHOR
        self.kind[insec] = SEC_ANCHOR
        self.kind[real & (where == SYM_ABS)] = ABS_ANCHOR
        self.anchor = np.where(undef, si, np.where(insec, where, 0))
        self.symval[undef] = 0
        alloc = obj.alloc_mask
        self.special |= self.kind == ABS_ANCHOR
        self.special |= insec & ~alloc[np.where(insec, where, 0)]

    def _check_instructions(self) -> None:
        """Is each instruction of the class its relocation needs? capstone is asked once per
        distinct (type, word); the rows whose answer is no are decided one by one."""
        insn = ~_IS_DATA[self.rtype]
        if not insn.any():
            return
        keys = (self.rtype[insn] << 32) | self.word[insn].astype(np.int64)

        def wrong(k: int) -> bool:  # one (type, word) key: is the word not the class it needs?
            return _insn_problem(BY_NUMBER[k >> 32], decode(k & 0xFFFFFFFF)) is not None
        if len(keys) <= _FEW_ROWS:  # a small object: a dict of the distinct keys beats np.unique
            codes = keys.tolist()
            seen = {k: wrong(k) for k in dict.fromkeys(codes)}
            bad_rows = np.array([seen[k] for k in codes], dtype=bool)
        else:
            uniq, inv = np.unique(keys, return_inverse=True)
            bad_rows = np.array([wrong(k) for k in uniq.tolist()], dtype=bool)[inv]
        self.special[np.nonzero(insn)[0][bad_rows]] = True

    def label(self, si: int) -> str:
        return self._symbols.label(si)

    def symbol_alignment(self) -> dict[int, int]:
        """The alignment assumed for each undefined symbol: what its relocations need."""
        rows = self.kind == SYM_ANCHOR
        if not rows.any():
            return {}
        syms, need = self.anchor[rows], _VALUE_ALIGNMENT[self.rtype[rows]]
        order = np.lexsort((need, syms))
        syms, need = syms[order], need[order]
        last = np.append(syms[1:] != syms[:-1], True)  # the largest need of each symbol comes last
        out = {}
        for si, a in zip(syms[last].tolist(), need[last].tolist()):
            if int(self.obj.symbol_section[si]) == SYM_COMMON:
                a = max(a, int(self.obj.symbols["value"][si]) or 1)  # COMMON: st_value is the alignment
            out[si] = a
        return out

    def site(self, i: int) -> Site:
        """Row ``i`` as a :class:`Site`."""
        spec = BY_NUMBER[int(self.rtype[i])]
        return _site(self.obj, int(self.section[i]), int(self.offset[i]), spec, int(self.symbol[i]),
                     int(self.addend[i]), int(self.word[i]), not spec.field.is_data, self._symbols)

    def sites(self) -> tuple[Site, ...]:
        """Every row as a Site (library queries; the analysis builds only the rows it needs)."""
        return tuple(self.site(i) for i in range(len(self)))


_CONTAINER = by_type(lambda s: s.field.container, 0, np.int64)
_IS_DATA = by_type(lambda s: s.field.is_data, False, bool)
_VALUE_ALIGNMENT = by_type(value_alignment, 1, np.int64)


def _words(obj: ObjectFile, at: np.ndarray, size: np.ndarray, is_data: np.ndarray) -> np.ndarray:
    """The container at each file offset: instructions little-endian always, data in the object's order."""
    buf = np.frombuffer(obj.data, dtype=np.uint8)
    b = [buf[np.minimum(at + k, len(buf) - 1)].astype(np.int64) for k in range(4)]
    le4 = b[0] | (b[1] << 8) | (b[2] << 16) | (b[3] << 24)
    le2 = b[0] | (b[1] << 8)
    if obj.big_endian:
        d4 = (b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]
        d2 = (b[0] << 8) | b[1]
    else:
        d4, d2 = le4, le2
    data_word = np.where(size == 2, d2, d4)
    return np.where(is_data, data_word, le4)


class _Symbols:
    """Per-symbol facts as plain lists, read once (numpy scalar access per site is slow)."""

    def __init__(self, obj: ObjectFile):
        self.obj = obj
        lists = obj._symbol_lists()  # shared with the object's own lookups
        self.where = lists["section"]
        self.value = lists["value"]
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
        anchor, value, name = None, 0, ""  # symbol 0: S is 0
    else:
        where = syms.where[si]
        value = syms.value[si]
        name = syms.label(si)
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
        problem = problem or _insn_problem(spec, insn)
    return Site(sec, off, spec, si, name, addend, anchor, value, word, insn, problem)


def _insn_problem(spec: RelocSpec, insn: Insn) -> str | None:
    if insn.klass not in spec.insns:
        return f"{spec.name} on '{insn.text}', which is not one of: {', '.join(sorted(spec.insns))}"
    if insn.klass == "ldst" and insn.access != spec.granule:
        return f"{spec.name} needs a {spec.granule}-byte access, but '{insn.text}' accesses {insn.access}"
    return None
