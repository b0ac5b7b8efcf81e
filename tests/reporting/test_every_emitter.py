"""Every registered emitter on every shared fixture: none may crash on an awkward report, and each
says what the report says (its findings, its rules, whether coverage was measured)."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import jsonschema
import pytest

from qready.cli import main
from qready.findings import Report
from qready.reporting import EMITTERS, emit
from qready.rules import RULES

from .fixture import DATA, REPORTS

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sarif_validator() -> jsonschema.Validator:
    schema = json.loads((DATA / "sarif-schema-2.1.0.json").read_text(encoding="utf-8"))
    return jsonschema.Draft4Validator(schema)


def _emitted(report: Report, fmt: str) -> str:
    stream = io.StringIO()
    emit(report, fmt, stream)
    return stream.getvalue()


@pytest.mark.parametrize("fixture", sorted(REPORTS))
@pytest.mark.parametrize("fmt", sorted(EMITTERS))
def test_every_emitter_renders_every_fixture(fmt: str, fixture: str) -> None:
    report = REPORTS[fixture]()
    text = _emitted(report, fmt)
    assert text.strip()
    for finding in report.findings:
        assert finding.code in text
    if fmt not in ("json", "sarif"):  # the line formats and html name the model and the verdict
        assert report.model in text


@pytest.mark.parametrize("fixture", sorted(REPORTS))
def test_json_is_the_report_on_every_fixture(fixture: str) -> None:
    report = REPORTS[fixture]()
    data = json.loads(_emitted(report, "json"))
    assert data == json.loads(json.dumps(report.to_dict()))
    assert data["summary"]["coverage"] is None if report.coverage is None else data["summary"]["coverage"]["total"] == report.coverage.total


@pytest.mark.parametrize("fixture", sorted(REPORTS))
def test_sarif_is_valid_on_every_fixture(fixture: str, sarif_validator: jsonschema.Validator) -> None:
    report = REPORTS[fixture]()
    log = json.loads(_emitted(report, "sarif"))
    sarif_validator.validate(log)
    run = log["runs"][0]
    assert [r["ruleId"] for r in run["results"]] == [f.code for f in report.findings]
    assert run["properties"]["rulesRun"] == list(report.rules_run)
    coverage = run["properties"]["coverage"]
    if report.coverage is None:
        assert coverage is None
    else:
        assert (coverage["covered"], coverage["total"]) == (report.coverage.covered, report.coverage.total)
    for result, finding in zip(run["results"], report.findings):
        has_location = bool(finding.file) and not finding.file.startswith("<")
        assert ("physicalLocation" in result["locations"][0]) == has_location


@pytest.mark.parametrize("fixture", sorted(REPORTS))
def test_text_and_github_say_when_coverage_was_not_measured(fixture: str) -> None:
    report = REPORTS[fixture]()
    for fmt in ("text", "github"):
        text = _emitted(report, fmt)
        assert ("coverage not measured" in text) == (report.coverage is None)


@pytest.mark.parametrize("fixture", sorted(REPORTS))
def test_html_shows_coverage_only_when_it_was_measured(fixture: str) -> None:
    report = REPORTS[fixture]()
    page = _emitted(report, "html")
    figure = re.search(r'<div class="coverage-figure">(.*?)</div>', page).group(1)
    if report.coverage is None:
        assert figure == "&ndash;" and "not measured" in page
    elif report.coverage.total:
        assert figure == f"{100 * report.coverage.ratio:.1f}%"
    else:
        assert figure == "&ndash;"
    for code in report.rules_run:
        assert code in page


def test_the_fixtures_cover_the_awkward_cases() -> None:
    reports = [make() for make in REPORTS.values()]
    assert any(r.coverage is None for r in reports)
    assert any(not r.findings for r in reports)
    assert any(set(r.rules_run) < {rule.code for rule in RULES} for r in reports)
    assert any(f.file is None for r in reports for f in r.findings)


@pytest.mark.parametrize("fmt", sorted(EMITTERS))
def test_cli_emits_every_format_when_coverage_was_not_measured(
    fmt: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    out, err = io.StringIO(), io.StringIO()
    argv = ["check", "tests/models/seed.py:FunctionalRelu", "--input", "1x3x16x16", "--select", "QR002", "--format", fmt]
    if fmt == "html":
        argv += ["-o", str(tmp_path / "report.html")]
    code = main(argv, stdout=out, stderr=err)
    assert code in (0, 1), err.getvalue()
    assert "internal error" not in err.getvalue()
    written = (tmp_path / "report.html").read_text(encoding="utf-8") if fmt == "html" else out.getvalue()
    assert "FunctionalRelu" in written or fmt in ("json", "sarif")
    if fmt in ("json", "sarif"):
        data = json.loads(written)
        coverage = data["summary"]["coverage"] if fmt == "json" else data["runs"][0]["properties"]["coverage"]
        assert coverage is None
