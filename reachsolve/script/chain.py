"""Layouts that follow a linker script: "ordered" (any build) and "as-linked" (this build).

The script is walked once into a chain of items: our input sections, in the
order the script places them (first matching input description wins), and
points where the location counter is set or a symbol is defined. In the
ordered model every item keeps its place in the chain, but wherever an input
description could take more input (other objects, or this object's own code
grown in another configuration) the gap before an item is free; the image
bound and the script's ASSERTs are what cap it. The as-linked layout is the
chain packed with alignment padding only, as the linker lays this object out
when it is the first file of the link. Both take this object as the first file
(as vmlinux.o is in the kernel's final link): growth lies after each of its
sections and after each input description, never before its first section.

Symbols assigned by the script become linear terms over the chain (with
auxiliary variables for masks, shifts and ALIGN of a layout-dependent value),
so a relocation against `_kernel_size_le_lo32` is judged with its real value.
"""
from __future__ import annotations
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ModelError
from ..ir import Lin, Var
from ..objfile.elf import SHF_TLS, SHT_NOBITS, STB_LOCAL, SYM_COMMON, SYM_UNDEF, ObjectFile
from . import ast as L
from .match import assign, synthetic_spec
from .parser import parse_defsym
from .terms import SymbolTerms


SYNTHETIC_ALIGN = 8  # .got and .got.plt: 8-byte entries (sh_addralign 8 from both linkers)


@dataclass(slots=True)
class Item:
    var: Var
    size: int            # bytes this item puts after its start
    align: int           # its start is a multiple of this
    gap: bool            # may more input lie just before it (ordered model)?
    label: str
    out: str
    spec: str = ""       # the input description that placed it
    gap_from: tuple = ()  # the descriptions whose further input may lie just before it
    pre: int = 0         # `. += pre` before it
    pre_expr: object = None   # `. += expr` with a layout-dependent expr (as-linked only)
    fixed: object = None      # expression giving its exact address (`. = expr`, an output address)
    dot: Lin | None = None    # dot before the item, for `fixed` expressions that use `.`
    fixed_term: object = None  # `fixed` and `pre_expr` as terms (set when the walk ends)
    pre_term: object = None
    at: tuple = (0, 0)        # line and column of the statement that made it


@dataclass
class SymDef:
    expr: object
    dot: Lin | None
    provide: bool
    line: int
    col: int
    origin: str | None = None  # where a definition from outside the script came from (--defsym)


def _spec_text(spec: L.InputSpec) -> str:
    inner = " ".join(p.glob for p in spec.patterns)
    text = f"{spec.file}({inner})"
    return f"KEEP({text})" if spec.keep else text


