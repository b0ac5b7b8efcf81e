"""The JSON report against its published schema (src/qready/reporting/report.schema.json)."""

from __future__ import annotations

import copy
import io
import json
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from qready.cli import main
from qready.findings import SCHEMA_VERSION

from .fixture import clean_report, fixture_report

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def validator() -> jsonschema.Validator:
    # read as an installed user would: from the package's data, not from the source tree
    schema = json.loads(resources.files("qready.reporting").joinpath("report.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_schema_version_matches_the_code(validator: jsonschema.Validator) -> None:
    assert validator.schema["properties"]["schema_version"]["const"] == SCHEMA_VERSION


def test_real_check_output_validates(validator: jsonschema.Validator) -> None:
    out = io.StringIO()
    code = main(
        # QR001 left out for speed: its finding has the same shape as QR002's, which stays in
        ["check", f"{ROOT / 'examples' / 'every_rule.py'}:EveryRule", "--input", "1x3x16x16", "--ignore", "QR001",
         "--format", "json", "--timings"],
        stdout=out, stderr=io.StringIO(),
    )
    assert code == 1
    data = json.loads(out.getvalue())
    validator.validate(data)
    assert {f["code"] for f in data["findings"]} == {"QR002", "QR003", "QR004", "QR005"}
    assert set(data["timings"]) >= {"observe", "QR002"}


@pytest.mark.parametrize("report", [fixture_report(), clean_report()], ids=["fixture", "clean"])
def test_fixture_reports_validate(validator: jsonschema.Validator, report) -> None:  # type: ignore[no-untyped-def]
    validator.validate(report.to_dict())


@pytest.mark.parametrize("path, value", [
    (("schema_version",), 2),
    (("findings", 0, "severity"), "fatal"),
    (("findings", 0, "code"), "X1"),
    (("findings", 0, "line"), "12"),
    (("summary", "coverage", "ratio"), 1.5),
    (("unexpected",), True),
])
def test_schema_rejects_malformed_reports(validator: jsonschema.Validator, path: tuple, value: object) -> None:
    data = copy.deepcopy(fixture_report().to_dict())
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(data)
