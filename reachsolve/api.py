"""The library API: analyze objects, build models, and query one site's constraints.

    import reachsolve
    report = reachsolve.analyze(["vmlinux.o"], "arm64-kernel")
    for site in report.findings():
        print(site.verdict, site.section, hex(site.offset), site.reason)

Input errors are not raised by default: they are in ``report.errors`` (as the
CLI prints them), so one bad file does not stop the others. ``strict=True``
raises the first one as :class:`reachsolve.InputError`.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from typing import Iterable

from .errors import InputError, ModelError
from .ir import Proved, Unknown, Witness
from .model.files import load_model as _load_file_or_name
from .model.files import with_script
from .model.options import LayoutModel
from .report.document import Placement, Report, SiteResult

_OVERRIDES = ("image_base", "image_max", "veneers", "no_veneers", "linker", "timeout_ms", "rlimit", "min_margin",
              "final_link")


def load_model(name_or_path: str | LayoutModel = "free", *, linker_script: str | None = None,
               placement: str | None = None, **overrides) -> LayoutModel:
    """The one way to build a model, as the CLI does: a bundled name (free, arm64-kernel,
    arm64-module) or a .toml file, then ``linker_script`` and ``placement``, then option
    overrides by their model-file names (image_max=, linker=, veneers=, ...)."""
    model = name_or_path if isinstance(name_or_path, LayoutModel) else _load_file_or_name(str(name_or_path))
    if linker_script:
        model = with_script(model, linker_script, placement)
    elif placement and placement != model.placement:
        if model.script is None and placement != "free":
            raise ModelError(f"--placement {placement} needs a linker script (--linker-script or a model with one)")
        free = placement == "free"
        model = replace(model, placement=placement, script=None if free else model.script,
                        script_path="" if free else model.script_path)
    defsym = overrides.pop("defsym", None)
    if defsym:
        model = replace(model, defsym=_defsym(model.defsym, defsym))
    unknown = sorted(set(overrides) - set(_OVERRIDES))
    if unknown:
        raise ModelError(f"unknown model option {unknown[0]!r}; known: {', '.join(_OVERRIDES)}")
    over = {k: (tuple(v) if k == "no_veneers" else v) for k, v in overrides.items() if v is not None}
    return replace(model, **over) if over else model


def _defsym(have: tuple, given) -> tuple:
    """``have`` with ``given`` on top: a mapping ``{NAME: EXPR}`` (the keyword; EXPR a string
    or an int) or a list of ``"NAME=EXPR"`` texts (--defsym). A later NAME replaces an
    earlier one, as a later --defsym does for the linkers."""
    if isinstance(given, dict):
        new = []
        for name, v in given.items():
            if isinstance(v, bool) or not isinstance(v, (str, int)) or not isinstance(name, str):
                raise ModelError(f"defsym {name!r}: expected an expression (string) or an integer, found "
                                 f"{type(v).__name__}")
            new.append((name, f"{name}={v}", "defsym"))
    else:
        new = [(t.partition("=")[0].strip(), t, "--defsym") for t in given]
    out = {n: (n, t, o) for n, t, o in have}
    for e in new:
        out.pop(e[0], None)
        out[e[0]] = e
    return tuple(out.values())


def analyze(paths: Iterable[str] | str, model: str | LayoutModel = "free", *, linker_script: str | None = None,
            placement: str | None = None, strict: bool = False, jobs: int = 1, keep_objects: bool = True,
            columns: bool = True, min_margin: int | None = None, baseline: str | dict | None = None,
            suppressions: str | dict | None = None, progress=None, source_root: str | None = None,
            source_lines: bool = True, **overrides) -> Report:
    """Decide every range-checked site of the objects and archives named by ``paths``.

    ``model``: a bundled name, a model file, or a LayoutModel; ``linker_script``,
    ``placement`` and ``overrides`` apply on top (see load_model). Errors go to
    ``report.errors`` unless ``strict``. ``keep_objects`` keeps what query() needs.

    ``min_margin`` flags vulnerable sites with a smaller margin as near (script models
    only); ``baseline`` (a JSON report's path or parsed dict) marks each finding new,
    unchanged or updated; ``suppressions`` (a file's path or {fingerprint: reason})
    accepts findings with a written reason. ``progress(done, total, sites)`` is called
    as objects finish. ``source_root`` makes the DWARF source paths of findings relative
    to it; ``source_lines=False`` skips reading line tables (``SiteResult.source`` is None)."""
    from .prove.pipeline import analyze as run
    from .report.annotate import annotate, read_report, read_suppressions
    if isinstance(paths, str):
        paths = [paths]
    m = load_model(model, linker_script=linker_script, placement=placement, min_margin=min_margin, **overrides)
    min_margin = m.min_margin
    if min_margin is not None and m.script is None:
        raise ModelError("min_margin needs a model that gives margins: a linker script "
                         "(--linker-script, or a model with a script)")
    old = read_report(baseline) if isinstance(baseline, str) else baseline
    quiet = read_suppressions(suppressions) if isinstance(suppressions, str) else suppressions
    report = run(list(paths), m, jobs=max(1, jobs), columns=columns, keep_objects=keep_objects,
                 progress=progress, source_lines=source_lines, source_root=source_root)
    report = annotate(report, min_margin=min_margin, baseline=old, source_root=source_root,
                      baseline_name=baseline if isinstance(baseline, str) else "", suppressions=quiet)
    if strict and report.errors:
        e = report.errors[0]
        raise InputError(e.file, e.message)
    return report


class SectionWitness(Witness):
    """A layout found by SiteQuery.solve: ``env`` by z3 variable name, ``sections`` by index and name."""

    def __init__(self, env, sections: tuple[Placement, ...]):
        super().__init__(env)
        object.__setattr__(self, "sections", sections)


@dataclass(frozen=True)
class SiteQuery:
    """One site's constraints as z3 terms, the same ones its decision used.

    ``model``: the layout constraints (a list), ``value``: the relocation value,
    ``violation``: the value out of range or misaligned. Add constraints of your own
    and ``solve()`` them; ``base()`` and ``symbol()`` give the terms to write them with."""

    model: list
    value: object
    violation: object
    site: SiteResult
    _vars: dict
    _ob: object

    def base(self, section: int | str):
        """The base-address term of a section, by index or by an unambiguous name."""
        ob = self._ob
        if isinstance(section, str):
            hits = [s.index for s in ob.obj.sections if s.name == section and s.alloc]
            if len(hits) != 1:
                raise KeyError(f"{section!r} names {len(hits)} allocated sections; give an index")
            section = hits[0]
        return self._term(("sec", section))

    def symbol(self, name: str):
        """The address term of an undefined symbol, or a script symbol's value."""
        ob = self._ob
        for v in ob.frame.slots:
            if v[0] == "sym" and ob.obj.symbol_name(v[1]) == name:
                return self._term(v)
        if ob.layout is not None:
            t = ob.layout.symbol_term(name)
            if t is not None:
                from .prove.backend import lin_term
                return lin_term(t, self._vars)
        raise KeyError(f"no symbol {name!r} in the model of {ob.obj.name}")

    def _term(self, v):
        from .prove.backend import var_term
        return var_term(v, self._vars)

    def solve(self, *extra, timeout_ms: int = 10_000) -> Proved | Witness | Unknown:
        """Solve the model plus ``extra`` z3 formulas (add ``self.violation`` to ask for a failure)."""
        from .prove.backend import Budget, solve
        from .prove.backend import var_name
        ans = solve(list(self.model) + list(extra), Budget(timeout_ms))
        if not isinstance(ans, Witness):
            return ans
        ob = self._ob
        secs = []
        for v in sorted(v for v in self._vars if v[0] == "sec"):
            name = var_name(v)
            if name in ans.env:
                secs.append(Placement(ob.obj.sections[v[1]].name, v[1], ans.env[name]))
        return SectionWitness(ans.env, tuple(secs))


def _reread(report: Report, label: str):
    """The object ``label`` of the report read again (an archive member too), checked by
    its hash to be the one analyzed; with where it came from and how many objects that
    file holds."""
    from .objfile.inputs import load
    src = report.sources.get(label)
    if src is None:
        raise KeyError(f"{label} is not an object of this report")
    blobs = load(src.path)
    blob = blobs[src.member] if src.member < len(blobs) else None
    if isinstance(blob, InputError):
        raise blob
    if blob is None or hashlib.sha256(blob.data).hexdigest() != src.sha256:
        raise InputError(label, "changed since it was analyzed")
    return blob, src, len(blobs)


def query(site: SiteResult, report: Report) -> SiteQuery:
    """The constraints of ``site`` under the model ``report`` was made with.

    Uses the object kept by analyze(); otherwise reads the file again (archive members
    too) and checks that it is the one analyzed."""
    from .objfile.elf import read_object
    from .prove.backend import site_terms
    from .prove.context import ObjectContext
    ob = report.objects.get(site.file)
    if ob is None:
        blob, _, _ = _reread(report, site.file)
        ob = ObjectContext(read_object(blob.name, blob.data), report.layout_model)
    for s in ob.sites:
        if s.section == site.section_index and s.offset == site.offset and s.spec.name == site.reloc:
            break
    else:
        raise KeyError(f"no range-checked relocation {site.reloc} at {site.section}+{site.offset:#x}")
    view, s = _resolved_weak(ob, s, site)
    model, value, violation, vars = site_terms(ob.frame.domain(ob.query_vars(s)), view.expr(s), view.violations(s))
    return SiteQuery(model, value, violation, site, vars, ob)


def _resolved_weak(ob, s, site: SiteResult):
    """A site whose undefined weak target the final link resolves is queried on the value the
    linkers give it (as analyze decides it), not as if the symbol lay anywhere: the site with
    S where they put it, under that linker's policy. ValueError when the selected linkers
    resolve it differently (query one of them) or turn the instruction into a NOP."""
    from dataclasses import replace

    from .ir import page
    from .target.policy import WEAK_NEXT, WEAK_NOP, WEAK_PAGE, WEAK_PLACE, label
    rules = ob.weak_rules(s)
    if rules is None:
        return ob, s
    kinds = {r for _, r in rules}
    where = f"{site.file}: {site.reloc} at {site.section}+{site.offset:#x} to undefined weak {site.symbol}"
    if len(kinds) > 1:
        told = "; ".join(f"{label(p)}: S = {r}" for p, r in rules)
        raise ValueError(f"{where}: the selected linkers resolve it differently ({told}); query a model of "
                         f"one linker")
    (rule,) = kinds
    if rule == WEAK_NOP:
        raise ValueError(f"{where}: {label(rules[0][0])} turns the call into a NOP, which has no value")
    if rule == WEAK_PAGE:   # Page(Page(P) + A) - Page(P) = Page(A) = Page(P + Page(A)) - Page(P)
        s2 = replace(s, anchor=("sec", s.section), sym_value=s.offset + page(s.addend) - s.addend)
    elif rule in (WEAK_NEXT, WEAK_PLACE):
        s2 = replace(s, anchor=("sec", s.section), sym_value=s.offset + (4 if rule == WEAK_NEXT else 0))
    else:   # WEAK_ZERO
        s2 = replace(s, anchor=None, sym_value=0)
    return ob.for_weak(rules[0][0]), s2


def emit_repro(report: Report, directory: str) -> dict[tuple, str]:
    """Write a repro folder for every counterexample (vulnerable and broken sites; unknown
    ones have none) under ``directory``: ``<object>/<site>/`` with ld.lld and GNU ld
    scripts and ``repro.sh`` (reachsolve.report.repro). An object whose allocated
    sections share names gets one renamed copy, ``<object>/object.o``, for all its
    sites; so does an archive member. Returns each site's repro.sh path by site key."""
    import os
    from collections import defaultdict
    from pathlib import Path

    from .objfile.elf import read_object
    from .objfile.rename import renamed_copy, unique_names
    from .report.proofs import Verdict
    from .report.repro import folder_name, object_folder, write_site
    from .target.policy import PROFILE_CHOICES

    profiles = PROFILE_CHOICES.get(dict(report.model).get("linker", "both"), ("lld", "bfd"))
    by_file: dict[str, list[SiteResult]] = defaultdict(list)
    for s in report.listed:
        if s.counterexample is not None and s.verdict in (Verdict.VULNERABLE, Verdict.BROKEN):
            by_file[s.file].append(s)
    root = Path(directory)
    out: dict[tuple, str] = {}
    used_dirs: set[str] = set()
    for file in sorted(by_file):
        blob, src, members = _reread(report, file)
        obj = read_object(blob.name, blob.data)
        names = unique_names([(s.index, s.name) for s in obj.sections if s.alloc], {s.name for s in obj.sections})
        base = name = object_folder(file)
        k = 1
        while name in used_dirs:
            k += 1
            name = f"{base}#{k}"
        used_dirs.add(name)
        odir = root / name
        odir.mkdir(parents=True, exist_ok=True)
        if names or members > 1 or src.member or os.path.basename(blob.name) != os.path.basename(src.path):
            (odir / "object.o").write_bytes(renamed_copy(blob.data, names, file))
            ref = "../object.o"
        else:
            ref = os.path.abspath(src.path)
        big = blob.data[5:6] == b"\x02"
        others = _strong_undefined(obj)
        seen: set[str] = set()
        for s in by_file[file]:
            base_f = f = folder_name(s, names)
            k = 1
            while f in seen:
                k += 1
                f = f"{base_f}-{k}"
            seen.add(f)
            out[s.key] = str(write_site(s, odir / f, ref, profiles, big, names, others))
    return out


def _strong_undefined(obj) -> tuple[str, ...]:
    """Names of the object's undefined symbols that are not weak: a link stops at them."""
    from .objfile.elf import STB_WEAK, SYM_UNDEF
    import numpy as np
    idx = np.nonzero(obj.symbol_section == SYM_UNDEF)[0]
    binds = obj.symbols["info"][idx] >> 4
    return tuple(sorted({obj.symbol_name(int(i)) for i, b in zip(idx.tolist(), binds.tolist())
                         if i and b != STB_WEAK} - {""}))
