"""Layout model files (TOML): bundled ones in models/ and users' own.

A model names its placement rule, image base and bound, veneer policy and
linker profile; an ordered or as-linked model carries its layout as linker
script text (the `script` key), read by the same parser as --linker-script,
so there is one layout language. Every error names the file, the key and the
line.
"""
from __future__ import annotations

import os
import re
import tomllib
from dataclasses import replace
from importlib import resources
from pathlib import Path

from ..errors import ModelError
from ..script import parser as ldscript
from ..target.policy import FINAL_LINKS
from .options import LayoutModel, parse_size

_KEYS = {"name", "description", "placement", "image_base", "image_max", "veneers", "no_veneers", "linker",
         "script", "script_file", "defsym", "min_margin", "final_link"}


def _bundled():
    """The bundled model files: package data of reachsolve.models."""
    return resources.files("reachsolve") / "models"


def bundled_names() -> list[str]:
    return sorted(p.name[:-5] for p in _bundled().iterdir() if p.name.endswith(".toml"))


_KEY = re.compile(r"""\[*\s*(?:"((?:[^"\\]|\\.)*)"|'([^']*)'|([A-Za-z0-9_-]+))""")


def _key_lines(text: str) -> dict[str, int]:
    """Line of each top-level key's first appearance: ``key =``, a quoted or dotted key, a
    [table] header. tomllib keeps no positions; this reads the text as TOML's lexer would
    for keys, skipping comments, blank lines and the inside of multi-line strings."""
    out: dict[str, int] = {}
    open_quote = None
    for n, line in enumerate(text.splitlines(), 1):
        if open_quote is not None:
            if line.count(open_quote) % 2:   # the closing delimiter
                open_quote = None
            continue
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        m = _KEY.match(s)
        if m:
            out.setdefault(next(g for g in m.groups() if g is not None), n)
        value = s.split("=", 1)[1] if "=" in s and not s.startswith("[") else ""
        for q in ('"""', "'''"):
            if value.count(q) % 2:
                open_quote = q
                break
    return out


def _line_of(text: str, key: str) -> int:
    return _key_lines(text).get(key, 0)


def load_model(ref: str) -> LayoutModel:
    """A model by bundled name ("arm64-kernel") or by path to a .toml file."""
    path = Path(ref)
    if not path.exists() and os.sep not in ref and not ref.endswith(".toml"):
        if ref not in bundled_names():
            raise ModelError(f"unknown model {ref!r}; bundled models: {', '.join(bundled_names()) or 'none'}")
        # Named by where it lives in the source tree, whatever the installation.
        res = _bundled() / f"{ref}.toml"
        with resources.as_file(_bundled()) as where:
            return parse_model(res.read_text(), f"models/{ref}.toml", base=str(where))
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path}: cannot read model file: {getattr(exc, 'strerror', None) or exc}") from None
    return parse_model(text, str(path))


