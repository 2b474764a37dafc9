"""decode() moves a cached decoding to the site's address: it must print what
capstone prints there, for every PC-relative class and any address."""
from __future__ import annotations

import random

import pytest

from reachsolve.target.decode import decode, decode_uncached
from reachsolve.target.encoding import insert
from reachsolve.target.catalogue import CATALOGUE

WORDS = {  # one encoding per class, immediates cleared as in a relocatable object
    "b.cond": 0x54000000, "cbz": 0xB4000000, "cbnz": 0x35000001, "tbz": 0x36180000, "tbnz": 0xB7F80002,
    "b": 0x14000000, "bl": 0x94000000, "adr": 0x10000001, "adrp": 0x90000002, "ldr-lit": 0x58000003,
    "ldrsw-lit": 0x98000004, "prfm-lit": 0xD8000000, "ldr-q-lit": 0x9C000000,
}


@pytest.mark.parametrize("name", sorted(WORDS))
def test_moved_text_equals_capstone(name):
    rng = random.Random(name)
    base = WORDS[name]
    klass = decode(base, 0).klass
    fields = [spec for spec in CATALOGUE if klass in spec.insns]
    assert fields
    for _ in range(300):
        word = base
        for spec in fields:  # vary the immediate through the field writers
            if rng.random() < 0.3:
                word = insert(spec.field, spec.scale, word, rng.randrange(-(1 << 33), 1 << 33) & ~3)
        if (word >> 24) != (base >> 24):
            word = base
        addr = rng.choice([0, 4, 0x700, 0xFFF, 0x1000, 0x40000000, (1 << 64) - 8, 0xFFFF800008000000])
        addr &= ~3
        assert decode(word, addr).text == decode_uncached(word, addr), (hex(word), hex(addr))
