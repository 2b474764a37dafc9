"""Readable algebra for site values: ``base(.text.hyp_panic) - base(.text) - 0x700``.

Lin has already collected and cancelled the symbolic part (a same-section
branch loses its bases entirely); the printer writes constants in hex, as
linker maps do.
"""
from __future__ import annotations

from ..ir import Lin, PageDiff


def _shape(coeffs: tuple, labels: tuple[str, ...]) -> tuple[tuple[str, int], ...]:
    # Lin has already collected and cancelled terms; order them for reading:
    # positive terms first, then by name.
    return tuple(sorted(((label, c) for (_, c), label in zip(coeffs, labels) if c),
                        key=lambda kc: (kc[1] < 0, kc[0])))


def _lin_text(e: Lin, names, memo: dict | None = None) -> str:
    parts: list[str] = list(memo.get(e.coeffs, ())) if memo is not None and e.coeffs in memo else []
    if not parts and e.coeffs:
        labels = tuple(names(v) for v, _ in e.coeffs)
        for name, c in _shape(e.coeffs, labels):
            mag = "" if abs(c) == 1 else f"{abs(c)}*"
            parts.append(("- " if c < 0 else "+ ") + mag + name)
        if memo is not None:
            memo[e.coeffs] = tuple(parts)
    if e.const or not parts:
        parts.append(("- " if e.const < 0 else "+ ") + f"{abs(e.const):#x}")
    text = " ".join(parts)
    return text[2:] if text.startswith("+ ") else "-" + text[2:]


def render(expr: Lin | PageDiff, names, memo: dict | None = None) -> str:
    """Text of a value expression; ``names`` maps a variable to its label. ``memo``
    keeps the symbolic part per shape, as many sites share one."""
    if isinstance(expr, PageDiff):
        return f"Page({_lin_text(expr.a, names, memo)}) - Page({_lin_text(expr.b, names, memo)})"
    return _lin_text(expr, names, memo)
