"""Linker-script expressions evaluate as ld.lld and GNU ld evaluate them, within 64 bits.

Both linkers compute on 64-bit unsigned values that wrap; shift counts are taken
mod 64; comparisons are unsigned; ALIGN takes a power of two (ld.lld refuses
others). They differ on division: ld.lld divides unsigned, GNU ld signed, and a
script whose meaning depends on that is an error here. Every constant case
below is linked by both linkers and the symbol values compared."""
from __future__ import annotations

import random
import re
import resource
import shutil
import subprocess
import sys
import textwrap

import pytest

from reachsolve.errors import ModelError
from reachsolve.objfile.elf import read_object
from reachsolve.script import ScriptError, parse
from reachsolve.script.chain import ScriptLayout

M64 = (1 << 64) - 1
EDGE = ["0", "1", "2", "3", "7", "8", "63", "64", "65", "0x7fffffff", "0x80000000", "0xffffffff", "0x100000000",
        "0x3ffffffff", "0x7fffffffffffffff", "0x8000000000000000", "0xfffffffffffffff8", "0xffffffffffffffff"]
HAND = ["1 << 63", "1 << 64", "1 << 65", "1 << 0x3ffffffff", "0x8000000000000000 >> 64", "0x8000000000000000 >> 65",
        "(0 - 8) >> 1", "0xffffffffffffffff * 3", "(1 << 62) * 8", "0 - 1", "0xffffffffffffffff + 2",
        "(0 - 1) < 1", "-(1 << 63)", "-0xffffffffffffffff", "~0", "~1", "!5", "!0", "ALIGN(0x1001, 0)",
        "ALIGN(0x1001, 1 << 63)", "ALIGN(0x8000000000000001, 1 << 63)", "ALIGN(0xfffffffffffff001, 0x1000)",
        "MAX(0 - 1, 1)", "MIN(0 - 1, 1)", "(0 - 1) > 0 ? 5 : 6", "7 % 3", "100 / 7", "0x8000 / 0x10",
        "(1 << 32) - 1 & 0xffff0000", "0x1234 | 0xff & 0x10000"]
OPS = ["+", "-", "*", "<<", ">>", "&", "|", "==", "!=", "<", "<=", ">", ">=", "&&", "||", "/", "%"]


def _random_exprs(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)

    def leaf():
        return rng.choice(EDGE) if rng.random() < 0.7 else hex(rng.getrandbits(rng.choice((8, 32, 64))))

    def expr(depth):
        if depth == 0 or rng.random() < 0.3:
            return leaf()
        k = rng.random()
        if k < 0.1:
            return f"{rng.choice('-~!')}({expr(depth - 1)})"
        if k < 0.15:
            return f"ALIGN({expr(depth - 1)}, {1 << rng.randrange(0, 64)})"
        return f"({expr(depth - 1)}) {rng.choice(OPS)} ({expr(depth - 1)})"
    return [expr(3) for _ in range(n)]


@pytest.fixture(scope="module")
def obj(tmp_path_factory):
    d = tmp_path_factory.mktemp("arith")
    (d / "x.S").write_text("\t.text\n\tret\n")
    subprocess.run([shutil.which("clang"), "--target=aarch64-linux-gnu", "-c", str(d / "x.S"), "-o", str(d / "x.o")],
                   check=True)
    return d / "x.o"


def _ours(exprs, obj):
    """Each expression's value by reachsolve, or the error it gives."""
    o = read_object(str(obj), obj.read_bytes())
    out = []
    for e in exprs:
        try:
            lay = ScriptLayout(parse(f"SECTIONS {{ . = 0x1000; .text : {{ *(.text) }} s = {e}; }}"), o, "t.lds")
            t = lay.symbol_term("s")
            assert not t.coeffs
            out.append(t.const & M64)
        except (ModelError, ScriptError) as exc:
            out.append(exc)
    return out


def _linked(linker: str, exprs, obj, work):
    """Each symbol's value as the linker gives it (None if the linker refused the script)."""
    names = [f"s{k}" for k in range(len(exprs))]
    lds = work / f"{linker}.lds"
    lds.write_text("SECTIONS { . = 0x1000; .text : { *(.text) }\n" +
                   "\n".join(f"  {n} = {e};" for n, e in zip(names, exprs)) + "\n}\n")
    exe = shutil.which("ld.lld" if linker == "lld" else "aarch64-linux-gnu-ld")
    out = work / f"{linker}.out"
    p = subprocess.run([exe, "-T", str(lds), str(obj), "-o", str(out)], capture_output=True, text=True, timeout=120)
    if p.returncode:
        return None, p.stderr
    nm = subprocess.run([shutil.which("llvm-nm"), str(out)], capture_output=True, text=True, check=True).stdout
    got = {m.group(2): int(m.group(1), 16) for m in re.finditer(r"^([0-9a-f]+) \w (s\d+)$", nm, re.M)}
    return [got[n] for n in names], ""


