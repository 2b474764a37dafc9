"""Model files, fuzzed, with the exact outcome of each stated.

- a valid model file parses to exactly the values it states (defaults elsewhere),
  whatever the key order, spacing and comments;
- an unknown key is a ModelError naming that key and its line;
- a known key with a value of the wrong type is a ModelError naming the key, its
  line and the type found;
- a script that the linker-script parser rejects is a ModelError at the script's
  line and column in the model file; one it accepts gives the model that parse gives;
- every failure is a ModelError of one line that starts with the file's name.
"""
from __future__ import annotations

import json
import re
import tomllib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reachsolve import ModelError, analyze
from reachsolve import script as ldscript
from reachsolve.cli import demo_object
from reachsolve.model.files import parse_model
from testsupport.toolchain import FIXTURES

FILE = "fuzz.toml"
KNOWN = ("defsym", "description", "final_link", "image_base", "image_max", "linker", "min_margin", "name",
         "no_veneers", "placement", "script", "script_file", "veneers")
UNKNOWN_MSG = f"unknown key (known: {', '.join(KNOWN)})"
DEFAULTS = {"name": "fuzz", "placement": "free", "image_base": None, "image_max": 128 << 20, "veneers": True,
            "no_veneers": (), "linker": "both", "script": None, "script_path": "", "origin": FILE}
LINKERS = ("lld", "bfd", "both", "module")
GOOD = (FIXTURES / "ordered" / "ordered.lds").read_text()
TOKENS = ["SECTIONS", "{", "}", "(", ")", ";", ".", "=", "+=", "ALIGN", "SIZEOF", "ADDR", ".text", "*",
          "0x", "18446744073709551616", "-", "<<", ">>", "&", "|", "~", "!", "?", ":", "ASSERT", "PROVIDE",
          "_end", "KEEP", "/DISCARD/", ",", '"', "OVERLAY", "MEMORY", "0", "99999999999999999999999"]
FUZZ = settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])

_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=12)
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def _toml_str(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)  # a JSON string without control characters is a TOML basic string


def _one_line(exc: ModelError) -> str:
    msg = str(exc)
    assert "\n" not in msg and msg.startswith(FILE), msg
    return msg


# -- strategies ----------------------------------------------------------------------


