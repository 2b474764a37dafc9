"""Model files: the bundled ones, users' own, and clear errors for bad ones."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from testsupport.toolchain import FIXTURES
from reachsolve.cli import demo_object, main
from reachsolve.errors import ModelError
from reachsolve.model.files import bundled_names, load_model, parse_model


def test_bundled_models_load():
    assert {"free", "arm64-kernel", "arm64-module"} <= set(bundled_names())
    kernel = load_model("arm64-kernel")
    assert kernel.placement == "ordered" and kernel.script is not None and kernel.image_max == 128 << 20
    assert ".hyp.text" in kernel.no_veneers
    module = load_model("arm64-module")
    assert module.linker == "module" and module.image_max == 2 << 30
    assert load_model("free").placement == "free"


def test_user_model_with_script(tmp_path):
    f = tmp_path / "mine.toml"
    f.write_text('name = "mine"\nplacement = "as-linked"\nimage_max = "0x100000"\n'
                 'script = """\nSECTIONS { . = 0x1000; .text : { *(.text*) } }\n"""\n')
    m = load_model(str(f))
    assert (m.name, m.placement, m.image_max) == ("mine", "as-linked", 0x100000)


@pytest.mark.parametrize("text,where,what", [
    ('name = "x"\ncolour = "red"\n', ":2:", "colour: unknown key"),
    ('placement = "sideways"\n', ":1:", "placement"),
    ('image_max = "lots"\n', ":1:", "image_max"),
    ('veneers = "yes"\n', ":1:", "veneers: expected bool"),
    ('placement = "ordered"\n', ":1:", "needs a script"),
    ('placement = "free"\nscript = "SECTIONS {}"\n', ":2:", "a free model takes no script"),
    ('name = "x"\nplacement = "ordered"\nscript = """\nSECTIONS {\n  .text : { *(.text }\n}\n"""\n', ":5:", "script"),
    ('image_max = [1,\n', ":", "Invalid"),
    ('linker = "gold"\n', "", "unknown linker profile"),
])
def test_bad_model_names_key_and_line(text, where, what):
    with pytest.raises(ModelError) as e:
        parse_model(text, "bad.toml")
    msg = str(e.value)
    assert msg.startswith("bad.toml") and where in msg and what in msg, msg
    assert "\n" not in msg


def test_cli_bad_model_is_one_line_exit_2(tmp_path):
    f = tmp_path / "bad.toml"
    f.write_text('placement = "ordered"\nscript = """\nSECTIONS { .text : { *(.text) \n"""\n')
    for ref in (str(f), "no-such-model"):
        p = subprocess.run([sys.executable, "-m", "reachsolve", "check", "--model", ref, demo_object()],
                           capture_output=True, text=True)
        assert p.returncode == 2 and "Traceback" not in p.stderr
        assert len(p.stderr.strip().splitlines()) == 1, p.stderr


def test_cli_linker_script_and_placement(tmp_path):
    out = tmp_path / "r.json"
    lds = FIXTURES / "ordered" / "ordered.lds"
    main(["check", "--linker-script", str(lds), "--placement", "as-linked", "--format", "json", "-o", str(out),
          demo_object()])
    doc = json.loads(out.read_text())
    assert doc["model"]["placement"] == "as-linked" and doc["model"]["script"] == str(lds)
    # The demo's sections match none of that script's descriptions: they are orphans.
    assert any("orphan" in a for a in doc["files"][0]["assumptions"])