@pytest.mark.parametrize("linker", ["lld", "bfd"])
def test_constant_expressions_match_the_linkers(linker, obj, tmp_path):
    exprs = HAND + _random_exprs(300)
    ours = _ours(exprs, obj)
    keep = [(e, v) for e, v in zip(exprs, ours) if isinstance(v, int)]
    assert len(keep) > 200   # the disagreeing divisions and non-powers of two are few
    values, err = _linked(linker, [e for e, _ in keep], obj, tmp_path)
    assert values is not None, err
    wrong = [(e, hex(v), hex(w)) for (e, v), w in zip(keep, values) if v != w]
    assert not wrong


def test_division_where_the_linkers_disagree_is_an_error(obj, tmp_path):
    for e in ("(0 - 8) / 2", "(0 - 7) % 3", "7 % (0 - 3)"):
        (err,) = _ours([e], obj)
        assert isinstance(err, ModelError) and "disagree" in str(err) and "t.lds:1:" in str(err), e
        lld, _ = _linked("lld", [e], obj, tmp_path)
        bfd, _ = _linked("bfd", [e], obj, tmp_path)
        assert lld != bfd   # really different values: no single answer is right


@pytest.mark.parametrize("expr, words", [
    ("8 / 0", "division by zero"), ("8 % 0", "modulo by zero"),
    ("ALIGN(0x1001, 3)", "alignment must be a power of 2"), ("ALIGN(0x1001, 0 - 16)", "power of 2"),
    ("1 ^ 2", "operator ^ is not accepted"),   # ld.lld 14 and GNU ld 2.40 both refuse it
])
def test_expressions_ld_lld_refuses_are_errors_with_line_and_column(expr, words, obj, tmp_path):
    (err,) = _ours([expr], obj)
    assert isinstance(err, ModelError) and words in str(err)
    assert re.match(r"t\.lds:1:\d+: ", str(err))
    lld, msg = _linked("lld", [expr], obj, tmp_path)
    assert lld is None and "error" in msg


HOSTILE = [
    "SECTIONS { .text : { *(.text) . = . + (1 << 0x3ffffffff); } }",
    "SECTIONS { .text : { *(.text) } s = " + "(" * 150 + "2" + " * 0xffffffffffffffff)" * 150 + "; }",
    "SECTIONS { .text : { *(.text) } " + " ".join(f"a{k} = a{k - 1} * a{k - 1};" if k else "a0 = 3;"
                                                   for k in range(400)) + " }",
    "SECTIONS { .text : { *(.text) } s = . * 0x7fffffffffffffff * 0x7fffffffffffffff; }",
    "SECTIONS { .text : { *(.text) } s = (((. << 63) << 63) << 63) << 63; }",
    "SECTIONS { .text : { *(.text) . = ALIGN(1 << 63); } }",
    "SECTIONS { .text : { *(.text) . = ALIGN(0xffffffffffffffff); } }",
    "SECTIONS { .text : ALIGN(1 << 62) { *(.text) } }",
    "SECTIONS { .text : { *(.text) } " + " ".join(f"b{k} = b{k - 1} + b{k - 1};" if k else "b0 = .;"
                                                   for k in range(300)) + " }",
]


@pytest.mark.parametrize("k", range(len(HOSTILE)))
def test_hostile_script_arithmetic_is_bounded(k, obj):
    """Each ends with a result or a clean error, in a child capped at 1 GiB (the timeout is a
    hang guard, not a speed check), and no number it keeps exceeds 2^65."""
    code = textwrap.dedent(f"""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
        from reachsolve.errors import ModelError
        from reachsolve.objfile.elf import read_object
        from reachsolve.script import ScriptError, parse
        from reachsolve.script.chain import ScriptLayout
        o = read_object("x.o", open({str(obj)!r}, "rb").read())
        try:
            lay = ScriptLayout(parse({HOSTILE[k]!r}, "t.lds"), o, "t.lds")
        except (ModelError, ScriptError) as exc:
            print("error", str(exc).splitlines()[0]); sys.exit(0)
        big = 0
        for name in lay.symbols:
            try:
                t = lay.symbol_term(name)
            except ModelError as exc:
                print("error", exc); sys.exit(0)
            big = max([big, abs(t.const)] + [abs(c) for _, c in t.coeffs])
        for it in lay.items:
            big = max(big, abs(it.pre), it.align)
        assert big <= 1 << 65, hex(big)
        print("ok")
    """)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stdout.startswith(("ok", "error t.lds:")), p.stdout
