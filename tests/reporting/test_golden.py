"""Every line-oriented emitter against one hand-built report, byte for byte.

Regenerate after an intended change with ``QREADY_UPDATE_GOLDEN=1`` and review
the diff of tests/reporting/golden/.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from qready.reporting import EMITTERS, emit
from qready.reporting.sarif import sarif_log

from .fixture import fixture_report

GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("QREADY_UPDATE_GOLDEN") == "1"
FILES = {"text": "report.txt", "json": "report.json", "sarif": "report.sarif", "github": "report.github.txt"}


def _emitted(fmt: str) -> str:
    stream = io.StringIO()
    emit(fixture_report(), fmt, stream)
    text = stream.getvalue()
    if fmt == "sarif":  # the tool's version changes with every release, the rest must not
        version = sarif_log(fixture_report())["runs"][0]["tool"]["driver"]["semanticVersion"]
        text = text.replace(f'"semanticVersion": "{version}"', '"semanticVersion": "<version>"', 1)
    return text


@pytest.mark.parametrize("fmt", sorted(FILES))
def test_emitter_output_matches_its_golden_file(fmt: str) -> None:
    path = GOLDEN / FILES[fmt]
    got = _emitted(fmt)
    if UPDATE:
        path.parent.mkdir(exist_ok=True)
        with open(path, "w", encoding="utf-8", newline="") as stream:
            stream.write(got)
    assert path.exists(), f"{path.name} is missing; create it with QREADY_UPDATE_GOLDEN=1"
    with open(path, encoding="utf-8", newline="") as stream:
        want = stream.read()
    assert got == want, f"{fmt} output changed; if intended, rerun with QREADY_UPDATE_GOLDEN=1 and review the diff"


def test_every_registered_emitter_except_html_has_a_golden_file() -> None:
    # html is checked for structure in test_html.py: byte snapshots of a styled page churn on every CSS tweak
    assert set(EMITTERS) - {"html"} == set(FILES)


def test_json_golden_has_no_timings_and_is_the_report() -> None:
    data = json.loads(_emitted("json"))
    assert data["timings"] == {}  # the fixture leaves them out: they differ on every run
    assert data == fixture_report().to_dict()
