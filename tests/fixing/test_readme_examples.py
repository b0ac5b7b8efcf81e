"""The README shows what `qready fix --diff` really prints for the guidelines' own examples."""

from __future__ import annotations

import io
import shlex
from pathlib import Path

import pytest

from qready.cli import main

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = [
    "qready fix examples/guidelines/relu_in_forward.py:Net --input 1x3x8x8 --diff",
    "qready fix examples/guidelines/relu_used_twice.py:Net --input 1x3x8x8 --input 1x3x8x8 --diff",
    "qready fix examples/guidelines/dict_inputs.py:Net --inputs examples/guidelines/dict_inputs.py:example_inputs --diff",
]


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_shows_the_real_output(command: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    before = {p: p.read_bytes() for p in (ROOT / "examples" / "guidelines").iterdir()}
    stdout, stderr = io.StringIO(), io.StringIO()
    code = main(shlex.split(command)[1:], stdout=stdout, stderr=stderr)
    assert stderr.getvalue() == ""
    assert code == 1  # --diff: 1 when there is something to fix, or an error no fix removes (dict_inputs)
    assert f"$ {command}\n{stdout.getvalue()}```" in (ROOT / "README.md").read_text()
    assert {p: p.read_bytes() for p in before} == before  # --diff writes nothing
