"""After the decision: fingerprints, the near flag, suppressions and the baseline.

None of these changes a verdict. They say how a finding stands against a
threshold (``min_margin``), a written reason to accept it (a suppressions
file), and the last build's report (a baseline), which is what a CI gate and a
code-review tool need beside the proof.
"""
from __future__ import annotations

import json
import re
import tomllib
from dataclasses import replace

from ..errors import InputError
from .document import BaselineMark, Comparison, Report
from .identity import fingerprints
from .proofs import Verdict

#: The JSON report schema a baseline must have (fingerprints appeared in 2).
BASELINE_SCHEMAS = (2,)


def annotate(report: Report, *, min_margin: int | None = None, baseline: dict | None = None,
             baseline_name: str = "", suppressions: dict[str, str] | None = None,
             source_root: str | None = None) -> Report:
    """The report with every finding's fingerprint, near flag, suppression and baseline mark."""
    findings = [s for s in report.listed if s.verdict != Verdict.ROBUST]
    fps = dict(zip((s.key for s in findings), fingerprints(findings)))
    old = findings_by_fingerprint(baseline) if baseline is not None else None
    listed = []
    for s in report.listed:
        fp = fps.get(s.key)
        if fp is None:
            listed.append(s)
            continue
        near = (min_margin is not None and s.verdict == Verdict.VULNERABLE and s.margin is not None
                and s.margin < min_margin)
        mark = None
        if old is not None:
            o = old.get(fp)
            if o is None:
                mark = BaselineMark("new")
            elif (o["verdict"], o.get("margin"), o.get("near", False)) == (s.verdict, s.margin, near):
                mark = BaselineMark("unchanged")
            else:
                mark = BaselineMark("updated", o["verdict"], o.get("margin"), o.get("near", False))
        reason = (suppressions or {}).get(fp)
        listed.append(replace(s, fingerprint=fp, near=near, baseline=mark, suppression=reason))
    comparison = None
    if old is not None:
        analyzed, found = {f.file for f in report.files}, set(fps.values())
        gone = [o for fp, o in sorted(old.items(), key=lambda kv: _order(kv[1])) if fp not in found]
        comparison = Comparison(baseline_name, tuple(o for o in gone if o["file"] in analyzed),
                                tuple(o for o in gone if o["file"] not in analyzed))
    return replace(report, listed=tuple(listed), comparison=comparison, min_margin=min_margin,
                   source_root=source_root)


def _order(site: dict) -> tuple:
    return (site["file"], site["section_index"], site["offset"], site["reloc"])


def findings_by_fingerprint(doc: dict) -> dict[str, dict]:
    """A parsed JSON report's findings (its non-robust sites) by fingerprint."""
    return {s["fingerprint"]: s for s in doc["sites"] if s["verdict"] != "robust" and s.get("fingerprint")}


def read_report(path: str) -> dict:
    """A JSON report written by ``check --json`` (or --format json), checked for its shape."""
    try:
        with open(path) as f:
            doc = json.load(f)
    except OSError as exc:
        raise InputError(path, f"cannot read report: {exc.strerror}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(path, f"not a JSON report: {exc}") from None
    if not isinstance(doc, dict) or doc.get("tool", {}).get("name") != "reachsolve" or "sites" not in doc:
        raise InputError(path, "not a reachsolve JSON report")
    if doc.get("schema") not in BASELINE_SCHEMAS:
        raise InputError(path, f"report schema {doc.get('schema')!r} has no fingerprints to compare; "
                               f"write it again with this version (schema {BASELINE_SCHEMAS[-1]})")
    return doc


_FINGERPRINT = re.compile(r"[0-9a-f]{32}")


def read_suppressions(path: str) -> dict[str, str]:
    """A suppressions file: TOML ``[[suppress]]`` entries, each a ``fingerprint`` (as the
    JSON and SARIF reports give it) and a written ``reason``."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
        doc = tomllib.loads(raw.decode())
    except OSError as exc:
        raise InputError(path, f"cannot read suppressions: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(path, f"not a TOML suppressions file: {exc}") from None
    lines = [n for n, line in enumerate(raw.decode().splitlines(), 1) if line.strip().startswith("[[suppress]]")]
    extra = sorted(set(doc) - {"suppress"})
    if extra:
        raise InputError(path, f"unknown key {extra[0]!r}; a suppressions file holds [[suppress]] entries")
    entries = doc.get("suppress", [])
    if not isinstance(entries, list):
        raise InputError(path, "'suppress' must be an array of tables: [[suppress]]")
    out: dict[str, str] = {}
    for k, e in enumerate(entries):
        where = f"line {lines[k]}: " if k < len(lines) else f"entry {k + 1}: "
        if not isinstance(e, dict) or set(e) - {"fingerprint", "reason"}:
            bad = sorted(set(e) - {"fingerprint", "reason"}) if isinstance(e, dict) else ["?"]
            raise InputError(path, f"{where}unknown key {bad[0]!r}; an entry has fingerprint and reason")
        fp, reason = e.get("fingerprint"), e.get("reason")
        if not isinstance(fp, str) or not _FINGERPRINT.fullmatch(fp):
            raise InputError(path, f"{where}fingerprint must be 32 hex digits as the report gives it")
        if not isinstance(reason, str) or not reason.strip():
            raise InputError(path, f"{where}a suppression needs a written reason")
        if fp in out:
            raise InputError(path, f"{where}fingerprint {fp} is suppressed twice")
        out[fp] = reason.strip()
    return out
