"""Turning command-line paths into named object images: plain files and ar archives.

Archive members are named ``lib.a(member.o)`` as linkers name them; a second
member of the same name is ``lib.a(member.o)#2``, so every site keeps a unique,
stable label. GNU and
BSD long names, the symbol tables and thin archives are understood; sizes
and offsets are checked so that a corrupt archive is one clear error.
Only regular files are read: a FIFO, device or directory is refused before
anything could block on it.
"""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass

from ..errors import InputError

AR_MAGIC = b"!<arch>\n"
THIN_MAGIC = b"!<thin>\n"
_HDR = 60


@dataclass(frozen=True)
class Blob:
    name: str
    data: bytes


def _printable(text: str) -> str:
    """``text`` on one line: control characters (a newline in a member name) escaped."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _kind(mode: int) -> str | None:
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "is a directory"
    return "not a regular file"


def _read_regular(path: str, shown: str) -> bytes:
    try:
        why = _kind(os.stat(path).st_mode)
        if why:
            raise InputError(shown, why)
        # O_NONBLOCK: should the path become a FIFO between the stat and the
        # open, opening it must not wait for a writer; fstat decides again.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
        with open(fd, "rb") as f:
            why = _kind(os.fstat(f.fileno()).st_mode)
            if why:
                raise InputError(shown, why)
            return f.read()
    except OSError as exc:
        raise InputError(shown, exc.strerror or str(exc)) from None
    except ValueError as exc:  # a NUL in a thin archive's member path
        raise InputError(shown, f"unusable path: {exc}") from None


def load(path: str) -> list[Blob | InputError]:
    """The objects named by ``path``: one for a file, one per member for an archive.

    A broken member becomes an InputError in the list, so its siblings are
    still analyzed; a broken archive structure ends the list with an
    InputError naming the archive (the members before it are kept). A file
    that cannot be read raises.
    """
    data = _read_regular(path, path)
    if data.startswith(AR_MAGIC) or data.startswith(THIN_MAGIC):
        out: list[Blob | InputError] = []
        try:
            for m in _members(path, data, data.startswith(THIN_MAGIC)):
                out.append(m)
        except InputError as exc:
            out.append(exc)
        return out
    return [Blob(path, data)]


def _members(path: str, data: bytes, thin: bool):
    pos = len(AR_MAGIC)
    longnames = b""
    n = 0
    seen: dict[str, int] = {}
    while pos < len(data):
        if pos + _HDR > len(data):
            if data[pos:].strip(b"\n") == b"":
                return
            raise InputError(path, f"truncated archive member header at offset {pos:#x}")
        hdr = data[pos:pos + _HDR]
        if hdr[58:60] != b"`\n":
            raise InputError(path, f"bad archive member header at offset {pos:#x}")
        raw_name = hdr[0:16].decode("latin-1").rstrip(" ")  # latin-1: every byte kept
        size_text = hdr[48:58].decode("ascii", "replace").strip()
        if not size_text.isdigit():
            raise InputError(path, f"archive member at offset {pos:#x} has an invalid size {size_text!r}")
        size = int(size_text)
        body = pos + _HDR
        special = raw_name in ("/", "/SYM64/", "//", "__.SYMDEF", "__.SYMDEF SORTED", "/SYM64")
        stored = size if (not thin or special) else 0
        if body + stored > len(data):
            raise InputError(path, f"archive member at offset {pos:#x} claims {size} bytes, "
                                   f"past the end of the archive ({len(data)} bytes)")
        content = data[body:body + stored]
        pos = body + stored + (stored & 1)
        if raw_name == "//":
            longnames = content
            continue
        if special or raw_name.startswith("__.SYMDEF"):
            continue
        n += 1
        try:
            raw, content = _member_name(path, raw_name, content, longnames, pos)
        except InputError as exc:  # the header is sound, so the next member is still found
            yield exc
            continue
        name = raw.decode("utf-8", "replace")
        if name.startswith("__.SYMDEF"):  # BSD symbol table under a #1/ long name
            continue
        shown = f"{path}({_printable(name)})"
        seen[shown] = seen.get(shown, 0) + 1
        if seen[shown] > 1:  # archives may hold several members of one name (x264 and openh264 do)
            shown += f"#{seen[shown]}"
        if thin:
            rel = os.fsdecode(raw)
            member_path = rel if os.path.isabs(rel) else os.path.join(os.path.dirname(path), rel)
            try:
                content = _read_regular(member_path, shown)
            except InputError as exc:
                yield exc
                continue
        yield Blob(shown, content)


def _member_name(path: str, raw: str, content: bytes, longnames: bytes, pos: int) -> tuple[bytes, bytes]:
    """The member's name as stored (bytes) and its contents without a BSD name."""
    if raw.startswith("#1/"):  # BSD: the name follows the header, inside the member
        if not raw[3:].isdigit():
            raise InputError(path, f"archive member before {pos:#x} has a bad BSD name {raw!r}")
        ln = int(raw[3:])
        if ln > len(content):
            raise InputError(path, f"archive member before {pos:#x}: BSD name length {ln} exceeds the member")
        return content[:ln].rstrip(b"\0"), content[ln:]
    if raw.startswith("/") and raw[1:].isdigit():  # GNU: offset into the // table
        off = int(raw[1:])
        if off >= len(longnames):
            raise InputError(path, f"archive member before {pos:#x}: long name offset {off} is outside the name table")
        end = longnames.find(b"\n", off)
        end = len(longnames) if end < 0 else end
        return longnames[off:end].rstrip(b"/"), content
    return (raw[:-1] if raw.endswith("/") else raw).encode("latin-1"), content
