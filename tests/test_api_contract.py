"""The library contract as another analyzer meets it: a 40-line checker written on the
public names of ``reachsolve`` alone, run on an archive member and on an object with
three sections named .text (which only section indices tell apart)."""
from __future__ import annotations

import shutil
import subprocess

import pytest

import reachsolve
from testsupport.toolchain import assemble_text, tool

THREE_TEXTS = """
	.section .text, "ax", %progbits, unique, 1
	.globl	one
one:	cbz	x0, far			// vulnerable: far lies in another .text
	ret
	.section .text, "ax", %progbits, unique, 2
	.globl	two
two:	b.eq	far			// vulnerable
	ret
	.section .text, "ax", %progbits, unique, 3
	.globl	far
far:	tbz	x1, #2, far		// robust: the same section
	ret
"""


def audit(paths, model="free", far=64 << 10):
    """Each finding, where it is, and whether its two sections can lie more than ``far``
    bytes apart in some layout of the model: a question reachsolve does not ask itself."""
    report = reachsolve.analyze(paths, model, strict=True)
    rows = []
    for site in report.findings():
        q = reachsolve.query(site, report)
        apart = None
        if site.target_section_index is not None:
            d = q.base(site.target_section_index) - q.base(site.section_index)
            answer = q.solve(d > far)
            assert isinstance(answer, (reachsolve.Proved, reachsolve.Witness, reachsolve.Unknown))
            if isinstance(answer, reachsolve.Witness):
                at = {p.index: p.address for p in answer.sections}
                assert at[site.target_section_index] - at[site.section_index] > far
                apart = True
            else:
                apart = False
        name = site.function[0] if site.function else site.section
        rows.append((site.file, site.section, site.section_index, name, site.reloc, str(site.verdict), apart))
    robust = sum(1 for s in report.all_sites() if s.verdict == reachsolve.Verdict.ROBUST)
    keys = [s.key for s in report.all_sites()]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    return rows, robust


@pytest.fixture(scope="module")
def objects(tmp_path_factory):
    d = tmp_path_factory.mktemp("contract")
    three = assemble_text(THREE_TEXTS, d / "three.o")
    lib = d / "lib.a"
    subprocess.run([tool("ar"), "rc", str(lib), str(three)], check=True)
    return three, lib


def test_three_text_sections_are_told_apart_by_index(objects):
    three, _ = objects
    rows, robust = audit([str(three)])
    assert [(r[1], r[3], r[4], r[5], r[6]) for r in rows] == [
        (".text", "one", "R_AARCH64_CONDBR19", "vulnerable", True),
        (".text", "two", "R_AARCH64_CONDBR19", "vulnerable", True)]
    assert len({r[2] for r in rows}) == 2 and robust == 1
    # under the kernel model the answer is the same question, asked of other layouts
    assert all(r[6] is True for r in audit([str(three)], "arm64-kernel")[0])


def test_an_archive_member_works_like_the_object(objects):
    three, lib = objects
    plain, _ = audit([str(three)])
    member, robust = audit([str(lib)])
    assert {r[0] for r in member} == {f"{lib}(three.o)"} and robust == 1
    assert [r[1:] for r in member] == [r[1:] for r in plain]


def test_a_bad_input_raises_in_strict_mode(tmp_path):
    with pytest.raises(reachsolve.InputError) as e:
        audit([str(tmp_path / "missing.o")])
    assert str(tmp_path / "missing.o") in str(e.value)


def test_query_without_kept_objects_reads_the_member_again(objects):
    _, lib = objects
    report = reachsolve.analyze([str(lib)], keep_objects=False)
    site = next(report.findings())
    q = reachsolve.query(site, report)
    assert isinstance(q.solve(q.violation), reachsolve.Witness)


def test_only_public_names_are_used():
    import ast
    import inspect
    tree = ast.parse(inspect.getsource(audit))
    used = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)
            and isinstance(n.value, ast.Name) and n.value.id == "reachsolve"}
    assert used <= set(reachsolve.__all__), used - set(reachsolve.__all__)
    assert len(inspect.getsource(audit).splitlines()) <= 40
    assert shutil.which(tool("clang"))
