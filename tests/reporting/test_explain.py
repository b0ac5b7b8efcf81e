"""``qready explain``: what, why, fix by hand, how prepare fixes it, before and after, for every rule."""

from __future__ import annotations

import io

import pytest

from qready.cli import main
from qready.reporting.explain import explain, rule_sections
from qready.rules import RULES
from qready.rules.base import Rule

HEADINGS = ["What:", "Why it matters for quantization:", "Fix by hand:", "How qready prepare fixes it:", "Before:", "After:"]


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.code)
def test_explain_has_every_section_in_order(rule: type[Rule]) -> None:
    text = explain(rule)
    lines = text.splitlines()
    assert lines[0] == f"{rule.code} {rule.name}: {rule.summary}"
    positions = [lines.index(heading) for heading in HEADINGS]
    assert positions == sorted(positions)
    body = "\n".join(lines)
    assert rule.before.splitlines()[0] in body and rule.after.splitlines()[-1] in body
    assert "``" not in text  # docstring markup is turned into plain backticks
    prose = lines[1 : positions[HEADINGS.index("Before:")]]
    assert max(len(line) for line in prose) <= 80  # wrapped for a terminal; code keeps its own lines


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.code)
def test_sections_come_from_the_docstring(rule: type[Rule]) -> None:
    sections = rule_sections(rule)
    assert list(sections) == ["what", "why", "fix", "prepare"]
    assert not sections["fix"].startswith("Fix by hand") and not sections["prepare"].startswith("Prepare:")
    assert sections["fix"][0].isupper() or sections["fix"][0] == "`"


def test_cli_explain_and_rules() -> None:
    out = io.StringIO()
    assert main(["explain", "reused-module"], stdout=out, stderr=io.StringIO()) == 0
    assert out.getvalue() == explain(RULES[3]) + "\n"
    out = io.StringIO()
    assert main(["rules"], stdout=out, stderr=io.StringIO()) == 0
    assert [line.split()[:2] for line in out.getvalue().splitlines()] == [[r.code, r.name] for r in RULES]
