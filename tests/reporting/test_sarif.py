"""SARIF output: valid against the SARIF 2.1.0 schema, one rule entry per rule, one result per finding."""

from __future__ import annotations

import io
import json
from pathlib import Path

import jsonschema
import pytest

from qready.cli import main
from qready.findings import Coverage, Finding, Report, Severity
from qready.reporting.explain import explain
from qready.reporting.sarif import sarif_log
from qready.rules import RULES

from .fixture import DATA, MISSING, SOURCE, fixture_report

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def validator() -> jsonschema.Validator:
    schema = json.loads((DATA / "sarif-schema-2.1.0.json").read_text(encoding="utf-8"))
    jsonschema.Draft4Validator.check_schema(schema)
    return jsonschema.Draft4Validator(schema, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)


def test_fixture_report_is_valid_sarif(validator: jsonschema.Validator) -> None:
    log = sarif_log(fixture_report())
    validator.validate(log)
    assert log["version"] == "2.1.0" and len(log["runs"]) == 1


def test_the_schema_rejects_what_it_should(validator: jsonschema.Validator) -> None:
    log = sarif_log(fixture_report())
    log["runs"][0]["results"][0]["level"] = "fatal"
    with pytest.raises(jsonschema.ValidationError, match="fatal"):
        validator.validate(log)


def test_one_rule_entry_per_rule_with_documentation() -> None:
    rules = sarif_log(fixture_report())["runs"][0]["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == [rule.code for rule in RULES]
    for entry, rule in zip(rules, RULES):
        assert entry["name"] == rule.name
        assert entry["shortDescription"]["text"] == rule.summary
        assert entry["fullDescription"]["text"].startswith(rule.documentation().splitlines()[0].replace("``", "`"))
        assert entry["help"]["text"] == explain(rule)
        assert "### Fix by hand" in entry["help"]["markdown"] and "```python" in entry["help"]["markdown"]


def test_results_carry_level_message_and_locations() -> None:
    report = fixture_report()
    results = sarif_log(report)["runs"][0]["results"]
    assert len(results) == len(report.findings)
    by_key = {(r["ruleId"], r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"]): r for r in results}

    add = by_key[("QR003", "blocks.0")]
    assert add["level"] == "error" and add["ruleIndex"] == 2
    assert add["message"]["text"].endswith("-> use qready.nn.Add()")
    assert add["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": SOURCE},
        "region": {"startLine": 16},
    }
    assert add["locations"][0]["logicalLocations"] == [
        {"name": "0", "fullyQualifiedName": "blocks.0", "kind": "module"}
    ]

    onnx = by_key[("QR001", "<root>")]
    assert "physicalLocation" not in onnx["locations"][0]  # no file known: the module is all there is

    warning = by_key[("QR002", "<root>")]
    assert warning["level"] == "warning"

    relu = next(r for r in results if r["properties"]["op"] == "torch.nn.functional.relu")
    assert relu["occurrenceCount"] == 2

    aux = by_key[("QR005", "aux")]
    assert aux["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "models/heads%2C%20v2/aux%3A%20head.py"
    assert MISSING.startswith("models/heads, v2")


def test_fingerprints_are_stable_and_distinct() -> None:
    first = [r["partialFingerprints"] for r in sarif_log(fixture_report())["runs"][0]["results"]]
    again = [r["partialFingerprints"] for r in sarif_log(fixture_report())["runs"][0]["results"]]
    assert first == again
    assert len({f["qreadyFinding/v1"] for f in first}) == len(first)


def test_cli_writes_valid_sarif_with_relative_paths(
    validator: jsonschema.Validator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)  # paths in findings are relative to the working directory
    out, err = io.StringIO(), io.StringIO()
    code = main(
        ["check", "examples/every_rule.py:EveryRule", "--input", "1x3x16x16", "--select", "QR003,QR004,QR005",
         "--format", "sarif"],
        stdout=out, stderr=err,
    )
    assert code == 1 and err.getvalue() == ""
    log = json.loads(out.getvalue())
    validator.validate(log)
    uris = {
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        for r in log["runs"][0]["results"]
    }
    assert uris == {"examples/every_rule.py"}
    assert log["runs"][0]["properties"]["rulesRun"] == ["QR003", "QR004", "QR005"]


def test_terminal_colour_codes_are_left_out_of_messages() -> None:
    finding = Finding("QR001", "onnx-export", Severity.ERROR, "failed. \x1b[96mstep 1/3\x1b[0m", fix="try torchscript")
    report = Report("Net", (finding,), Coverage(0, 0), ("QR001",))
    assert sarif_log(report)["runs"][0]["results"][0]["message"]["text"] == "failed. step 1/3 -> try torchscript"
