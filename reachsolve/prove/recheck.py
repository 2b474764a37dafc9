"""Independent re-check of a counterexample, with no solver involved.

From a full layout it recomputes S, A, P (and the GOT slot) straight from the
AAELF64 formula of the catalogue, checks the range and granule, writes the
value into the real instruction the way a linker's writer would, and decodes
the result with capstone to show what the code would actually do.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from ..ir import Var, page
from ..objfile.sites import Site
from ..target.catalogue import TP_VAR, Check, Field, wrap64
from ..target.decode import decode
from ..target.encoding import insert, movw_reading
from ..target.policy import LinkPolicy


@dataclass(frozen=True)
class Recheck:
    value: int
    place: int
    target: int
    rejected_by: tuple[str, ...]
    misaligned: bool
    out_of_range: bool
    encoded: str
    wanted: str
    garbled: bool  # the written field no longer means the intended target


def relocation_value(site: Site, env: Mapping[Var, int]) -> tuple[int, int, int]:
    """(value, P, S+A or GOT slot) for ``site`` in layout ``env``."""
    p = env[("sec", site.section)] + site.offset
    f = site.spec.formula
    if f.uses_got:
        s = env[site.got_var()]
    else:
        s = (env[site.anchor] if site.anchor else 0) + site.sym_value + site.addend
    return f.value(s, p, env.get(TP_VAR)), p, s


def _data_readings(value_bits: int, width: int) -> tuple[int, int]:
    unsigned = value_bits & ((1 << width) - 1)
    signed = unsigned - (1 << width) if unsigned >> (width - 1) else unsigned
    return signed, unsigned


def fits(site: Site, env: Mapping[Var, int], policy: LinkPolicy, veneers: bool) -> tuple[int, bool, bool]:
    """(value, out of range, misaligned) in layout ``env``: the check without the encoding.
    ``veneers``: may branches in the site's section rely on veneers?"""
    spec = site.spec
    value = relocation_value(site, env)[0]
    rng = policy.range(spec)
    misaligned = value % spec.granule != 0 and not spec.formula.paged
    out = rng is not None and not policy.accepts(spec, value)
    if out and policy.veneered(spec, veneers, site.target_section == site.section):
        out = False  # a linker would route this branch through a veneer
    return value, out, misaligned


def recheck(site: Site, env: Mapping[Var, int], policy: LinkPolicy, veneers: bool) -> Recheck:
    spec = site.spec
    profiles = policy.profiles
    value, out, misaligned = fits(site, env, policy, veneers)
    _, p, s = relocation_value(site, env)
    rejected = policy.rejecting(spec, value, veneers, site.target_section == site.section)
    field = spec.field
    if field.is_data:
        width = 8 * field.container
        written = insert(field, spec.scale, site.word, value)
        signed, unsigned = _data_readings(written, width)
        kinds = {spec.limits[pr].check for pr in (rejected or profiles)}
        readings = set()
        if kinds & {Check.INT, Check.INT_UINT}:
            readings.add(signed)
        if kinds & {Check.UINT, Check.INT_UINT}:
            readings.add(unsigned)
        readings = readings or {signed}
        garbled = wrap64(value) not in readings
        enc = f".{'hword' if width == 16 else 'word'} {written:#x} (reads back as {sorted(readings)[0]:#x})"
        want = f"{value:#x}"
        return Recheck(value, p, s, rejected, misaligned, out, enc, want, garbled)
    word = insert(field, spec.scale, site.word, value)
    got = decode(word, p)
    if field is Field.LO12 and spec.formula.tp_relative:  # the low 12 bits of TPREL(S+A)
        want_v, got_v = value & 0xFFF, got.disp
        want = f"offset #{want_v:#x} from the thread pointer's page"
    elif field is Field.LO12:
        want_v, got_v = s - page(s), got.disp
        want = f"offset #{want_v:#x} within the page"
    elif field is Field.SMOVW:
        op, conveyed = movw_reading(word)
        sh = spec.scale
        wanted = wrap64(value) >> sh
        ok = ((conveyed >> sh) & 0xFFFF) == (wanted & 0xFFFF) if op == "movk" else (conveyed >> sh) == wanted
        return Recheck(value, p, s, rejected, misaligned, out, got.text,
                       f"bits {sh}+ of {value:#x} ({wanted:#x})", not ok)
    elif field is Field.HI12:
        imm = (word >> 10) & 0xFFF
        return Recheck(value, p, s, rejected, misaligned, out, f"{got.text} (adds {imm << 12:#x})",
                       f"#{value & ~0xFFF:#x}", (imm << 12) != wrap64(value) >> 12 << 12)
    elif field is Field.MOVW:
        width = max(spec.limits[pr].bits for pr in profiles)
        kept = value & ((1 << width) - 1)
        return Recheck(value, p, s, rejected, misaligned, out, f"{got.text} (the movz/movk group keeps {kept:#x})",
                       f"#{value:#x}", kept != value)
    elif field is Field.ADRP:
        want_v, got_v = page(s), got.target
        want = f"page {want_v:#x}"
    else:
        want_v, got_v = s, got.target
        want = f"target {want_v:#x}"
    garbled = got_v is None or (got_v - want_v) % (1 << 64) != 0
    return Recheck(value, p, s, rejected, misaligned, out, got.text, want, garbled)
