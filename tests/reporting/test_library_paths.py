"""Findings in installed libraries are named by the library's module path in every format, and
the text report marks what ``qready prepare`` removes."""

from __future__ import annotations

import io
import json

import pytest
import torch

import qready
from qready.reporting import emit
from qready.reporting.text_format import emit_text

from .fixture import LIBRARY, fixture_report

SHOWN = "torchvision/models/resnet.py"


@pytest.mark.parametrize("fmt", ["text", "json", "sarif", "github"])
def test_library_code_is_named_by_its_module_path_in_every_format(fmt: str) -> None:
    stream = io.StringIO()
    emit(fixture_report(), fmt, stream)
    out = stream.getvalue()
    assert "site-packages" not in out and "/opt/venv" not in out
    if fmt == "text":
        assert f"{SHOWN}:102  error    QR003 [*]  functional-op  blocks.1" in out
    elif fmt == "json":
        [library] = [f for f in json.loads(out)["findings"] if f["file"] == SHOWN]
        assert library["file"] == SHOWN and library["line"] == 102
    elif fmt == "sarif":
        uris = [loc["physicalLocation"]["artifactLocation"]["uri"] for r in json.loads(out)["runs"][0]["results"]
                for loc in r["locations"] if "physicalLocation" in loc]
        assert SHOWN in uris
    else:
        assert f"file={SHOWN},line=102" in out
    finding = next(f for f in fixture_report().findings if f.file == LIBRARY)
    assert finding.location == f"{SHOWN}:102"


def test_text_marks_what_prepare_fixes() -> None:
    stream = io.StringIO()
    emit_text(fixture_report(), stream)
    lines = stream.getvalue().splitlines()
    for code, fixable in (("QR001", False), ("QR002", False), ("QR003", True), ("QR004", True), ("QR005", True)):
        found = [line for line in lines if f"  {code}" in line and "functional-op" in line or f"  {code} " in line]
        assert found and all(("[*]" in line) is fixable for line in found), (code, found)
    fixable = sum(1 for f in fixture_report().findings if f.code in ("QR003", "QR004", "QR005"))
    assert lines[-1] == f"[*] {fixable} fixable with `qready prepare` (a rewritten copy, verified; your source stays as it is)"


def test_a_real_torchvision_finding_names_torchvision() -> None:
    torchvision = pytest.importorskip("torchvision", reason="torchvision is not installed (the torch 2.13 CI leg)")
    model = torchvision.models.resnet18(num_classes=4).eval()
    report = qready.check(model, (torch.randn(1, 3, 32, 32),), select=["QR003"])
    files = {f.shown_file for f in report.findings}
    assert files == {"torchvision/models/resnet.py"}
    assert all(f.to_dict()["file"] == "torchvision/models/resnet.py" for f in report.findings)
    assert all(f.file and f.file.endswith("site-packages/torchvision/models/resnet.py") for f in report.findings)