def parse_model(text: str, path: str, base: str | None = None) -> LayoutModel:
    """A model from TOML text; ``path`` names it in messages, ``base`` is where a
    ``script_file`` is found (default: beside ``path``)."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ModelError(f"{path}: {exc}") from None

    def bad(key: str, msg: str) -> ModelError:
        return ModelError(f"{path}:{_line_of(text, key)}: {key}: {msg}")

    for key in doc:
        if key not in _KEYS:
            raise bad(key, f"unknown key (known: {', '.join(sorted(_KEYS))})")

    def get(key, types, default=None):
        v = doc.get(key, default)
        wanted = types if isinstance(types, tuple) else (types,)
        if v is not None and (not isinstance(v, types) or (isinstance(v, bool) and bool not in wanted)):
            raise bad(key, f"expected {' or '.join(t.__name__ for t in (types if isinstance(types, tuple) else (types,)))}"
                           f", found {type(v).__name__}")
        return v

    kw: dict = {"name": get("name", str, Path(path).stem), "origin": path}
    placement = get("placement", str, "free")
    if placement not in ("free", "ordered", "as-linked"):
        raise bad("placement", f"{placement!r} is not one of free, ordered, as-linked")
    kw["placement"] = placement
    for key in ("image_base", "image_max"):
        v = get(key, (str, int))
        if v is None:
            continue
        try:
            kw[key] = parse_size(v) if isinstance(v, str) and key == "image_max" else (
                v if isinstance(v, int) else int(v, 0))
        except (ModelError, ValueError) as exc:
            raise bad(key, str(exc)) from None
        if kw[key] < 0:
            raise bad(key, "must not be negative")
        if key == "image_max" and kw[key] == 0:
            raise bad(key, "must be positive")
    mm = get("min_margin", (str, int))
    if mm is not None:
        try:
            kw["min_margin"] = parse_size(mm) if isinstance(mm, str) else mm
        except ModelError as exc:
            raise bad("min_margin", str(exc)) from None
        if kw["min_margin"] <= 0:
            raise bad("min_margin", "must be positive")
    if get("veneers", bool) is not None:
        kw["veneers"] = doc["veneers"]
    nv = get("no_veneers", list, [])
    if not all(isinstance(x, str) for x in nv):
        raise bad("no_veneers", "expected a list of section-name globs")
    kw["no_veneers"] = tuple(nv)
    if get("linker", str) is not None:
        kw["linker"] = doc["linker"]
    final_link = get("final_link", str)
    if final_link is not None:
        if final_link not in FINAL_LINKS:
            raise bad("final_link", f"{final_link!r} is not one of {', '.join(FINAL_LINKS)}")
        kw["final_link"] = final_link
    script = get("script", str)
    script_file = get("script_file", str)
    if script is not None and script_file is not None:
        raise bad("script_file", "give either script or script_file, not both")
    if placement == "free":
        if script is not None or script_file is not None:
            raise bad("script" if script is not None else "script_file", "a free model takes no script")
    else:
        if script_file is not None:
            sp = Path(base if base is not None else Path(path).parent) / script_file
            try:
                kw["script"] = ldscript.parse_file(str(sp))
            except ldscript.ScriptError as exc:
                raise ModelError(str(exc)) from None
            kw["script_path"] = str(sp)
        elif script is not None:
            # Script line 1 is the key's line, or the next one when TOML dropped a newline after """.
            key_line = _line_of(text, "script")
            m = re.search(r'^\s*script\s*=\s*("""|\'\'\')(\r?\n)?', text, re.M)
            first = key_line + (1 if m and m.group(2) else 0)
            try:
                kw["script"] = ldscript.parse(script, path)
            except ldscript.ScriptError as exc:
                raise ModelError(f"{path}:{first + exc.line - 1}:{exc.col}: script: {exc.message}") from None
            kw["script_path"] = f"{path} (script)"
        else:
            raise bad("placement", f"{placement} placement needs a script or script_file")
    table = get("defsym", dict)
    if table:
        entries = []
        for name, v in table.items():
            where = f"{path}:{_line_of(text, name) or _line_of(text, 'defsym')}: defsym {name}"
            if isinstance(v, bool) or not isinstance(v, (str, int)):
                raise ModelError(f"{where}: expected an expression (string) or an integer, found {type(v).__name__}")
            entries.append((name, f"{name}={v}", where))
        kw["defsym"] = tuple(entries)
    try:
        return LayoutModel(**kw)
    except ModelError as exc:
        msg = str(exc)
        raise ModelError(msg if msg.startswith(f"{path}:") else f"{path}: {msg}") from None


def with_script(model: LayoutModel, script_path: str, placement: str | None = None) -> LayoutModel:
    """``model`` laid out by the linker script at ``script_path`` (--linker-script)."""
    try:
        script = ldscript.parse_file(script_path)
    except ldscript.ScriptError as exc:
        raise ModelError(str(exc)) from None
    return replace(model, placement=placement or (model.placement if model.placement != "free" else "ordered"),
                   script=script, script_path=script_path,
                   name=model.name if model.placement != "free" else os.path.basename(script_path))
