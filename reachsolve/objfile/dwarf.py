"""Source file and line of a place in a relocatable object, from its DWARF line table.

In an ET_REL object every line-program sequence starts at address 0: the address
its DW_LNE_set_address gives is the field a relocation (.rela.debug_line,
R_AARCH64_ABS64 against a section or function symbol, with addend) fills in. So
the section a sequence describes is the section of that relocation's symbol,
never the address: a ThinLTO vmlinux.o has thousands of sequences starting at
offset 0 of some .text section. Sequences are indexed by that section index
from the relocation table alone, and a line program is decoded (pyelftools) only
when a place asked for may lie in it.

Paths are as DWARF gives them (DWARF 5, section 6.2.4: directory 0 and file 0
are the compilation's own; DWARF 2-4: directory 0 is the unit's DW_AT_comp_dir
and files count from 1). A line table that cannot be read gives no line: the
source of a finding is an aid, never part of a verdict.
"""
from __future__ import annotations

import bisect
import io
import posixpath
from dataclasses import dataclass

import numpy as np
from elftools.dwarf.dwarfinfo import DebugSectionDescriptor, DWARFInfo, DwarfConfig
from elftools.dwarf.constants import DW_LNE_set_address

from .elf import SHF_COMPRESSED, SHT_NOBITS, ObjectFile

R_AARCH64_ABS64, R_AARCH64_ABS32 = 257, 258
# What pyelftools may read to decode a unit's top DIE and line program (a DWARF 5 top DIE
# names its .debug_addr, .debug_rnglists and .debug_str_offsets bases).
_DEBUG = (".debug_info", ".debug_abbrev", ".debug_line", ".debug_str", ".debug_line_str", ".debug_str_offsets",
          ".debug_addr", ".debug_rnglists", ".debug_loclists", ".debug_ranges", ".debug_loc")


@dataclass(frozen=True, slots=True)
class Line:
    file: str
    line: int
    column: int | None   # DWARF's column 0 means "not known"


def _units(data, order: str) -> list[tuple[int, int]]:
    """(start, end) of each unit of a .debug_line or .debug_info section: their initial
    length fields (DWARF 7.4: 0xffffffff announces a 64-bit length), until one is cut off."""
    out, off, size = [], 0, len(data)
    while off + 4 <= size:
        n = int.from_bytes(data[off:off + 4], order)
        head = 4
        if n == 0xFFFFFFFF:
            if off + 12 > size:
                break
            n, head = int.from_bytes(data[off + 4:off + 12], order), 12
        elif n >= 0xFFFFFFF0:
            break
        end = off + head + n
        if end > size or n == 0:
            break
        out.append((off, end))
        off = end
    return out


# Sizes of the forms a DWARF 5 line header may use (DWARF 5, 6.2.4.1); None: variable.
_FIXED = {0x0b: 1, 0x05: 2, 0x06: 4, 0x07: 8, 0x1e: 16, 0x25: 1, 0x26: 2, 0x27: 3, 0x28: 4}
_OFFSET = (0x1f, 0x0e, 0x17)                                  # line_strp, strp, sec_offset
_LEB = (0x0f, 0x0d, 0x1a)                                     # udata, sdata, strx


