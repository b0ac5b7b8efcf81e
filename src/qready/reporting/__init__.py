"""Emitters: one per output format, each over the same report."""

from __future__ import annotations

from collections.abc import Callable
from typing import TextIO

from qready.findings import Report
from qready.reporting.github import emit_github
from qready.reporting.html import emit_html
from qready.reporting.json_format import emit_json
from qready.reporting.sarif import emit_sarif
from qready.reporting.text_format import emit_text

__all__ = ["EMITTERS", "emit"]

Emitter = Callable[[Report, TextIO, bool], None]

EMITTERS: dict[str, Emitter] = {
    "text": emit_text,
    "json": emit_json,
    "sarif": emit_sarif,
    "github": emit_github,
    "html": emit_html,
}


def emit(report: Report, fmt: str, stream: TextIO, *, color: bool = False) -> None:
    EMITTERS[fmt](report, stream, color)
