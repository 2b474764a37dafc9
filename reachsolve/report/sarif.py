"""SARIF 2.1.0 for code scanning: one result per finding, on its source line.

Rules are per relocation family and problem (``reach/condbr19``,
``align/ldst64``), so an alert keeps its rule whatever layout broke it.
Results carry reachsolve's fingerprint (report.identity), which survives the
offset shifts of every rebuild, and the baseline state and suppression when
those were given. The layout lists sections by index and name: a kernel has
thousands of sections named ``.text``.
"""
from __future__ import annotations

import json
import os
import re
from urllib.parse import quote

from .document import Report, SiteResult
from .identity import FINGERPRINT_KEY
from .proofs import Failure, Problem, Verdict
from .reasons import rule as rule_words
from .render import linkers

SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
SOURCE_ROOT = "SRCROOT"

_LDST = re.compile(r"LDST(\d+)_ABS_LO12_NC")


def family(reloc: str) -> str:
    """R_AARCH64_CONDBR19 -> condbr19; R_AARCH64_LDST64_ABS_LO12_NC -> ldst64."""
    name = reloc.removeprefix("R_AARCH64_")
    m = _LDST.fullmatch(name)
    return f"ldst{m.group(1)}" if m else name.lower().replace("_", "-")


def rule_kind(s: SiteResult) -> str:
    if s.verdict == Verdict.UNKNOWN:
        return "undecided"
    ce = s.counterexample
    if ce is not None:
        return "align" if ce.problem == "improper alignment" else "reach"
    if isinstance(s.record, Failure):
        return "align" if s.record.problem is Problem.ALIGN else "reach"
    return "rejected" if s.verdict == Verdict.BROKEN else "reach"


def rule_id(s: SiteResult) -> str:
    return f"{rule_kind(s)}/{family(s.reloc)}"


def level(s: SiteResult) -> str:
    """broken and near: error; other vulnerable and unknown sites: warning."""
    if s.verdict == Verdict.BROKEN or s.near:
        return "error"
    return "warning"


def _uri(path: str) -> str:
    return quote(path.replace(os.sep, "/"), safe="/:")


def _object_path(report: Report, label: str) -> str:
    src = report.sources.get(label)
    return src.path if src is not None else label


def _where(s: SiteResult) -> str:
    at = f"{s.function[0]}+{s.function[1]:#x} " if s.function else ""
    return f"{at}({s.section}+{s.offset:#x})"


def _message(s: SiteResult) -> str:
    target = s.symbol or s.target_section or "its target"
    head = {Verdict.BROKEN: "error", Verdict.VULNERABLE: "warning", Verdict.UNKNOWN: "undecided"}[s.verdict]
    text = f"{head}: {s.reloc} at {_where(s)} to {target}: {s.reason}"
    fix = s.fix
    if fix is not None and fix.asm:
        text += f". Fix, {fix.verdict} under this model ({fix.reach}): " + "; ".join(fix.asm)
    elif fix is not None:
        text += f". Advice: {fix.note}"
    return text


def _physical(report: Report, s: SiteResult) -> dict:
    source = s.source
    if source is not None:
        region = {"startLine": source.line}
        if source.column:
            region["startColumn"] = source.column
        loc = {"uri": _uri(source.file)}
        if not os.path.isabs(source.file) and report.source_root:
            loc["uriBaseId"] = SOURCE_ROOT
        return {"artifactLocation": loc, "region": region}
    # No line information: the alert sits on the object (code scanning needs a line).
    return {"artifactLocation": {"uri": _uri(_object_path(report, s.file))}, "region": {"startLine": 1}}


def _logical(s: SiteResult) -> list[dict]:
    out = []
    if s.function:
        out.append({"name": s.function[0], "fullyQualifiedName": f"{s.file}:{s.function[0]}+{s.function[1]:#x}",
                    "kind": "function"})
    out.append({"name": s.section, "fullyQualifiedName": f"{s.file}:({s.section}+{s.offset:#x})",
                "kind": "section", "index": s.section_index})
    return out