def _uleb(data, off: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if off >= end or shift > 63:
            raise ValueError("truncated LEB128")
        b = int(data[off])
        off += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return value, off


def _v5_header_is_sound(data, start: int, end: int, order: str) -> bool:
    """A DWARF 5 header's entry counts fit in its header_length bytes, and every entry has
    a format: pyelftools would otherwise build billions of empty entries from one count."""
    try:
        n = int.from_bytes(data[start:start + 4], order)
        wide = n == 0xFFFFFFFF
        off = start + (12 if wide else 4)
        if int.from_bytes(data[off:off + 2], order) < 5:
            return True
        width = 8 if wide else 4
        off += 4  # version, address_size, segment_selector_size
        hend = off + width + int.from_bytes(data[off:off + width], order)
        off += width
        if hend > end:
            return False
        opcode_base = int(data[off + 5])
        off += 6 + max(0, opcode_base - 1)
        for _ in range(2):   # directories, then file names
            if off >= hend:
                return False
            nformat = int(data[off])
            off += 1
            forms = []
            for _ in range(nformat):
                _, off = _uleb(data, off, hend)
                form, off = _uleb(data, off, hend)
                forms.append(form)
            count, off = _uleb(data, off, hend)
            if count and (not forms or count > hend - off):
                return False
            for _ in range(count):
                for form in forms:
                    if form in _FIXED:
                        off += _FIXED[form]
                    elif form in _OFFSET:
                        off += width
                    elif form in _LEB:
                        _, off = _uleb(data, off, hend)
                    elif form == 0x08:     # string
                        nul = bytes(data[off:hend]).find(b"\0")
                        if nul < 0:
                            return False
                        off += nul + 1
                    elif form == 0x09:     # block
                        size, off = _uleb(data, off, hend)
                        off += size
                    else:
                        return False
                    if off > hend:
                        return False
        return True
    except (ValueError, IndexError, OverflowError):
        return False


def _printable(b) -> str:
    text = b.decode("utf-8", "backslashreplace") if isinstance(b, bytes) else str(b)
    return text if text.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class _Section:
    """One debug section's bytes in a stream pyelftools reads, relocated on demand: only
    the rows a reader asks for are decoded (a kernel's .rela.debug_info has 10^6 rows)."""

    def __init__(self, obj: ObjectFile, index: int):
        self.obj = obj
        self.index = index
        self.stream = io.BytesIO(obj.section_data(index))
        self.buf = np.frombuffer(self.stream.getbuffer(), dtype=np.uint8)
        view = obj.rela_view(index)
        if view is None:   # several tables, or SHT_REL: the general reader, as one structured array
            rel = obj.read_relocations(only=index)
            view = np.zeros(len(rel), dtype=[("offset", "u8"), ("info", "u8"), ("addend", "i8"), ("rel", "?")])
            view["offset"], view["addend"], view["rel"] = rel.offset, rel.addend, rel.rel
            view["info"] = (rel.symbol.astype(np.uint64) << np.uint64(32)) | rel.type.astype(np.uint64)
        off = view["offset"]
        if len(off) and not (off[1:] >= off[:-1]).all():   # assemblers and ld -r write them sorted
            view = view[np.argsort(off, kind="stable")]
        self.view = view
        self.offset = view["offset"].astype(np.int64)
        self.done = np.zeros(len(view), dtype=bool)

    def descriptor(self) -> DebugSectionDescriptor:
        return DebugSectionDescriptor(self.stream, "", None, len(self.buf), 0)

    def rows(self, start: int, end: int) -> np.ndarray:
        return np.arange(int(np.searchsorted(self.offset, start)), int(np.searchsorted(self.offset, end)))

    def fields(self, k: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(offset, type, section of the symbol, value) of rows ``k``, relocated first: the
        value is what an ABS32/ABS64 field holds then (S+A; SHT_REL: with its own addend)."""
        self.apply(k)
        v = self.view[k]
        sym = (v["info"] >> np.uint64(32)).astype(np.int64)
        typ = (v["info"] & np.uint64(0xFFFFFFFF)).astype(np.int64)
        sec = self.obj.symbol_section[sym]
        value = self._s_plus_a(v, sym)
        for t, width in ((R_AARCH64_ABS64, 8), (R_AARCH64_ABS32, 4)):
            m = (typ == t) & (self.offset[k] + width <= len(self.buf))
            if m.any():
                value[m] = self._read(self.offset[k][m], width).astype(np.int64)
        return self.offset[k], typ, sec, value

    def _s_plus_a(self, v, sym) -> np.ndarray:
        return self.obj.symbols["value"][sym].astype(np.int64) + v["addend"]

    def _at(self, off: np.ndarray, width: int) -> np.ndarray:
        order = np.arange(width)[::-1] if self.obj.big_endian else np.arange(width)
        return off[:, None] + order   # column j: the byte of significance j

    def _read(self, off: np.ndarray, width: int) -> np.ndarray:
        shifts = np.arange(width, dtype=np.uint64) * np.uint64(8)
        return (self.buf[self._at(off, width)].astype(np.uint64) << shifts).sum(axis=1, dtype=np.uint64)

    def apply(self, k: np.ndarray) -> None:
        """Write S+A into the ABS32/ABS64 fields of rows ``k`` (the debug sections use no other
        kind, AAELF64 5.7.6); a field past the section's end is left alone."""
        k = k[~self.done[k]]
        if not len(k):
            return
        v = self.view[k]
        typ = (v["info"] & np.uint64(0xFFFFFFFF)).astype(np.int64)
        value = self._s_plus_a(v, (v["info"] >> np.uint64(32)).astype(np.int64)).astype(np.uint64)
        for t, width in ((R_AARCH64_ABS64, 8), (R_AARCH64_ABS32, 4)):
            m = (typ == t) & (self.offset[k] + width <= len(self.buf))
            if not m.any():
                continue
            off, val = self.offset[k][m], value[m]
            if "rel" in v.dtype.names and v["rel"][m].any():   # SHT_REL: the addend is the field
                val = np.where(v["rel"][m], val + self._read(off, width), val)
            if width == 4:
                val = val & np.uint64(0xFFFFFFFF)
            shifts = np.arange(width, dtype=np.uint64) * np.uint64(8)
            self.buf[self._at(off, width)] = ((val[:, None] >> shifts) & np.uint64(0xFF)).astype(np.uint8)
        self.done[k] = True


class _Program:
    """One decoded line program: its sequences as (section, start, end, addresses, rows)."""

    def __init__(self, sequences, header, comp_dir: str | None):
        self.sequences = sequences
        self.header = header
        self.comp_dir = comp_dir

    def path(self, index: int) -> str | None:
        h = self.header
        v5 = h["version"] >= 5
        files, dirs = h["file_entry"], h["include_directory"]
        k = index if v5 else index - 1
        if not 0 <= k < len(files):
            return None
        name = _printable(files[k].name)
        d = files[k].dir_index
        comp = _printable(dirs[0]) if v5 and dirs else self.comp_dir
        if d == 0:
            where = comp
        elif 0 <= (d if v5 else d - 1) < len(dirs):
            where = _printable(dirs[d if v5 else d - 1])
            if comp and not where.startswith("/"):
                where = posixpath.join(comp, where)
        else:
            return None
        return posixpath.join(where, name) if where else name


_ADDRESS_MASK = (1 << 64) - 1   # AArch64 ELF64: 8-byte addresses


def _sequence(section: int, addrs: list[int], states: list, end: int) -> tuple:
    """One sequence's rows sorted by address, the last row for an address winning (in program
    order), as (section, start, end, addresses, rows). Rows come in address order from a
    compiler, but an assembler that fills a subsection after the main text moves the address
    back (a wrapping advance), so they are sorted here rather than refused."""
    order = sorted(range(len(addrs)), key=lambda i: (addrs[i], i))
    out_a, out_s = [], []
    for i in order:
        if out_a and out_a[-1] == addrs[i]:
            out_s[-1] = states[i]
        else:
            out_a.append(addrs[i])
            out_s.append(states[i])
    return section, out_a[0], max(end, out_a[-1] + 1), out_a, out_s


class LineTable:
    """The line tables of one object, decoded lazily: ``lookup`` decodes only the line
    programs holding the sequences of the place's section that start nearest before it."""

    def __init__(self, obj: ObjectFile):
        self.obj = obj
        self._dwarf = None
        self._index: dict[int, tuple[list[int], list[int]]] | None = None
        self._programs: dict[int, _Program | None] = {}
        self._cu_of_line: dict[int, int] | None = None
        #: Work done: line programs decoded, and refused before decoding (a header that does not fit).
        self.stats = {"decoded": 0, "refused": 0}
        named = {}
        for s in obj.sections:
            if s.name in _DEBUG and s.type != SHT_NOBITS:
                named.setdefault(s.name, []).append(s)
        # One of each (a COMDAT-split or compressed section is not read: no lines).
        self._secs = {n: v[0].index for n, v in named.items() if len(v) == 1 and not v[0].flags & SHF_COMPRESSED}

    @property
    def present(self) -> bool:
        return ".debug_line" in self._secs

    def _setup(self) -> None:
        obj = self.obj
        self._line = _Section(obj, self._secs[".debug_line"])
        # The whole table: its relocations are one per sequence and a few per header.
        self._line_rows = self._line.fields(np.arange(len(self._line.offset)))
        self._info = _Section(obj, self._secs[".debug_info"]) if ".debug_info" in self._secs else None
        plain = {n: DebugSectionDescriptor(io.BytesIO(obj.section_data(i)), n, None, obj.sections[i].size, 0)
                 for n, i in self._secs.items() if n not in (".debug_line", ".debug_info", ".debug_str_offsets")}
        if ".debug_str_offsets" in self._secs:   # DWARF 5 string indices (file names may use them)
            offsets = _Section(obj, self._secs[".debug_str_offsets"])
            offsets.apply(np.arange(len(offsets.offset)))
            plain[".debug_str_offsets"] = offsets.descriptor()
        sec = {"debug_%s_sec" % n for n in ("info", "aranges", "abbrev", "frame", "str", "loc", "ranges", "line",
                                            "pubtypes", "pubnames", "addr", "str_offsets", "line_str", "loclists",
                                            "rnglists", "sup", "types")}
        kw = {k: None for k in sec}
        kw.update(eh_frame_sec=None, gnu_debugaltlink_sec=None)
        for n, d in plain.items():
            kw["debug_%s_sec" % n[len(".debug_"):]] = d
        kw["debug_line_sec"] = self._line.descriptor()
        kw["debug_info_sec"] = self._info.descriptor() if self._info is not None else None
        self._dwarf = DWARFInfo(config=DwarfConfig(little_endian=not obj.big_endian, machine_arch="AArch64",
                                                   default_address_size=8), **kw)
        line = self._line
        self._line_units = _units(line.buf, "big" if obj.big_endian else "little")
        starts = [u[0] for u in self._line_units]
        # Sequences by section: every ABS64 field of .debug_line against a place in a section.
        index: dict[int, list[tuple[int, int]]] = {}
        off_, typ, sym_sec, value_ = self._line_rows
        keep = (typ == R_AARCH64_ABS64) & (sym_sec > 0)
        for off, sec, value in zip(off_[keep].tolist(), sym_sec[keep].tolist(), value_[keep].tolist()):
            u = bisect.bisect_right(starts, off) - 1
            if u >= 0 and off < self._line_units[u][1]:
                index.setdefault(sec, []).append((value, u))
        self._index = {}
        for sec, rows in index.items():
            rows.sort()
            self._index[sec] = ([r[0] for r in rows], [r[1] for r in rows])

    def lookup(self, section: int, offset: int) -> Line | None:
        if not self.present:
            return None
        if self._index is None:
            self._setup()
        hit = self._index.get(section)
        if not hit:
            return None
        values, units = hit
        k = bisect.bisect_right(values, offset)
        if not k:
            return None
        # Only the sequences that start nearest before the place can hold it: sequences of one
        # section do not overlap, so one that starts earlier ends before that start.
        first = bisect.bisect_left(values, values[k - 1])
        for u in dict.fromkeys(units[first:k]):
            prog = self._program(u)
            if prog is None:
                continue
            for sec, start, end, addrs, rows in prog.sequences:
                if sec == section and start <= offset < end:
                    file, line, col = rows[bisect.bisect_right(addrs, offset) - 1]
                    try:
                        path = prog.path(file)
                    except Exception:  # a file table pyelftools read from damaged bytes
                        path = None
                    if path is None or line <= 0:
                        return None
                    return Line(path, line, col or None)
        return None

    def _program(self, u: int) -> _Program | None:
        if u in self._programs:
            return self._programs[u]
        try:
            prog = self._decode(u)
        except Exception:  # a corrupt line program or unit (pyelftools' and construct's errors)
            prog = None
        self._programs[u] = prog
        return prog

    def _cu_offset(self, line_offset: int) -> int | None:
        """The compilation unit whose DW_AT_stmt_list is ``line_offset``: the field is a
        relocation against .debug_line in .debug_info, so the table says which unit holds it."""
        if self._info is None:
            return None
        if self._cu_of_line is None:
            info = self._info
            cus = _units(info.buf, "big" if self.obj.big_endian else "little")
            starts = [c[0] for c in cus]
            # Rows against a symbol of .debug_line (its section symbol): the DW_AT_stmt_list fields.
            line_syms = np.nonzero(self.obj.symbol_section == self._line.index)[0].astype(np.uint64)
            k = np.nonzero(np.isin(info.view["info"] >> np.uint64(32), line_syms))[0]
            offs, typ, _, values = info.fields(k)
            keep = typ == R_AARCH64_ABS32
            out: dict[int, int] = {}
            for off, value in zip(offs[keep].tolist(), values[keep].tolist()):
                c = bisect.bisect_right(starts, off) - 1
                if c >= 0 and off < cus[c][1]:
                    out.setdefault(value, cus[c][0])
            self._cu_of_line = out
            self._cus = dict(cus)
        return self._cu_of_line.get(line_offset)

    def _decode(self, u: int) -> _Program | None:
        start, end = self._line_units[u]
        if not _v5_header_is_sound(self._line.buf, start, end, "big" if self.obj.big_endian else "little"):
            self.stats["refused"] += 1
            return None
        self.stats["decoded"] += 1
        cu_off = self._cu_offset(start)
        if cu_off is None:
            return None
        self._info.apply(self._info.rows(cu_off, self._cus[cu_off]))
        cu = self._dwarf.get_CU_at(cu_off)
        top = cu.get_top_DIE()
        stmt = top.attributes.get("DW_AT_stmt_list")
        if stmt is None or stmt.value != start:
            return None
        prog = self._dwarf.line_program_for_CU(cu)
        if prog is None:
            return None
        comp = top.attributes.get("DW_AT_comp_dir")
        comp_dir = _printable(comp.value) if comp is not None and isinstance(comp.value, bytes) else None
        # The k-th DW_LNE_set_address operand is the k-th ABS64 field after the header.
        off_, typ, sym_sec, value_ = self._line_rows
        k = self._line.rows(prog.program_start_offset, end)
        fields = [(s, v) for s, v, t in zip(sym_sec[k].tolist(), value_[k].tolist(), typ[k].tolist())
                  if t == R_AARCH64_ABS64]
        sequences, addrs, states, section, n_set = [], [], [], None, 0
        for e in prog.get_entries():
            if e.is_extended and e.command == DW_LNE_set_address:
                if n_set >= len(fields) or fields[n_set][1] != e.args[0] or fields[n_set][0] <= 0:
                    return None  # an address no relocation places: this table cannot be trusted
                sec = fields[n_set][0]
                n_set += 1
                if section is not None and sec != section:
                    return None  # one sequence, two sections: not what a compiler writes
                section = sec
                continue
            st = e.state
            if st is None:
                continue
            if st.end_sequence:
                if section is not None and addrs:
                    sequences.append(_sequence(section, addrs, states, st.address & _ADDRESS_MASK))
                addrs, states, section = [], [], None
                continue
            if section is None:
                continue  # rows before any set_address have no section
            # Address arithmetic is modulo the address size: the assembler moves back over a
            # subsection (e.g. the kernel's out-of-line alternatives) with an advance that wraps.
            addrs.append(st.address & _ADDRESS_MASK)
            states.append((st.file, st.line, st.column))
        if n_set != len(fields):
            return None
        return _Program(sequences, prog.header, comp_dir)
