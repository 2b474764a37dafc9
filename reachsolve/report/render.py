"""Renderers of a Report: lld-style text and the JSON contract (docs/README.md)."""
from __future__ import annotations

import json

from ..target.catalogue import BY_NAME, BY_NUMBER
from ..target.policy import PROFILE_CHOICES, PROFILE_LABEL, PROFILE_VERSION
from .document import PROOF_COLUMNS, PROOF_KINDS, Counterexample, ProofTable, Report, SiteResult
from .proofs import VERDICTS, Verdict

#: Goes up when a field changes meaning (docs/README.md, reachsolve/schema/report.schema.json).
SCHEMA_VERSION = 2


def _where(s: SiteResult) -> str:
    return f"{s.file}:({s.section}+{s.offset:#x})"


def _source(s: SiteResult) -> str:
    return f"{s.source.file}:{s.source.line}"


def _lld_words(s: SiteResult, ce: Counterexample, profiles: tuple[str, ...]) -> str:
    """A failing site in the words of the linker that reports it: ld.lld's (its own interval,
    in decimal, untrimmed) unless only GNU ld does, so that a search for the linker's
    message finds this line."""
    ref = f"; references {s.symbol}" if s.symbol else ""
    spec = BY_NAME.get(s.reloc)
    if ce.problem != "out of range" or spec is None:
        # ld.lld prints the value as a 64-bit unsigned number in upper-case hex (utohexstr)
        return (f"improper alignment for relocation {s.reloc}: 0x{ce.value % (1 << 64):X} is not aligned to "
                f"{s.granule} bytes")
    who = [p for p in ("lld", "bfd", "kmod") if p in (ce.rejected_by or profiles)] or ["lld"]
    if who[0] == "bfd":
        iv = spec.limits["bfd"].interval()
        return (f"relocation truncated to fit: {s.reloc} against symbol `{s.symbol}'; "
                f"{ce.value} is not in [{iv[0]}, {iv[1]}]")
    iv = spec.limits[who[0]].interval() or s.range
    return f"relocation {s.reloc} out of range: {ce.value} is not in [{iv[0]}, {iv[1]}]{ref}"


def _headline(s: SiteResult, profiles: tuple[str, ...] = ()) -> str:
    """The first line of a site: an error only for a broken site (in the linker's words), a
    warning for a vulnerable or undecided one, whose words no log scraper takes for a linker's."""
    ce = s.counterexample
    ref = f"; references {s.target_label or s.symbol}" if s.symbol else ""
    if s.verdict == Verdict.BROKEN and ce is not None:
        return f"error: {_where(s)}: {_lld_words(s, ce, profiles)}"
    if s.verdict == Verdict.BROKEN:
        return f"error: {_where(s)}: relocation {s.reloc} cannot fit in any layout of the model{ref}"
    if s.verdict == Verdict.VULNERABLE and ce is not None and ce.problem == "out of range" and s.range:
        return (f"warning: {_where(s)}: {s.reloc} can overflow: some layouts of the model give the value "
                f"{ce.value:#x}, outside [{s.range[0]:#x}, {s.range[1]:#x}]{ref}")
    if s.verdict == Verdict.VULNERABLE and ce is not None:
        return (f"warning: {_where(s)}: {s.reloc} can be misaligned: some layouts of the model give the value "
                f"{ce.value:#x}, not a multiple of {s.granule}{ref}")
    if s.verdict == Verdict.UNKNOWN:
        return f"warning: {_where(s)}: {s.reloc} is undecided: reachsolve could not tell whether it always fits{ref}"
    return f"{_where(s)}: relocation {s.reloc}: {s.verdict}{ref}"


def headline(s: SiteResult, linker: str = "both") -> str:
    """The first line the text report prints for a site, under the model's ``linker`` choice."""
    return _headline(s, PROFILE_CHOICES.get(linker, ("lld", "bfd")))


def _operand(s: SiteResult) -> str:
    """The site's target as the source names it: symbol+addend."""
    a = s.addend
    return (s.symbol or "0") + (f"+{a:#x}" if a > 0 else f"-{-a:#x}" if a < 0 else "")


_COLOUR = {"error": "\033[1;31m", "warning": "\033[1;33m", "ok": "\033[1;32m", "dim": "\033[2m"}
_RESET = "\033[0m"


def _paint(text: str, tone: str, colour: bool) -> str:
    return f"{_COLOUR[tone]}{text}{_RESET}" if colour else text


def _tone(s: SiteResult) -> str:
    return "error" if s.verdict == Verdict.BROKEN or s.near else "warning"


