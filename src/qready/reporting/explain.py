"""``qready explain``: a rule's documentation from the rule class itself."""

from __future__ import annotations

import textwrap

from qready.rules.base import Rule

__all__ = ["explain"]


def explain(rule: type[Rule]) -> str:
    lines = [f"{rule.code} {rule.name}: {rule.summary}", "", rule.documentation()]
    if rule.before:
        lines += ["", "Before:", textwrap.indent(rule.before, "    ")]
    if rule.after:
        lines += ["", "After:", textwrap.indent(rule.after, "    ")]
    return "\n".join(lines)
