"""What a model says is a fact or an error, never a silent guess.

- image_base belongs to free placement: beside a script (which sets its own
  addresses) it is an error, not dropped;
- an object is called too big for the image only when its sections' sizes alone
  exceed it, or an exact placement query proves that they cannot all be placed;
  first-fit placement failing is no such fact (tests/test_completion.py)."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from reachsolve import ModelError, analyze, load_model
from reachsolve.cli import main
from reachsolve.model.files import parse_model

SCRIPT = "SECTIONS { . = 0x10000; .text : { *(.text*) } .data : { *(.data*) } }\n"


@pytest.fixture(scope="module")
def obj(tmp_path_factory):
    d = tmp_path_factory.mktemp("facts")
    (d / "a.S").write_text("\t.text\n\tcbz x0, far\n\t.section .text.far, \"ax\"\n\t.p2align 12\n"
                           "far:\t.fill 0x1001, 1, 0\n\t.section .text.b, \"ax\"\n\t.p2align 12\n\t.fill 0x1001, 1, 0\n")
    subprocess.run([shutil.which("clang"), "--target=aarch64-linux-gnu", "-c", str(d / "a.S"), "-o", str(d / "a.o")],
                   check=True)
    (d / "s.lds").write_text(SCRIPT)
    return d


def test_image_base_beside_a_script_is_an_error_in_a_model_file():
    text = f'placement = "ordered"\nimage_base = "0x40000000"\nscript = """\n{SCRIPT}"""\n'
    with pytest.raises(ModelError, match="m.toml: image_base applies to free placement"):
        parse_model(text, "m.toml")


def test_image_base_beside_a_script_is_an_error_on_the_command_line(obj, capsys):
    rc = main(["check", "--linker-script", str(obj / "s.lds"), "--image-base", "0x40000000", str(obj / "a.o")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "image_base applies to free placement" in err
    with pytest.raises(ModelError):
        load_model("free", linker_script=str(obj / "s.lds"), image_base=0x40000000)


def test_too_big_is_said_only_when_the_sizes_exceed_the_image(obj):
    r = analyze([str(obj / "a.o")], image_max=0x2000)        # 0x2006 bytes of sections
    (site,) = r.findings()
    assert site.verdict == "unknown" and "more than the 0x2000-byte image" in site.reason


def test_a_layout_that_no_query_finds_is_proved_not_guessed(obj):
    r = analyze([str(obj / "a.o")], image_max=0x3000)        # fits by size; 4 KiB alignment does not
    (site,) = r.findings()
    assert site.verdict == "unknown"
    assert "an exact placement query shows" in site.reason   # first fit failed; the solver proved it
    assert "first-fit" not in site.reason
