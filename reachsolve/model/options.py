"""Layout models: which placements of an object's sections a linker may choose."""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import ModelError
from ..target.policy import FINAL_LINKS, PROFILE_CHOICES, LinkPolicy

MiB = 1 << 20
ADDRESS_SPACE = 1 << 64

_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(text: str) -> int:
    """'128M', '1G', '0x8000000' or plain bytes; K/M/G/T are powers of 1024."""
    # Hex takes every hex digit (0x1b is 27); a unit and a B or iB suffix follow a number.
    m = re.fullmatch(r"(0X[0-9A-F]+|\d+)\s*(?:([KMGT])I?)?B?", text.strip().upper())
    if not m:
        raise ModelError(f"cannot read size {text!r}: use bytes, 0x-hex, or a number with K, M, G or T")
    n = int(m.group(1), 0) * _UNITS[m.group(2) or ""]
    if n <= 0 or n > ADDRESS_SPACE:
        raise ModelError(f"size {text!r} must lie in (0, 2^64]")
    return n


@dataclass(frozen=True)
class LayoutModel:
    """The "free" model: sections anywhere in one bounded image, aligned, disjoint."""

    name: str = "free"
    image_base: int | None = None  # None: the image may start at any address
    image_max: int = 128 * MiB
    veneers: bool = True
    linker: str = "both"
    timeout_ms: int = 10_000
    rlimit: int = 0  # z3 resource units per query (deterministic); 0: none
    placement: str = "free"        # "free" | "ordered" | "as-linked"
    script: object = None          # a parsed linker script (ldscript.Script) for ordered placement
    script_path: str = ""
    no_veneers: tuple[str, ...] = ()  # globs of input sections whose branches may not use veneers
    origin: str = ""               # the model file it was read from ("" when built in code)
    defsym: tuple[tuple[str, str, str], ...] = ()  # (name, expression, where given): --defsym NAME=EXPR
    min_margin: int | None = None  # flag vulnerable sites with less margin as "near" (script models)
    final_link: str | None = None  # "static" | "pie" | "shared": the output type; None: open world

    def __post_init__(self):
        if self.linker not in PROFILE_CHOICES:
            raise ModelError(f"unknown linker profile {self.linker!r}; choose one of {', '.join(PROFILE_CHOICES)}")
        if self.placement not in ("free", "ordered", "as-linked"):
            raise ModelError(f"unknown placement {self.placement!r}; choose free, ordered or as-linked")
        if (self.placement == "free") != (self.script is None):
            raise ModelError("ordered and as-linked placement need a linker script; free placement takes none")
        if self.image_base is not None and not 0 <= self.image_base <= ADDRESS_SPACE - self.image_max:
            raise ModelError(f"image base {self.image_base:#x} leaves no room for {self.image_max:#x} bytes")
        if self.final_link is not None and self.final_link not in FINAL_LINKS:
            raise ModelError(f"unknown final link type {self.final_link!r}; choose static, pie or shared")
        if self.final_link is not None and self.linker == "module":
            # A module is relocated by the kernel's loader, not by a final link.
            raise ModelError("final_link applies to ld.lld and GNU ld links; the module loader makes no final link")
        if self.script is not None and self.image_base is not None:
            # A script sets its own addresses; a base beside it would be silently dropped.
            raise ModelError("image_base applies to free placement; under a linker script the script sets "
                             "the addresses (e.g. `. = ADDRESS;`)")
        self._check_defsym()
        if not self.origin and self.name != "free":
            from .files import bundled_names
            if self.name in bundled_names():
                # A name alone would be the free model wearing another model's name.
                raise ModelError(f"LayoutModel(name={self.name!r}) does not load that model; "
                                 f"use reachsolve.load_model({self.name!r})")

    def _check_defsym(self) -> None:
        """Each --defsym must read as the linkers read it (its value is computed per object:
        under a script in the script's terms, under free placement over numbers and the
        object's own symbols)."""
        if not self.defsym:
            return
        from ..script.parser import ScriptError, parse_defsym
        for name, text, origin in self.defsym:
            try:
                cmd = parse_defsym(text, origin)
            except ScriptError as exc:
                raise ModelError(f"{origin} {text}: {exc.message} (column {exc.col})") from None
            if cmd.target != name:
                raise ModelError(f"{origin}: defines {cmd.target}, not {name}")

    @property
    def profiles(self) -> tuple[str, ...]:
        return PROFILE_CHOICES[self.linker]

    @property
    def policy(self) -> LinkPolicy:
        return LinkPolicy(self.linker, self.veneers, self.no_veneers)

    def describe(self) -> dict:
        return {"name": self.name, "image_base": self.image_base, "image_max": self.image_max,
                "veneers": self.veneers, "linker": self.linker, "timeout_ms": self.timeout_ms,
                "rlimit": self.rlimit, "placement": self.placement, "script": self.script_path or None,
                "no_veneers": list(self.no_veneers), "min_margin": self.min_margin,
                **({"defsym": {n: t.partition("=")[2] for n, t, _ in self.defsym}} if self.defsym else {}),
                **({"final_link": self.final_link} if self.final_link else {})}