class ScriptLayout(SymbolTerms):
    """One object laid out by one script: the chain of items, symbol definitions and ASSERTs."""

    def __init__(self, script: L.Script, obj: ObjectFile, path: str, linker: str = "both",
                 defsym: tuple = (), synthetic: dict[str, dict[str, int]] | None = None):
        self.script = script
        self.obj = obj
        self.path = path
        self.items: list[Item] = []
        self.pos: dict[Var, int] = {}
        self.symbols: dict[str, SymDef] = {}
        self.asserts: list[tuple[L.Assert, Lin | None]] = []
        self.out_start: dict[str, Lin] = {}
        self.out_end: dict[str, Lin] = {}
        self.aux: dict[Var, Aux] = {}
        self._npoints = 0
        self._out_start_var = None
        self._tbss_in: dict[str, str] = {}    # output section -> the last .tbss input it took
        self._tbss_out = ""                   # a .tbss output section already walked
        self.tbss_shadowed: set[int] = set()  # .tbss inputs placed where the chain cannot say
        self._at = (0, 0)  # the statement being read, for errors inside its expressions
        self._gap = False
        self._gap_from: list[str] = []
        self._dot_term: Lin | None = None     # see _dot
        self._dot_at: tuple | None = None
        self._objsyms = self._object_symbols()
        self._terms: dict[str, Lin] = {}
        self._busy: set[str] = set()
        self._src: str | None = None  # set while a --defsym expression is read: errors name it
        match = assign(script, obj, path, linker)
        self._specs, self.members = match.specs, match.members
        self.spec_of, self.discarded, self.orphans = match.spec_of, match.discarded, match.orphans
        # Linker-made input sections (name -> bytes per linker profile): an item where the
        # description that takes them lies, after this object's sections there (they come
        # from no input file). The chain holds the least size; ``alt_rows`` the (size,
        # alignment) each other profile gives an item, for its own as-linked walk. A section
        # of 0 bytes is no section (both linkers drop it), so it aligns nothing.
        self._syn_at: dict[int, list[tuple[str, dict[str, int]]]] = {}
        self.alt_rows: dict[str, dict[int, tuple[int, int]]] = {}
        for name, sizes in (synthetic or {}).items():
            k = synthetic_spec(script, path, name, linker)
            if k is not None and max(sizes.values()) > 0:
                self._syn_at.setdefault(k, []).append((name, sizes))
        self._walk()
        # --defsym NAME=EXPR (and a model's [defsym]): an assignment the linkers make after
        # the script's own, so it wins over a script definition of the same name (ld.lld
        # and GNU ld both); '.' has no value there.
        for name, text, origin in defsym:
            cmd = parse_defsym(text, origin)
            self.symbols[name] = SymDef(cmd.expr, None, False, cmd.line, cmd.col, origin)
        self._terms.clear()  # terms read during the walk may predate later definitions
        # Fixed addresses, layout-dependent `. +=` and ASSERTs as terms, now that every
        # definition is known (auxiliary variables are numbered in this order).
        for it in self.items:
            self._at = it.at
            it.fixed_term = self.term(it.fixed, it.dot) if it.fixed is not None else None
            it.pre_term = self.term(it.pre_expr, it.dot) if it.pre_expr is not None else None
        self.assert_cons = []
        for a, dot in self.asserts:
            self._at = (a.line, a.col)
            self.assert_cons.append((a, self.formula(a.expr, dot)))

    # -- object symbols ------------------------------------------------------------------
    def _object_symbols(self) -> dict[str, tuple[int, int]]:
        """Global definitions of the object: name -> (section code, value)."""
        o = self.obj
        if len(o.symbols) < 2:
            return {}
        where = o.symbol_section
        keep = ((where != SYM_UNDEF) & (where != SYM_COMMON) & ((o.symbols["info"] >> 4) != STB_LOCAL))
        keep[0] = False
        idx = np.nonzero(keep)[0]
        out = dict(zip(o.symbol_names(idx), zip(where[idx].tolist(), o.symbols["value"][idx].tolist())))
        out.pop("", None)  # a symbol with no name defines nothing a script can name
        return out

    # -- the walk --------------------------------------------------------------------
    def _point(self, label: str, out: str, align: int = 1, **kw) -> Item:
        self._npoints += 1
        it = Item(("pt", self._npoints), 0, align, self._gap, label, out, at=self._at, **kw)
        self._push(it)
        return it

    def _push(self, it: Item) -> None:
        if it.dot is None and (it.fixed is not None or it.pre_expr is not None):
            it.dot = self._dot   # what its expression reads as '.'
        if it.gap:
            it.gap_from = tuple(self._gap_from)
        self._gap_from = []
        self.pos[it.var] = len(self.items)
        self.items.append(it)
        self._dot_at = (it.var, it.size)
        self._gap = False

    @property
    def _dot(self) -> Lin | None:
        """The location counter: the end of the last item, made a term when first read (most
        items are sections, after which nothing reads it)."""
        at = self._dot_at
        if at is not None:
            self._dot_term = Lin(((at[0], 1),), at[1])  # what Lin.var(var) + size gives, built directly
            self._dot_at = None
        return self._dot_term

    @_dot.setter
    def _dot(self, value: Lin | None) -> None:
        self._dot_term, self._dot_at = value, None

    def _walk(self) -> None:
        self._spec_index = 0
        for cmd in self.script.commands:
            if isinstance(cmd, L.Sections):
                for st in cmd.body:
                    self._statement(st, None)
            elif isinstance(cmd, L.Assign):
                self._at = (cmd.line, cmd.col)
                self._assign(cmd, None, top=True)
            elif isinstance(cmd, L.Assert):
                self.asserts.append((cmd, self._dot))
        if not self.items:
            raise ModelError(f"{self.path}: the script places none of the object's sections")
        self.first = self.items[0]
        self.last = self.items[-1]

    def _statement(self, st, out: str | None) -> None:
        self._at = (getattr(st, "line", 0), getattr(st, "col", 0))
        if self._tbss_out and out is None and not isinstance(st, L.Assert):
            # ld.lld lays a .tbss output section out apart from the location counter: what
            # follows starts where the counter was before it (its size, alignment and inner
            # statements do not move it); the chain cannot say that.
            raise self._err(st, f"the layout model cannot follow what comes after the .tbss output section "
                                f"{self._tbss_out} (ld.lld does not advance the location counter over TLS "
                                f"NOBITS input); place it last in SECTIONS")
        if isinstance(st, L.OutputSection):
            self._output(st)
        elif isinstance(st, L.Assign):
            self._assign(st, out)
        elif isinstance(st, L.Assert):
            self.asserts.append((st, self._dot))
        elif isinstance(st, L.InputSpec):
            k = self._spec_index
            self._spec_index += 1
            if out == "/DISCARD/":
                return
            text = _spec_text(st)
            sections, tbss, items, pos = self.obj.sections, self._tbss_in, self.items, self.pos
            o, after = out or "", (text,)
            it = None
            for idx, _ in self.members[k]:   # each as _push makes it, without the call
                sec = sections[idx]
                if o in tbss or (sec.type == SHT_NOBITS and sec.flags & SHF_TLS):
                    self._tbss_check(sec, out, st)
                if it is None:
                    it = Item(("sec", idx), sec.footprint, sec.align, self._gap, sec.name, o, text)
                    if it.gap:
                        it.gap_from = tuple(self._gap_from)
                else:  # after one of ours: the section may grow in another configuration
                    it = Item(("sec", idx), sec.footprint, sec.align, True, sec.name, o, text, after)
                pos[it.var] = len(items)
                items.append(it)
            if it is not None:
                self._dot_at = (it.var, it.size)
                self._gap, self._gap_from = True, [text]
            for name, sizes in self._syn_at.get(k, ()):
                least = min(sizes.values())
                self._push(Item(("syn", name), least, SYNTHETIC_ALIGN if least else 1, self._gap, name,
                                out or "", text))
                for prof, size in sizes.items():
                    if size != least:
                        self.alt_rows.setdefault(prof, {})[len(self.items) - 1] = (size, SYNTHETIC_ALIGN)
                        start = self.pos.get(self._out_start_var)
                        if start is not None and self.items[start].align < SYNTHETIC_ALIGN:
                            self.alt_rows[prof][start] = (0, SYNTHETIC_ALIGN)
                self._gap = True  # other objects add entries
                self._gap_from = [text]
            self._gap = True  # other objects' input matching it may follow ours
            if text not in self._gap_from:
                self._gap_from.append(text)
        elif isinstance(st, L.Data):
            size = {"BYTE": 1, "SHORT": 2, "LONG": 4, "QUAD": 8, "SQUAD": 8}.get(st.kind)
            if size is None:
                raise self._err(st, f"{st.kind} is not supported by the layout model")
            it = self._point(st.kind, out or "")
            it.size = size
            self._dot = Lin.var(it.var) + size
        elif isinstance(st, (L.Fill, L.Constructors)):
            return
        else:
            raise self._err(st, f"{type(st).__name__} is not supported inside SECTIONS by the layout model")

    def _tbss_check(self, sec, out: str | None, st) -> None:
        """TLS NOBITS input takes no address space in the chain (gABI), so in an output section
        a second .tbss input shares the first's place, while ld.lld lays them out one after
        another in the TLS block: sites that use a later one are left unknown (``shadowed``).
        Other input after a .tbss in the same output section would be misplaced: an error."""
        tls_bss = sec.type == SHT_NOBITS and bool(sec.flags & SHF_TLS)
        last = self._tbss_in.get(out or "")
        if last is not None:
            if not tls_bss:
                raise self._err(st, f"the layout model cannot follow {sec.name} after the TLS NOBITS input "
                                    f"{last} in {out}: ld.lld gives {last} room there, the chain none")
            self.tbss_shadowed.add(sec.index)
        if tls_bss:
            self._tbss_in[out or ""] = sec.name

    def _has_alloc(self, body) -> bool:
        k = self._spec_index
        for st in body:
            if isinstance(st, L.InputSpec):
                if self.members.get(k) or k in self._syn_at:
                    return True
                k += 1
            elif isinstance(st, (L.Assign, L.Data)):
                return True
        return False

    def _output(self, st: L.OutputSection) -> None:
        name = st.name
        if name == "/DISCARD/":
            for s in st.body:
                if isinstance(s, L.InputSpec):
                    self._spec_index += 1
            return
        if st.address is not None and not self._has_alloc(st.body) or st.type in ("INFO", "COPY", "DSECT"):
            # Non-allocated output (.comment 0, debug info): no part of the image.
            for s in st.body:
                if isinstance(s, L.InputSpec):
                    self._spec_index += 1
            return
        align = 1
        k = self._spec_index
        aligns = self.obj.section_aligns
        for s in st.body:
            if isinstance(s, L.InputSpec):
                mem = self.members.get(k)
                if mem:
                    align = max(align, int(aligns[[idx for idx, _ in mem]].max()))
                if any(min(sz.values()) for _, sz in self._syn_at.get(k, ())):
                    align = max(align, SYNTHETIC_ALIGN)
                k += 1
        if st.align is not None:
            align = max(align, self._alignment(st.align, f"ALIGN of {name}"))
        if st.address is not None:
            start = self._point(f"start of {name}", name, align, fixed=st.address)
            start.gap = False
        else:
            start = self._point(f"start of {name}", name, align)
        self.out_start[name] = Lin.var(start.var)
        self._out_start_var = start.var
        for s in st.body:
            self._statement(s, name)
        if self._gap:
            self._point(f"end of {name}", name, 1)
        self.out_end[name] = self._dot
        if name in self._tbss_in:
            if st.address is not None:   # measured: ld.lld 14 puts it at the location counter
                raise self._err(st, f"the layout model cannot follow the address of the .tbss output section "
                                    f"{name}: ld.lld ignores it")
            self._tbss_out = name

    def _assign(self, st: L.Assign, out: str | None, top: bool = False) -> None:
        expr = st.expr
        if st.op != "=":
            op = st.op[:-1]
            expr = L.Binary(op, L.Sym(st.target) if st.target != "." else L.Dot(), st.expr)
        if st.target != ".":
            if st.provide and st.target in self._objsyms:
                return  # PROVIDE only defines what nothing else defines
            dot = None if top and self._dot is None else self._dot
            if self._gap and self._dot is not None and not top:
                self._point(f"{st.target} = .", out or "")
                dot = self._dot
            self.symbols[st.target] = SymDef(expr, dot, st.provide, st.line, st.col)
            return
        if top:
            raise self._err(st, "assignment to '.' outside SECTIONS")
        # ". = ALIGN(n)", ". = . + k", ". += k" or an absolute ". = expr".
        if isinstance(expr, L.Call) and expr.name == "ALIGN" and len(expr.args) == 1:
            n = self._alignment(expr.args[0], "ALIGN")
            self._point(f". = ALIGN({self._const(expr.args[0], 'ALIGN'):#x})", out or "", n)  # as written
            return
        if isinstance(expr, L.Binary) and expr.op in "+-" and isinstance(expr.left, L.Dot):
            try:
                k = self._const(expr.right, "increment")
            except ModelError:  # depends on the layout, or on a symbol defined further on
                if expr.op == "-":
                    raise self._err(st, "cannot model moving the location counter back by a layout-dependent "
                                        "amount") from None
                self._point(". += (layout-dependent)", out or "", pre_expr=expr.right)
                return
            if expr.op == "-" and k:
                # ld.lld: "unable to move location counter backward"; GNU ld likewise.
                raise self._err(st, "the location counter may not move backwards")
            self._point(f". += {k:#x}", out or "", pre=k if expr.op == "+" else 0)
            return
        self._point(". = (expression)", out or "", fixed=expr)
        self.items[-1].gap = False