def _annotations(report: Report, s: SiteResult) -> list[str]:
    out = []
    if s.near:
        out.append(f"  >>> near: the margin {s.margin:#x} is below --min-margin {report.min_margin:#x}")
    m = s.baseline
    if m is not None:
        if m.state == "updated":
            was = f"{m.old_verdict}" + (f", margin {m.old_margin:#x}" if m.old_margin is not None else "")
            now = f"{s.verdict}" + (f", margin {s.margin:#x}" if s.margin is not None else "")
            delta = (f" ({s.margin - m.old_margin:+#x} bytes)"
                     if s.margin is not None and m.old_margin is not None else "")
            out.append(f"  >>> baseline: updated: was {was}; now {now}{delta}")
        else:
            out.append(f"  >>> baseline: {m.state}")
    if s.suppression is not None:
        out.append(f"  >>> suppressed: {s.suppression}")
    if s.fingerprint:
        out.append(f"  >>> fingerprint: {s.fingerprint}")
    return out


def summary_table(report: Report) -> list[str]:
    """Sites by relocation type and verdict, over every object."""
    rows: dict[str, dict[str, int]] = {}
    for per_file in type_counts(report).values():
        for reloc, counts in per_file.items():
            row = rows.setdefault(reloc, {})
            for v, n in counts.items():
                row[v] = row.get(v, 0) + n
    if not rows:
        return []
    width = max(len(r) for r in rows)
    head = f"{'relocation':<{width}}" + "".join(f"{v:>12}" for v in VERDICTS)
    return [head] + [f"{r:<{width}}" + "".join(f"{rows[r].get(v, 0):>12}" for v in VERDICTS)
                     for r in sorted(rows)]


def _comparison_line(report: Report) -> str | None:
    c = report.comparison
    if c is None:
        return None
    states = {"new": 0, "unchanged": 0, "updated": 0}
    for s in report.findings():
        if s.baseline is not None:
            states[s.baseline.state] += 1
    return (f"baseline {c.baseline or '(given)'}: {states['new']} new, {states['unchanged']} unchanged, "
            f"{states['updated']} updated, {len(c.absent)} absent (fixed), {len(c.not_compared)} not compared")


def _relocated(s: SiteResult) -> str:
    """The instruction with its relocated operand named (`cbz x0, hyp_panic`, not `cbz x0, #0`),
    as an assembler listing writes it; capstone's text when the form is not recognised."""
    text, op = s.instruction, _operand(s)
    if s.verdict == Verdict.UNKNOWN:  # e.g. the wrong instruction for the type: show it as it is
        return text
    if text.startswith("."):
        return f"{text} {op}" + (" - ." if "PREL" in s.reloc else "")
    mn, _, ops = text.partition(" ")
    parts = [p.strip() for p in ops.split(",")] if ops else []
    got = "GOT" in s.reloc
    if "LO12" in s.reloc and "[" in ops:
        head = ops[:ops.index("[") + 1]
        reg = ops[ops.index("[") + 1:].split(",")[0].rstrip("]").strip()
        return f"{mn} {head}{reg}, :lo12:{op}]"
    if "MOVW" in s.reloc and parts:
        group = s.reloc.rsplit("_", 1)[-1].lower()   # g0, g1, g2
        return f"{'movz' if mn == 'mov' else mn} {parts[0]}, #:abs_{group}:{op}"
    if parts and parts[-1].startswith("#"):
        return f"{mn} {', '.join(parts[:-1] + [(':got:' if got else '') + op])}"
    return text


def _short_layout(ce: Counterexample, s: SiteResult) -> str:
    """The addresses the value depends on: the site's section and the target's (or symbol, GOT slot)."""
    keep = [p for p in ce.layout if p.index == s.section_index]
    keep += [p for p in ce.layout if p.section == s.target_section and p.index != s.section_index]
    shared = {p.section for p in keep if sum(q.section == p.section for q in keep) > 1}
    parts = [f"{p.section}{f'[{p.index}]' if p.section in shared else ''} at {p.address:#x}" for p in keep]
    parts += [f"{p.name} at {p.address:#x}" for p in ce.symbols
              if p.name == s.symbol or (p.kind == "got" and "GOT" in s.reloc) or p.kind == "tp"]
    return ", ".join(parts)


