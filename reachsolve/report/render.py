"""Renderers of a Report: lld-style text and the JSON contract (docs/README.md)."""
from __future__ import annotations

import json

from ..target.catalogue import BY_NUMBER
from ..target.policy import PROFILE_LABEL
from .document import JSON_PROOF_COLUMNS, PROOF_KINDS, Counterexample, ProofTable, Report, SiteResult
from .proofs import VERDICTS, Verdict

SCHEMA_VERSION = 1


def _where(s: SiteResult) -> str:
    return f"{s.file}:({s.section}+{s.offset:#x})"


def _headline(s: SiteResult) -> str:
    ce = s.counterexample
    ref = f"; references {s.symbol}" if s.symbol else ""
    if ce is not None and ce.problem == "out of range" and s.range is not None:
        return (f"{_where(s)}: relocation {s.reloc} out of range: {ce.value} is not in "
                f"[{s.range[0]}, {s.range[1]}]{ref}")
    if ce is not None:
        return f"{_where(s)}: improper alignment for relocation {s.reloc}: {ce.value:#x} is not aligned to {s.granule} bytes{ref}"
    return f"{_where(s)}: relocation {s.reloc}: {s.verdict}{ref}"


def _short_layout(ce: Counterexample, s: SiteResult, limit: int = 4) -> str:
    keep = [p for p in ce.layout if p.section in (s.section, s.target_section)]
    rest = len(ce.layout) - len(keep)
    parts = [f"{p.section}={p.address:#x}" for p in keep[:limit]]
    parts += [f"{p.name}={p.address:#x}" for p in ce.symbols if p.name == s.symbol][:limit]
    more = f" (+{rest} more sections)" if rest else ""
    return f"image_base={ce.image_base:#x} " + " ".join(parts) + more


def text(report: Report, verbose: bool = False) -> str:
    lines: list[str] = []
    for s in (report.sites if verbose else report.listed):
        if s.verdict == Verdict.ROBUST and not verbose:
            continue
        lines.append(_headline(s))
        at = f"{s.function[0]}+{s.function[1]:#x}: " if s.function else ""
        lines.append(f"  >>> {at}{s.instruction}   value = {s.expression}")
        lines.append(f"  >>> {s.verdict}: {s.reason}")
        ce = s.counterexample
        if ce is not None:
            lines.append(f"  >>> layout: {_short_layout(ce, s)}")
            who = ", ".join(PROFILE_LABEL[p] for p in ce.rejected_by) or "no linker (silent)"
            lines.append(f"  >>> encodes as: {ce.encoded}; wanted {ce.wanted}; rejected by: {who}")
        for n in s.notes:
            lines.append(f"  >>> note: {n}")
        lines.extend(fix_lines(s))
    for e in report.errors:
        lines.append(f"error: {e.file}: {e.message}")
    c = report.summary
    lines.append(f"{sum(c.values())} range-checked sites in {len(report.files)} objects: "
                 + ", ".join(f"{c[v]} {v}" for v in VERDICTS))
    unchecked: dict[str, int] = {}
    for f in report.files:
        for name, n in f.not_range_checked:
            unchecked[name] = unchecked.get(name, 0) + n
    if unchecked:
        lines.append("not range-checked: " + ", ".join(f"{k} x{v}" for k, v in sorted(unchecked.items())))
    if report.errors:
        lines.append(f"{len(report.errors)} input errors")
    return "\n".join(lines) + "\n"


def fix_lines(s: SiteResult) -> list[str]:
    """The fix under a finding: the rewrite with its verdict and reach, then its note."""
    f = s.fix
    if f is None:
        return []
    if f.verdict == "none":
        return ([f"  >>> fix (advice): {'; '.join(f.asm)}"] if f.asm else []) + [f"  >>> fix (advice): {f.note}"]
    return [f"  >>> fix ({f.verdict}, reach {f.reach}): {'; '.join(f.asm)}", f"  >>> fix note: {f.note}"]


def _fix(s: SiteResult) -> dict | None:
    f = s.fix
    return None if f is None else {"asm": list(f.asm), "reach": f.reach, "verdict": f.verdict, "note": f.note}


