"""The JSON format: ``Report.to_dict()`` as written, one document per run."""

from __future__ import annotations

from typing import TextIO

from qready.findings import Report

__all__ = ["emit_json"]


def emit_json(report: Report, stream: TextIO, color: bool = False) -> None:
    stream.write(report.to_json(indent=2))
    stream.write("\n")
