"""The text format: one line a finding, grouped by rule, then a summary line."""

from __future__ import annotations

from typing import TextIO

from qready.findings import Finding, Report, Severity

__all__ = ["emit_text", "format_finding", "summary_line"]

_RED, _YELLOW, _DIM, _BOLD, _RESET = "\033[31m", "\033[33m", "\033[2m", "\033[1m", "\033[0m"


def format_finding(finding: Finding, color: bool = False) -> str:
    module = finding.module or "<root>"
    code = finding.code
    if color:
        shade = _RED if finding.severity is Severity.ERROR else _YELLOW
        code = f"{shade}{code}{_RESET}"
    subject = finding.op or ""
    fix = f" -> {finding.fix}" if finding.fix else ""
    count = f" (x{finding.count})" if finding.count > 1 else ""
    if finding.code == "QR003":
        return f"{finding.location}  {code}  {finding.rule}  {module}  {subject}{count}{fix}"
    message = " ".join(finding.message.split())  # one finding, one line
    return f"{finding.location}  {code}  {finding.rule}  {module}  {message}{fix}"


def summary_line(report: Report) -> str:
    counts = ", ".join(f"{code} {n}" for code, n in report.counts().items())
    errors = len(report.errors)
    warnings = len(report.findings) - errors
    verdict = "ok" if report.ok else f"{errors} error(s)"
    coverage = report.coverage or "coverage not measured (QR003-QR005 not selected)"
    skipped = f"; {', '.join(report.skipped)} skipped ({next(iter(report.skipped.values()))})" if report.skipped else ""
    return f"{report.model}: {verdict}, {warnings} warning(s) [{counts}]; {coverage}{skipped}"


def emit_text(report: Report, stream: TextIO, color: bool = False) -> None:
    for finding in report.findings:  # sorted by rule code, then location
        stream.write(format_finding(finding, color) + "\n")
    line = summary_line(report)
    stream.write((f"{_BOLD}{line}{_RESET}" if color else line) + "\n")
