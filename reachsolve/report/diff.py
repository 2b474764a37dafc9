"""Two JSON reports compared without analysing again: ``reachsolve diff OLD NEW``.

Findings are matched by fingerprint (report.identity), as ``--baseline`` does, so
code inserted before a function moves no finding. The output is sorted by how
close each site now is to breaking: broken first, then by margin.
"""
from __future__ import annotations

from dataclasses import dataclass

from .annotate import findings_by_fingerprint


@dataclass(frozen=True)
class Change:
    old: dict | None      # the baseline's site entry (None: new)
    new: dict | None      # this report's (None: fixed or not compared)

    @property
    def kind(self) -> str:
        if self.old is None:
            return "new"
        if self.new is None:
            return "fixed"
        o, n = self.old, self.new
        if o["verdict"] != n["verdict"]:
            return "verdict"
        if o.get("margin") is not None and n.get("margin") is not None and o["margin"] != n["margin"]:
            return "shrank" if n["margin"] < o["margin"] else "grew"
        return "unchanged" if o.get("near", False) == n.get("near", False) else "near"


def _closeness(site: dict) -> tuple:
    if site["verdict"] == "broken":
        return (0, 0)
    if site.get("margin") is not None:
        return (1, site["margin"])
    return (2, 0)


def _key(site: dict) -> tuple:
    return (site["file"], site["section_index"], site["offset"], site["reloc"])


def compare(old: dict, new: dict) -> tuple[list[Change], list[dict]]:
    """The changes, closest to breaking first, and the old findings not compared (their
    file is missing from the new report, or failed there)."""
    a, b = findings_by_fingerprint(old), findings_by_fingerprint(new)
    analyzed = {f["file"] for f in new["files"]}
    changes = [Change(a.get(fp), s) for fp, s in b.items()]
    changes += [Change(s, None) for fp, s in a.items() if fp not in b and s["file"] in analyzed]
    skipped = sorted((s for fp, s in a.items() if fp not in b and s["file"] not in analyzed), key=_key)
    changes.sort(key=lambda c: (c.new is None, _closeness(c.new) if c.new else (0, 0), _key(c.new or c.old)))
    return [c for c in changes if c.kind != "unchanged"], skipped


def _where(s: dict) -> str:
    fn = s.get("function")
    at = f" {fn['name']}+{fn['offset']:#x}" if fn else ""
    return f"{s['file']}:({s['section']}+{s['offset']:#x}){at} {s['reloc']} -> {s['symbol'] or s['target_section']}"


def _state(s: dict) -> str:
    return s["verdict"] + (f", margin {s['margin']:#x}" if s.get("margin") is not None else "") + (
        ", near" if s.get("near") else "")


def render(changes: list[Change], skipped: list[dict]) -> str:
    lines = []
    for c in changes:
        k = c.kind
        if k == "new":
            lines.append(f"new: {_where(c.new)}: {_state(c.new)}")
        elif k == "fixed":
            lines.append(f"fixed: {_where(c.old)}: was {_state(c.old)}")
        elif k in ("shrank", "grew"):
            d = c.new["margin"] - c.old["margin"]
            lines.append(f"margin {k}: {_where(c.new)}: {c.old['margin']:#x} -> {c.new['margin']:#x} "
                         f"({d:+#x} bytes)")
        else:
            lines.append(f"changed: {_where(c.new)}: {_state(c.old)} -> {_state(c.new)}")
    for s in skipped:
        lines.append(f"not compared: {_where(s)}: its file is not in the new report")
    counts = {k: sum(1 for c in changes if c.kind == k) for k in ("new", "fixed", "shrank", "grew")}
    other = len(changes) - sum(counts.values())
    lines.append(f"{counts['new']} new, {counts['fixed']} fixed, {counts['shrank']} margins shrank, "
                 f"{counts['grew']} grew, {other} otherwise changed, {len(skipped)} not compared")
    return "\n".join(lines) + "\n"


def worse(changes: list[Change]) -> bool:
    """A new finding, a verdict that got worse, a margin that shrank, or a site newly near."""
    rank = {"robust": 0, "unknown": 1, "vulnerable": 1, "broken": 2}
    for c in changes:
        if c.kind in ("new", "shrank"):
            return True
        if c.kind == "verdict" and rank[c.new["verdict"]] > rank[c.old["verdict"]]:
            return True
        if c.kind == "near" and c.new.get("near"):
            return True
    return False
