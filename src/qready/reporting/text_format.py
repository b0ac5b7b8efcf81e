"""The text format: one line a source location, sorted by file and line, then a summary line.

Findings of one rule at one source line in several modules (a block repeated twelve times
in a model) are one line, ``(x12 modules)``, unless ``show_all`` asks for one line each.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import TextIO

from qready.findings import Finding, Report, Severity

__all__ = ["emit_statistics", "emit_text", "format_finding", "group_by_location", "summary_line"]

_RED, _YELLOW, _BOLD, _RESET = "\033[31m", "\033[33m", "\033[1m", "\033[0m"


def format_finding(finding: Finding, color: bool = False, modules: int = 1) -> str:
    """One line: where, severity, code, rule, module (and how many modules share the line), what, fix."""
    module = finding.module or "<root>"
    if modules > 1:
        module = f"{module} (x{modules} modules)"
    severity = f"{finding.severity.value:<7}"
    code = finding.code
    if color:
        shade = _RED if finding.severity is Severity.ERROR else _YELLOW
        severity, code = f"{shade}{severity}{_RESET}", f"{shade}{code}{_RESET}"
    fix = f" -> {finding.fix}" if finding.fix else ""
    if finding.code == "QR003":
        count = f" (x{finding.count})" if finding.count > 1 and modules == 1 else ""
        what = f"{finding.op or ''}{count}"
    else:
        what = " ".join(finding.message.split())  # one finding, one line
    return f"{finding.location}  {severity}  {code}  {finding.rule}  {module}  {what}{fix}"


def _by_location(finding: Finding) -> tuple[bool, str, int, str, str]:
    return (finding.file is None, finding.file or "", finding.line or 0, finding.code, finding.module)


def group_by_location(findings: Iterable[Finding]) -> list[list[Finding]]:
    """Findings sorted by file and line; those of one rule, op and fix at one known source line
    form one group (the same line of code running in several modules)."""
    groups: dict[tuple[object, ...], list[Finding]] = {}
    for finding in sorted(findings, key=_by_location):
        if finding.file is None:  # no line to share: each stands alone
            key: tuple[object, ...] = (id(finding),)
        else:
            key = (finding.file, finding.line, finding.code, finding.severity, finding.op, finding.fix)
        groups.setdefault(key, []).append(finding)
    return list(groups.values())


def summary_line(report: Report) -> str:
    counts = ", ".join(f"{code} {n}" for code, n in report.counts().items())
    errors = len(report.errors)
    warnings = len(report.findings) - errors
    verdict = "ok" if report.ok else f"{errors} error(s)"
    coverage = report.coverage or "coverage not measured (QR003-QR005 not selected)"
    skipped = f"; {', '.join(report.skipped)} skipped ({next(iter(report.skipped.values()))})" if report.skipped else ""
    ran_on = f"; {', '.join(report.ran_on)} ran on {next(iter(report.ran_on.values()))}" if report.ran_on else ""
    return f"{report.model}: {verdict}, {warnings} warning(s) [{counts}]; {coverage}{skipped}{ran_on}"


def emit_text(report: Report, stream: TextIO, color: bool = False, *, show_all: bool = False, summary: bool = True) -> None:
    groups = [[f] for f in sorted(report.findings, key=_by_location)] if show_all else group_by_location(report.findings)
    for group in groups:
        stream.write(format_finding(group[0], color, modules=len(group)) + "\n")
    if not summary:
        return
    line = summary_line(report)
    if len(groups) < len(report.findings):
        line += f"; {len(report.findings)} findings at {len(groups)} source lines (--show-all lists each)"
    stream.write((f"{_BOLD}{line}{_RESET}" if color else line) + "\n")


def emit_statistics(report: Report, stream: TextIO, color: bool = False, *, summary: bool = True) -> None:
    """How many findings each rule has, most first, and at how many source lines."""
    counts = Counter(f.code for f in report.findings)
    lines = Counter(group[0].code for group in group_by_location(report.findings))
    for code, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        rule = next(f.rule for f in report.findings if f.code == code)
        shown = f"{_BOLD}{code}{_RESET}" if color else code
        stream.write(f"{count:>5}  {shown}  {rule:<15} at {lines[code]} source line(s)\n")
    if summary:
        line = summary_line(report)
        stream.write((f"{_BOLD}{line}{_RESET}" if color else line) + "\n")