def _properties(s: SiteResult) -> dict:
    props = {"reloc": s.reloc, "symbol": s.symbol, "addend": s.addend, "instruction": s.instruction,
             "expression": s.expression, "range": list(s.range) if s.range else None,
             "margin": s.margin, "as_linked": s.as_linked, "near": s.near, "verdict": str(s.verdict)}
    ce = s.counterexample
    if ce is not None:
        wanted = {s.section_index}
        if s.target_section is not None:
            wanted |= {p.index for p in ce.layout if p.section == s.target_section}
        props["counterexample"] = {
            "value": ce.value, "rejected_by": list(ce.rejected_by), "image_base": ce.image_base,
            # the sections of the value, by index and name; the JSON report has the whole layout
            "sections": [{"index": p.index, "name": p.section, "address": p.address}
                         for p in ce.layout if p.index in wanted]}
    return props


def _result(report: Report, s: SiteResult) -> dict:
    r = {
        "ruleId": rule_id(s),
        "level": level(s),
        "message": {"text": _message(s)},
        "locations": [{"physicalLocation": _physical(report, s), "logicalLocations": _logical(s)}],
        "relatedLocations": [{
            "id": 1, "message": {"text": f"in {s.file}"},
            "physicalLocation": {"artifactLocation": {"uri": _uri(_object_path(report, s.file))},
                                 "address": {"kind": "section", "name": s.section, "index": s.section_index,
                                             "relativeAddress": s.offset}}}],
        "partialFingerprints": {FINGERPRINT_KEY: s.fingerprint},
        "properties": _properties(s),
    }
    if s.baseline is not None:
        r["baselineState"] = s.baseline.state
    if s.suppression is not None:
        r["suppressions"] = [{"kind": "external", "status": "accepted", "justification": s.suppression}]
    return r


def _absent(old: dict) -> dict:
    """A finding of the baseline that this run no longer has: fixed."""
    fam = family(old["reloc"])
    kind = "undecided" if old["verdict"] == "unknown" else (
        "align" if (old.get("counterexample") or {}).get("problem") == "improper alignment" else "reach")
    fn = old.get("function")
    where = f"{fn['name']}+{fn['offset']:#x} " if fn else ""
    return {"ruleId": f"{kind}/{fam}", "level": "note", "baselineState": "absent",
            "message": {"text": f"fixed since the baseline: {old['reloc']} at {where}({old['section']}+"
                                f"{old['offset']:#x}) was {old['verdict']}"},
            "locations": [{"physicalLocation": {"artifactLocation": {"uri": _uri(old["file"])},
                                                "region": {"startLine": 1}}}],
            "partialFingerprints": {FINGERPRINT_KEY: old["fingerprint"]}}


def _rule(rid: str, reloc: str) -> dict:
    kind = rid.split("/", 1)[0]
    short, full, help_text = rule_words(kind, reloc)
    return {"id": rid, "name": rid.replace("/", "-"), "shortDescription": {"text": short},
            "fullDescription": {"text": full}, "help": {"text": help_text},
            "defaultConfiguration": {"level": "warning"},
            "properties": {"tags": ["aarch64", "relocation", kind], "reloc": reloc}}


def to_sarif(report: Report) -> str:
    """The SARIF log of the report's findings (robust sites are not results)."""
    findings = list(report.findings())
    results = [_result(report, s) for s in findings]
    rules = {rule_id(s): s.reloc for s in findings}
    if report.comparison is not None:
        for old in report.comparison.absent:
            results.append(_absent(old))
            rules.setdefault(results[-1]["ruleId"], old["reloc"])
    run = {
        "tool": {"driver": {
            "name": report.tool, "version": report.version, "semanticVersion": report.version,
            "rules": [_rule(rid, reloc) for rid, reloc in sorted(rules.items())],
            "properties": {"linkers": linkers(report)}},
            # the linker rules each verdict applies, as components of their own
            "extensions": [{"name": x["name"], "version": x["version"]} for x in linkers(report)]},
        "invocations": [{"executionSuccessful": not report.errors,
                         "toolExecutionNotifications": [
                             {"level": "error", "message": {"text": f"{e.file}: {e.message}"}}
                             for e in report.errors]}],
        "results": results,
        "properties": {"model": dict(report.model), "summary": report.summary},
    }
    root = report.source_root
    if root:
        run["originalUriBaseIds"] = {SOURCE_ROOT: {"uri": "file://" + _uri(os.path.abspath(root)).rstrip("/") + "/"}}
    doc = {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}
    return json.dumps(doc, indent=2) + "\n"
