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

About 30% of the objects have TLS sections (.tdata, .tbss) and TLS local-exec sites
(TLSLE_MOVW_TPREL_G0/G1/G2, ADD_TPREL_HI12, LDST*_TPREL_LO12_NC): their value is S+A-TP
with TP = alignDown(p_vaddr - 16, p_align) as ld.lld 14 computes it; the layout and TP of
each such link are read back from ld.lld's map. A counterexample reachsolve's own script
does not make with ld.lld 14 (ld.lld ignores a .tbss output section's address, the script
makes no TP below the object's own, ld.lld refuses another section between two .tdata
output sections) is linked through the harness's script instead and counted apart
(Tally.repro_unmade), not as a disagreement.

The generator and layout sampler are testsupport/randobj.py, the independent
reader, value computation and ld.lld checks testsupport/oracle.py, the checker
testsupport/campaign.py; benchmarks/soundness.py runs the same campaign longer.
"""
from __future__ import annotations

import random

from testsupport.campaign import campaign
from testsupport.oracle import (IMAGE_BASE, TPREL_TYPES, Layout, Rel, fits, link_layout, lld_rejects, natural_tp,
                                problems, read, thread_pointer, tls_plan, value)
from testsupport.randobj import generate, sample_layout
from testsupport.toolchain import assemble_text, tool

CI_SEED = 20240611
CI_OBJECTS = 24   # 7 of them with TLS; 24 x 22 takes what 28 x 24 took without TLS
CI_LAYOUTS = 22


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


def test_oracle_tls_by_hand():
    """TP as ld.lld 14.0.6 made it: .tdata (8-aligned) at 0x200008 and at 0x200018 with a
    64-aligned .tbss gave the first .tdata byte TPREL 0x48 and 0x18 (p_vaddr off p_align);
    TPREL values are S+A-TP, HI12 fails below 0 as above 0xffffff."""
    assert 0x200008 - thread_pointer(0x200008, 64) == 0x48
    assert 0x200018 - thread_pointer(0x200018, 64) == 0x18
    assert thread_pointer(0x200000, 16) == 0x1ffff0
    lay = Layout({".text": 0x40000000, ".tbss": 0x40100010}, {}, "hand", 0x40100000)
    g0 = Rel(".text", 0, "R_AARCH64_TLSLE_MOVW_TPREL_G0", "tv", ".tbss", 0x20, 0xffff - 0x30)
    assert value(g0, lay) == 0xffff and not lld_rejects(g0, 0xffff) and lld_rejects(g0, 0x10000)
    hi = Rel(".text", 4, "R_AARCH64_TLSLE_ADD_TPREL_HI12", "tv", ".tbss", 0, -0x11)
    assert value(hi, lay) == -1 and lld_rejects(hi, -1) and not lld_rejects(hi, 0xffffff) and lld_rejects(hi, 1 << 24)
    ld = Rel(".text", 8, "R_AARCH64_TLSLE_LDST64_TPREL_LO12_NC", "tv", ".tbss", 0, 4)
    assert value(ld, lay) == 0x14 and lld_rejects(ld, 0x14) and not fits(ld, 0x14) and not lld_rejects(ld, 0x18)


def test_tls_layouts_link_where_sampled(tmp_path):
    """Sampled layouts of an object with .tdata and .tbss link exactly where they say (the
    map read back); a layout with a lower TP and two overlapping .tbss links as tls_plan
    says: TP made by the pad section, the later .tbss moved past the other."""
    tool("lld")
    obj = read(assemble_text(generate("7/5"), tmp_path / "o.o"))
    assert [s.tbss for s in obj.tls] == [False, False, True] and any(r.type in TPREL_TYPES for r in obj.rels)
    rng = random.Random("tls")
    for _ in range(3):
        lay = sample_layout(rng, obj)
        assert problems(obj, lay) == [] and lay.tp == natural_tp(obj, lay.secs)
        res, made = link_layout(obj, lay, tmp_path)
        assert made.secs == lay.secs and made.tp == lay.tp and not res.other, res.other
        for r in obj.rels:
            if r.type in TPREL_TYPES:
                assert (r.key in res.rejected) == lld_rejects(r, value(r, made))
    obj = read(assemble_text(generate("7/29"), tmp_path / "p.o"))
    b1, b2 = (s for s in obj.tls)
    lay = sample_layout(rng, obj)
    lay.secs[b2.name] = lay.secs[b1.name]           # both .tbss at one address
    lay.tp = natural_tp(obj, lay.secs) - 4 * obj.tls_align
    plan = tls_plan(obj, lay, keep=(b2.name,))
    assert plan.pad == lay.tp + 16 and plan.layout.secs[b2.name] == lay.secs[b2.name] != plan.layout.secs[b1.name]
    res, made = link_layout(obj, lay, tmp_path, keep=(b2.name,))
    assert made.secs == plan.layout.secs and made.tp == lay.tp and not res.other, res.other


def test_soundness_against_lld():
    for name in ("clang", "lld"):
        tool(name)
    t = campaign(CI_SEED, CI_OBJECTS, CI_LAYOUTS, jobs=2)
    s = t.summary()
    print(f"\nsoundness (seed {CI_SEED}): {t.line()}")
    print(f"verdicts {s['verdicts']}; layouts {s['layout_modes']}; solver gave up at {t.gave_up} rejections; "
          f"{t.tls_checks} TLS checks; {t.repro_unmade} counterexamples reachsolve's script does not make")
    assert t.objects == CI_OBJECTS, "no deadline: every object is checked"
    assert t.checks >= 10_000
    assert t.lld_rejections and s["verdicts"].get("robust") and s["verdicts"].get("vulnerable")
    tls = {k: sum(n for (ty, k2), n in t.by_type.items() if k2 == k and ty in TPREL_TYPES)
           for k in ("robust", "vulnerable", "broken", "rejected")}
    assert t.tls_checks >= 1000 and all(tls.values()), tls
    assert not t.disagreements, t.explain()