def text(report: Report, verbose: bool = False, repro: dict | None = None, quiet: bool = False,
         colour: bool = False) -> str:
    """The text report. ``repro`` maps a site's key to the repro script written for it
    (api.emit_repro); each such site prints its path. ``quiet``: findings and errors only."""
    lines: list[str] = []
    profiles = dict(report.model).get("linker", "both")
    profiles = PROFILE_CHOICES.get(profiles, ("lld", "bfd"))
    files = {f.file: f for f in report.files}
    told: set[str] = set()
    shown = [s for s in (report.sites if verbose and not quiet else report.listed)
             if verbose or s.verdict != Verdict.ROBUST]
    used: dict[str, set] = {}
    for s in shown:
        used.setdefault(s.file, set()).update(s.assumptions)
    for s in shown:
        f = files.get(s.file)
        if s.file not in told and f is not None and used.get(s.file):
            # once per object: the assumptions its shown sites rest on (all of them: the JSON report)
            lines.append(f"{s.file}: verdicts rest on these assumptions:")
            lines.extend(f"  {i}: {a}" for i, a in zip(f.assumption_ids, f.assumptions) if i in used[s.file])
            rest = len(f.assumptions) - len(used[s.file])
            if rest:
                lines.append(f"  (and {rest} more that no site shown here rests on; see the JSON report)")
        told.add(s.file)
        head = _headline(s, profiles)
        lines.append(_paint(head, _tone(s), colour) if s.verdict != Verdict.ROBUST else head)
        at = f"{s.function[0]}+{s.function[1]:#x}: " if s.function else ""
        if s.source is not None:
            at = f"{at[:-2]} ({_source(s)}): " if at else f"{_source(s)}: "
        lines.append(f"  >>> {at}{_relocated(s)}   value = {s.expression}")
        lines.append(f"  >>> {s.verdict}: {s.reason}")
        if s.as_linked is not None:
            more = f"; {s.margin:#x} more bytes between site and target break it" if s.margin is not None else ""
            lines.append(f"  >>> as linked: value {s.as_linked:#x}{more}")
        ce = s.counterexample
        if ce is not None:
            lines.append(f"  >>> layout: {_short_layout(ce, s)} (every section: JSON report, repro folder)")
            who = ", ".join(PROFILE_LABEL[p] for p in ce.rejected_by) or "no linker (silent)"
            lines.append(f"  >>> encodes as: {ce.encoded}; wanted {ce.wanted}; rejected by: {who}")
        if s.assumptions:
            lines.append(f"  >>> rests on: {', '.join(s.assumptions)}")
        for n in s.notes:
            lines.append(f"  >>> note: {n}")
        lines.extend(fix_lines(s))
        if repro and s.key in repro:
            lines.append(f"  >>> repro: {repro[s.key]}")
        lines.extend(_annotations(report, s))
    if report.comparison is not None:
        for old in report.comparison.absent:
            fn = old.get("function")
            at = f" {fn['name']}+{fn['offset']:#x}" if fn else ""
            lines.append(_paint(f"{old['file']}:({old['section']}+{old['offset']:#x}):{at} {old['reloc']}: "
                                f"fixed since the baseline (was {old['verdict']})", "ok", colour))
    for e in report.errors:
        lines.append(_paint(f"error: {e.file}: {e.message}", "error", colour))
    if quiet:
        return "\n".join(lines) + "\n" if lines else ""
    c = report.summary
    n_sites = sum(c.values())
    if not report.errors and n_sites == c[Verdict.ROBUST] and report.comparison is None:
        lines.append(_paint(f"clean: all {n_sites} range-checked sites in {len(report.files)} objects are "
                            f"robust", "ok", colour))
    else:
        lines.extend(summary_table(report))
        lines.append(f"{n_sites} range-checked sites in {len(report.files)} objects: "
                     + ", ".join(f"{c[v]} {v}" for v in VERDICTS))
    unchecked: dict[str, int] = {}
    for f in report.files:
        for name, n in f.not_range_checked:
            unchecked[name] = unchecked.get(name, 0) + n
    if unchecked:
        lines.append("not range-checked: " + ", ".join(f"{k} x{v}" for k, v in sorted(unchecked.items())))
    near = sum(1 for s in report.listed if s.near)
    quiet_n = sum(1 for s in report.listed if s.suppression is not None)
    if near or quiet_n:
        lines.append(", ".join(x for x in (f"{near} near" if near else "",
                                          f"{quiet_n} suppressed" if quiet_n else "") if x))
    cmp_line = _comparison_line(report)
    if cmp_line:
        lines.append(cmp_line)
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
        "source": {"file": s.source.file, "line": s.source.line, "column": s.source.column} if s.source else None,
        "target_label": s.target_label,
        "reloc": s.reloc, "symbol": s.symbol, "addend": s.addend, "target_section": s.target_section,
        "target_section_index": s.target_section_index, "instruction": s.instruction, "expression": s.expression,
        "range": list(s.range) if s.range is not None else None, "granule": s.granule,
        "verdict": s.verdict, "reason": s.reason, "notes": list(s.notes), "as_linked": s.as_linked,
        "margin": s.margin, "near": s.near,
        "counterexample": _ce(s.counterexample, layouts),
        "fix": _fix(s),
        "fingerprint": s.fingerprint or None,
        "baseline": _mark(s.baseline),
        "suppression": {"reason": s.suppression} if s.suppression is not None else None,
        "assumptions": list(s.assumptions),
    }


