"""ELF64 AArch64 relocatable objects, read with every table bounds-checked.

pyelftools supplies the gABI/AAELF64 names; the ELF header is unpacked with
struct (pyelftools' parser costs more than a small archive member's analysis) and the
section, symbol and relocation tables are viewed as numpy structured arrays,
because a Python object per relocation is too slow for a kernel's vmlinux.o
(1.6 M relocations). Every offset, count and index is checked before use, so
a corrupt file raises :class:`InputError` with one line, never a traceback.
"""
from __future__ import annotations

import bisect
import functools
import struct
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from elftools.elf.enums import (ENUM_E_MACHINE, ENUM_E_TYPE, ENUM_RELOC_TYPE_AARCH64,
                                ENUM_SH_TYPE_BASE)

from ..errors import InputError
from .strtab import StringTable
from ..target.catalogue import BY_NUMBER, type_name

EM_AARCH64 = 183
ET_REL = 1
SHT_NULL, SHT_PROGBITS, SHT_SYMTAB, SHT_STRTAB, SHT_RELA = 0, 1, 2, 3, 4
SHT_NOBITS, SHT_REL, SHT_GROUP, SHT_SYMTAB_SHNDX = 8, 9, 17, 18
SHF_WRITE, SHF_ALLOC, SHF_EXECINSTR = 0x1, 0x2, 0x4
SHF_TLS, SHF_COMPRESSED, SHF_EXCLUDE = 0x400, 0x800, 0x80000000
SHN_UNDEF, SHN_LORESERVE, SHN_ABS, SHN_COMMON, SHN_XINDEX = 0, 0xFF00, 0xFFF1, 0xFFF2, 0xFFFF
STB_LOCAL, STB_GLOBAL, STB_WEAK = 0, 1, 2
STT_NOTYPE, STT_OBJECT, STT_FUNC, STT_SECTION, STT_GNU_IFUNC = 0, 1, 2, 3, 10
SYM_UNDEF, SYM_ABS, SYM_COMMON = -1, -2, -3  # codes in ObjectFile.symbol_section
# Sections that are tables of the object itself: a relocation section's sh_info
# naming one of them is corrupt.
_NOT_RELOCATABLE = (SHT_NULL, SHT_SYMTAB, SHT_STRTAB, SHT_RELA, SHT_REL, SHT_GROUP, SHT_SYMTAB_SHNDX)

_REV_MACHINE = {v: k for k, v in ENUM_E_MACHINE.items() if isinstance(v, int)}
_REV_ETYPE = {v: k for k, v in ENUM_E_TYPE.items() if isinstance(v, int)}
_REV_SHTYPE = {v: k for k, v in ENUM_SH_TYPE_BASE.items() if isinstance(v, int)}
_REV_RELOC = {v: k for k, v in ENUM_RELOC_TYPE_AARCH64.items() if isinstance(v, int)}


def reloc_type_name(number: int) -> str:
    """A type's name: the catalogue's, pyelftools' (gABI/AAELF64), or its number."""
    spec = BY_NUMBER.get(number)
    if spec is not None:
        return spec.name
    return _REV_RELOC.get(number) or type_name(number) or f"R_AARCH64_<{number}>"


# The ELF64 header after e_ident (gABI): e_type, e_machine, e_version, e_entry, e_phoff,
# e_shoff, e_flags, e_ehsize, e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx.
_EHDR_FIELDS = ("e_type", "e_machine", "e_version", "e_entry", "e_phoff", "e_shoff", "e_flags", "e_ehsize",
                "e_phentsize", "e_phnum", "e_shentsize", "e_shnum", "e_shstrndx")
_EHDR = {big: struct.Struct(("> " if big else "< ") + "16x HHI QQQ I HHHHHH") for big in (False, True)}


@functools.lru_cache(maxsize=2)
def _dtypes(big: bool) -> dict[str, np.dtype]:
    """The table entry types for one byte order (shared by every object: read, never changed)."""
    e = ">" if big else "<"
    return {
        "shdr": np.dtype([("name", e + "u4"), ("type", e + "u4"), ("flags", e + "u8"), ("addr", e + "u8"),
                          ("offset", e + "u8"), ("size", e + "u8"), ("link", e + "u4"), ("info", e + "u4"),
                          ("addralign", e + "u8"), ("entsize", e + "u8")]),
        "sym": np.dtype([("name", e + "u4"), ("info", "u1"), ("other", "u1"), ("shndx", e + "u2"),
                         ("value", e + "u8"), ("size", e + "u8")]),
        "rela": np.dtype([("offset", e + "u8"), ("info", e + "u8"), ("addend", e + "i8")]),
        "rel": np.dtype([("offset", e + "u8"), ("info", e + "u8")]),
        "u4": np.dtype(e + "u4"),
    }


