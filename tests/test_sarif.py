"""SARIF for code scanning: valid against the OASIS 2.1.0 schema, and within what
GitHub's ingestion needs beyond it (a startLine on every result, rule metadata,
fingerprints that survive a rebuild)."""
from __future__ import annotations

import json

import pytest

from reachsolve.cli import demo_object, main
from reachsolve.report.identity import FINGERPRINT_KEY
from reachsolve.report.schema import validate
from testsupport.toolchain import FIXTURES, assemble

SCRIPT = str(FIXTURES / "ordered" / "ordered.lds")


def github_rules(doc: dict) -> None:
    """What code scanning requires of a SARIF upload beyond the schema."""
    assert doc["version"] == "2.1.0" and len(doc["runs"]) == 1
    run = doc["runs"][0]
    rules = {r["id"]: r for r in run["tool"]["driver"]["rules"]}
    for r in rules.values():
        assert r["shortDescription"]["text"] and r["fullDescription"]["text"] and r["help"]["text"]
    for res in run["results"]:
        assert res["ruleId"] in rules and res["message"]["text"]
        assert 1 <= len(res["locations"]) <= 10
        phys = res["locations"][0]["physicalLocation"]
        assert phys["artifactLocation"]["uri"] and phys["region"]["startLine"] >= 1
        assert len(res["partialFingerprints"][FINGERPRINT_KEY]) == 32


def _sarif(args, capsys) -> dict:
    capsys.readouterr()
    main(["check", "--format", "sarif", *args])
    doc = json.loads(capsys.readouterr().out)
    validate(doc, "sarif")
    github_rules(doc)
    return doc


def test_rule_ids_are_per_family_and_problem_and_levels_follow_verdicts(objdir, capsys):
    doc = _sarif([str(assemble(FIXTURES / "condbr19.S", objdir))], capsys)
    run = doc["runs"][0]
    by_rule: dict[str, set] = {}
    for r in run["results"]:
        by_rule.setdefault(r["ruleId"], set()).add((r["properties"]["verdict"], r["level"]))
    assert by_rule == {"reach/condbr19": {("broken", "error"), ("vulnerable", "warning")},
                       "align/condbr19": {("broken", "error")},
                       "undecided/condbr19": {("unknown", "warning")}}
    assert [x["name"] for x in run["tool"]["driver"]["properties"]["linkers"]] == ["ld.lld", "GNU ld"]
    assert {(x["name"], x["version"]) for x in run["tool"]["extensions"]} == {("ld.lld", "14"), ("GNU ld", "2.40")}


def test_location_is_logical_and_physical_and_layout_is_by_index(capsys):
    doc = _sarif([demo_object()], capsys)
    res = doc["runs"][0]["results"][0]
    logical = res["locations"][0]["logicalLocations"]
    assert logical[0] == {"name": "__guest_exit_panic", "kind": "function",
                          "fullyQualifiedName": f"{demo_object()}:__guest_exit_panic+0x0"}
    assert logical[1]["kind"] == "section" and logical[1]["index"] == 3
    assert res["relatedLocations"][0]["physicalLocation"]["address"] == {
        "kind": "section", "name": ".hyp.text", "index": 3, "relativeAddress": 0}
    ce = res["properties"]["counterexample"]
    assert [(s["index"], s["name"]) for s in ce["sections"]] == [(3, ".hyp.text"), (5, ".text.hyp_panic")]


def test_fingerprints_survive_inserted_code_and_near_is_an_error(objdir, tmp_path, capsys, monkeypatch):
    prints = []
    for v in ("v1", "v2"):
        (tmp_path / v).mkdir()
        obj = assemble(FIXTURES / "baseline" / f"{v}.S", tmp_path / v).rename(tmp_path / v / "site.o")
        monkeypatch.chdir(tmp_path / v)
        doc = _sarif(["--linker-script", SCRIPT, "--min-margin", "0xbfff6", "site.o"], capsys)
        prints.append({r["properties"]["reloc"]: (r["partialFingerprints"][FINGERPRINT_KEY], r["level"])
                       for r in doc["runs"][0]["results"]})
    v1, v2 = prints
    assert v1["R_AARCH64_CONDBR19"] == v2["R_AARCH64_CONDBR19"] == (v1["R_AARCH64_CONDBR19"][0], "error")
    assert v1["R_AARCH64_ADR_PREL_LO21"] == v2["R_AARCH64_ADR_PREL_LO21"]
    assert v1["R_AARCH64_ADR_PREL_LO21"][1] == "warning"


