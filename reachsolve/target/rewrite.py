"""The standard rewrites of a short-range instruction into a longer-range sequence, as data.

One row per instruction form: the assembly a person writes (templates over the
site's own operands, read from the encoding by decode.operands), the words an
assembler emits for it, and the relocations the new sequence carries (at byte
offsets from the site). The rewritten site is then decided like any other site:
prove/fix.py builds the grown object and runs the prover on it.

The forms are the ones the Linux arm64 port uses when a target moves out of reach
(arch/arm64/include/asm/assembler.h: ``adr_l``, ``ldr_l``; the 2021 KVM fix
``cbnz x0, 1f; b hyp_panic; 1:``). Field layouts: Arm ARM C4.1 (branches,
PC-rel. addressing, load/store unsigned immediate); relocation types: AAELF64 5.7.
"""
from __future__ import annotations

from dataclasses import dataclass

from .catalogue import BY_NAME, Field
from .decode import Operands, cond_name, operands
from .encoding import insert

#: R_AARCH64_ADD_ABS_LO12_NC (AAELF64): no overflow check, so it is no catalogue row.
ADD_ABS_LO12_NC = 277
#: The general register a rewrite uses when the site has none to spare (FP/SIMD and prfm
#: literals, b/bl): x16 (IP0), which AAPCS64 leaves to veneers, so no caller relies on it
#: across a branch.
SCRATCH = 16

# LDR (immediate, unsigned offset) per literal form (Arm ARM C4.1.66): (opcode bits, access
# bytes) keyed by (V, opc) of the LDR (literal) it replaces.
_LDST = {(0, 0): (0xB9400000, 4), (0, 1): (0xF9400000, 8), (0, 2): (0xB9800000, 4), (0, 3): (0xF9800000, 8),
         (1, 0): (0xBD400000, 4), (1, 1): (0xFD400000, 8), (1, 2): (0x3DC00000, 16)}
_LDST_TYPE = {4: "R_AARCH64_LDST32_ABS_LO12_NC", 8: "R_AARCH64_LDST64_ABS_LO12_NC",
              16: "R_AARCH64_LDST128_ABS_LO12_NC"}
_B, _BL, _ADRP, _ADD, _BR, _BLR = 0x14000000, 0x94000000, 0x90000000, 0x91000000, 0xD61F0000, 0xD63F0000


@dataclass(frozen=True)
class Form:
    """One row of the table: ``asm`` are templates ({sym}, {reg}, {inv}, {bit}, {base},
    {mn}), ``words`` names of the word builders below, ``relocs`` (byte offset, type name;
    "ldst" is the access size's LDST*_ABS_LO12_NC), ``scratch``: the form needs a general
    register the site does not name."""

    name: str
    classes: tuple[str, ...]      # decode classes it applies to (catalogue RelocSpec.insns)
    asm: tuple[str, ...]
    words: tuple[str, ...]
    relocs: tuple[tuple[int, str], ...]
    scratch: bool = False
    clobbers: str = ""            # registers the sequence overwrites that the original did not

    @property
    def growth(self) -> int:
        return 4 * len(self.words) - 4


FORMS: dict[str, Form] = {f.name: f for f in (
    Form("cbz", ("cbz",), ("{inv} {reg}, 1f", "b {sym}", "1:"), ("skip", "b"), ((4, "R_AARCH64_JUMP26"),)),
    Form("b.cond", ("b.cond",), ("b.{inv} 1f", "b {sym}", "1:"), ("skip", "b"), ((4, "R_AARCH64_JUMP26"),)),
    Form("b.always", ("b.cond",), ("b {sym}",), ("b",), ((0, "R_AARCH64_JUMP26"),)),
    Form("tbz", ("tbz",), ("{inv} {reg}, #{bit}, 1f", "b {sym}", "1:"), ("skip", "b"),
         ((4, "R_AARCH64_JUMP26"),)),
    Form("adr", ("adr",), ("adrp {reg}, {sym}", "add {reg}, {reg}, :lo12:{sym}"), ("adrp", "add"),
         ((0, "R_AARCH64_ADR_PREL_PG_HI21"), (4, "R_AARCH64_ADD_ABS_LO12_NC"))),
    Form("ldr", ("ldr-literal",), ("adrp {base}, {sym}", "{mn} {reg}, [{base}, :lo12:{sym}]"), ("adrp", "ldst"),
         ((0, "R_AARCH64_ADR_PREL_PG_HI21"), (4, "ldst"))),
    Form("ldr-scratch", ("ldr-literal",), ("adrp {base}, {sym}", "{mn} {reg}, [{base}, :lo12:{sym}]"),
         ("adrp", "ldst"), ((0, "R_AARCH64_ADR_PREL_PG_HI21"), (4, "ldst")), scratch=True,
         clobbers="x{scratch}"),
    Form("b", ("b",), ("adrp x{scratch}, {sym}", "add x{scratch}, x{scratch}, :lo12:{sym}", "br x{scratch}"),
         ("adrp", "add", "br"), ((0, "R_AARCH64_ADR_PREL_PG_HI21"), (4, "R_AARCH64_ADD_ABS_LO12_NC")),
         scratch=True, clobbers="x{scratch}"),
    Form("bl", ("bl",), ("adrp x{scratch}, {sym}", "add x{scratch}, x{scratch}, :lo12:{sym}", "blr x{scratch}"),
         ("adrp", "add", "blr"), ((0, "R_AARCH64_ADR_PREL_PG_HI21"), (4, "R_AARCH64_ADD_ABS_LO12_NC")),
         scratch=True, clobbers="x{scratch}"),
)}