def allocated(flags):
    """Does a section with these sh_flags take part in the image: SHF_ALLOC, and not
    SHF_EXCLUDE (which the linkers drop). For an int or a numpy column of flags."""
    return ((flags & SHF_ALLOC) != 0) & ((flags & SHF_EXCLUDE) == 0)


class Section(NamedTuple):
    """One section header (a named tuple: kernel objects have 10^5 of them)."""

    index: int
    name: str
    type: int
    flags: int
    offset: int
    size: int
    link: int
    info: int
    addralign: int
    entsize: int

    @property
    def alloc(self) -> bool:
        return bool(allocated(self.flags))

    @property
    def footprint(self) -> int:
        """Bytes of address space it takes in the image: TLS .tbss takes none (gABI: its
        bytes live in each thread's block, not in the image)."""
        return 0 if self.type == SHT_NOBITS and self.flags & SHF_TLS else self.size

    @property
    def align(self) -> int:
        return max(1, self.addralign)

    @property
    def type_name(self) -> str:
        return _REV_SHTYPE.get(self.type, hex(self.type))


@dataclass(frozen=True)
class Relocations:
    """Every relocation of the object, one row each, in section order (numpy columns).

    ``addend`` is 0 where ``rel`` is set: an SHT_REL entry keeps its addend in the field.
    """

    target: np.ndarray   # section it applies to (sh_info)
    offset: np.ndarray   # uint64
    type: np.ndarray
    symbol: np.ndarray
    addend: np.ndarray
    rel: np.ndarray

    def __len__(self) -> int:
        return len(self.offset)


