"""The catalogue's newer rows against the linkers: signed MOVW, the TLS family, GOTPCREL32,
and ld.lld's 64-bit reading of ABS/PREL data near the top of the address space.

Each fixture in tests/fixtures/catalogue/ is one type. Beside its instructions it states
the verdicts (SITE labels) and, in its header, what each linker accepts (``// lld:``,
``// bfd:``) and how to put a chosen value into its oracle site (``// oracle:``). The tests
check that the catalogue says the same, that both linkers accept and reject exactly at the
stated bounds, and that what they write is what reachsolve's encoder writes.
"""
from __future__ import annotations

import re
import struct
import subprocess
from pathlib import Path

import pytest

from reachsolve import LayoutModel, analyze
from reachsolve.ir import page
from reachsolve.objfile.elf import read_object
from reachsolve.target.catalogue import BY_NAME, CATALOGUE, Field, wrap64
from reachsolve.target.decode import decode
from reachsolve.target.encoding import insert, movw_reading
from reachsolve.target.policy import LinkPolicy
from testsupport.oracle import linked_word, rejection
from testsupport.toolchain import FIXTURES, assemble, tool

DIR = FIXTURES / "catalogue"
FILES = sorted(DIR.glob("*.S"))
LABEL = re.compile(r"^(x|big|lld|kmod)_(robust|vulnerable|broken|unknown)_\d+$")
U64 = (1 << 64) - 1
HIGH32 = (1 << 64) - (1 << 31)   # ld.lld reads S+A here as >= -2^31
HIGH16 = (1 << 64) - (1 << 15)


def header(src: Path) -> dict[str, str]:
    """The ``// key: value`` lines of a fixture."""
    out = {}
    for line in src.read_text().splitlines():
        m = re.match(r"^// (oracle|lld|bfd|module|retype): (.*)$", line)
        if m:
            out[m.group(1)] = m.group(2).strip()
    return out


def build(src: Path, objdir: Path, define: str | None = None) -> Path:
    """Assemble a fixture; ``// retype: A B`` renumbers relocations of type A to type B in
    the object's RELA tables (for a type no installed assembler writes). ``define``: a
    preprocessor name set for a variant of the fixture."""
    if define:
        out = objdir / f"{src.stem}.{define}.o"
        subprocess.run([tool("clang"), "--target=aarch64-linux-gnu", "-I", str(FIXTURES), f"-D{define}", "-c",
                        str(src), "-o", str(out)], check=True, capture_output=True, text=True)
        return out
    obj = assemble(src, objdir)
    h = header(src)
    if "retype" not in h:
        return obj
    a, b = (BY_NAME[n].number for n in h["retype"].split())
    out = objdir / f"{src.stem}.retyped.o"
    data = bytearray(obj.read_bytes())
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    n = 0
    for k in range(shnum):
        sh_type, = struct.unpack_from("<I", data, shoff + k * shentsize + 4)
        if sh_type != 4:  # SHT_RELA
            continue
        off, size = struct.unpack_from("<QQ", data, shoff + k * shentsize + 0x18)
        for r in range(off, off + size, 24):
            info, = struct.unpack_from("<Q", data, r + 8)
            if info & 0xFFFFFFFF == a:
                struct.pack_into("<Q", data, r + 8, (info & ~0xFFFFFFFF) | b)
                n += 1
    assert n, f"{src.name}: no {h['retype']} to renumber"
    out.write_bytes(bytes(data))
    return out


def expectations(obj: Path, prefix: str) -> dict[tuple[int, int], str]:
    o = read_object(str(obj), obj.read_bytes())
    found: dict[tuple[int, int], dict[str, str]] = {}
    for i in range(1, len(o.symbols)):
        m = LABEL.match(o.symbol_name(i))
        if m:
            found.setdefault((int(o.symbol_section[i]), int(o.symbols["value"][i])), {})[m.group(1)] = m.group(2)
    return {k: v.get(prefix, v.get("x")) for k, v in found.items() if v.get(prefix, v.get("x"))}


