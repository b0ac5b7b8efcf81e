"""The documentation says what the code does: the CLI reference is the parser's, installs work."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_cli_reference_is_generated_from_the_parser() -> None:
    script = runpy.run_path(str(ROOT / "scripts" / "cli_reference.py"))
    text = script["render"]()
    assert (ROOT / "docs" / "cli.md").read_text(encoding="utf-8") == text, (
        "docs/cli.md is out of date; run python scripts/cli_reference.py"
    )
    # every option of every command is a row
    from qready.cli import build_parser

    parser = build_parser()
    for name in ("check", "prepare"):
        sub = next(a for a in parser._actions if a.dest == "command").choices[name]
        for action in sub._actions:
            if action.option_strings and action.help != "==SUPPRESS==" and action.dest != "help":
                assert f"`{action.option_strings[-1]}`" in text, action.option_strings


def test_no_document_installs_qready_from_an_index_it_is_not_on() -> None:
    for path in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]:
        for line in path.read_text(encoding="utf-8").splitlines():
            assert not re.search(r"pip install qready\b(?![\[@])", line), f"{path.name}: {line.strip()}"
