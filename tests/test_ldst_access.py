"""A :lo12: load/store's access size comes from its encoding, whatever capstone calls the
register: x29/x30 print as fp/lr, and xzr, wzr, sp, wsp and every SIMD&FP width must
not make a site unknown (they did when the size was read off the register's name)."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from reachsolve import analyze
from reachsolve.target.decode import access_size, decode

# instruction, bytes accessed: one line per register spelling capstone uses
CASES = [
    ("ldr x29, [x27, :lo12:s8]", 8), ("ldr x30, [x0, :lo12:s8]", 8), ("ldr fp, [sp, :lo12:s8]", 8),
    ("ldr lr, [sp, :lo12:s8]", 8), ("str xzr, [sp, :lo12:s8]", 8), ("str wzr, [x1, :lo12:s4]", 4),
    ("ldr w0, [sp, :lo12:s4]", 4), ("ldr w1, [x2, :lo12:s4]", 4), ("ldr q0, [x0, :lo12:s16]", 16),
    ("str q31, [x0, :lo12:s16]", 16), ("ldr d0, [x0, :lo12:s8]", 8), ("str d7, [sp, :lo12:s8]", 8),
    ("ldr s1, [x0, :lo12:s4]", 4), ("ldr h2, [x0, :lo12:s2]", 2), ("ldr b3, [x0, :lo12:s1]", 1),
    ("ldrb w4, [x0, :lo12:s1]", 1), ("ldrsb x4, [x0, :lo12:s1]", 1), ("ldrh w5, [x0, :lo12:s2]", 2),
    ("ldrsh w5, [x0, :lo12:s2]", 2), ("ldrsw x6, [x0, :lo12:s4]", 4), ("prfm pldl1keep, [x0, :lo12:s8]", 8),
    ("strb wzr, [x0, :lo12:s1]", 1), ("strh wzr, [sp, :lo12:s2]", 2),
]


@pytest.fixture(scope="module")
def obj(tmp_path_factory):
    d = tmp_path_factory.mktemp("ldst")
    src = d / "regs.S"
    src.write_text("\t.text\n" + "".join(f"\t{i}\n" for i, _ in CASES))
    subprocess.run([shutil.which("clang"), "--target=aarch64-linux-gnu", "-c", str(src), "-o", str(d / "regs.o")],
                   check=True)
    return d / "regs.o"


def test_access_size_from_the_encoding(obj):
    data = obj.read_bytes()
    from reachsolve.objfile.elf import read_object
    o = read_object(str(obj), data)
    text = next(s for s in o.sections if s.name == ".text")
    for k, (src, size) in enumerate(CASES):
        word = int.from_bytes(data[text.offset + 4 * k: text.offset + 4 * k + 4], "little")
        insn = decode(word)
        assert insn.klass == "ldst", src
        assert access_size(word) == insn.access == size, (src, insn.text)


def test_no_lo12_access_of_an_ordinary_register_is_unknown(obj):
    report = analyze([str(obj)])
    assert not report.errors
    sites = list(report.all_sites())
    assert len(sites) == sum(1 for _, n in CASES if n > 1)   # LDST8 has no range check and no granule
    assert {s.verdict for s in sites} == {"robust"}, [(s.instruction, s.reason) for s in sites if s.verdict != "robust"]