class DefsymTerms(SymbolTerms):
    """--defsym (and a model's [defsym]) with no script (free placement): each symbol a term
    over numbers, the other such symbols and the object's own global definitions (a section,
    a layout variable there, plus an offset), evaluated as the linkers do (64-bit)."""

    def __init__(self, obj: ObjectFile, defsym: tuple):
        self.obj, self.path = obj, "--defsym"
        self.symbols: dict[str, SymDef] = {}
        self.pos: dict = {}
        self.orphans = {s.index for s in obj.sections if s.alloc}  # every section is a variable
        self.discarded: set = set()
        self.out_start: dict = {}
        self.out_end: dict = {}
        self.aux: dict = {}
        self._terms: dict = {}
        self._busy: set = set()
        self._at, self._src = (0, 0), None
        self._objsyms = ScriptLayout._object_symbols(self)
        for name, text, origin in defsym:
            cmd = parse_defsym(text, origin)
            self.symbols[name] = SymDef(cmd.expr, None, False, cmd.line, cmd.col, origin)

    def defined(self, name: str) -> Lin | None:
        """The value --defsym gives ``name``, or None; a ModelError if the free model cannot
        follow it (a masked or aligned section address needs a script's auxiliary terms)."""
        d = self.symbols.get(name)
        if d is None:
            return None
        t = self.symbol_term(name)
        if any(v[0] != "sec" for v in t.vars):
            raise ModelError(f"{d.origin}: {name}: under free placement a --defsym value must be a number or "
                             f"an object symbol plus a number; this one needs a linker script's layout")
        return t