def _model(src: Path, mode: str) -> LayoutModel:
    kw = {"big": {"image_max": 8 << 30}, "lld": {"linker": "lld"}, "module": {"linker": "module"}}.get(mode, {})
    if header(src).get("oracle") == "high-base":
        kw.update(image_base=HIGH16 if "abs16" in src.name else HIGH32, image_max=1 << 15 if "abs16" in src.name
                  else 1 << 20)
    return LayoutModel(**kw)


MODES = ("default", "big", "lld", "module")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("src", FILES, ids=[p.stem for p in FILES])
def test_verdicts(src, mode, objdir):
    """Every fixture site gets the verdict written beside it; under the module loader a type
    it refuses is broken at every site, whatever the layout."""
    obj = build(src, objdir)
    report = analyze([str(obj)], _model(src, mode))
    assert not report.errors, report.errors
    rejected = mode == "module" and header(src).get("module") == "rejected"
    want = expectations(obj, {"big": "big", "lld": "lld"}.get(mode, "x"))
    assert want, f"{src.name} has no SITE() labels"
    got = {(s.section_index, s.offset): s for s in report.sites}
    assert set(got) == set(want)
    for k, s in got.items():
        if rejected:
            assert s.verdict == "broken" and "module loader rejects" in s.reason, (s.reloc, s.reason)
            assert s.counterexample is None
            continue
        assert s.verdict == want[k], (src.name, mode, hex(s.offset), s.verdict, s.reason)
        assert s.reason
        if s.verdict in ("vulnerable", "broken") and s.counterexample is not None:
            assert s.counterexample.layout
    if mode == "default" and any(BY_NAME[s.reloc].formula.tp_relative for s in report.sites):
        assumptions = report.files[0].assumptions
        assert any(a.startswith("TLS:") for a in assumptions)


def test_every_new_type_has_a_fixture():
    names = {n for n in (
        "R_AARCH64_MOVW_SABS_G0", "R_AARCH64_MOVW_SABS_G1", "R_AARCH64_MOVW_SABS_G2",
        "R_AARCH64_MOVW_PREL_G0", "R_AARCH64_MOVW_PREL_G1", "R_AARCH64_MOVW_PREL_G2",
        "R_AARCH64_TLSLE_MOVW_TPREL_G0", "R_AARCH64_TLSLE_MOVW_TPREL_G1", "R_AARCH64_TLSLE_MOVW_TPREL_G2",
        "R_AARCH64_TLSLE_ADD_TPREL_HI12", "R_AARCH64_TLSLE_LDST16_TPREL_LO12_NC",
        "R_AARCH64_TLSLE_LDST32_TPREL_LO12_NC", "R_AARCH64_TLSLE_LDST64_TPREL_LO12_NC",
        "R_AARCH64_TLSLE_LDST128_TPREL_LO12_NC", "R_AARCH64_TLSIE_ADR_GOTTPREL_PAGE21",
        "R_AARCH64_TLSDESC_ADR_PAGE21", "R_AARCH64_GOTPCREL32")}
    stems = {p.stem for p in FILES}
    for name in names:
        assert name in BY_NAME and name[len("R_AARCH64_"):].lower() in stems, name


# -- encoding and decoding, every type with an instruction or data field --------------------
def _reading(spec, word: int, place: int) -> int | None:
    """What the written container means, read back through capstone where it is an
    instruction (independently of encoding.insert's arithmetic)."""
    f = spec.field
    if f in (Field.DATA16, Field.DATA32):
        return word
    insn = decode(word, place)
    if f is Field.SMOVW:
        op, v = movw_reading(word)
        # capstone's text agrees with the Arm ARM reading
        m = re.match(r"^(mov|movz|movn|movk) x0, #(-?0x[0-9a-f]+|-?\d+)(?:, lsl #(\d+))?$", insn.text)
        assert m, insn.text
        imm, sh = int(m.group(2), 0), int(m.group(3) or 0)
        want = {"mov": imm, "movz": imm << sh, "movn": ~(imm << sh), "movk": imm << sh}[m.group(1)]
        assert (want & U64) == (v & U64), (insn.text, op, hex(v))
        return v
    if f is Field.HI12:
        m = re.match(r"^add x0, x0, #(0x[0-9a-f]+|\d+), lsl #12", insn.text)
        return int(m.group(1), 0) << 12
    if f is Field.LO12:
        return insn.disp
    if f is Field.ADRP:
        return wrap64(insn.target - page(place))
    return None


