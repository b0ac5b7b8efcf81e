"""The suite's own output stays quiet unless something fails, and a failure shows only itself."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

NOISY = '''
import torch
import qready


def test_traces_and_exports_then_fails():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU())
    torch.jit.trace(model, (torch.randn(1, 2),))  # deprecated: a FutureWarning
    torch.nn.functional.upsample(torch.randn(1, 1, 2, 2), scale_factor=2)
    qready.check(model, (torch.randn(1, 2),), select=["QR001"])  # torch's structured trace logs here
    assert False, "the one line that should show"
'''


def test_a_failing_test_shows_its_failure_without_warnings_or_debug_records(tmp_path: Path) -> None:
    (tmp_path / "test_noisy.py").write_text(NOISY)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", str(ROOT / "pyproject.toml"),
         "--rootdir", str(tmp_path), str(tmp_path / "test_noisy.py")],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert done.returncode == 1
    assert "the one line that should show" in done.stdout
    assert "DEBUG" not in done.stdout and "warnings summary" not in done.stdout, done.stdout
