"""The bundled demo object, the JSON contract, and determinism."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from testsupport.toolchain import assemble, tool
from reachsolve import analyze
from reachsolve.cli import demo_object, main
from reachsolve.objfile.elf import read_object

DEMO_S = Path(__file__).parent.parent / "reachsolve" / "data" / "demo.S"


def test_shipped_demo_object_is_built_from_its_source(objdir):
    """demo.o is package data; it must be exactly what clang makes of demo.S."""
    fresh = assemble(DEMO_S, objdir)
    a = read_object("shipped", Path(demo_object()).read_bytes())
    b = read_object("fresh", fresh.read_bytes())
    assert [(s.name, s.type, s.flags, s.size) for s in a.sections] == \
           [(s.name, s.type, s.flags, s.size) for s in b.sections]
    for s in a.sections:
        assert a.section_data(s.index) == b.section_data(s.index), s.name
    assert a.symbols.tobytes() == b.symbols.tobytes()


def test_demo_verdicts(capsys):
    status = main(["demo"])
    out = capsys.readouterr().out
    assert status == 1
    r = analyze([demo_object()])
    by = {(s.reloc, s.offset): s for s in r.sites}
    assert by[("R_AARCH64_CONDBR19", 0)].verdict == "vulnerable"
    assert by[("R_AARCH64_ADR_PREL_LO21", 4)].verdict == "vulnerable"
    assert by[("R_AARCH64_JUMP26", 0xc)].verdict == "robust"
    assert by[("R_AARCH64_ADR_PREL_PG_HI21", 0x10)].verdict == "robust"
    # a site that links fine today is a warning, never worded like ld.lld's error
    (line,) = [x for x in out.splitlines() if "(.hyp.text+0x0)" in x and "CONDBR19" in x]
    assert line.startswith("warning: ") and "R_AARCH64_CONDBR19 can overflow" in line and "error" not in line


def test_default_json_lists_what_needs_attention_and_counts_the_rest(tmp_path):
    out = tmp_path / "r.json"
    assert main(["check", "--format", "json", "-o", str(out), demo_object()]) == 1
    doc = json.loads(out.read_text())
    assert doc["schema"] == 2 and doc["proved"] == []
    assert {s["verdict"] for s in doc["sites"]} == {"vulnerable"} and len(doc["sites"]) == 2
    counts = doc["files"][0]["counts"]
    assert counts["R_AARCH64_CONDBR19"] == {"vulnerable": 1} and counts["R_AARCH64_JUMP26"] == {"robust": 2}
    per_verdict = {v: sum(c.get(v, 0) for c in counts.values()) for v in doc["summary"]}
    assert per_verdict == doc["summary"]
    assert [x["name"] for x in doc["linkers"]] == ["ld.lld", "GNU ld"]


def test_json_contract(tmp_path):
    out = tmp_path / "r.json"
    assert main(["check", "--format", "json", "--all-sites", "-o", str(out), demo_object()]) == 1
    doc = json.loads(out.read_text())
    assert doc["tool"]["name"] == "reachsolve" and doc["tool"]["version"]
    assert doc["model"]["name"] == "free" and doc["model"]["image_max"] == 128 << 20
    assert set(doc["summary"]) == {"robust", "vulnerable", "broken", "unknown"}
    proved = doc["proved"]
    assert sum(doc["summary"].values()) == len(doc["sites"]) + sum(t["sites"] for t in proved)
    assert doc["summary"]["robust"] >= sum(t["sites"] for t in proved) > 0
    for t in proved:
        cols = t["columns"]
        assert set(cols) == {"section_index", "offset", "reloc", "symbol", "addend", "target_section_index",
                             "word", "proof", "constant", "span_min", "span_max", "value_min", "value_max",
                             "as_linked", "veneered", "veneer_note"}
        assert all(len(v) == t["sites"] for v in cols.values() if v is not None)
        assert {t["proof_kinds"][k] for k in cols["proof"]} <= {"span", "fixed", "page-span", "page-fixed",
                                                               "aligned", "as-linked"}
        for i in set(cols["section_index"]) | set(cols["target_section_index"]) - {-1}:
            assert str(i) in t["section_names"]
        rows = list(zip(cols["section_index"], cols["offset"]))
        assert rows == sorted(rows)
    keys = {"file", "section", "section_index", "offset", "reloc", "symbol", "addend", "target_section",
            "instruction", "range", "verdict", "reason", "counterexample"}
    order = [(s["file"], s["section_index"], s["offset"]) for s in doc["sites"]]
    assert order == sorted(order)
    for s in doc["sites"]:
        assert keys <= set(s)
        assert isinstance(s["offset"], int) and len(s["range"]) == 2
        ce = s["counterexample"]
        if s["verdict"] in ("vulnerable", "broken"):
            assert isinstance(ce["value"], int)
            layout = doc["layouts"][ce["layout"]]["sections"]
            assert {(p["section"], p["index"]) for p in layout} >= {(s["section"], s["section_index"])}
            assert all(isinstance(p["address"], int) for p in layout)
        else:
            assert ce is None


def test_json_is_byte_identical_across_runs_and_hash_seeds(tmp_path, objdir):
    fixtures = sorted((Path(__file__).parent / "fixtures").glob("*.S"))
    objs = [str(assemble(p, objdir)) for p in fixtures]
    outs = []
    for seed in ("0", "1", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        p = subprocess.run([sys.executable, "-m", "reachsolve", "check", "--format", "json", *objs],
                           capture_output=True, env=env)
        assert p.returncode in (0, 1), p.stderr
        outs.append(p.stdout)
    assert outs[0] == outs[1] == outs[2]


def test_archive_members_are_named(tmp_path, objdir):
    a = assemble(Path(__file__).parent / "fixtures" / "condbr19.S", objdir)
    b = assemble(Path(__file__).parent / "fixtures" / "adr.S", objdir)
    lib = tmp_path / "lib.a"
    subprocess.run([tool("ar"), "rc", str(lib), str(a), str(b)], check=True)
    r = analyze([str(lib)])
    files = {s.file for s in r.sites}
    assert files == {f"{lib}({a.name})", f"{lib}({b.name})"}
    plain = analyze([str(a)])
    assert [s.verdict for s in r.sites if s.file.endswith(f"({a.name})")] == [s.verdict for s in plain.sites]


def test_library_query_matches_verdicts():
    """The documented API: a site's z3 constraints, solved with a caller's own addition."""
    from reachsolve import Proved, Witness, query

    report = analyze([demo_object()])
    sites = {(s.section, s.offset): s for s in report.all_sites()}
    q = query(sites[".hyp.text", 0x0], report)          # cbz x0, hyp_panic: vulnerable
    assert isinstance(q.solve(q.violation), Witness)
    q = query(sites[".hyp.text", 0x18], report)         # tbnz to the same section: robust
    assert isinstance(q.solve(q.violation), Proved)


def test_streamed_json_equals_one_document(objdir):
    """The CLI writes the report site by site; the bytes equal a single json.dumps."""
    from reachsolve.report.render import json_chunks, to_dict
    objs = [str(assemble(p, objdir)) for p in sorted((Path(__file__).parent / "fixtures").glob("*.S"))]
    for r in (analyze(objs), analyze([]), analyze([demo_object()])):
        for every in (False, True):
            assert "".join(json_chunks(r, every)) == json.dumps(to_dict(r, every)) + "\n"


def test_column_proofs_agree_with_one_by_one_decisions(objdir, monkeypatch):
    """screen.py only repeats the one-by-one path's interval arguments over columns: every
    site gets the same verdict, reason, notes and as-linked value either way."""
    from reachsolve import LayoutModel, load_model
    objs = [str(assemble(p, objdir)) for p in sorted((Path(__file__).parent / "fixtures").glob("*.S"))]
    objs.append(demo_object())
    models = [LayoutModel(), LayoutModel(image_max=8 << 30, linker="lld"), LayoutModel(veneers=False),
              load_model("arm64-module")]
    for model in models:
        fast, slow = analyze(objs, model), analyze(objs, model, columns=False)
        assert fast.proved and not slow.proved
        assert fast.sites == slow.sites, model
    from reachsolve.prove import screen
    monkeypatch.setattr(screen, "CHUNK", 3)  # rows screened in pieces give the same table
    assert analyze(objs).sites == analyze(objs, columns=False).sites


def test_the_docs_name_every_field_of_the_schema():
    """docs/README.md's JSON section is checked against the shipped schema, field by field."""
    from reachsolve.report.schema import report_schema
    docs = (Path(__file__).parent.parent / "docs" / "README.md").read_text()
    section = docs[docs.index("## JSON schema"):docs.index("## Library API")]
    schema = report_schema()
    assert f'"schema": {schema["properties"]["schema"]["const"]}' in section
    names = set(schema["properties"]) | set(schema["$defs"]["site"]["properties"])
    names |= set(schema["properties"]["files"]["items"]["properties"])
    names |= set(schema["properties"]["proved"]["items"]["properties"]["columns"]["properties"])
    missing = sorted(n for n in names if f'"{n}"' not in section)
    assert not missing, f"docs/README.md does not name {missing}"


def test_library_reports_validate_against_the_schema(objdir):
    from reachsolve.report.render import to_dict
    from reachsolve.report.schema import validate
    objs = [str(assemble(p, objdir)) for p in sorted((Path(__file__).parent / "fixtures").glob("*.S"))]
    for r in (analyze(objs), analyze([]), analyze([demo_object()])):
        for every in (False, True):
            validate(to_dict(r, every))
