"""Progress goes to stderr, only on a terminal and only with the text format."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from qready.cli import main

EXAMPLE = str(Path(__file__).resolve().parents[2] / "examples" / "every_rule.py") + ":EveryRule"
ARGV = ["check", EXAMPLE, "--input", "1x3x16x16", "--select", "QR003,QR004,QR005"]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_nothing_on_stderr_when_it_is_not_a_terminal(fmt: str) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert main([*ARGV, "--format", fmt], stdout=out, stderr=err) == 1
    assert err.getvalue() == "" and out.getvalue()


def test_nothing_on_a_terminal_for_machine_formats() -> None:
    err = Terminal()
    assert main([*ARGV, "--format", "sarif"], stdout=io.StringIO(), stderr=err) == 1
    assert err.getvalue() == ""


def test_a_line_per_rule_on_a_terminal() -> None:
    out, err = io.StringIO(), Terminal()
    assert main([*ARGV], stdout=out, stderr=err) == 1
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", err.getvalue())
    lines = [line.split() for line in text.splitlines() if re.match(r"^ +(pass|warn|fail) QR", line)]
    assert [(words[0], words[1], words[2]) for words in lines] == [
        ("fail", "QR003", "functional-op"),
        ("fail", "QR004", "reused-module"),
        ("fail", "QR005", "non-tensor-io"),
    ]
    assert "checking EveryRule: QR005 non-tensor-io" in text  # the spinner names the step running
    summary, fixable = out.getvalue().splitlines()[-2:]
    assert "checking" not in out.getvalue() and summary.startswith("EveryRule: ") and fixable.startswith("[*] ")
