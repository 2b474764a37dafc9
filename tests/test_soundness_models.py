"""Soundness campaign slices for --final-link and for script models (ld.lld 14 the oracle).

(f) weak: the random objects' undefined symbols made weak (some hidden) and left
undefined; analyzed with final_link = "static" and linked by ld.lld in sampled
layouts. Every weak site must be decided on its resolved value; the harness
computes that value itself from lld's rule (testsupport/campaign.weak_value): a
robust site must link and fit, a broken one must not fit, a counterexample must
be rejected by ld.lld with the symbol still undefined.

(g) script: a random linker script per object (ALIGN, ``. +=``, symbols, ASSERT,
several input descriptions), the ordered model; the as-linked build and grown
builds (padding input after descriptions, sections grown at their end) linked by
ld.lld with the same script, addresses read from its map: a robust site fits in
every build, a broken one fails as linked, the as-linked value equals ld.lld's,
every counterexample is rejected.

Both slices include an object with TLS sections and TLS local-exec sites (20261201/4 and
/20): the weak one in sampled layouts, the script one in .tdata and .tbss output sections
of the random script, TP read from the PT_TLS segment ld.lld made.

benchmarks/soundness_models.py runs the same checks long (not in CI).
"""
from __future__ import annotations

import random

from testsupport.campaign import campaign, weak_source
from testsupport.oracle import TPREL_TYPES
from testsupport.randscript import Growth, grown_source, make_script, read_map
from testsupport.toolchain import tool

CI_SEED = 20261201
WEAK_OBJECTS = (0, 1, 4)      # 4: TLS
SCRIPT_OBJECTS = (19, 20)     # 20: TLS


def test_random_scripts_are_deterministic_and_place_every_section():
    secs = [(".text.1", 0x100), (".data.2", 8), (".bss.3", 16), (".rodata.4", 4)]
    a, b = (make_script(random.Random("s"), secs) for _ in range(2))
    assert a.text == b.text
    assert sorted(n for d in a.descriptions for n in d) == sorted(n for n, _ in secs)
    src = '\t.section .text.1,"ax",%progbits\n\tnop\n\t.section .data.2,"aw",%progbits\n\t.word 0\n'
    grown = grown_source(src, Growth([], {".text.1": 12}))
    assert grown.index(".space 12") < grown.index(".data.2") and grown.count(".space") == 1


def test_map_reader():
    text = ("        40000000         40000000      ac1    32         /x/o.o:(.text.4)\n"
            "               0                0       1a     1         <internal>:(.comment)\n"
            "        40001000         40001000       10     4         /x/pad.o:(.text.4)\n")
    addrs, lo, hi = read_map(text, "o.o", {".text.4"})
    assert addrs == {".text.4": 0x40000000} and (lo, hi) == (0x40000000, 0x40001010)


def test_weak_sources_keep_the_object_and_mark_weak():
    src, hidden = weak_source("3/1")
    for n, h in hidden.items():
        assert f".weak {n}\n" in src and (f".hidden {n}\n" in src) == h


def test_soundness_final_link_against_lld():
    tool("clang"), tool("lld")
    t = campaign(CI_SEED, 3, 4, jobs=2, kind="weak", picks=WEAK_OBJECTS)
    print(f"\nfinal-link slice: {t.line()}; verdicts {dict(t.verdicts)}")
    assert t.objects == 3 and t.checks >= 500
    weak = {k: n for (ty, k), n in t.by_type.items() if ty == "undefined weak"}
    assert weak.get("robust") and (weak.get("broken") or weak.get("vulnerable")), weak
    assert any(ty in TPREL_TYPES for ty, _ in t.by_type)
    assert not t.disagreements, t.explain()


def test_soundness_script_models_against_lld():
    tool("clang"), tool("lld")
    t = campaign(CI_SEED, 2, 5, jobs=2, kind="script", picks=SCRIPT_OBJECTS)
    print(f"\nscript slice: {t.line()}; verdicts {dict(t.verdicts)}; builds {dict(t.modes)}")
    assert t.objects == 2 and t.checks >= 200
    assert any(ty in TPREL_TYPES for ty, _ in t.by_type)
    assert t.modes["grown"] and t.modes["as linked"] == 2
    assert not t.disagreements, t.explain()