def _mark(m) -> dict | None:
    if m is None:
        return None
    out = {"state": m.state}
    if m.state == "updated":
        out["old"] = {"verdict": m.old_verdict, "margin": m.old_margin, "near": m.old_near}
    return out


def _head(report: Report) -> dict:
    return {"schema": SCHEMA_VERSION, "tool": {"name": report.tool, "version": report.version},
            "model": dict(report.model), "linkers": linkers(report)}


def linkers(report: Report) -> list[dict]:
    """The linker rules the verdicts apply, with the versions the catalogue follows."""
    profiles = PROFILE_CHOICES[dict(report.model).get("linker", "both")]
    return [{"profile": p, "name": PROFILE_LABEL[p], "version": PROFILE_VERSION[p]} for p in profiles]


def _site_list(report: Report, all_sites: bool):
    """--all-sites: every site decided one by one; else what needs attention."""
    return report.listed if all_sites else tuple(report.findings())


def type_counts(report: Report) -> dict[str, dict[str, dict[str, int]]]:
    """Per object: relocation type -> verdict -> sites, the proof tables' rows included."""
    out: dict[str, dict[str, dict[str, int]]] = {f.file: {} for f in report.files}
    for s in report.listed:
        row = out.setdefault(s.file, {}).setdefault(s.reloc, {})
        row[s.verdict] = row.get(s.verdict, 0) + 1
    for t in report.proved:
        for name, n in t.type_counts.items():
            row = out.setdefault(t.file, {}).setdefault(name, {})
            row["robust"] = row.get("robust", 0) + n
    return {f: {r: {v: c[v] for v in VERDICTS if v in c} for r, c in sorted(rows.items())}
            for f, rows in out.items()}


def _comparison(report: Report) -> dict:
    c = report.comparison
    if c is None:
        return {"absent": None, "not_compared": None}
    return {"absent": list(c.absent), "not_compared": list(c.not_compared)}


def _tail(report: Report) -> dict:
    counts = type_counts(report)
    return {
        **_comparison(report),
        "files": [{
            "file": f.file, "sections": f.sections, "relocations": f.relocations,
            "not_range_checked": dict(f.not_range_checked), "skipped_nonalloc": f.skipped_nonalloc,
            "assumptions": list(f.assumptions), "assumption_ids": list(f.assumption_ids),
            "decisions": dict(f.decisions), "counts": counts.get(f.file, {}),
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
    for k, name in enumerate(PROOF_COLUMNS):
        yield (", " if k else "") + json.dumps(name) + ": " + json.dumps(_table_column(t, name))
    yield "}}"


def to_dict(report: Report, all_sites: bool = False) -> dict:
    layouts = _Layouts()
    sites = [_site_dict(s, layouts) for s in _site_list(report, all_sites)]
    return {**_head(report), "sites": sites, "layouts": [layouts.entry(ce) for ce in layouts.items],
            "proved": [{**_table_meta(t), "columns": {n: _table_column(t, n) for n in PROOF_COLUMNS}}
                       for t in (report.proved if all_sites else ())], **_tail(report)}


def json_chunks(report: Report, all_sites: bool = False):
    """The JSON report in pieces, site by site, so that writing a report of millions of
    sites needs no second copy of it in memory. ''.join() of the pieces equals
    json.dumps(to_dict(report)) + newline, byte for byte (tested).

    No indentation: only then does the json module use its C encoder. Pipe through
    `jq .` or `python3 -m json.tool` to read.
    """
    head = json.dumps(_head(report))
    layouts = _Layouts()
    yield head[:-1] + ', "sites": ['
    for i, s in enumerate(_site_list(report, all_sites)):
        yield (", " if i else "") + json.dumps(_site_dict(s, layouts))
    yield '], "layouts": ['
    for i, ce in enumerate(layouts.items):
        yield (", " if i else "") + json.dumps(_Layouts.entry(ce))
    yield '], "proved": ['
    for i, t in enumerate(report.proved if all_sites else ()):
        if i:
            yield ", "
        yield from _table_chunks(t)
    yield "], " + json.dumps(_tail(report))[1:] + "\n"


def to_json(report: Report, all_sites: bool = False) -> str:
    return "".join(json_chunks(report, all_sites))


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
