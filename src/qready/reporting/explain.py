"""``qready explain``: a rule's documentation from the rule class itself.

The rule docstrings are written as a first line (what), paragraphs on why it
matters, then paragraphs that start with ``Fix by hand:`` and ``Prepare:``.
``rule_sections`` splits them along those markers so that the terminal, SARIF
and HTML outputs show the same headed sections.
"""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the rules import torch; rendering their text does not need it
    from qready.rules.base import Rule

__all__ = ["explain", "rule_sections", "SECTION_TITLES"]

# marker in the docstring -> heading shown to the user
_MARKERS = {"Why:": "why", "Fix by hand:": "fix", "Prepare:": "prepare"}
SECTION_TITLES = {
    "what": "What",
    "why": "Why it matters for quantization",
    "fix": "Fix by hand",
    "prepare": "How qready prepare fixes it",
}
_WIDTH = 78


def rule_sections(rule: type[Rule]) -> dict[str, str]:
    """The rule's documentation as ``{"what", "why", "fix", "prepare"}`` paragraphs (missing ones left out).

    Each value is plain text, paragraphs separated by blank lines, with code
    marked by single backticks (valid Markdown, readable in a terminal).
    """
    paragraphs = [p.strip() for p in rule.documentation().split("\n\n") if p.strip()]
    sections: dict[str, list[str]] = {}
    current = "what"
    for index, paragraph in enumerate(paragraphs):
        for marker, key in _MARKERS.items():
            if paragraph.startswith(marker):
                current, paragraph = key, paragraph[len(marker):].strip()
                paragraph = paragraph[:1].upper() + paragraph[1:]
                break
        else:
            if index == 1 and current == "what":
                current = "why"  # the docstrings put one line of "what", then the "why" unheaded
        sections.setdefault(current, []).append(" ".join(paragraph.replace("``", "`").split()))
    return {key: "\n\n".join(parts) for key, parts in sections.items() if any(parts)}


def explain(rule: type[Rule]) -> str:
    """What the rule checks, why, how to fix it by hand and with ``prepare``, and an example."""
    lines = [f"{rule.code} {rule.name}: {rule.summary}"]
    for key, text in rule_sections(rule).items():
        lines += ["", f"{SECTION_TITLES[key]}:"]
        for number, paragraph in enumerate(text.split("\n\n")):
            if number:
                lines.append("")
            lines.append(textwrap.fill(paragraph, _WIDTH, initial_indent="  ", subsequent_indent="  "))
    if rule.before:
        lines += ["", "Before:", textwrap.indent(rule.before, "    ")]
    if rule.after:
        lines += ["", "After:", textwrap.indent(rule.after, "    ")]
    return "\n".join(lines)
