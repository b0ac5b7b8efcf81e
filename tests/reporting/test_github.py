"""GitHub Actions workflow commands: one per finding, escaped so that the runner reads back what we meant."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from qready.cli import main
from qready.findings import Finding, Severity
from qready.reporting.github import emit_github, escape_data, escape_property, workflow_command

from .fixture import MISSING, fixture_report

ROOT = Path(__file__).resolve().parents[2]
COMMAND = re.compile(r"^::(?P<name>error|warning|notice)(?: (?P<props>[^:]*))?::(?P<message>.*)$")


def _unescape(text: str, *, prop: bool) -> str:
    """What the Actions runner does to a value (the inverse of the escapes, in the runner's order)."""
    pairs = [("%0D", "\r"), ("%0A", "\n")] + ([("%3A", ":"), ("%2C", ",")] if prop else []) + [("%25", "%")]
    for escaped, raw in pairs:
        text = text.replace(escaped, raw)
    return text


def _parse(line: str) -> tuple[str, dict[str, str], str]:
    match = COMMAND.match(line)
    assert match, line
    props = {}
    for item in (match["props"] or "").split(","):
        if item:
            key, _, value = item.partition("=")
            props[key] = _unescape(value, prop=True)
    return match["name"], props, _unescape(match["message"], prop=False)


@pytest.mark.parametrize("raw, data, prop", [
    ("100%", "100%25", "100%25"),
    ("a\r\nb", "a%0D%0Ab", "a%0D%0Ab"),
    ("x: 1, y", "x: 1, y", "x%3A 1%2C y"),
    ("%0A literal", "%250A literal", "%250A literal"),
])
def test_escapes(raw: str, data: str, prop: str) -> None:
    assert escape_data(raw) == data
    assert escape_property(raw) == prop
    assert _unescape(data, prop=False) == raw and _unescape(prop, prop=True) == raw


def test_one_command_per_finding_then_a_notice_that_round_trips() -> None:
    report = fixture_report()
    stream = io.StringIO()
    emit_github(report, stream)
    lines = stream.getvalue().splitlines()
    assert len(lines) == len(report.findings) + 1  # messages with newlines stay on one line
    for line, finding in zip(lines, report.findings):
        name, props, message = _parse(line)
        assert name == finding.severity.value
        assert props["title"] == f"{finding.code} {finding.rule}"
        assert message.startswith(finding.message) and message.endswith(f"-> {finding.fix}")
        if finding.file:
            assert props["file"] == finding.shown_file and props["line"] == str(finding.line)
        else:
            assert "file" not in props and "line" not in props
    name, props, message = _parse(lines[-1])
    assert name == "notice" and props == {} and message.startswith("SampleNet: 7 error(s), 2 warning(s)")


def test_property_escaping_on_a_path_with_comma_and_colon() -> None:
    stream = io.StringIO()
    emit_github(fixture_report(), stream)
    line = next(x for x in stream.getvalue().splitlines() if "AuxHead" in x)
    assert line.startswith("::error file=models/heads%2C v2/aux%3A head.py,line=7,title=QR005 non-tensor-io::")
    assert _parse(line)[1]["file"] == MISSING


def test_cli_github_format(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    out, err = io.StringIO(), io.StringIO()
    code = main(
        ["check", "examples/every_rule.py:EveryRule", "--input", "1x3x16x16", "--select", "QR003,QR004",
         "--format", "github"],
        stdout=out, stderr=err,
    )
    lines = out.getvalue().splitlines()
    assert code == 1 and err.getvalue() == ""
    assert "::error file=examples/every_rule.py,line=35,title=QR004 reused-module::module 'relu' (ReLU) runs 2 times" in out.getvalue()
    assert all(line.startswith("::error ") for line in lines[:-1]) and lines[-1].startswith("::notice::EveryRule: ")


def test_terminal_colour_codes_do_not_reach_the_annotation() -> None:
    finding = Finding("QR001", "onnx-export", Severity.ERROR, "export failed. \x1b[96mThis is step 1/3\x1b[0m of exporting")
    assert workflow_command(finding) == "::error title=QR001 onnx-export::export failed. This is step 1/3 of exporting"
