"""The GitHub Actions format: one workflow command a finding, shown as annotations.

``::error file=examples/net.py,line=36,title=QR003 functional-op::message -> fix``,
``::warning ...`` for warnings, then the summary line as ``::notice::``. Values
are escaped as the Actions runner expects: ``%``, CR and LF everywhere, and
also ``:`` and ``,`` inside properties.
"""

from __future__ import annotations

from typing import TextIO

from qready.errors import strip_ansi
from qready.findings import Finding, Report, Severity
from qready.reporting.text_format import summary_line

__all__ = ["emit_github", "workflow_command", "escape_data", "escape_property"]



def escape_data(text: str) -> str:
    """Escape the message part of a workflow command."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Escape a ``key=value`` property of a workflow command."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def workflow_command(finding: Finding) -> str:
    """One ``::error``/``::warning`` line for a finding."""
    command = "error" if finding.severity is Severity.ERROR else "warning"
    properties = []
    if finding.file and not finding.file.startswith("<"):
        properties.append(f"file={escape_property(finding.shown_file or finding.file)}")
        if finding.line is not None:
            properties.append(f"line={finding.line}")
    properties.append(f"title={escape_property(f'{finding.code} {finding.rule}')}")
    where = f" in '{finding.module}'" if finding.module else ""
    fix = f" -> {finding.fix}" if finding.fix else ""
    # without a file GitHub shows the annotation on the run only, so the module path goes in the text
    message = finding.message + (fix if finding.file else where + fix)
    return f"::{command} {','.join(properties)}::{escape_data(strip_ansi(message))}"


def emit_github(report: Report, stream: TextIO, color: bool = False) -> None:
    for finding in report.findings:
        stream.write(workflow_command(finding) + "\n")
    stream.write(f"::notice::{escape_data(summary_line(report))}\n")