@dataclass(frozen=True)
class Rewrite:
    """A rewrite of one site: its form, the assembly with the site's operands, the words
    (little-endian instructions, 4 + growth bytes) and the new relocations (offset from the
    site, type number). ``access`` and ``literal_align``: the :lo12: load's access size and
    the alignment the literal needed (they differ when the new form is stricter)."""

    form: Form
    asm: tuple[str, ...]
    words: tuple[int, ...]
    relocs: tuple[tuple[int, int], ...]
    clobbers: str = ""
    scratch: str = ""
    access: int = 0
    literal_align: int = 0

    @property
    def growth(self) -> int:
        return self.form.growth

    @property
    def checked(self) -> tuple[tuple[int, str], ...]:
        """The new relocations that carry a range or alignment check (catalogue rows)."""
        return tuple((off, BY_NUMBER_NAME[t]) for off, t in self.relocs if t in BY_NUMBER_NAME)


BY_NUMBER_NAME = {s.number: s.name for s in BY_NAME.values()}


def _type_number(name: str) -> int:
    return ADD_ABS_LO12_NC if name == "R_AARCH64_ADD_ABS_LO12_NC" else BY_NAME[name].number


def symbol_text(symbol: str, addend: int) -> str:
    """``sym``, ``sym+0x10`` or ``sym-0x4`` as an assembler operand."""
    return symbol + (f"+{addend:#x}" if addend > 0 else f"-{-addend:#x}" if addend < 0 else "")


def prfm_name(op: int) -> str:
    """A prefetch operation as assemblers spell it (Arm ARM C6.2.247), else its number."""
    kind, target, policy = op >> 3, op >> 1 & 3, op & 1
    if kind > 2 or target > 2:
        return f"#{op}"
    return f"{('pld', 'pli', 'pst')[kind]}l{target + 1}{('keep', 'strm')[policy]}"


def choose(klass: str, word: int) -> Form | None:
    """The form for an instruction of decode class ``klass``, or None when it has no plain
    rewrite (an FP/SIMD literal of an unallocated size, adr into the zero register)."""
    ops = operands(word)
    if ops is None:
        return None
    if klass == "b.cond":
        return FORMS["b.always" if ops.cond >= 14 else "b.cond"]
    if klass == "ldr-literal":
        general = ops.bank in ("w", "x") and ops.reg != 31
        return FORMS["ldr" if general else "ldr-scratch"]
    if klass == "adr" and ops.reg == 31:
        return None  # adr xzr: add xzr would be add sp; nothing to rewrite
    return FORMS.get(klass) if klass in ("cbz", "tbz", "adr", "b", "bl") else None


def _skip(word: int, ops: Operands) -> int:
    """The inverted short branch over the next instruction (8 bytes forward)."""
    if ops.op == "b.cond":
        return insert(Field.IMM19, 0, (word & ~15) | (ops.cond ^ 1), 8)
    return insert(Field.IMM14 if ops.op in ("tbz", "tbnz") else Field.IMM19, 0, word ^ (1 << 24), 8)


def rewrite(klass: str, word: int, symbol: str, addend: int, scratch: int = SCRATCH) -> Rewrite | None:
    """The rewrite of the site ``word`` (decode class ``klass``) aimed at ``symbol``+``addend``."""
    form = choose(klass, word)
    if form is None:
        return None
    ops = operands(word)
    simd, opc = word >> 26 & 1, word >> 30
    base = scratch if form.scratch else ops.reg
    ldst, access = _LDST.get((simd, opc), (0, 0)) if klass == "ldr-literal" else (0, 0)
    mn = ops.op if ops.op != "b.cond" else ""
    inv = {"cbz": "cbnz", "cbnz": "cbz", "tbz": "tbnz", "tbnz": "tbz"}.get(ops.op)
    if ops.op == "b.cond":
        inv = cond_name(ops.cond ^ 1)
    reg = prfm_name(ops.reg) if ops.op == "prfm" else ops.register
    fill = {"sym": symbol_text(symbol, addend), "reg": reg, "inv": inv, "bit": ops.bit, "base": f"x{base}",
            "mn": mn, "scratch": scratch}
    build = {"skip": lambda: _skip(word, ops), "b": lambda: _B, "adrp": lambda: _ADRP | base,
             "add": lambda: _ADD | base << 5 | base, "ldst": lambda: ldst | base << 5 | ops.reg,
             "br": lambda: _BR | scratch << 5, "blr": lambda: _BLR | scratch << 5, "bl": lambda: _BL}
    relocs = tuple((off, _type_number(_LDST_TYPE[access] if t == "ldst" else t)) for off, t in form.relocs)
    return Rewrite(form, tuple(a.format(**fill) for a in form.asm), tuple(build[w]() for w in form.words), relocs,
                   form.clobbers.format(scratch=scratch), f"x{scratch}" if form.scratch else "", access,
                   4 if klass == "ldr-literal" else 0)
