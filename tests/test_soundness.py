"""Soundness campaign against a real linker (ld.lld 14).

Random relocatable objects are generated from a seed, random layouts of the
"free" model (fixed image base) are sampled for each, and every layout is linked
with ld.lld through a linker script that pins every section and defines every
undefined symbol. The linker is the oracle:

(a) ld.lld never rejects a site that reachsolve calls robust;
(b) every site ld.lld rejects in some layout is vulnerable or broken (an
    ``unknown`` counts as a disagreement unless the solver gave up);
(c) every counterexample, turned into a script by ``linker_script``, makes ld.lld
    reject that same site (or, when no ld.lld check applies, leaves ld.lld silent
    while the value is really misaligned), and is a layout of the model.

Two independent checks come with the same links: the relocation value each site
takes in each layout is computed here from the ELF (pyelftools, not reachsolve),
so (d) a robust site must fit, a broken one must not, in every sampled layout
(this also covers what ld.lld truncates silently), and (e) what ld.lld reports
must be exactly what that computation predicts: a check on this harness itself.

The generator and layout sampler are testsupport/randobj.py, the independent
reader, value computation and ld.lld checks testsupport/oracle.py, the checker
testsupport/campaign.py; benchmarks/soundness.py runs the same campaign longer.
"""
from __future__ import annotations

import random

from testsupport.campaign import campaign
from testsupport.oracle import IMAGE_BASE, Layout, Rel, fits, lld_rejects, problems, read, value
from testsupport.randobj import generate, sample_layout
from testsupport.toolchain import assemble_text, tool

CI_SEED = 20240611
CI_OBJECTS = 28
CI_LAYOUTS = 24


def test_harness_is_deterministic_and_its_layouts_valid(tmp_path):
    """The generator and sampler depend on the seed alone, and every sampled layout is one
    the oracle accepts as a layout of the free model."""
    assert generate("7/1") == generate("7/1") != generate("7/2")
    obj = read(assemble_text(generate("7/1"), tmp_path / "o.o"))
    assert obj.rels and obj.secs
    draws = [[sample_layout(random.Random(s), obj) for _ in range(5)] for s in ("a", "a")]
    assert draws[0] == draws[1]
    for lay in draws[0]:
        assert problems(obj, lay) == []
    bad = Layout(dict(draws[0][0].secs), dict(draws[0][0].syms), "moved")
    name = obj.secs[0].name
    bad.secs[name] = IMAGE_BASE - 0x1000
    assert any(name in p for p in problems(obj, bad))


def test_oracle_values_by_hand():
    """A CONDBR19 and an ADRP worked out by hand: S+A-P and Page(S+A)-Page(P)."""
    lay = Layout({".text": 0x40000000, ".data": 0x40100000}, {}, "hand")
    b = Rel(".text", 8, "R_AARCH64_CONDBR19", "", ".data", 0, -4)
    assert value(b, lay) == 0x100000 - 12 and fits(b, value(b, lay)) and not lld_rejects(b, value(b, lay))
    lay.secs[".data"] += 16
    assert value(b, lay) == (1 << 20) + 4 and not fits(b, value(b, lay)) and lld_rejects(b, value(b, lay))
    p = Rel(".text", 0xffc, "R_AARCH64_ADR_PREL_PG_HI21", "", ".data", 0x10, 0)
    assert value(p, lay) == 0x40100000 - 0x40000000


def test_soundness_against_lld():
    for name in ("clang", "lld"):
        tool(name)
    t = campaign(CI_SEED, CI_OBJECTS, CI_LAYOUTS, jobs=2)
    s = t.summary()
    print(f"\nsoundness (seed {CI_SEED}): {t.line()}")
    print(f"verdicts {s['verdicts']}; layouts {s['layout_modes']}; solver gave up at {t.gave_up} rejections")
    assert t.objects == CI_OBJECTS, "no deadline: every object is checked"
    assert t.checks >= 10_000
    assert t.lld_rejections and s["verdicts"].get("robust") and s["verdicts"].get("vulnerable")
    assert not t.disagreements, t.explain()
