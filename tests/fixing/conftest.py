"""Shared set-up for the fix tests: a copy of a model file in a fresh working directory."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from qready.api import check
from qready.example_inputs import Example, fresh_like
from qready.inputs import load_model

MODELS = Path(__file__).parent / "models"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory: display paths (and diffs) name files relative to it."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def copy_model(workdir: Path) -> Callable[[str], Path]:
    def copy(name: str) -> Path:
        return Path(shutil.copy(MODELS / name, workdir / name))

    return copy


def build(spec: str, **kwargs: object) -> torch.nn.Module:
    """The model as the CLI builds it, from the file as it is on disk now."""
    torch.manual_seed(0)
    return load_model(spec, kwargs).eval()


def assert_same_model(original: torch.nn.Module, fixed: torch.nn.Module, example: Example) -> None:
    """The fixed model holds the same weights under the same keys and computes the same bits."""
    fixed.load_state_dict(original.state_dict(), strict=True)
    original.eval()
    fixed.eval()
    with torch.no_grad():
        for inputs in (example, fresh_like(example, seed=7)):
            want, got = inputs.call(original), inputs.call(fixed)
            assert torch.equal(want, got)
    report = check(fixed, example, select=["QR003", "QR004"])
    assert report.findings == ()