class ObjectFile:
    """A validated view of one relocatable object held in memory."""

    def __init__(self, name: str, data: bytes):
        self.name = name
        self.data = data
        self.relocation_count: int | None = None  # set by read_relocations
        self._parse_header()
        self._parse_sections()
        self._parse_symbols()

    # -- helpers -----------------------------------------------------------
    def _fail(self, msg: str) -> InputError:
        return InputError(self.name, msg)

    def _table(self, off: int, size: int, dtype: np.dtype, what: str) -> np.ndarray:
        if size % dtype.itemsize:
            raise self._fail(f"{what}: size {size:#x} is not a multiple of its entry size {dtype.itemsize}")
        if off + size > len(self.data):
            raise self._fail(f"{what}: [{off:#x}, {off + size:#x}) lies past the end of the file ({len(self.data):#x} bytes)")
        return np.frombuffer(self.data, dtype=dtype, count=size // dtype.itemsize, offset=off)

    # -- header --------------------------------------------------------------
    def _parse_header(self) -> None:
        d = self.data
        if not d:
            raise self._fail("empty file; not an ELF object")
        if len(d) < 4 or d[:4] != b"\x7fELF":
            raise self._fail("not an ELF file (bad magic)")
        if len(d) < 16:
            raise self._fail("truncated ELF identification")
        if d[4] == 1:
            raise self._fail("ELF32 object (ELFCLASS32); only ELF64 AArch64 objects are supported")
        if d[4] != 2:
            raise self._fail(f"invalid ELF class {d[4]}")
        if d[5] not in (1, 2):
            raise self._fail(f"invalid ELF data encoding {d[5]}")
        self.big_endian = d[5] == 2
        if len(d) < 64:
            raise self._fail(f"truncated ELF header ({len(d)} bytes, need 64)")
        # Fixed fields, all integers: any 64 bytes decode (class and byte order are checked above).
        hdr = dict(zip(_EHDR_FIELDS, _EHDR[self.big_endian].unpack_from(d, 0)))
        machine = hdr["e_machine"]
        if machine != EM_AARCH64:
            label = _REV_MACHINE.get(machine, f"e_machine {machine}")
            raise self._fail(f"machine is {label}, not EM_AARCH64")
        etype = hdr["e_type"]
        if etype != ET_REL:
            raise self._fail(f"{_REV_ETYPE.get(etype, f'type {etype:#x}')} file; only relocatable objects (ET_REL) are supported")
        self._dt = _dtypes(self.big_endian)
        self._shoff = hdr["e_shoff"]
        self._shnum = hdr["e_shnum"]
        self._shstrndx = hdr["e_shstrndx"]
        if self._shoff and hdr["e_shentsize"] != 64:
            raise self._fail(f"e_shentsize is {hdr['e_shentsize']}, expected 64")

    # -- sections --------------------------------------------------------------
    def _parse_sections(self) -> None:
        dt = self._dt["shdr"]
        if self._shoff == 0:
            self._shdr = np.zeros(0, dtype=dt)
            self.sections: list[Section] = []
            return
        if self._shoff + 64 > len(self.data):
            raise self._fail(f"section header table at {self._shoff:#x} lies past the end of the file")
        first = self._table(self._shoff, 64, dt, "section header 0")[0]
        shnum = self._shnum or int(first["size"])  # gABI extended numbering
        shstrndx = int(first["link"]) if self._shstrndx == SHN_XINDEX else self._shstrndx
        if shnum == 0:
            raise self._fail(f"e_shoff is {self._shoff:#x}, but the section count is 0")
        if shnum > len(self.data) // 64:
            raise self._fail(f"section count {shnum} cannot fit in a {len(self.data)}-byte file")
        sh = self._table(self._shoff, shnum * 64, dt, "section header table")
        self._shdr = sh
        if not 0 < shstrndx < shnum:
            if shstrndx == 0:
                names = b""
            else:
                raise self._fail(f"section name table index {shstrndx} is out of range (0..{shnum - 1})")
        else:
            s = sh[shstrndx]
            if int(s["type"]) != SHT_STRTAB:
                raise self._fail(f"section name table (section {shstrndx}) is not SHT_STRTAB")
            names = self._bytes(int(s["offset"]), int(s["size"]), f"section name table (section {shstrndx})")
        # Checks over whole columns; the first offender is reported.
        typ, size, off, flags = (sh[k].astype(np.uint64) for k in ("type", "size", "offset", "flags"))
        align = sh["addralign"].astype(np.uint64)
        with np.errstate(over="ignore"):
            end = off + size
        past = (typ != SHT_NOBITS) & (typ != SHT_NULL) & ((end < off) | (end > np.uint64(len(self.data))))
        past[0] = False
        if past.any():
            i = int(np.argmax(past))
            raise self._fail(f"section {i}: contents [{int(off[i]):#x}, {int(off[i]) + int(size[i]):#x}) lie past the "
                             f"end of the file ({len(self.data):#x} bytes)")
        odd = (align > 1) & ((align & (align - np.uint64(1))) != 0)
        if odd.any():
            i = int(np.argmax(odd))
            raise self._fail(f"section {i}: sh_addralign {int(align[i]):#x} is not a power of two")
        both = np.uint64(SHF_ALLOC | SHF_COMPRESSED)
        packed = (flags & both) == both
        if packed.any():
            raise self._fail(f"section {int(np.argmax(packed))}: SHF_COMPRESSED is not allowed on an SHF_ALLOC section")
        names_of = StringTable(names, self._fail).names(sh["name"].tolist(), "section {} name")
        cols = [sh[k].tolist() for k in ("type", "flags", "offset", "size", "link", "info", "addralign", "entsize")]
        self.sections = list(map(Section._make, zip(range(shnum), names_of, *cols)))

    def symbol_labels(self, idx: np.ndarray) -> list[str]:
        """symbol_label for many symbols at once."""
        names = self.symbol_names(idx)
        sec = self.symbol_section[idx]
        named_by_section = ((self.symbols["info"][idx] & 0xF) == STT_SECTION) & (sec > 0)
        for k, j in zip(np.nonzero(named_by_section)[0].tolist(), sec[named_by_section].tolist()):
            names[k] = self.sections[j].name
        return names

    def symbol_names(self, idx: np.ndarray) -> list[str]:
        """symbol_name for many symbols at once."""
        if not len(self._strtab):
            return ["" for _ in range(len(idx))]
        return self._strtab.names(self.symbols["name"][idx].tolist(), "symbol {}", idx.tolist())

    def _bytes(self, off: int, size: int, what: str) -> bytes:
        if off + size > len(self.data):
            raise self._fail(f"{what}: [{off:#x}, {off + size:#x}) lies past the end of the file")
        return self.data[off:off + size]

    @functools.cached_property
    def alloc_mask(self) -> np.ndarray:
        """Section.alloc of every section, as one read-only column."""
        mask = allocated(self._shdr["flags"].astype(np.uint64))
        mask.setflags(write=False)
        return mask

    @functools.cached_property
    def section_aligns(self) -> np.ndarray:
        """Section.align of every section, as one read-only column."""
        col = np.maximum(self._shdr["addralign"].astype(np.uint64), np.uint64(1))
        col.setflags(write=False)
        return col

    def section_data(self, index: int) -> bytes:
        s = self.sections[index]
        if s.type == SHT_NOBITS:
            return b""
        return self.data[s.offset:s.offset + s.size]

    # -- symbols ------------------------------------------------------------------
    def _parse_symbols(self) -> None:
        symtabs = [s for s in self.sections if s.type == SHT_SYMTAB]
        if len(symtabs) > 1:
            raise self._fail(f"{len(symtabs)} SHT_SYMTAB sections; a relocatable object has at most one")
        self.symtab_index = symtabs[0].index if symtabs else None
        dt = self._dt["sym"]
        if not symtabs:
            self.symbols = np.zeros(0, dtype=dt)
            self._strtab = StringTable(b"", self._fail)
            self.shndx = np.zeros(0, dtype=np.uint32)
            self.symbol_section = np.zeros(0, dtype=np.int64)
            return
        st = symtabs[0]
        what = f"symbol table (section {st.index})"
        if st.entsize not in (0, dt.itemsize):
            raise self._fail(f"{what}: sh_entsize {st.entsize} is not {dt.itemsize}")
        syms = self._table(st.offset, st.size, dt, what)
        if not 0 < st.link < len(self.sections) or self.sections[st.link].type != SHT_STRTAB:
            raise self._fail(f"{what}: sh_link {st.link} is not a string table")
        strsec = self.sections[st.link]
        self._strtab = StringTable(self._bytes(strsec.offset, strsec.size, f"string table (section {st.link})"),
                                   self._fail)
        if st.info > len(syms):
            raise self._fail(f"{what}: first global index {st.info} exceeds the symbol count {len(syms)}")
        # An empty string table is allowed (gABI); then only offset 0, the empty name, is.
        limit = max(len(self._strtab), 1)
        if len(syms) and int(syms["name"].max()) >= limit:
            bad = int(np.argmax(syms["name"] >= limit))
            raise self._fail(f"{what}: symbol {bad} name offset {int(syms['name'][bad]):#x} is outside the string table")
        shndx = syms["shndx"].astype(np.uint32)
        xs = np.nonzero(shndx == SHN_XINDEX)[0]
        if len(xs):
            tabs = [s for s in self.sections if s.type == SHT_SYMTAB_SHNDX and s.link == st.index]
            if not tabs:
                raise self._fail(f"{what}: symbol {int(xs[0])} uses SHN_XINDEX but there is no SHT_SYMTAB_SHNDX table")
            ext = self._table(tabs[0].offset, tabs[0].size, self._dt["u4"], f"extended index table (section {tabs[0].index})")
            if len(ext) != len(syms):
                raise self._fail(f"extended index table (section {tabs[0].index}) has {len(ext)} entries for {len(syms)} symbols")
            shndx[xs] = ext[xs]
            zero = xs[shndx[xs] == 0]
            if len(zero):
                raise self._fail(f"{what}: symbol {int(zero[0])} has extended section index 0, the null section")
        n = len(self.sections)
        special = (shndx == SHN_UNDEF) | (shndx == SHN_ABS) | (shndx == SHN_COMMON)
        special[xs] = False  # an extended index always names a real section
        bad = ~special & (shndx >= n)
        if bad.any():
            i = int(np.argmax(bad))
            raise self._fail(f"{what}: symbol {i} has section index {int(shndx[i]):#x}, but there are {n} sections")
        # One code per symbol: a section index, or one of the SYM_* kinds.
        where = shndx.astype(np.int64)
        plain = np.ones(len(shndx), dtype=bool)
        plain[xs] = False
        where[plain & (shndx == SHN_UNDEF)] = SYM_UNDEF
        where[plain & (shndx == SHN_ABS)] = SYM_ABS
        where[plain & (shndx == SHN_COMMON)] = SYM_COMMON
        self.symbol_section = where
        self.symbols = syms
        self.shndx = shndx

    def _symbol_lists(self) -> dict[str, list[int]]:
        """The symbol table's fields as lists, made on first use: per-symbol lookups read
        these (a numpy scalar read costs about a microsecond, a list item a few ns)."""
        cached = getattr(self, "_symbol_lists_cache", None)
        if cached is None:
            cached = {k: self.symbols[k].tolist() for k in ("name", "info", "value", "size")}
            cached["section"] = self.symbol_section.tolist()
            self._symbol_lists_cache = cached
        return cached

    def symbol_info(self, i: int) -> int:
        """st_info of symbol ``i`` (binding << 4 | type)."""
        return self._symbol_lists()["info"][i]

    def symbol_name(self, i: int) -> str:
        return self._strtab.name(self._symbol_lists()["name"][i], f"symbol {i}") if len(self._strtab) else ""

    def enclosing_symbol(self, section: int, offset: int) -> tuple[str, int] | None:
        """(name, offset from it) of what a person calls the place ``section+offset``: the
        nearest name before it, a function or a global label (an assembler entry point such
        as __guest_exit_panic inside __guest_enter); where that is a local label, the
        function holding the place if one does. Mapping symbols ($x, $d) and section
        symbols are not names."""
        table = self._places(section)
        if not table:
            return None
        starts, entries = table
        k = bisect.bisect_right(starts, offset)
        if not k:
            return None
        start, _, name, func, glob = entries[k - 1]
        if func or glob:
            return name, offset - start
        for s, size, n, f, _ in reversed(entries[:k - 1]):   # a local label: is it inside a function?
            if f:
                return (n, offset - s) if offset < s + size else (name, offset - start)
        return name, offset - start

    def label_at(self, section: int, offset: int) -> str | None:
        """The name a person wrote for exactly ``section+offset`` (a relocation against a local
        label comes out of the assembler as section symbol + addend): the function, global or
        local label starting there, preferred as enclosing_symbol prefers; None if none does."""
        table = self._places(section)
        if not table:
            return None
        starts, entries = table
        k = bisect.bisect_left(starts, offset)
        return entries[k][2] if k < len(starts) and starts[k] == offset else None

    def _places(self, section: int) -> tuple[list[int], list[tuple]] | None:
        """The symbols that name places in ``section``, sorted by start; built per section on
        first use (findings ask about a few sections of a kernel's 10^5)."""
        cache = self.__dict__.setdefault("_places_cache", {})
        if section in cache:
            return cache[section]
        index = self.__dict__.get("_places_index")
        if index is None:
            index = self._places_index = self._place_symbols()
        idx, secs = index
        sub = idx[np.searchsorted(secs, section, "left"):np.searchsorted(secs, section, "right")]
        rows = []
        if len(sub):
            lists = self._symbol_lists()
            info, value, size = lists["info"], lists["value"], lists["size"]
            for i, name in zip(sub.tolist(), self.symbol_names(sub)):
                if not name or name.startswith("$"):
                    continue
                key = (value[i], info[i] & 0xF not in (STT_FUNC, STT_GNU_IFUNC), info[i] >> 4 == STB_LOCAL, name)
                rows.append((key, (value[i], size[i], name, not key[1], not key[2])))
        table = None
        if rows:
            rows.sort(key=lambda r: r[0])
            # One entry per start: the preferred one (a function, then global, then by name).
            by_start: dict[int, tuple] = {}
            for key, entry in rows:
                by_start.setdefault(key[0], entry)
            entries = [by_start[s] for s in sorted(by_start)]
            table = ([e[0] for e in entries], entries)
        cache[section] = table
        return table

    def _place_symbols(self) -> tuple[np.ndarray, np.ndarray]:
        """The symbols that may name a place (in a section; no type, object or function),
        grouped by section, in symbol order within each; with their sections, for a search."""
        if len(self.symbols) <= 1:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        types = self.symbols["info"] & 0xF
        keep = ((self.symbol_section > 0) & ((types == STT_NOTYPE) | (types == STT_OBJECT) |
                                             (types == STT_FUNC) | (types == STT_GNU_IFUNC)))
        keep[0] = False
        idx = np.nonzero(keep)[0]
        if len(self._strtab):
            # A name with no NUL after it fails here, for every such symbol at once, as it
            # would when read; the names themselves are read per section.
            offs = self.symbols["name"][idx].astype(np.int64)
            nul = self._strtab.nuls
            if len(offs) and (not len(nul) or int(offs.max()) > int(nul[-1])):
                self.symbol_names(idx)
        order = np.argsort(self.symbol_section[idx], kind="stable")
        idx = idx[order]
        return idx, self.symbol_section[idx]

    def symbol_label(self, i: int) -> str:
        """The name a person would use: section symbols are named by their section."""
        lists = self._symbol_lists()
        if (lists["info"][i] & 0xF) == STT_SECTION:
            sec = lists["section"][i]
            if sec > 0:
                return self.sections[sec].name
        return self.symbol_name(i)

    def header_tables(self) -> tuple[np.ndarray, int, dict[str, np.dtype]]:
        """The section header table as read, its file offset, and the dtypes of this object's
        tables: what objfile/patch.py needs to write a modified copy."""
        return self._shdr, self._shoff, self._dt

    # -- relocations ----------------------------------------------------------------
    def read_relocations(self, only: int | None = None) -> "Relocations":
        """Every SHT_RELA and SHT_REL table, validated, as one set of columns; with
        ``only``, just the tables that apply to that section (a debug section's).

        Not kept: a kernel's tables take 10^8 bytes as columns, and the caller
        keeps only the rows it needs (``relocation_count`` remembers how many)."""
        sh = self._shdr
        typ = sh["type"]
        chosen = (typ == SHT_RELA) | (typ == SHT_REL)
        if only is not None:
            chosen &= sh["info"] == only
        idx = np.flatnonzero(chosen)
        self._check_relocation_tables(idx)
        rela = typ[idx] == SHT_RELA
        counts = (sh["size"][idx] // self._entry_widths(rela)).astype(np.int64)
        return self._join_relocations(idx, sh["offset"][idx], sh["info"][idx].astype(np.int64), rela, counts,
                                      len(self.symbols), only)

    def _check_relocation_tables(self, idx: np.ndarray) -> None:
        """Check the headers of relocation tables ``idx`` (section indices, ascending) over the
        header columns at once: a kernel has 10^5 tables. The first offender's first problem,
        in the order below, is the error's one line."""
        sh = self._shdr[idx]
        width = self._entry_widths(sh["type"] == SHT_RELA)
        info, size, off, link = sh["info"].astype(np.int64), sh["size"], sh["offset"], sh["link"]
        named = (info > 0) & (info < len(self.sections))
        end = np.uint64(len(self.data))
        problems = (
            (sh["entsize"] != 0) & (sh["entsize"] != width),
            ~named,
            named & np.isin(self._shdr["type"][np.where(named, info, 0)], _NOT_RELOCATABLE),
            (size != 0) & ((link != self.symtab_index) if self.symtab_index is not None else True),
            (size % width) != 0,
            (off > end) | (size > end - np.minimum(off, end)),
        )
        bad = np.logical_or.reduce(problems)
        if bad.any():
            j = int(np.argmax(bad))
            rule = next(r for r, rows in enumerate(problems) if rows[j])
            raise self._fail(self._relocation_header_problem(self.sections[int(idx[j])], rule))

    def _relocation_header_problem(self, s: Section, rule: int) -> str:
        """The words for problem number ``rule`` of _check_relocation_tables in table ``s``."""
        itemsize = self._dt["rela" if s.type == SHT_RELA else "rel"].itemsize
        what = f"relocation section {s.name or s.index} (section {s.index})"
        if rule == 0:
            return f"{what}: sh_entsize {s.entsize} is not {itemsize}"
        if rule == 1:
            return f"{what}: sh_info {s.info} does not name a section"
        if rule == 2:
            target = self.sections[s.info]
            return (f"{what}: sh_info {s.info} names {target.name or 'section'} ({target.type_name}), "
                    f"which relocations cannot apply to")
        if rule == 3:
            return f"{what}: sh_link {s.link} is not the symbol table"
        if rule == 4:
            return f"{what}: size {s.size:#x} is not a multiple of its entry size {itemsize}"
        return (f"{what}: [{s.offset:#x}, {s.offset + s.size:#x}) lies past the end of the file "
                f"({len(self.data):#x} bytes)")

    def _entry_widths(self, rela: np.ndarray) -> np.ndarray:
        """sh_entsize each table must have: an Elf64_Rela or an Elf64_Rel (gABI)."""
        return np.where(rela, np.uint64(self._dt["rela"].itemsize), np.uint64(self._dt["rel"].itemsize))

    def rela_view(self, target: int) -> np.ndarray | None:
        """The one SHT_RELA table applying to section ``target``, validated, as a structured view
        of the file's bytes (no copy: a kernel's .rela.debug_info has 10^6 rows, of which a
        reader of one unit needs a few); None when there is not exactly one, or an SHT_REL."""
        tables = [s for s in self.sections if s.type in (SHT_RELA, SHT_REL) and s.info == target]
        if len(tables) != 1 or tables[0].type != SHT_RELA:
            return None
        s = tables[0]
        self._check_relocation_tables(np.array([s.index]))
        dt = self._dt["rela"]
        view = np.frombuffer(self.data, dtype=dt, count=s.size // dt.itemsize, offset=s.offset)
        if len(view) and int((view["info"] >> np.uint64(32)).max()) >= len(self.symbols):
            raise self._fail(f"relocation section {s.name or s.index} (section {s.index}): an entry names a "
                             f"symbol past the symbol table ({len(self.symbols)} symbols)")
        return view

    def _join_relocations(self, index: np.ndarray, file_off: np.ndarray, info_of: np.ndarray,
                          rela_of: np.ndarray, counts: np.ndarray, nsyms: int, only: int | None) -> "Relocations":
        # Rows in section order: RELA and REL tables interleave as the sections do.
        rela = np.repeat(rela_of, counts)
        n = int(counts.sum())
        offset = np.zeros(n, dtype=np.uint64)
        info = np.zeros(n, dtype=np.uint64)
        addend = np.zeros(n, dtype=np.int64)
        e = ">" if self.big_endian else "<"
        for kind, rows in ((True, rela), (False, ~rela)):
            pick = rela_of == kind
            if not counts[pick].any():
                continue
            fields = 3 if kind else 2  # Elf64_Rela: r_offset, r_info, r_addend; Elf64_Rel: no addend
            at, many = file_off[pick], counts[pick]
            if not (at % np.uint64(8)).any():
                # Tables at 8-byte offsets (all that compilers and assemblers make): each
                # field is one 64-bit word of the file, gathered for every row at once.
                words = np.frombuffer(self.data, dtype=e + "u8", count=len(self.data) // 8)
                first = np.repeat((at // np.uint64(8)).astype(np.int64) - fields * (np.cumsum(many) - many), many)
                w = first + fields * np.arange(int(many.sum()), dtype=np.int64)
                every = len(w) == n  # one kind only (the usual case): no mask to apply
                for col, k in ((offset, 0), (info, 1), (addend, 2))[:fields]:
                    # (r_addend: the same 64 bits, two's complement)
                    if every:
                        col[:] = words[w + k]
                    else:
                        col[rows] = words[w + k]
            else:
                dt = self._dt["rela" if kind else "rel"]
                cat = np.frombuffer(b"".join(self.data[o:o + k * dt.itemsize]
                                             for o, k in zip(at.tolist(), many.tolist())), dtype=dt)
                offset[rows] = cat["offset"]
                info[rows] = cat["info"]
                if kind:
                    addend[rows] = cat["addend"]
        symbol = (info >> np.uint64(32)).astype(np.int64)
        bad = symbol >= nsyms
        if bad.any():
            row = int(np.argmax(bad))
            k = int(np.searchsorted(np.cumsum(counts), row, side="right"))
            sec = self.sections[int(index[k])]
            raise self._fail(f"relocation section {sec.name or sec.index} (section {sec.index}): entry "
                             f"{row - int(counts[:k].sum())} names symbol {int(symbol[row])}, but the symbol "
                             f"table has {nsyms}")
        if only is None:
            self.relocation_count = n
        return Relocations(np.repeat(info_of, counts), offset, (info & np.uint64(0xFFFFFFFF)).astype(np.int64),
                           symbol, addend, ~rela)


def read_object(name: str, data: bytes) -> ObjectFile:
    return ObjectFile(name, data)
