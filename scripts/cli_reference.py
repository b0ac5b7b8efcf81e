"""Write docs/cli.md, the table of every command-line option, from qready's own argparse parser.

    python scripts/cli_reference.py          # rewrite docs/cli.md
    python scripts/cli_reference.py --check  # exit 1 if docs/cli.md is out of date

tests/test_docs.py runs the check, so the reference cannot drift from the parser.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from qready.cli import build_parser

__all__ = ["TARGET", "render"]

TARGET = Path(__file__).resolve().parent.parent / "docs" / "cli.md"


def render(parser: argparse.ArgumentParser | None = None) -> str:
    parser = parser or build_parser()
    lines = [
        "# Command-line reference",
        "",
        "Generated from the parser by `python scripts/cli_reference.py`; do not edit by hand.",
        "",
        "Exit codes: 0 clean, 1 findings (or a prepare that failed verification or left findings),",
        "2 usage, load, model or internal error, 130 interrupted (Ctrl-C), 141 stdout closed early (`| head`).",
        "",
        f"## `{parser.prog}`",
        "",
        *_table(parser),
    ]
    for name, sub in _subcommands(parser):
        lines += ["", f"## `{parser.prog} {name}`", "", sub.description or _help_of(parser, name), "", *_table(sub)]
    return "\n".join(lines) + "\n"


def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return list(action.choices.items())
    return []


def _help_of(parser: argparse.ArgumentParser, name: str) -> str:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                if choice.dest == name:
                    return (choice.help or "").capitalize().rstrip(".") + "."
    return ""


def _table(parser: argparse.ArgumentParser) -> list[str]:
    rows = ["| option | value | default | what it does |", "|---|---|---|---|"]
    for action in parser._actions:
        if action.help == argparse.SUPPRESS or isinstance(action, (argparse._SubParsersAction, argparse._HelpAction)):
            continue
        names = ", ".join(f"`{s}`" for s in action.option_strings) or f"`{action.metavar or action.dest}`"
        value = _value(action)
        default = "" if action.default in (None, False, [], argparse.SUPPRESS) or not action.option_strings else f"`{action.default}`"
        text = (action.help or "").replace("|", "\\|")
        if action.option_strings and action.required:
            text += " (required)"
        if isinstance(action, argparse._AppendAction | argparse._ExtendAction):
            text += " (repeatable)"
        rows.append(f"| {names} | {value} | {default} | {text} |")
    return rows


def _value(action: argparse.Action) -> str:
    if action.nargs == 0:
        return ""
    if action.choices:
        return " \\| ".join(f"`{c}`" for c in action.choices)
    if not action.option_strings:
        return ""
    return f"`{action.metavar or action.dest.upper()}`"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not TARGET.exists() or TARGET.read_text(encoding="utf-8") != text:
            sys.stderr.write(f"{TARGET} is out of date; run python scripts/cli_reference.py\n")
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
