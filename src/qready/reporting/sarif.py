"""The SARIF 2.1.0 format, for code-scanning services and editors that read it.

One run, one ``tool.driver.rules`` entry per qready rule (whether it ran or
not, so that ``ruleIndex`` is stable), one result per finding. Paths stay
relative to the working directory, as the findings carry them: code scanning
resolves them against the repository root.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import PurePath
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import quote

from qready.errors import strip_ansi
from qready.findings import Finding, Report, Severity
from qready.reporting.explain import SECTION_TITLES, explain, rule_sections

if TYPE_CHECKING:  # the rules import torch, which `qready --help` must not wait for
    from qready.rules.base import Rule

__all__ = ["emit_sarif", "sarif_log", "tool_version", "SARIF_SCHEMA_URI", "SARIF_VERSION"]

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
ROOT_MODULE = "<root>"


def sarif_log(report: Report) -> dict[str, Any]:
    """The report as a SARIF log object (plain JSON data)."""
    from qready.rules import RULES

    index = {rule.code: i for i, rule in enumerate(RULES)}
    return {
        "$schema": SARIF_SCHEMA_URI,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "qready",
                        "semanticVersion": tool_version(),
                        "rules": [_rule(rule) for rule in RULES],
                    }
                },
                "columnKind": "unicodeCodePoints",
                "results": [_result(finding, index.get(finding.code)) for finding in report.findings],
                "properties": {
                    "model": report.model,
                    "ok": report.ok,
                    "rulesRun": list(report.rules_run),
                    # None when not measured: no rule ran the instrumented forward
                    "coverage": None if report.coverage is None else report.coverage.to_dict(),
                },
            }
        ],
    }


def emit_sarif(report: Report, stream: TextIO, color: bool = False) -> None:
    stream.write(json.dumps(sarif_log(report), indent=2, ensure_ascii=False))
    stream.write("\n")


def _rule(rule: type[Rule]) -> dict[str, Any]:
    sections = rule_sections(rule)
    full = "\n\n".join(sections[key] for key in ("what", "why") if key in sections) or rule.summary
    return {
        "id": rule.code,
        "name": rule.name,
        "shortDescription": {"text": rule.summary},
        "fullDescription": {"text": full},
        "help": {"text": explain(rule), "markdown": _help_markdown(rule, sections)},
        "defaultConfiguration": {"level": "error"},
        "properties": {"tags": ["quantization"]},
    }


def _help_markdown(rule: type[Rule], sections: dict[str, str]) -> str:
    parts = [f"**{rule.code} {rule.name}**: {rule.summary}"]
    for key, text in sections.items():
        parts.append(f"### {SECTION_TITLES[key]}\n\n{text}")
    for title, code in (("Before", rule.before), ("After", rule.after)):
        if code:
            parts.append(f"### {title}\n\n```python\n{code}\n```")
    return "\n\n".join(parts)


def _result(finding: Finding, rule_index: int | None) -> dict[str, Any]:
    text = strip_ansi(f"{finding.message} -> {finding.fix}" if finding.fix else finding.message)
    location: dict[str, Any] = {}
    uri = _uri(finding.shown_file)
    if uri is not None:
        physical: dict[str, Any] = {"artifactLocation": {"uri": uri}}
        if finding.line is not None and finding.line >= 1:
            physical["region"] = {"startLine": finding.line}
        location["physicalLocation"] = physical
    location["logicalLocations"] = [
        {
            "name": finding.module.rsplit(".", 1)[-1] if finding.module else ROOT_MODULE,
            "fullyQualifiedName": finding.module or ROOT_MODULE,
            "kind": "module",
        }
    ]
    result: dict[str, Any] = {"ruleId": finding.code}
    if rule_index is not None:
        result["ruleIndex"] = rule_index
    result.update(
        {
            "level": "error" if finding.severity is Severity.ERROR else "warning",
            "message": {"text": text},
            "locations": [location],
            # lets code scanning match a finding across runs even when its line moves
            "partialFingerprints": {"qreadyFinding/v1": _fingerprint(finding)},
        }
    )
    if finding.count > 1:
        result["occurrenceCount"] = finding.count
    result["properties"] = {"rule": finding.rule, "module": finding.module, "op": finding.op, "fix": finding.fix}
    return result


def _uri(file: str | None) -> str | None:
    """A URI reference for a finding's file; None for pseudo-files such as ``<string>``."""
    if not file or file.startswith("<"):
        return None
    path = PurePath(file)
    if path.is_absolute():
        return path.as_uri()
    return quote(path.as_posix(), safe="/")


def _fingerprint(finding: Finding) -> str:
    key = "\0".join((finding.code, finding.module, finding.op, finding.file or ""))
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def tool_version() -> str:
    """The installed qready's version."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("qready")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"