def _data_readings(word: int, spec) -> set[int]:
    bits = 8 * spec.field.container
    return {word, word - (1 << bits) if word >> (bits - 1) else word}


_TEMPLATES = {Field.SMOVW: 0xD2800000, Field.HI12: 0x91400000, Field.ADRP: 0x90000000,
              Field.DATA32: 0, Field.DATA16: 0}
_LDST_TEMPLATES = {2: 0x79400020, 4: 0xB9400020, 8: 0xF9400020, 16: 0x3DC00020}  # ldrh w0 / ldr w0 / x0 / q0, [x1]


@pytest.mark.parametrize("spec", [s for s in CATALOGUE if s.field in _TEMPLATES or
                                  (s.field is Field.LO12 and s.formula.tp_relative)], ids=lambda s: s.name)
def test_encode_decode_round_trip(spec):
    """Every value the profiles accept survives insert() and capstone's decoding; the first
    value beyond each bound does not (so the range check is what keeps the code right)."""
    word = _LDST_TEMPLATES[spec.granule] if spec.field is Field.LO12 else _TEMPLATES[spec.field]
    if spec.field is Field.SMOVW:
        word |= (spec.scale // 16) << 21  # the lsl #16/#32 the assembler writes for G1/G2
    place = 0x40001234
    rng = LinkPolicy("lld").range(spec)  # lld's checks are the encodable values
    g = spec.granule
    if rng is None:  # lo12: any aligned value, its low 12 bits come back
        for v in (0, g, 0xFF0, 0x1000 + g, (1 << 40) + 0xFF0 - g):
            assert _reading(spec, insert(spec.field, spec.scale, word, v), place) == v & 0xFFF
        return
    lo, hi = rng
    step = max(g, 1 << spec.scale) if spec.field is not Field.ADRP else 0x1000
    values = sorted({lo, lo + step, -step if lo < 0 else 0, 0, step, hi - step + 1, hi})
    values = [v - v % step for v in values if lo <= v - v % step]
    for v in values:
        r = _reading(spec, insert(spec.field, spec.scale, word, v), place)
        shift = spec.scale if spec.field is Field.SMOVW else 0
        if spec.field is Field.HI12:
            assert r == v & ~0xFFF, (hex(v), hex(r))
        elif spec.field.is_data:  # the word read back signed or unsigned
            assert v in _data_readings(r, spec), (hex(v), r)
        else:
            assert r >> shift == v >> shift, (hex(v), r)
    for v in (() if spec.field.is_data else (hi + step, lo - step)):  # a data word keeps no sign
        r = _reading(spec, insert(spec.field, spec.scale, word, v), place)
        shift = spec.scale if spec.field is Field.SMOVW else 0
        if spec.field is Field.HI12:
            if v >= 0:
                assert r != v & ~0xFFF
        elif spec.field.is_data:
            assert v not in _data_readings(r, spec), hex(v)
        else:
            assert r >> shift != v >> shift, hex(v)


def test_signed_movw_picks_movz_or_movn_as_lld_does():
    """lld's writeSMovWImm: movn with the inverted group below 0, movz otherwise; movk keeps
    its opcode."""
    spec = BY_NAME["R_AARCH64_MOVW_SABS_G1"]
    movz_g1, movk_g1 = 0xD2A00000, 0xF2A00000
    assert movw_reading(insert(spec.field, 16, movz_g1, -0x10000)) == ("movn", -1)  # bits 16+ of -0x10000
    assert movw_reading(insert(spec.field, 16, movz_g1, -0x20000)) == ("movn", ~0x10000)  # bits 16+: -2
    assert movw_reading(insert(spec.field, 16, movz_g1, 0x12340000))[0] == "movz"
    assert movw_reading(insert(spec.field, 16, 0x92A00000, 0x12340000))[0] == "movz"  # movn -> movz
    assert movw_reading(insert(spec.field, 16, movk_g1, -0x10000))[0] == "movk"


# -- the linkers at each bound -----------------------------------------------------------------
def _bounds(line: str):
    """("range", lo, hi, silent) | ("align", g, silent) | ("unsupported", message);
    ``silent``: the linker does not report a value beyond the bounds, it writes it."""
    silent = line.startswith("silent")
    body = re.sub(r"^silent-?", "", line).strip()
    m = re.match(r"^\[(-?0x[0-9a-f]+), (-?0x[0-9a-f]+)\]$", body)
    if m:
        return ("range", int(m.group(1), 16), int(m.group(2), 16), silent)
    m = re.match(r"^align (\d+)$", body)
    if m:
        return ("align", int(m.group(1)), silent)
    assert line.startswith("unsupported "), line
    return ("unsupported", line[len("unsupported "):])


ORACLES = [(src, ld) for src in FILES for ld in ("lld", "bfd")
           if header(src).get("oracle", "none") not in ("none", "high-base")]


def _word_at(obj: Path, offset: int) -> int:
    o = read_object(str(obj), obj.read_bytes())
    text = next(x for x in o.sections if x.name == ".text")
    return int.from_bytes(o.data[text.offset + offset:text.offset + offset + 4], "little")


def _site_spec(obj: Path):
    rep = analyze([str(obj)], LayoutModel())
    s = next(s for s in rep.sites if s.section == ".text" and s.offset == 0)
    o = read_object(str(obj), obj.read_bytes())
    text = next(x for x in o.sections if x.name == ".text")
    word = int.from_bytes(o.data[text.offset:text.offset + 4], "little")
    return BY_NAME[s.reloc], word


P_TEXT = 0x200000000    # .text of the oracle links: 8 GiB, so that P - 4 GiB still lies above 0


def _script(kind: str, value: int, spec) -> tuple[str, list[str]]:
    """A linker script (and extra options) that gives the oracle site ``value``."""
    if kind == "abs":
        return (f"SECTIONS {{ .text {P_TEXT:#x} : {{ *(.text) }} .data : {{ *(.data) }} }}\n"
                f"target = {value & U64:#x};\n"), []
    if kind == "prel":
        return (f"SECTIONS {{ .text {P_TEXT:#x} : {{ *(.text) }} .data : {{ *(.data) }} }}\n"
                f"target = {(P_TEXT + value) & U64:#x};\n"), []
    if kind in ("tprel", "tprel-align"):
        # TP = alignDown(p_vaddr - 16, p_align) with p_vaddr 16-aligned: tv at p_vaddr + pad
        # has TPREL(tv) = pad + 16.
        pad = value - 16
        return (f"SECTIONS {{ .text 0x10000 : {{ *(.text) }} .tdata 0x200000 : {{ *(.tdata) }}\n"
                f"  .tbss : {{ . += {pad:#x}; *(.tbss) *(.tbss.*) }} }}\n"), []
    if kind == "got-page":
        got = P_TEXT + value
        return (f"SECTIONS {{ .text {P_TEXT:#x} : {{ *(.text) }} .got {got:#x} : {{ *(.got) *(.got.plt) }}\n"
                f"  .tbss 0x10000 : {{ *(.tbss) }} }}\n"), ["-shared"]
    raise ValueError(kind)


def _link(ld: str, obj: Path, script: str, work: Path, extra: list[str]) -> subprocess.CompletedProcess:
    work.mkdir(parents=True, exist_ok=True)
    (work / "t.lds").write_text(script)
    cmd = [tool(ld), "-T", str(work / "t.lds"), str(obj), "-o", str(work / "out"), "-e", "0", "--noinhibit-exec"]
    cmd += ["--error-limit=0"] if ld == "lld" else ["--no-warn-rwx-segments"]
    return subprocess.run(cmd + extra, capture_output=True, text=True, timeout=300)


def _values(bounds, kind: str, spec) -> list[tuple[int, bool]]:
    """(value, accepted?) pairs at and just beyond each reachable bound."""
    if bounds[0] == "align":
        return [(0x20, True)]  # the misaligned case is the fixture's own tv+1 site (test_linker_bounds)
    _, lo, hi, _ = bounds
    step = 0x1000 if spec.field is Field.ADRP else 1 << spec.scale
    if kind == "tprel":
        step = max(step, 16)  # the oracle's TLS variable is 16-aligned
    out = [(hi - hi % step, True), (hi + 1 + (-(hi + 1)) % step, False)]
    if kind in ("abs", "prel", "got-page"):  # a TP offset is at least 16: no lower bound to reach
        out += [(lo, True), (lo - step, False)]
    return out


@pytest.mark.parametrize("src,ld", ORACLES, ids=[f"{s.stem}-{ld}" for s, ld in ORACLES])
def test_linker_bounds(src, ld, objdir, tmp_path):
    """At each bound the linker accepts the value, one step beyond it reports the site; the
    catalogue states the same bounds; what the linker writes is what insert() writes."""
    obj = build(src, objdir)
    h = header(src)
    kind = h["oracle"].split()[0]
    spec, word = _site_spec(obj)
    bounds = _bounds(h[ld])
    prof = {"lld": "lld", "bfd": "bfd"}[ld]
    if bounds[0] == "unsupported":
        proc = _link(ld, obj, _script(kind, 0x20, spec)[0], tmp_path / "u", _script(kind, 0x20, spec)[1])
        assert bounds[1] in proc.stderr, proc.stderr
        return
    silent = bounds[-1]
    g = spec.granule
    if bounds[0] == "range":  # the catalogue's range, trimmed to the granule as policy.range does
        lo, hi = -(-bounds[1] // g) * g, bounds[2] // g * g
        assert LinkPolicy(prof).range(spec) == (lo, hi), "the catalogue states the fixture's bounds"
        assert spec.limits[prof].reports != silent
    else:
        assert LinkPolicy(prof).range(spec) is None and spec.granule == bounds[1]
        assert spec.limits[prof].aligns != silent
    pattern = rejection(ld, ".text", 0, spec.name)
    linked = obj
    if bounds[0] == "align":
        # The fixture's tv+1 site at .text+4: TPREL 0x21, misaligned for every granule > 1.
        script, extra = _script(kind, 0x20, spec)
        proc = _link(ld, obj, script, tmp_path / "misaligned", extra)
        reported = bool(rejection(ld, ".text", 4, spec.name).search(proc.stderr))
        assert reported == (not silent), proc.stderr
        if silent:  # written as insert() writes it: the low bits are gone
            got = linked_word(tmp_path / "misaligned" / "out", ".text", 0x10004, 4, False)
            assert got == insert(spec.field, spec.scale, _word_at(obj, 4), 0x21)
        linked = build(src, obj.parent, "ORACLE_ALIGNED")
    for value, ok in _values(bounds, kind, spec):
        script, extra = _script(kind, value, spec)
        work = tmp_path / f"v{value & U64:x}"
        proc = _link(ld, linked, script, work, extra)
        rejected = bool(pattern.search(proc.stderr))
        assert rejected == (not ok and not silent), f"{ld} at {value:#x}: {proc.stderr[-2000:]}"
        if bounds[0] == "range":
            assert LinkPolicy(prof).accepts(spec, value) == ok
        got = linked_word(work / "out", ".text", P_TEXT if kind in ("abs", "prel", "got-page") else 0x10000,
                          4, False)
        if ok:  # what the linker writes in range is what insert() writes
            assert got == insert(spec.field, spec.scale, word, value), (hex(value), hex(got or 0))
        elif silent:  # written without a word, and wrong: it does not mean the value
            assert got is not None and _reading(spec, got, 0x10000) != value, hex(value)


TPREL = [src for src in FILES if header(src).get("oracle", "").startswith("tprel")]


@pytest.mark.parametrize("ld", ["lld", "bfd"])
@pytest.mark.parametrize("src", TPREL, ids=[p.stem for p in TPREL])
def test_tls_offsets_as_linked(src, ld, objdir, tmp_path):
    """TP as the linkers place it: reachsolve's as-linked value of each TPREL site, under
    the oracle's own script (other TLS input before this object's), is what the linker
    writes, and a site the linker reports is broken as linked."""
    kind = header(src)["oracle"].split()[0]
    # ld.lld writes no output when it reports a misaligned site: leave that site out
    obj = build(src, objdir, "ORACLE_ALIGNED") if kind == "tprel-align" else build(src, objdir)
    spec, word = _site_spec(obj)
    for value in (0x40, 0x1230, 0x123450):  # a multiple of 16: the fixture's tv is 16-aligned
        script, extra = _script(kind, value, spec)
        lds = tmp_path / f"{value:x}.lds"
        lds.write_text(script)
        rep = analyze([str(obj)], "free", linker_script=str(lds), placement="as-linked", linker=ld)
        assert not rep.errors
        s = next(s for s in rep.all_sites() if s.section == ".text" and s.offset == 0)
        assert s.as_linked == value, (value, s.as_linked, s.reason)
        proc = _link(ld, obj, script, tmp_path / f"{ld}{value:x}", extra)
        bounds = _bounds(header(src)[ld])
        if bounds[0] == "unsupported":
            assert bounds[1] in proc.stderr
            continue
        fails = bounds[0] == "range" and not bounds[1] <= value <= bounds[2]
        reported = bool(rejection(ld, ".text", 0, spec.name).search(proc.stderr))
        # broken as linked whenever the value fails, reported or silently wrapped
        assert (s.verdict == "broken") == fails, (value, s.verdict, s.reason)
        assert reported == (fails and not bounds[-1]), (value, proc.stderr[-1000:])
        got = linked_word(tmp_path / f"{ld}{value:x}" / "out", ".text", 0x10000, 4, False)
        if not fails:
            assert got == insert(spec.field, spec.scale, word, value)


# -- ABS/PREL data at the top of the address space ---------------------------------------------
HIGH = [src for src in FILES if header(src).get("oracle") == "high-base"]


@pytest.mark.parametrize("ld", ["lld", "bfd"])
@pytest.mark.parametrize("src", HIGH, ids=[p.stem for p in HIGH])
def test_high_image_base(src, ld, objdir, tmp_path):
    """Linked at image base 2^64 - 2^31 (2^64 - 2^15 for ABS16), each data site is reported by
    exactly the linkers whose profile reachsolve calls it broken under, and ld.lld writes the
    low bits of the 64-bit value."""
    obj = build(src, objdir)
    base = HIGH16 if "abs16" in src.name else HIGH32
    model = _model(src, "default")
    script = f"SECTIONS {{ .text {base:#x} : {{ *(.text) }} .data : {{ *(.data) }} }}\n"
    proc = _link(ld, obj, script, tmp_path / ld, [])
    rep = analyze([str(obj)], model, linker=ld)
    assert not rep.errors
    sites = list(rep.all_sites())
    assert sites
    for s in sites:
        reported = bool(rejection(ld, s.section, s.offset, s.reloc).search(proc.stderr))
        assert reported == (s.verdict == "broken"), (s.reloc, s.verdict, s.reason, proc.stderr)
        if not reported:
            o = read_object(str(obj), obj.read_bytes())
            size = BY_NAME[s.reloc].field.container
            out = linked_word(tmp_path / ld / "out", ".data", _data_addr(tmp_path / ld / "out") + s.offset, size,
                              False)
            assert out is not None
    if ld == "lld":
        assert all(s.verdict == "robust" for s in sites)
    else:
        assert any(s.verdict == "broken" and s.reloc.startswith("R_AARCH64_ABS") for s in sites)


def _data_addr(out: Path) -> int:
    from elftools.elf.elffile import ELFFile
    with open(out, "rb") as f:
        return next(s["sh_addr"] for s in ELFFile(f).iter_sections() if s.name == ".data")


def test_gotpcrel32_has_no_oracle(objdir, tmp_path):
    """No installed linker implements GOTPCREL32: both refuse the object, so its row rests on
    the ABI, lld's source and the encode/decode check above."""
    obj = build(DIR / "gotpcrel32.S", objdir)
    script = "SECTIONS { .data 0x10000 : { *(.data) } }\ntarget = 0x20000;\n"
    lld = _link("lld", obj, script, tmp_path / "lld", [])
    bfd = _link("bfd", obj, script, tmp_path / "bfd", [])
    assert "unknown relocation (315)" in lld.stderr, lld.stderr
    assert "unrecognized relocation type 0x13b" in bfd.stderr, bfd.stderr
