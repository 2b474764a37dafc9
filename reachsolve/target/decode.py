"""Instruction decoding with capstone: what a site's instruction is, and where it goes.

AArch64 instructions are little-endian in every object, big-endian (BE8)
ones included, so words are always decoded as little-endian here.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from ..ir import page

_OP_IMM = 2
_OP_MEM = 3


@lru_cache(maxsize=1)
def _engine():
    """capstone, loaded when the first word is decoded (most runs decode few)."""
    import capstone as cs
    arch = getattr(cs, "CS_ARCH_ARM64", None) or getattr(cs, "CS_ARCH_AARCH64")
    md = cs.Cs(arch, cs.CS_MODE_ARM)
    md.detail = True
    return md



def access_size(word: int) -> int:
    """Bytes accessed by a load/store (unsigned immediate), from its encoding: size is bits
    31:30; for the SIMD&FP forms (bit 26) size 0 with opc<1> set is the 128-bit access
    (Arm ARM C4.1.66, "Load/store register (unsigned immediate)"). Never from a register's
    name: capstone spells x29/x30 as fp/lr."""
    size, simd, opc = word >> 30, (word >> 26) & 1, (word >> 22) & 3
    return 16 if simd and size == 0 and opc & 2 else 1 << size


@dataclass(frozen=True)
class Insn:
    text: str                 # "cbz x0, #0x104c"
    klass: str                # the class names used in catalogue.RelocSpec.insns
    target: int | None = None  # branch/adr/adrp/literal destination
    disp: int | None = None    # unsigned-offset load/store displacement in bytes
    imm: int | None = None     # move-wide immediate as capstone shows it
    access: int | None = None  # load/store access size in bytes


def _classify(mn: str, ops, word: int) -> tuple[str, dict]:
    imms = [o.imm for o in ops if o.type == _OP_IMM]
    mems = [o for o in ops if o.type == _OP_MEM]
    if mn.startswith("b."):
        return "b.cond", {"target": imms[-1]}
    if mn in ("cbz", "cbnz"):
        return "cbz", {"target": imms[-1]}
    if mn in ("tbz", "tbnz"):
        return "tbz", {"target": imms[-1]}
    if mn in ("b", "bl", "adr", "adrp"):
        return mn, {"target": imms[-1]}
    if (word & 0x3B000000) == 0x18000000 and imms:  # load register (literal)
        return "ldr-literal", {"target": imms[-1]}
    if (word & 0x1F800000) == 0x12800000:  # move wide (immediate): movn/movz/movk
        return "movw", {"imm": imms[-1] if imms else None}
    if (word & 0x7F800000) == 0x11000000:  # add (immediate), either shift (Arm ARM C4.1.65)
        return "add-imm", {"imm": imms[-1] if imms else None}
    if (word & 0x3B000000) == 0x39000000 and len(mems) == 1:  # load/store, unsigned offset
        return "ldst", {"disp": mems[0].mem.disp, "access": access_size(word)}
    return "other", {}


_MASK64 = (1 << 64) - 1


@lru_cache(maxsize=65536)
def _decode_at_zero(word: int) -> Insn:
    raw = word.to_bytes(4, "little")
    for i in _engine().disasm(raw, 0, 1):
        text = f"{i.mnemonic} {i.op_str}".strip()
        klass, extra = _classify(i.mnemonic, i.operands, word)
        return Insn(text, klass, **extra)
    return Insn(f".inst {word:#010x}", "undefined")


def decode(word: int, address: int = 0) -> Insn:
    """Decode one 32-bit instruction word located at ``address``.

    capstone is asked once per distinct word (relocated code repeats the same
    words); a PC-relative target is then moved to ``address``, which gives the
    text capstone prints there (tests compare the two).
    """
    insn = _decode_at_zero(word)
    if insn.target is None or not address:
        return insn
    shift = page(address) if insn.klass == "adrp" else address
    target = (insn.target + shift) & _MASK64
    text = insn.text.rsplit("#", 1)[0] + (f"#{target}" if target <= 9 else f"#{target:#x}")  # capstone's style
    return Insn(text, insn.klass, target, insn.disp, insn.imm, insn.access)


def decode_uncached(word: int, address: int) -> str:
    """capstone's own text for ``word`` at ``address`` (the reference for decode())."""
    for i in _engine().disasm(word.to_bytes(4, "little"), address, 1):
        return f"{i.mnemonic} {i.op_str}".strip()
    return f".inst {word:#010x}"


_CONDS = ("eq", "ne", "hs", "lo", "mi", "pl", "vs", "vc", "hi", "ls", "ge", "lt", "gt", "le", "al", "nv")


@dataclass(frozen=True)
class Operands:
    """The operands of a branch, adr or literal load, read from its encoding bits (Arm ARM
    C4.1: compare-and-branch, test-and-branch, conditional branch, PC-rel. addressing, load
    register (literal)); never from capstone's text, which spells x29/x30 as fp/lr.

    ``op`` is the mnemonic (``b.cond`` for every condition, ``ldr``/``ldrsw``/``prfm`` for the
    literal loads), ``reg`` Rt/Rd (the prefetch operation for prfm), ``bank`` its register
    file (``x``/``w`` general, ``s``/``d``/``q`` FP/SIMD, ``""`` none), ``cond`` the condition
    number, ``bit`` the tested bit."""

    op: str
    reg: int = 0
    bank: str = ""
    cond: int | None = None
    bit: int | None = None

    @property
    def register(self) -> str:
        """Rt/Rd as an assembler writes it (register 31 is the zero register here)."""
        if self.bank in ("x", "w"):
            return f"{self.bank}zr" if self.reg == 31 else f"{self.bank}{self.reg}"
        return f"{self.bank}{self.reg}"


def cond_name(cond: int) -> str:
    return _CONDS[cond & 15]


def operands(word: int) -> Operands | None:
    """The operands of ``word`` if it is one of the instructions a rewrite replaces, else None."""
    rt = word & 31
    if (word & 0x7E000000) == 0x34000000:      # CBZ/CBNZ: sf 011010 op imm19 Rt
        return Operands("cbnz" if word >> 24 & 1 else "cbz", rt, "x" if word >> 31 else "w")
    if (word & 0x7E000000) == 0x36000000:      # TBZ/TBNZ: b5 011011 op b40 imm14 Rt
        bit = (word >> 31) << 5 | (word >> 19) & 31
        return Operands("tbnz" if word >> 24 & 1 else "tbz", rt, "x" if bit >= 32 else "w", bit=bit)
    if (word & 0xFF000010) == 0x54000000:      # B.cond: 0101010 0 imm19 0 cond
        return Operands("b.cond", cond=word & 15)
    if (word & 0x7C000000) == 0x14000000:      # B/BL: op 00101 imm26
        return Operands("bl" if word >> 31 else "b")
    if (word & 0x1F000000) == 0x10000000:      # ADR/ADRP: op immlo 10000 immhi Rd
        return Operands("adrp" if word >> 31 else "adr", rt, "x")
    if (word & 0x3B000000) == 0x18000000:      # LDR (literal): opc 011 V 00 imm19 Rt
        opc, simd = word >> 30, word >> 26 & 1
        if simd:
            return None if opc == 3 else Operands("ldr", rt, "sdq"[opc])
        return Operands(("ldr", "ldr", "ldrsw", "prfm")[opc], rt, ("w", "x", "x", "")[opc])
    return None
