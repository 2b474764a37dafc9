"""Turning command-line paths into named object images: plain files and ar archives.

Archive members are named ``lib.a(member.o)`` as linkers name them. GNU and
BSD long names, the symbol tables and thin archives are understood; sizes
and offsets are checked so that a corrupt archive is one clear error.
"""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass

from .errors import InputError

AR_MAGIC = b"!<arch>\n"
THIN_MAGIC = b"!<thin>\n"
_HDR = 60


@dataclass(frozen=True)
class Blob:
    name: str
    data: bytes


def _read_regular(path: str, shown: str) -> bytes:
    try:
        st = os.stat(path)
    except OSError as exc:
        raise InputError(shown, exc.strerror or str(exc)) from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(shown, "is a directory")
    if not stat.S_ISREG(st.st_mode):
        raise InputError(shown, "not a regular file")
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise InputError(shown, exc.strerror or str(exc)) from None


def load(path: str) -> list[Blob | InputError]:
    """The objects named by ``path``: one for a file, one per member for an archive.

    A broken member becomes an InputError in the list, so its siblings are
    still analyzed; a broken archive structure raises.
    """
    data = _read_regular(path, path)
    if data.startswith(AR_MAGIC) or data.startswith(THIN_MAGIC):
        return list(_members(path, data, data.startswith(THIN_MAGIC)))
    return [Blob(path, data)]


def _members(path: str, data: bytes, thin: bool):
    pos = len(AR_MAGIC)
    longnames = b""
    n = 0
    while pos < len(data):
        if pos + _HDR > len(data):
            if data[pos:].strip(b"\n") == b"":
                return
            raise InputError(path, f"truncated archive member header at offset {pos:#x}")
        hdr = data[pos:pos + _HDR]
        if hdr[58:60] != b"`\n":
            raise InputError(path, f"bad archive member header at offset {pos:#x}")
        raw_name = hdr[0:16].decode("ascii", "replace").rstrip(" ")
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
        name, content = _member_name(path, raw_name, content, longnames, pos)
        shown = f"{path}({name})"
        if thin:
            member_path = name if os.path.isabs(name) else os.path.join(os.path.dirname(path), name)
            try:
                content = _read_regular(member_path, shown)
            except InputError as exc:
                yield exc
                continue
        yield Blob(shown, content)


def _member_name(path: str, raw: str, content: bytes, longnames: bytes, pos: int) -> tuple[str, bytes]:
    if raw.startswith("#1/"):  # BSD: the name follows the header, inside the member
        try:
            ln = int(raw[3:])
        except ValueError:
            raise InputError(path, f"archive member before {pos:#x} has a bad BSD name {raw!r}") from None
        if ln > len(content):
            raise InputError(path, f"archive member before {pos:#x}: BSD name length {ln} exceeds the member")
        return content[:ln].rstrip(b"\0").decode("utf-8", "replace"), content[ln:]
    if raw.startswith("/") and raw[1:].isdigit():  # GNU: offset into the // table
        off = int(raw[1:])
        if off >= len(longnames):
            raise InputError(path, f"archive member before {pos:#x}: long name offset {off} is outside the name table")
        end = longnames.find(b"\n", off)
        end = len(longnames) if end < 0 else end
        return longnames[off:end].rstrip(b"/").decode("utf-8", "replace"), content
    return raw[:-1] if raw.endswith("/") else raw, content
