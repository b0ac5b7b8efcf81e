"""The ``fix`` subcommand and ``check --fix/--diff``: argv options -> ``fix`` -> lines and an exit code."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, TextIO

__all__ = ["add_fix_options", "add_fix_parser", "run_fix", "wants_fix"]

EXIT_OK, EXIT_FINDINGS = 0, 1


def add_fix_options(parser: argparse.ArgumentParser, *, with_fix: bool = True) -> None:
    if with_fix:
        parser.add_argument("--fix", action="store_true", help="rewrite the model's own source files (see qready fix)")
    parser.add_argument("--diff", action="store_true", help="print the fix as a unified diff; write nothing")
    parser.add_argument(
        "--ops-module", metavar="PATH",
        help="write the small op modules (Add, Cat, ...) to this file next to the model instead of importing qready.nn",
    )


def add_fix_parser(commands: Any, add_model_arguments: Callable[[argparse.ArgumentParser], None]) -> None:
    fix = commands.add_parser("fix", help="rewrite the model's own source so it follows QR003/QR004, verified")
    add_model_arguments(fix)
    add_fix_options(fix, with_fix=False)
    fix.add_argument("--select", type=_codes, action="extend", help="comma-separated rule codes or names to fix (QR003,QR004,QR005)")
    fix.add_argument("--ignore", type=_codes, action="extend", help="comma-separated rule codes or names to leave alone")
    fix.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)


def wants_fix(options: argparse.Namespace) -> bool:
    return options.command == "fix" or (options.command == "check" and (options.fix or options.diff))


def run_fix(options: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    from qready.fixing.apply import fix
    from qready.inputs import load_example, parse_kwargs

    kwargs = parse_kwargs(options.kwargs)
    example = load_example(options.input, options.inputs, seed=0)
    result = fix(
        options.spec, example, kwargs=kwargs, write=not options.diff, ops_module=options.ops_module,
        select=options.select, ignore=options.ignore,
    )
    stdout.writelines(item.line() + "\n" for item in result.not_fixed)
    if result.failure is not None:
        stderr.write(f"qready: fix not written: {result.failure}\n")
        return EXIT_FINDINGS
    errors_left = any(n.finding.severity.value == "error" for n in result.not_fixed)
    if options.diff:  # 1 when there is a fix to apply or an error no fix removes: a CI step fails on either
        stdout.write(result.diff)
        return EXIT_FINDINGS if result.changed or errors_left else EXIT_OK
    if result.written:
        stdout.write(f"fixed {len(result.fixed)} finding(s) in {', '.join(result.written)}\n")
    elif not result.not_fixed:
        stdout.write("nothing to fix\n")
    return EXIT_FINDINGS if errors_left else EXIT_OK


def _codes(text: str) -> list[str]:
    return [part for part in (p.strip() for p in text.split(",")) if part]
