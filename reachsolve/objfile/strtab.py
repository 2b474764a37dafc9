"""String tables (gABI): names read one at a time or in batches, by one rule.

A name ends at the first NUL after its offset; an offset outside the table, or a
name with no NUL after it, is an error of the file. Names end up in one-line
messages and reports, so a character that is not printable is shown escaped.
"""
from __future__ import annotations

from functools import cached_property
from typing import Callable

import numpy as np

# Batches of at most this many names are read name by name: numpy's fixed cost exceeds the loop's.
_FEW_NAMES = 32


class StringTable:
    """One string table's bytes; ``fail(message)`` makes the error a bad offset raises."""

    def __init__(self, data: bytes, fail: Callable[[str], Exception]):
        self.data = data
        self._fail = fail

    def __len__(self) -> int:
        return len(self.data)

    def name(self, off: int, what: str) -> str:
        """The string at ``off``; ``what`` names it in the error."""
        table = self.data
        if off == 0 and not table:
            return ""
        if off >= len(table):
            raise self._fail(f"{what}: string offset {off:#x} is outside its string table ({len(table):#x} bytes)")
        end = table.find(b"\0", off)
        if end < 0:
            raise self._fail(f"{what}: string at {off:#x} is not NUL-terminated")
        text = table[off:end].decode("utf-8", "backslashreplace")
        if not text.isprintable():
            text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
        return text

    def names(self, offsets: list[int], what: str, ids=None) -> list[str]:
        """The strings at ``offsets``, each as :meth:`name` reads it (a bad offset fails as
        there); ``what`` has a {} for the entry's id (``ids``, default: its position)."""
        table = self.data
        ids = ids if ids is not None else range(len(offsets))

        def one(i, o):
            return self.name(o, what.format(i))

        if not table or len(offsets) <= _FEW_NAMES:
            return [one(i, o) for i, o in zip(ids, offsets)]
        nul = self.nuls
        offs = np.array(offsets, dtype=np.int64)
        k = np.searchsorted(nul, offs)
        if (offs >= len(table)).any() or (k >= len(nul)).any():
            return [one(i, o) for i, o in zip(ids, offsets)]
        ends = nul[np.minimum(k, len(nul) - 1)]
        if self._ascii is not None:
            # An ASCII table (nearly every one): its text decoded once, a name printable when
            # no control byte lies between its offset and its NUL.
            text, controls = self._ascii
            clean = (np.searchsorted(controls, ends) == np.searchsorted(controls, offs)).tolist()
            return [text[o:e] if c else one(i, o) for i, o, e, c in zip(ids, offsets, ends.tolist(), clean)]
        out = []
        for i, o, e in zip(ids, offsets, ends.tolist()):
            text = table[o:e].decode("utf-8", "backslashreplace")
            out.append(text if text.isprintable() else one(i, o))
        return out

    @cached_property
    def nuls(self) -> np.ndarray:
        """Where the NULs are (names are read in batches; found once)."""
        return np.flatnonzero(np.frombuffer(self.data, dtype=np.uint8) == 0)

    @cached_property
    def _ascii(self) -> tuple[str, np.ndarray] | None:
        """An ASCII table as text, with where its control bytes other than NUL are; None
        for any other table."""
        if not self.data.isascii():
            return None
        b = np.frombuffer(self.data, dtype=np.uint8)
        return self.data.decode("ascii"), np.flatnonzero(((b < 0x20) & (b != 0)) | (b == 0x7F))
