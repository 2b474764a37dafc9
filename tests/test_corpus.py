"""The real kernel: Debian's linux-source-6.1, tiny arm64 config with KVM and ThinLTO.

Run with `python -m pytest -m corpus` after `python -m benchmarks.corpus tiny tiny-prefix`
(about 5 minutes; tiny-debug tiny-debug-prefix, DWARF 4, for the source-line tests);
skipped when the corpus is absent, as in CI.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from testsupport.corpora import corpus_path
from testsupport.toolchain import link
from reachsolve import analyze
from reachsolve.model.files import load_model, with_script
from reachsolve.report.render import text, to_dict
from reachsolve.report.repro import linker_script

pytestmark = pytest.mark.corpus


def _corpus(name: str) -> Path:
    p = corpus_path(name)
    if p is None or not (p / "vmlinux.o").exists():
        pytest.skip(f"corpus {name} not built (python -m benchmarks.corpus {name})")
    return p


def _run(name: str, model: str):
    p = _corpus(name)
    m = with_script(load_model("free"), str(p / "vmlinux.lds")) if model == "script" else load_model(model)
    return p, analyze([str(p / "vmlinux.o")], m)


KERNELS = ["tiny", "big", "tiny-debug"]


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("model", ["script", "arm64-kernel"])
def test_stock_kernel_has_no_false_alarm(model, kernel):
    _, r = _run(kernel, model)
    assert not r.errors
    # Every non-robust site is listed (proof tables hold robust sites only).
    bad = [(s.section, hex(s.offset), s.reloc, s.verdict, s.reason) for s in r.listed if s.verdict != "robust"]
    assert bad == []
    assert sum(r.summary.values()) > 50_000
    head = [s for s in r.listed if s.section == ".head.text" and s.reloc == "R_AARCH64_ABS32"]
    assert {s.symbol for s in head} >= {"_kernel_size_le_lo32", "_kernel_size_le_hi32"}
    assert all(s.as_linked is not None for s in head)
    if model == "script":  # the generated script defines the __kvm_nvhe_ aliases
        assumptions = r.files[0].assumptions
        # each is stated as defined by the script, none as an undefined symbol anywhere
        assert any("__kvm_nvhe_" in a and "the script gives it" in a for a in assumptions), assumptions
        assert not any("__kvm_nvhe_" in a and "lies in the image" in a for a in assumptions), assumptions


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("model", ["script", "arm64-kernel"])
def test_prefix_entry_has_exactly_the_two_2021_sites(model, kernel, tmp_path):
    p, r = _run(f"{kernel}-prefix", model)
    bad = [s for s in r.listed if s.verdict != "robust"]
    assert sorted((s.reloc, s.symbol, s.verdict) for s in bad) == [
        ("R_AARCH64_ADR_PREL_LO21", "hyp_panic", "vulnerable"),
        ("R_AARCH64_CONDBR19", "hyp_panic", "vulnerable")]
    for s in bad:
        assert s.margin and 0 < s.margin < (1 << 20)
        assert s.as_linked + s.margin >= (1 << 20) - 4
        assert "more bytes lie between .text and .text.hyp_panic" in s.reason
        # ld.lld, linking this vmlinux.o with those addresses, rejects that very site.
        proc = link("lld", p / "vmlinux.o", linker_script(s, "lld"), tmp_path / f"{s.offset:x}",
                    extra=["--unresolved-symbols=ignore-all"])
        where = re.compile(rf"vmlinux\.o:\((function [^:]+: )?\.text\+{s.offset:#x}\): "
                           rf"relocation {s.reloc} out of range")
        assert where.search(proc.stderr), proc.stderr[-2000:]


@pytest.mark.parametrize("kernel", KERNELS)
def test_baseline_of_the_kernel_pair(kernel, tmp_path, monkeypatch, capsys):
    """Pre-fix and fixed entry.S, each checked from its own tree as CI would: the two
    2021 sites are absent (fixed) one way and new the other, and nothing else moves."""
    import json

    from reachsolve.cli import main
    fixed, prefix = _corpus(kernel), _corpus(f"{kernel}-prefix")
    reports = {}
    for name, tree in (("fixed", fixed), ("prefix", prefix)):
        monkeypatch.chdir(tree)
        main(["check", "-q", "--linker-script", "vmlinux.lds", "--json", str(tmp_path / f"{name}.json"),
              "vmlinux.o"])
        reports[name] = tmp_path / f"{name}.json"
    monkeypatch.chdir(fixed)
    main(["check", "-q", "--linker-script", "vmlinux.lds", "--baseline", str(reports["prefix"]),
          "--json", str(tmp_path / "against-prefix.json"), "vmlinux.o"])
    doc = json.loads((tmp_path / "against-prefix.json").read_text())
    assert doc["sites"] == [] and doc["not_compared"] == []
    assert sorted(s["reloc"] for s in doc["absent"]) == ["R_AARCH64_ADR_PREL_LO21", "R_AARCH64_CONDBR19"]
    monkeypatch.chdir(prefix)
    rc = main(["check", "-q", "--linker-script", "vmlinux.lds", "--baseline", str(reports["fixed"]),
               "--fail-on", "new", "--json", str(tmp_path / "against-fixed.json"), "vmlinux.o"])
    doc = json.loads((tmp_path / "against-fixed.json").read_text())
    assert rc == 1 and doc["absent"] == []
    assert sorted((s["reloc"], s["baseline"]["state"]) for s in doc["sites"]) == [
        ("R_AARCH64_ADR_PREL_LO21", "new"), ("R_AARCH64_CONDBR19", "new")]
    capsys.readouterr()
    assert main(["diff", str(reports["fixed"]), str(reports["prefix"])]) == 1
    assert capsys.readouterr().out.splitlines()[-1].startswith("2 new, 0 fixed")


@pytest.mark.parametrize("model", ["script", "arm64-kernel"])
def test_debug_prefix_sites_name_their_function_and_entry_S_line(model):
    """tiny-debug-prefix (DWARF 4): the two 2021 sites report __guest_exit_panic and the
    very lines of entry.S that hold the cbz and the adr, relative to the kernel tree."""
    p = _corpus("tiny-debug-prefix")
    tree = Path(json.loads((p / "info.json").read_text())["tree"])
    entry = (tree / "arch/arm64/kvm/hyp/entry.S").read_text().splitlines()
    want = {}
    for n, line in enumerate(entry, 1):
        for reloc, pattern in (("R_AARCH64_CONDBR19", r"^\s*cbz\s+x0,\s*hyp_panic\s*$"),
                               ("R_AARCH64_ADR_PREL_LO21", r"^\s*adr\s+x1,\s*hyp_panic\s*$")):
            if re.match(pattern, line):
                want[reloc] = n
    assert len(want) == 2, want
    m = with_script(load_model("free"), str(p / "vmlinux.lds")) if model == "script" else load_model(model)
    r = analyze([str(p / "vmlinux.o")], m, source_root=str(tree))
    bad = [s for s in r.listed if s.verdict != "robust"]
    assert sorted(s.reloc for s in bad) == sorted(want)
    for s in bad:
        assert s.function is not None and s.function[0] == "__guest_exit_panic", s.function
        assert (s.source.file, s.source.line) == ("arch/arm64/kvm/hyp/entry.S", want[s.reloc])
        assert f"{s.function[0]}+{s.function[1]:#x} (arch/arm64/kvm/hyp/entry.S:{want[s.reloc]}): " in text(r)
    doc = to_dict(r)
    got = {x["reloc"]: x["source"] for x in doc["sites"] if x["verdict"] != "robust"}
    assert got == {k: {"file": "arch/arm64/kvm/hyp/entry.S", "line": v, "column": None} for k, v in want.items()}
    # Every other listed site of a kernel built with DWARF has a line too, or says why not (None).
    assert sum(s.source is not None for s in r.listed) >= len(bad)


def test_debug_prefix_sarif_lands_on_entry_S(tmp_path, monkeypatch, capsys):
    """SARIF of the pre-fix DWARF kernel validates against the OASIS schema, and both of its
    results sit on entry.S lines under SRCROOT (the kernel tree), each with its fix."""
    from reachsolve.cli import main
    from reachsolve.report.schema import validate
    p = _corpus("tiny-debug-prefix")
    tree = Path(json.loads((p / "info.json").read_text())["tree"])
    out = tmp_path / "r.sarif"
    main(["check", "-q", "--linker-script", str(p / "vmlinux.lds"), "--source-root", str(tree),
          "--sarif", str(out), str(p / "vmlinux.o")])
    doc = validate(out.read_text(), "sarif")
    results = doc["runs"][0]["results"]
    assert sorted(r["ruleId"] for r in results) == ["reach/adr-prel-lo21", "reach/condbr19"]
    for r in results:
        phys = r["locations"][0]["physicalLocation"]
        assert phys["artifactLocation"] == {"uri": "arch/arm64/kvm/hyp/entry.S", "uriBaseId": "SRCROOT"}
        assert phys["region"]["startLine"] > 0 and r["partialFingerprints"]
        assert "Fix, robust under this model" in r["message"]["text"]
    assert doc["runs"][0]["originalUriBaseIds"]["SRCROOT"]["uri"].startswith("file:///")
