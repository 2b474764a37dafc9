"""A finding names the function it lies in and the offset (`__guest_exit_panic+0x14`):
the nearest function holding the site or global label before it (the kernel's
__guest_exit_panic is a global label inside __guest_enter), else the nearest name
before it; mapping symbols ($x, $d) and section symbols never."""
from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from reachsolve import analyze
from reachsolve.cli import demo_object, main

SRC = """\t.text
\t.globl\tfirst
\t.type\tfirst, %function
first:\tnop
\tcbz\tx0, far_away          // first+0x4
inner:\tnop                     // a local label inside first: first still holds the next site
\tcbz\tx0, far_away          // first+0xc
\t.globl\tmid
mid:\tnop                       // a global label inside first (an entry point): it names what follows
\tcbz\tx0, far_away          // mid+0x4
\t.size\tfirst, . - first
\t.word\t0                   // data in .text: $d, not a name
tail:\tcbz\tx0, far_away          // no function holds it: the nearest label, tail+0x0
\tnop
\tcbz\tx0, far_away          // tail+0x8
\t.section .text.other, "ax"
\t.type\tsecond, %function
second:\tcbz\tx1, far_away      // second+0x0, a local function in another section
\t.size\tsecond, . - second
"""


@pytest.fixture(scope="module")
def obj(tmp_path_factory):
    d = tmp_path_factory.mktemp("fn")
    (d / "fn.S").write_text(SRC)
    subprocess.run([shutil.which("clang"), "--target=aarch64-linux-gnu", "-c", str(d / "fn.S"), "-o",
                    str(d / "fn.o")], check=True)
    return d / "fn.o"


def test_sites_name_their_function_and_offset(obj):
    r = analyze([str(obj)])
    got = [(s.section, s.offset, s.function) for s in r.findings()]
    assert got == [(".text", 0x4, ("first", 0x4)), (".text", 0xc, ("first", 0xc)), (".text", 0x14, ("mid", 0x4)),
                   (".text", 0x1c, ("tail", 0x0)), (".text", 0x24, ("tail", 0x8)),
                   (".text.other", 0x0, ("second", 0x0))]


def test_json_and_text_carry_the_function(obj, capsys, tmp_path):
    out = tmp_path / "r.json"
    main(["check", str(obj), "--json", str(out)])
    text = capsys.readouterr().out
    doc = json.loads(out.read_text())
    assert [s["function"] for s in doc["sites"]][:2] == [{"name": "first", "offset": 4}, {"name": "first", "offset": 12}]
    assert ">>> first+0x4: cbz x0" in text and ">>> tail+0x8: cbz x0" in text


def test_demo_names_guest_exit_panic():
    (cbz, adr) = analyze([demo_object()]).findings()
    assert cbz.function == ("__guest_exit_panic", 0) and adr.function == ("__guest_exit_panic", 4)