class _Layouts:
    """Counterexample layouts, numbered in order of first use: sites of one group share
    one layout, and a kernel layout lists 10^5 sections, so the JSON holds each once."""

    def __init__(self):
        self.ids: dict[int, int] = {}
        self.items: list[Counterexample] = []

    def ref(self, ce: Counterexample) -> int:
        key = id(ce.layout)
        if key not in self.ids:
            self.ids[key] = len(self.items)
            self.items.append(ce)
        return self.ids[key]

    @staticmethod
    def entry(ce: Counterexample) -> dict:
        return {"sections": [{"section": p.section, "index": p.index, "address": p.address} for p in ce.layout],
                "symbols": [{"name": p.name, "kind": p.kind, "address": p.address} for p in ce.symbols]}


def _ce(ce: Counterexample | None, layouts: _Layouts):
    if ce is None:
        return None
    return {
        "value": ce.value,
        "problem": ce.problem,
        "rejected_by": list(ce.rejected_by),
        "image_base": ce.image_base,
        "place": ce.place,
        "target": ce.target,
        "encoded": ce.encoded,
        "wanted": ce.wanted,
        "layout": layouts.ref(ce),
    }


def _site_dict(s: SiteResult, layouts: _Layouts) -> dict:
    return {
        "file": s.file, "section": s.section, "section_index": s.section_index, "offset": s.offset,
        "function": {"name": s.function[0], "offset": s.function[1]} if s.function else None,
        "reloc": s.reloc, "symbol": s.symbol, "addend": s.addend, "target_section": s.target_section,
        "instruction": s.instruction, "expression": s.expression,
        "range": list(s.range) if s.range is not None else None, "granule": s.granule,
        "verdict": s.verdict, "reason": s.reason, "notes": list(s.notes), "as_linked": s.as_linked,
        "margin": s.margin,
        "counterexample": _ce(s.counterexample, layouts),
        "fix": _fix(s),
    }


def _head(report: Report) -> dict:
    return {"schema": SCHEMA_VERSION, "tool": {"name": report.tool, "version": report.version},
            "model": dict(report.model)}


def _tail(report: Report) -> dict:
    return {
        "files": [{
            "file": f.file, "sections": f.sections, "relocations": f.relocations,
            "not_range_checked": dict(f.not_range_checked), "skipped_nonalloc": f.skipped_nonalloc,
            "assumptions": list(f.assumptions), "decisions": dict(f.decisions),
        } for f in report.files],
        "errors": [{"file": e.file, "message": e.message} for e in report.errors],
        "summary": report.summary,
        "solver_calls": report.solver_calls,
    }


def _table_meta(t: ProofTable) -> dict:
    return {"file": t.file, "sites": len(t), "proof_kinds": list(PROOF_KINDS),
            "reloc_names": {str(n): BY_NUMBER[n].name for n in sorted(set(t.columns["reloc"].tolist()))},
            "section_names": {str(i): n for i, n in sorted(t.section_names.items())},
            "symbol_names": {str(i): n for i, n in sorted(t.symbol_names.items())}}


def _table_column(t: ProofTable, name: str) -> list | None:
    if name == "as_linked":
        return t.as_linked()
    if name in ("veneered", "veneer_note"):
        return t.columns[name].astype(int).tolist()
    return t.columns[name].tolist()


def _table_chunks(t: ProofTable):
    """One proof table as JSON text, column by column (a column is one short-lived list)."""
    yield json.dumps(_table_meta(t))[:-1] + ', "columns": {'
    for k, name in enumerate(JSON_PROOF_COLUMNS):
        yield (", " if k else "") + json.dumps(name) + ": " + json.dumps(_table_column(t, name))
    yield "}}"


def to_dict(report: Report) -> dict:
    layouts = _Layouts()
    sites = [_site_dict(s, layouts) for s in report.listed]
    return {**_head(report), "sites": sites, "layouts": [layouts.entry(ce) for ce in layouts.items],
            "proved": [{**_table_meta(t), "columns": {n: _table_column(t, n) for n in JSON_PROOF_COLUMNS}}
                       for t in report.proved], **_tail(report)}


