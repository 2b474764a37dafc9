"""Archive members of the same name get distinct, stable labels: lib.a(m.o), lib.a(m.o)#2."""
from __future__ import annotations

import shutil
import subprocess

from reachsolve import analyze, query


def test_members_of_one_name_are_told_apart(tmp_path):
    objs = []
    for k, target in enumerate(("near", "far")):
        d = tmp_path / str(k)
        d.mkdir()
        body = "\t.globl near\nnear:\tret\n" if target == "near" else '\t.section .text.far, "ax"\nfar:\tret\n'
        (d / "m.S").write_text(f"\t.text\n\tcbz x0, {target}\n{body}")
        subprocess.run([shutil.which("clang"), "--target=aarch64-linux-gnu", "-c", str(d / "m.S"), "-o",
                        str(d / "m.o")], check=True)
        objs.append(str(d / "m.o"))
    lib = tmp_path / "lib.a"
    for o in objs:   # `q` appends, so both members are called m.o
        subprocess.run([shutil.which("llvm-ar"), "q", str(lib), o], check=True)
    report = analyze([str(lib)])
    by_file = {s.file: s for s in report.all_sites()}
    assert set(by_file) == {f"{lib}(m.o)", f"{lib}(m.o)#2"}
    assert by_file[f"{lib}(m.o)"].verdict == "robust" and by_file[f"{lib}(m.o)#2"].verdict == "vulnerable"
    again = analyze([str(lib)], keep_objects=False)
    assert [s.file for s in again.all_sites()] == [s.file for s in report.all_sites()]   # stable
    q = query(by_file[f"{lib}(m.o)#2"], again)                 # read again: the second member
    assert q.site.file.endswith("#2")
    from reachsolve import Witness
    assert isinstance(q.solve(q.violation), Witness)
