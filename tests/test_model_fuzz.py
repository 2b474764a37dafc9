"""Garbage, deep nesting, huge numbers and unknown keys in model files and linker
scripts: a clear ModelError every time, never another exception."""
from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import FIXTURES
from reachsolve import analyze
from reachsolve.cli import demo_object
from reachsolve.errors import ModelError
from reachsolve.modelfile import parse_model

GOOD = (FIXTURES / "ordered" / "ordered.lds").read_text()
TOKENS = ["SECTIONS", "{", "}", "(", ")", ";", ".", "=", "+=", "ALIGN", "SIZEOF", "ADDR", ".text", "*",
          "0x", "18446744073709551616", "-", "<<", ">>", "&", "|", "~", "!", "?", ":", "ASSERT", "PROVIDE",
          "_end", "KEEP", "/DISCARD/", ",", '"', "OVERLAY", "MEMORY", "0", "99999999999999999999999"]


def _check(text: str) -> None:
    doc = f'placement = "ordered"\nscript = """\n{text}\n"""\n'
    try:
        model = parse_model(doc, "fuzz.toml")
    except ModelError as exc:
        assert "\n" not in str(exc)
        return
    report = analyze([demo_object()], model)  # a script that parses must still be judged cleanly
    assert not report.errors or all(e.message for e in report.errors)


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(TOKENS), max_size=40))
def test_token_soup(tokens):
    _check(" ".join(tokens))


@settings(max_examples=150, deadline=None, derandomize=True)
@given(st.integers(0, len(GOOD)), st.text(max_size=8))
def test_edited_script(at, junk):
    _check(GOOD[:at] + junk + GOOD[at:])


def test_deep_nesting_and_huge_numbers():
    for text in ("SECTIONS { . = " + "(" * 5000 + "1" + ")" * 5000 + "; }",
                 "SECTIONS { . = " + " + ".join(["1"] * 5000) + "; }",
                 "SECTIONS { . = 0x" + "f" * 40 + "; }",
                 "SECTIONS { . = 1 / 0; .text : { *(.text) } }",
                 "SECTIONS { a = b; b = a; .text : { *(.text) } }"):
        _check(text)


def test_unknown_keys_and_types():
    rng = random.Random(7)
    for _ in range(100):
        key = "".join(rng.choice("abcxyz_") for _ in range(rng.randrange(1, 8)))
        value = rng.choice(['"x"', "1", "true", "[1, 2]", "{a = 1}", "1e400", '"""x"""'])
        try:
            parse_model(f"{key} = {value}\n", "fuzz.toml")
        except ModelError as exc:
            assert str(exc).startswith("fuzz.toml")