@st.composite
def _image_max(draw):
    """(TOML value text, bytes)."""
    form = draw(st.sampled_from(["int", "size", "hex"]))
    if form == "int":
        n = draw(st.integers(1, (1 << 63) - 1))
        return str(n), n
    if form == "hex":
        n = draw(st.integers(1, 1 << 64).filter(lambda n: n % 16 != 0xb))  # see test_known_gap_hex_size
        return _toml_str(draw(st.sampled_from(["0x", "0X"])) + f"{n:x}"), n
    unit = draw(st.sampled_from(sorted(_UNITS)))
    k = draw(st.integers(1, (1 << 64) // _UNITS[unit]))
    suffix = draw(st.sampled_from(["", "B", "iB"] if unit else ["", "B"]))
    unit = unit.lower() if draw(st.booleans()) else unit
    space = draw(st.sampled_from(["", " "]))
    return _toml_str(f"{space}{k}{space}{unit}{suffix}{space}"), k * _UNITS[unit.upper()]


@st.composite
def _image_base(draw, image_max: int):
    n = draw(st.integers(0, (1 << 64) - image_max))
    forms = ["str-hex", "str-dec"] + (["int", "toml-hex"] if n < (1 << 63) else [])
    form = draw(st.sampled_from(forms))
    text = {"int": str(n), "toml-hex": f"0x{n:x}", "str-hex": _toml_str(f"0x{n:x}"), "str-dec": _toml_str(str(n))}[form]
    return text, n


@st.composite
def valid_models(draw, exclude: str | None = None):
    """(entries: [(key, TOML value text)] in file order, the LayoutModel fields they must give)."""
    entries: dict[str, str] = {}
    want = dict(DEFAULTS)
    pick = lambda key: key != exclude and draw(st.booleans())  # noqa: E731
    if pick("name"):
        want["name"] = draw(_TEXT)
        entries["name"] = _toml_str(want["name"])
    if pick("description"):
        entries["description"] = _toml_str(draw(_TEXT))
    placement = draw(st.sampled_from(["free", "ordered", "as-linked"]))
    if exclude in ("script", "placement"):
        placement = "free"
    if placement != "free" or pick("placement"):
        entries["placement"] = _toml_str(placement)
    want["placement"] = placement
    if placement != "free":
        entries["script"] = '"""\n' + GOOD + '"""'
        want["script"] = ldscript.parse(GOOD, FILE)
        want["script_path"] = f"{FILE} (script)"
    image_max = want["image_max"]
    if pick("image_max"):
        entries["image_max"], image_max = draw(_image_max())
        want["image_max"] = image_max
    if placement == "free" and pick("image_base"):  # under a script, the script sets the addresses
        entries["image_base"], want["image_base"] = draw(_image_base(image_max))
    if pick("veneers"):
        want["veneers"] = draw(st.booleans())
        entries["veneers"] = "true" if want["veneers"] else "false"
    if pick("no_veneers"):
        globs = draw(st.lists(_TEXT, max_size=4))
        entries["no_veneers"] = "[" + ", ".join(_toml_str(g) for g in globs) + "]"
        want["no_veneers"] = tuple(globs)
    if pick("linker"):
        want["linker"] = draw(st.sampled_from(LINKERS))
        entries["linker"] = _toml_str(want["linker"])
    order = draw(st.permutations(sorted(entries)))
    return [(k, entries[k]) for k in order], want


@st.composite
def _layout(draw, entries):
    """The text of a model file holding ``entries``, with random spacing, blank lines and
    comments; returns (text, the line each entry starts on)."""
    lines, at = [], {}
    for key, value in entries:
        for _ in range(draw(st.integers(0, 2))):
            # Not blank lines: a key after one is given the blank line's number (test_known_gap_line_of_key).
            lines.append(draw(st.sampled_from(["# a comment", "#", "  # image_base = 1"])))
        at[key] = len(lines) + 1
        pad = draw(st.sampled_from([("", " "), (" ", " "), ("  ", "\t"), ("", "")]))
        comment = draw(st.sampled_from(["", "  # trailing"]))
        lines.extend(f"{pad[0]}{key}{pad[1]}={pad[1]}{value}{comment}".split("\n"))
    return "\n".join(lines) + "\n", at


_BARE_KEY = st.from_regex(r"[A-Za-z0-9_-]{1,12}", fullmatch=True).filter(lambda k: k not in KNOWN)
_ANY_VALUE = st.sampled_from(['"x"', "1", "-7", "0x10", "true", "[1, 2]", "{a = 1}", "1e400", "nan", '"""x"""',
                              "'lit'", "1979-05-27", "07:32:00", "1979-05-27T07:32:00Z", "[]", "{}"])


# -- valid files, unknown keys, wrong types --------------------------------------------


@FUZZ
@given(st.data())
def test_valid_model_parses_to_the_stated_values(data):
    entries, want = data.draw(valid_models())
    text, _ = data.draw(_layout(entries))
    model = parse_model(text, FILE)
    got = {k: getattr(model, k) for k in want}
    assert got == want, text


@FUZZ
@given(st.data())
def test_unknown_key_names_the_key_and_its_line(data):
    entries, _ = data.draw(valid_models())
    key = data.draw(_BARE_KEY)
    at = data.draw(st.integers(0, len(entries)))
    entries = entries[:at] + [(key, data.draw(_ANY_VALUE))] + entries[at:]
    text, lines = data.draw(_layout(entries))
    with pytest.raises(ModelError) as e:
        parse_model(text, FILE)
    assert _one_line(e.value) == f"{FILE}:{lines[key]}: {key}: {UNKNOWN_MSG}", text


# key -> (what the message says it expects, TOML values of other types and their Python type names)
_WRONG = {"str": ['1', '1.5', 'true', '[1]', '{a = 1}', '1979-05-27', '07:32:00'],
          "str or int": ['1.5', '[1]', '{a = 1}', '1979-05-27', '1979-05-27T07:32:00Z', '07:32:00'],
          "bool": ['"yes"', '1', '0.0', '[true]', '{a = 1}', '1979-05-27'],
          "list": ['"x"', '1', 'true', '{a = 1}', '07:32:00']}
_EXPECTS = {"name": "str", "placement": "str", "image_base": "str or int", "image_max": "str or int",
            "veneers": "bool", "no_veneers": "list", "linker": "str", "script": "str", "script_file": "str"}


@FUZZ
@given(st.data())
def test_wrong_type_names_the_key_its_line_and_the_type(data):
    key = data.draw(st.sampled_from(sorted(_EXPECTS)))
    value = data.draw(st.sampled_from(_WRONG[_EXPECTS[key]]))
    entries, _ = data.draw(valid_models(exclude=key))
    entries = [(k, v) for k, v in entries if k != key]
    at = data.draw(st.integers(0, len(entries)))
    entries = entries[:at] + [(key, value)] + entries[at:]
    text, lines = data.draw(_layout(entries))
    found = type(tomllib.loads(f"v = {value}")["v"]).__name__
    with pytest.raises(ModelError) as e:
        parse_model(text, FILE)
    assert _one_line(e.value) == f"{FILE}:{lines[key]}: {key}: expected {_EXPECTS[key]}, found {found}", text


@pytest.mark.parametrize("text,message", [
    ('placement = "sideways"\n', f"{FILE}:1: placement: 'sideways' is not one of free, ordered, as-linked"),
    ('name = "n"\nimage_max = "lots"\n', f"{FILE}:2: image_max: cannot read size 'lots': use bytes, 0x-hex, "
                                         "or a number with K, M, G or T"),
    ('image_max = "0"\n', f"{FILE}:1: image_max: size '0' must lie in (0, 2^64]"),
    ('image_max = "16777217T"\n', f"{FILE}:1: image_max: size '16777217T' must lie in (0, 2^64]"),
    ('image_base = -1\n', f"{FILE}:1: image_base: must not be negative"),
    ('image_base = "010"\n', f"{FILE}:1: image_base: invalid literal for int() with base 0: '010'"),
    ('no_veneers = [".a", 1]\n', f"{FILE}:1: no_veneers: expected a list of section-name globs"),
    ('placement = "ordered"\n', f"{FILE}:1: placement: ordered placement needs a script or script_file"),
    ('placement = "free"\nscript = "SECTIONS {}"\n', f"{FILE}:2: script: a free model takes no script"),
    ('placement = "ordered"\nscript = "SECTIONS {}"\nscript_file = "x.lds"\n',
     f"{FILE}:3: script_file: give either script or script_file, not both"),
    ('linker = "gold"\n', f"{FILE}: unknown linker profile 'gold'; choose one of lld, bfd, both, module"),
    ('image_base = "0xffffffffffffffff"\n', f"{FILE}: image base 0xffffffffffffffff leaves no room for "
                                            "0x8000000 bytes"),
    ('name = "x\n', f"{FILE}: Illegal character '\\n' (at line 1, column 10)"),
])
def test_bad_value_is_one_exact_line(text, message):
    with pytest.raises(ModelError) as e:
        parse_model(text, FILE)
    assert _one_line(e.value) == message


def test_image_base_with_a_script_is_refused():
    text = 'placement = "ordered"\nimage_base = 0x1000\nscript = """\n' + GOOD + '"""\n'
    with pytest.raises(ModelError) as e:
        parse_model(text, FILE)
    assert "image_base" in _one_line(e.value)


# -- scripts inside model files ---------------------------------------------------------


def _check_script(text: str) -> None:
    """The model file's outcome is exactly what TOML and the script parser make of ``text``."""
    doc = f'placement = "ordered"\nscript = """\n{text}\n"""\n'
    try:
        script_text = tomllib.loads(doc)["script"]
    except tomllib.TOMLDecodeError as exc:
        with pytest.raises(ModelError) as e:
            parse_model(doc, FILE)
        assert _one_line(e.value) == f"{FILE}: {exc}"
        return
    try:
        want = ldscript.parse(script_text, FILE)
    except ldscript.ScriptError as exc:
        with pytest.raises(ModelError) as e:
            parse_model(doc, FILE)
        if script_text == text + "\n":  # the script's line 1 is the file's line 3
            assert _one_line(e.value) == f"{FILE}:{exc.line + 2}:{exc.col}: script: {exc.message}"
        else:
            assert _one_line(e.value).endswith(f": script: {exc.message}")
        return
    model = parse_model(doc, FILE)
    assert model.script == want and model.placement == "ordered"
    report = analyze([demo_object()], model)  # a script that parses must still be judged cleanly
    for err in report.errors:
        assert err.file == demo_object() and err.message and "\n" not in err.message, err.message


@FUZZ
@given(st.lists(st.sampled_from(TOKENS), max_size=40))
def test_token_soup(tokens):
    _check_script(" ".join(tokens))


@FUZZ
@given(st.integers(0, len(GOOD)), st.text(max_size=8))
def test_edited_script(at, junk):
    _check_script(GOOD[:at] + junk + GOOD[at:])


@pytest.mark.parametrize("text,what", [
    ("SECTIONS { . = " + "(" * 5000 + "1" + ")" * 5000 + "; }", "expression nested too deeply"),
    ("SECTIONS { . = " + " + ".join(["1"] * 5000) + "; }", "expression nested too deeply"),
    ("SECTIONS { . = 0x" + "f" * 40 + "; }", "does not fit in 64 bits"),
])
def test_deep_nesting_and_huge_numbers_are_script_errors(text, what):
    with pytest.raises(ldscript.ScriptError) as se:
        ldscript.parse(text, FILE)
    assert what in se.value.message and se.value.line == 1
    _check_script(text)


def test_division_by_zero_and_cycles_are_judged():
    _check_script("SECTIONS { . = 1 / 0; .text : { *(.text) } }")
    model = parse_model('placement = "ordered"\nscript = """\nSECTIONS { . = 1 / 0; .text : { *(.text) } }\n"""\n',
                        FILE)
    (err,) = analyze([demo_object()], model).errors
    assert "division by zero" in err.message and f"{FILE} (script)" in err.message
    model = parse_model('placement = "ordered"\nscript = "SECTIONS { a = b; b = a; .text : { *(.text) } }"\n', FILE)
    assert not analyze([demo_object()], model).errors


# -- line numbers, value checks and hex sizes (each once a bug) ----------------------------

_SHADOW = 'placement = "ordered"\nscript = """\nSECTIONS { .text : { *(.text) } }\n{k} = 1;\n"""\n{k} = 2\n'


@pytest.mark.parametrize("text,message", [
    ('name = "x"\n\ncolour = 1\n', f"{FILE}:3: colour: {UNKNOWN_MSG}"),
    ('\n   \n\ncolour = 1\n', f"{FILE}:4: colour: {UNKNOWN_MSG}"),
    ('placement = "free"\n\nscript = "SECTIONS {}"\n', f"{FILE}:3: script: a free model takes no script"),
    (_SHADOW.replace("{k}", "colour"), f"{FILE}:6: colour: {UNKNOWN_MSG}"),
    (_SHADOW.replace("{k}", "_end"), f"{FILE}:6: _end: {UNKNOWN_MSG}"),
    ('description = """\ncolour = 1\n"""\ncolour = 2\n', f"{FILE}:4: colour: {UNKNOWN_MSG}"),
    ('placement = "ordered"\nscript = """\nimage_base = 1;\nSECTIONS { }\n"""\nimage_base = -1\n',
     f"{FILE}:6: image_base: must not be negative"),
    ('name = "x"\n"colour red" = 1\n', f"{FILE}:2: colour red: {UNKNOWN_MSG}"),
    ('name = "x"\ncolour.red = 1\n', f"{FILE}:2: colour: {UNKNOWN_MSG}"),
    ('name = "x"\n[colour]\nred = 1\n', f"{FILE}:2: colour: {UNKNOWN_MSG}"),
], ids=["blank-line", "blank-lines", "blank-line-bad-value", "script-assignment", "script-symbol", "description", "bad-value", "quoted", "dotted", "table"])
def test_line_of_key_with_blank_lines_strings_quoted_dotted_and_tables(text, message):
    with pytest.raises(ModelError) as e:
        parse_model(text, FILE)
    assert str(e.value) == message


@pytest.mark.parametrize("text,key", [
    ("image_base = true\n", "image_base"), ("image_max = false\n", "image_max"), ("image_max = 0\n", "image_max"),
], ids=["base-bool", "max-bool", "max-zero"])
def test_bools_and_zero_are_not_sizes(text, key):
    with pytest.raises(ModelError) as e:
        parse_model(text, FILE)
    assert _one_line(e.value).startswith(f"{FILE}:1: {key}: ")


@pytest.mark.parametrize("size,value", [("0x1b", 0x1b), ("0xb", 0xb), ("0x10000000B", 1 << 32 | 0xb)])
def test_hex_sizes_keep_every_hex_digit(size, value):
    assert parse_model(f'image_max = "{size}"\n', FILE).image_max == value
