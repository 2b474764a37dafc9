"""The public names behave as documented: errors raise only when asked, a model by name
is never silently the free model, and a query takes sections by index or unambiguous name."""
from __future__ import annotations

import shutil
import subprocess

import pytest

import reachsolve
from reachsolve import InputError, LayoutModel, ModelError, Proved, Witness, analyze, load_model, query
from reachsolve.cli import demo_object


def test_errors_are_in_the_report_unless_strict(tmp_path):
    missing = str(tmp_path / "missing.o")
    r = analyze([missing, demo_object()])
    assert [e.file for e in r.errors] == [missing] and len(list(r.findings())) == 2
    with pytest.raises(InputError, match="missing.o"):
        analyze([missing, demo_object()], strict=True)


def test_a_model_name_is_loaded_or_refused():
    assert analyze([demo_object()], "arm64-kernel").layout_model.placement == "ordered"
    with pytest.raises(ModelError, match="unknown model 'arm64-kernal'"):
        analyze([demo_object()], "arm64-kernal")
    with pytest.raises(ModelError, match=r"use reachsolve.load_model\('arm64-kernel'\)"):
        LayoutModel(name="arm64-kernel")
    with pytest.raises(ModelError, match="unknown model option 'image_size'"):
        load_model("free", image_size=1)
    assert load_model("free", image_max=1 << 30, linker="lld").image_max == 1 << 30


def test_query_by_section_index_and_name(tmp_path):
    src = tmp_path / "three.S"
    src.write_text("".join(f'\t.section .text, "axG", %progbits, g{k}, comdat\n\tcbz x0, far\n' for k in range(3))
                   + '\t.section .text.far, "ax"\n\t.globl far\nfar:\tret\n')
    obj = tmp_path / "three.o"
    subprocess.run([shutil.which("clang"), "--target=aarch64-linux-gnu", "-c", str(src), "-o", str(obj)],
                   check=True)
    r = analyze([str(obj)])
    sites = list(r.findings())
    assert len(sites) == 3 and len({s.section_index for s in sites}) == 3     # three sections named .text
    for s in sites:
        q = query(s, r)
        assert isinstance(q.solve(q.violation), Witness)
        far = q.base(".text.far")
        # the site's own section by index, never by the ambiguous name
        here = q.base(s.section_index)
        assert isinstance(q.solve(far - here > (1 << 20)), Witness)
        assert isinstance(q.solve(far - here > (1 << 28)), Proved)         # the 128 MiB image
        with pytest.raises(KeyError, match=r"names \d+ allocated sections"):
            q.base(".text")
    w = query(sites[0], r).solve(query(sites[0], r).violation)
    assert {p.index for p in w.sections} >= {sites[0].section_index}


def test_exported_names_have_docstrings():
    for name in reachsolve.__all__:
        if name.startswith("__"):
            continue
        assert getattr(reachsolve, name).__doc__, name