def test_baseline_state_and_suppressions(objdir, tmp_path, capsys, monkeypatch):
    (tmp_path / "v2").mkdir()
    obj = assemble(FIXTURES / "baseline" / "v2.S", tmp_path / "v2")
    monkeypatch.chdir(tmp_path / "v2")
    old = tmp_path / "old.json"
    main(["check", "--linker-script", SCRIPT, "--json", str(old), obj.name])
    doc = json.loads(old.read_text())
    keep = next(s for s in doc["sites"] if s["reloc"] == "R_AARCH64_TSTBR14")
    doc["sites"] = [s for s in doc["sites"] if s is not keep]         # the tbz is new against this
    gone = dict(keep, fingerprint="0" * 32, function={"name": "gone_fn", "offset": 0})
    doc["sites"].append(gone)                                          # and this one was fixed
    old.write_text(json.dumps(doc))
    quiet = tmp_path / "q.toml"
    quiet.write_text(f'[[suppress]]\nfingerprint = "{keep["fingerprint"]}"\nreason = "known; fixed in v3"\n')
    res = _sarif(["--linker-script", SCRIPT, "--baseline", str(old), "--suppressions", str(quiet), obj.name],
                 capsys)["runs"][0]["results"]
    states = sorted((r["properties"].get("reloc", "") if r["baselineState"] != "absent" else "gone",
                     r["baselineState"]) for r in res)
    assert states == [("R_AARCH64_ADR_PREL_LO21", "unchanged"), ("R_AARCH64_CONDBR19", "unchanged"),
                      ("R_AARCH64_TSTBR14", "new"), ("gone", "absent")]
    tbz = next(r for r in res if r.get("properties", {}).get("reloc") == "R_AARCH64_TSTBR14")
    assert tbz["suppressions"] == [{"kind": "external", "status": "accepted", "justification": "known; fixed in v3"}]


@pytest.mark.parametrize("fixture", sorted(p.stem for p in FIXTURES.glob("*.S")))
def test_every_fixture_gives_valid_sarif(fixture, objdir, capsys):
    _sarif([str(assemble(FIXTURES / f"{fixture}.S", objdir))], capsys)


def test_sarif_regions_come_from_dwarf_relative_to_the_source_root(tmp_path, capsys, monkeypatch):
    """A -g object: every result sits on the source line of its instruction, under SRCROOT."""
    import re
    import shutil
    import subprocess

    from testsupport.toolchain import tool
    src = FIXTURES / "dwarf" / "lines.S"
    (tmp_path / "sub").mkdir()
    shutil.copy(src, tmp_path / "sub" / "lines.S")
    subprocess.run([tool("clang"), "--target=aarch64-linux-gnu", "-g", "-c", "sub/lines.S", "-o", "lines.o"],
                   cwd=tmp_path, check=True)
    want = {}
    for n, line in enumerate(src.read_text().splitlines(), 1):
        m = re.search(r"// SRC (\w+)\+(0x[0-9a-f]+)", line)
        if m and not line.lstrip().startswith("//"):
            want[f"{m.group(1)}+{m.group(2)}"] = n
    monkeypatch.chdir(tmp_path)
    doc = _sarif(["--source-root", str(tmp_path), "lines.o"], capsys)
    run = doc["runs"][0]
    assert run["originalUriBaseIds"]["SRCROOT"]["uri"] == f"file://{tmp_path}/"
    got = {}
    for r in run["results"]:
        phys = r["locations"][0]["physicalLocation"]
        assert phys["artifactLocation"] == {"uri": "sub/lines.S", "uriBaseId": "SRCROOT"}
        fn = r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"].split(":", 1)[1]
        got[fn] = phys["region"]["startLine"]
    assert got and all(want[k] == v for k, v in got.items()), (got, want)