def json_chunks(report: Report):
    """The JSON report in pieces, site by site, so that writing a report of millions of
    sites needs no second copy of it in memory. ''.join() of the pieces equals
    json.dumps(to_dict(report)) + newline, byte for byte (tested).

    No indentation: only then does the json module use its C encoder. Pipe through
    `jq .` or `python3 -m json.tool` to read.
    """
    head = json.dumps(_head(report))
    layouts = _Layouts()
    yield head[:-1] + ', "sites": ['
    for i, s in enumerate(report.listed):
        yield (", " if i else "") + json.dumps(_site_dict(s, layouts))
    yield '], "layouts": ['
    for i, ce in enumerate(layouts.items):
        yield (", " if i else "") + json.dumps(_Layouts.entry(ce))
    yield '], "proved": ['
    for i, t in enumerate(report.proved):
        if i:
            yield ", "
        yield from _table_chunks(t)
    yield "], " + json.dumps(_tail(report))[1:] + "\n"


def to_json(report: Report) -> str:
    return "".join(json_chunks(report))


_SARIF_RULES = {
    "broken": ("error", "No layout of the model lets this relocation fit."),
    "vulnerable": ("error", "Some layouts of the model put this relocation out of range or misalign it."),
    "unknown": ("warning", "reachsolve could not decide this relocation site."),
    "robust": ("none", "Proved to fit for every layout of the model."),
}


def to_sarif(report: Report, include_robust: bool = False) -> str:
    """SARIF 2.1.0: one result per undecided or failing site, located by section and offset."""
    rules = [{"id": v, "shortDescription": {"text": d}, "defaultConfiguration": {"level": lvl}}
             for v, (lvl, d) in _SARIF_RULES.items()]
    results = []
    for s in (report.sites if include_robust else report.listed):
        if s.verdict == Verdict.ROBUST and not include_robust:
            continue
        props = {"function": f"{s.function[0]}+{s.function[1]:#x}" if s.function else None,
                 "reloc": s.reloc, "symbol": s.symbol, "addend": s.addend, "expression": s.expression,
                 "range": list(s.range) if s.range else None, "instruction": s.instruction}
        if s.counterexample:
            ce = s.counterexample
            props["counterexample"] = {"value": ce.value, "rejected_by": list(ce.rejected_by),
                                       # the two sections of the value; the JSON report has the whole layout
                                       "layout": {p.section: p.address for p in ce.layout
                                                  if p.section in (s.section, s.target_section)}}
        results.append({
            "ruleId": s.verdict,
            "level": _SARIF_RULES[s.verdict][0],
            "message": {"text": f"{_headline(s)}: {s.reason}"},
            "locations": [{"physicalLocation": {
                "artifactLocation": {"uri": s.file},
                "address": {"kind": "section", "name": s.section, "relativeAddress": s.offset}}}],
            "properties": props,
        })
    doc = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": report.tool, "version": report.version, "rules": rules}},
            "invocations": [{"executionSuccessful": not report.errors,
                             "toolExecutionNotifications": [
                                 {"level": "error", "message": {"text": f"{e.file}: {e.message}"}}
                                 for e in report.errors]}],
            "properties": {"model": dict(report.model), "summary": report.summary},
            "results": results,
        }],
    }
    return json.dumps(doc, indent=2) + "\n"


def json_site_rows(doc: dict):
    """Every site of a parsed JSON report as a small dict (file, section, section_index, offset,
    reloc, symbol, addend, verdict), the listed ones and the proof-table rows alike; for
    readers that want one list, e.g. CI scripts counting verdicts per file."""
    for s in doc["sites"]:
        yield {k: s[k] for k in ("file", "section", "section_index", "offset", "reloc", "symbol", "addend",
                                 "verdict")}
    for t in doc.get("proved", ()):
        c = t["columns"]
        for sec, off, r, sym, add in zip(c["section_index"], c["offset"], c["reloc"], c["symbol"], c["addend"]):
            yield {"file": t["file"], "section": t["section_names"][str(sec)], "section_index": sec, "offset": off,
                   "reloc": t["reloc_names"][str(r)], "symbol": t["symbol_names"].get(str(sym), ""),
                   "addend": add, "verdict": "robust"}
