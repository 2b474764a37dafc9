"""Library access below the report: one site's constraints, as z3 formulas.

    q = site_query("demo.o", ".text", 0x0)
    answer = solve(q.model + [q.violation, q.value > 0])   # Proved / Witness / Unknown
"""
from __future__ import annotations

from dataclasses import dataclass

from .analyze import _Object
from .elf import ObjectFile, read_object
from .errors import InputError
from .inputs import load
from .model import LayoutModel
from .solver import site_terms, solve  # noqa: F401  (solve is re-exported)


@dataclass(frozen=True)
class SiteQuery:
    """z3 pieces for one site: ``model`` (list of layout constraints), ``value`` (the
    relocation value as a z3 term), ``violation`` (value out of range or misaligned)
    and ``vars`` (variable name -> z3 Int, e.g. "sec/3" for section 3's base)."""

    model: list
    value: object
    violation: object
    vars: dict


def open_object(path: str) -> ObjectFile:
    """Read one relocatable object (the first member, for an archive)."""
    blobs = load(path)
    if not blobs:
        raise InputError(path, "archive has no members")
    if isinstance(blobs[0], InputError):
        raise blobs[0]
    return read_object(blobs[0].name, blobs[0].data)


def site_query(path: str, section: str, offset: int, model: LayoutModel | None = None) -> SiteQuery:
    """The constraints of the range-checked site at ``section+offset`` in ``path``."""
    model = model or LayoutModel()
    ob = _Object(open_object(path), model)
    for site in ob.sites:
        if ob.obj.sections[site.section].name == section and site.offset == offset:
            break
    else:
        raise KeyError(f"no range-checked relocation at {section}+{offset:#x}")
    return SiteQuery(*site_terms(ob.frame.domain(ob.query_vars(site)), ob.expr(site), ob.violations(site)))
