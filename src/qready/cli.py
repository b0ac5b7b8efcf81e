"""``qready``: argv -> options -> API -> emitter -> exit code.

Exit codes: 0 clean, 1 findings (or a failed verification), 2 usage, load,
model or internal error.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence
from typing import TextIO

from qready.errors import QreadyError

__all__ = ["main", "build_parser"]

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise QreadyError(f"{message} (see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="qready", description="Check and prepare PyTorch models for quantization toolkits.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    check = commands.add_parser("check", help="report where a model breaks the five model guidelines")
    _add_model_arguments(check)
    check.add_argument("--format", choices=("text", "json"), default="text")
    check.add_argument("--select", type=_codes, help="comma-separated rule codes or names to run")
    check.add_argument("--ignore", type=_codes, help="comma-separated rule codes or names to skip")
    check.add_argument("--onnx-exporter", choices=("dynamo", "torchscript"), default=None)
    check.add_argument("--exit-zero", action="store_true", help="exit 0 even when there are findings")
    check.add_argument("-o", "--output", help="write the report to this file instead of stdout")
    check.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)

    prepare = commands.add_parser("prepare", help="rewrite a model so it follows the guidelines, verified")
    _add_model_arguments(prepare)
    prepare.add_argument("-o", "--output", required=True, metavar="OUT_DIR", help="directory to write (must not exist)")
    prepare.add_argument("--exclude", action="append", default=[], metavar="MODULE_PATH", help="keep this submodule whole")
    prepare.add_argument("--format", choices=("text", "json"), default="text")
    prepare.add_argument("--no-tie-weights", action="store_true", help="give unrolled copies their own weights")
    prepare.add_argument("--no-verify", action="store_true", help="skip the bit-for-bit comparison and re-check")
    prepare.add_argument("--force", action="store_true", help="write OUT_DIR even if it exists or verification failed")
    prepare.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)

    rules = commands.add_parser("rules", help="list the rules")
    rules.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    explain = commands.add_parser("explain", help="print a rule's documentation")
    explain.add_argument("rule", help="rule code or name, e.g. QR003 or functional-op")
    explain.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    return parser


def _add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", metavar="SPEC", help="package.module:callable or path/to/file.py:Name")
    parser.add_argument("--input", action="append", metavar="[DTYPE:]SHAPE", help="e.g. 1x3x224x224 or int64:1x16")
    parser.add_argument("--inputs", metavar="MODULE:FUNCTION", help="function returning the example inputs")
    parser.add_argument("--kwargs", help="JSON keyword arguments for the model class or factory")


def _codes(text: str) -> list[str]:
    return [part for part in (p.strip() for p in text.split(",")) if part]


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    args_list = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args_list
    try:
        options = build_parser().parse_args(args_list)
        return _run(options, stdout, stderr)
    except SystemExit as exit_:  # --help
        return int(exit_.code or 0)
    except QreadyError as error:
        if debug:
            traceback.print_exc(file=stderr)
        stderr.write(f"qready: error: {error}\n")
        return EXIT_ERROR
    except KeyboardInterrupt:
        stderr.write("qready: interrupted\n")
        return EXIT_ERROR
    except Exception as error:  # a bug in qready or torch: one line, traceback on demand
        if debug:
            traceback.print_exc(file=stderr)
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        stderr.write(f"qready: internal error: {type(error).__name__}: {first} (rerun with --debug for the traceback)\n")
        return EXIT_ERROR


def _run(options: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    if options.command == "rules":
        from qready.rules import RULES

        for rule in RULES:
            stdout.write(f"{rule.code}  {rule.name:<16} {rule.summary}\n")
        return EXIT_OK
    if options.command == "explain":
        from qready.rules import get_rule
        from qready.reporting.explain import explain

        stdout.write(explain(get_rule(options.rule)) + "\n")
        return EXIT_OK
    if options.command == "check":
        return _check(options, stdout, stderr)
    if options.command == "prepare":
        return _prepare(options, stdout, stderr)
    raise QreadyError(f"unknown command {options.command!r}")


def _load(options: argparse.Namespace):  # type: ignore[no-untyped-def]
    import torch

    from qready.inputs import load_example, load_model, parse_kwargs

    kwargs = parse_kwargs(options.kwargs)
    if not options.input and not options.inputs:
        load_example(None, None)  # says what to pass, before a slow model build
    torch.manual_seed(0)  # the same weights on every run: reports and saved models are reproducible
    model = load_model(options.spec, kwargs)
    return model, load_example(options.input, options.inputs, seed=0)


def _check(options: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    from qready.api import check
    from qready.reporting import emit

    model, example = _load(options)
    report = check(model, example, select=options.select, ignore=options.ignore, onnx_exporter=options.onnx_exporter)
    _write(options.output, lambda stream, color: emit(report, options.format, stream, color=color), stdout)
    if options.exit_zero or report.ok:
        return EXIT_OK
    return EXIT_FINDINGS


def _prepare(options: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    from pathlib import Path

    from qready.api import prepare
    from qready.errors import SaveError, VerificationError
    from qready.reporting.prepare_text import emit_prepare_json, emit_prepare_text
    from qready.serialize import save

    if Path(options.output).exists() and not options.force:
        raise SaveError(f"{options.output!r} already exists; choose a new directory or pass --force")
    model, example = _load(options)
    failure: VerificationError | None = None
    try:
        prepared = prepare(
            model, example, exclude=options.exclude, tie_weights=not options.no_tie_weights, verify=not options.no_verify
        )
    except VerificationError as error:
        if error.prepared is None:
            raise
        failure, prepared = error, error.prepared
    result = prepared.prepare_result
    emit = emit_prepare_json if options.format == "json" else emit_prepare_text
    emit(result, stdout, stdout.isatty())
    if failure is not None and not options.force:
        stderr.write(f"qready: {failure}; nothing written (pass --force to write it anyway)\n")
        return EXIT_FINDINGS
    save(prepared, options.output, overwrite=options.force)
    if options.format == "text":
        stdout.write(f"wrote {options.output}\n")
    return EXIT_OK if result.ok else EXIT_FINDINGS


def _write(path: str | None, write, stdout: TextIO) -> None:  # type: ignore[no-untyped-def]
    if path is None:
        color = stdout.isatty() and hasattr(stdout, "fileno")
        write(stdout, color)
        return
    from qready.files import atomic_text

    with atomic_text(path) as stream:
        write(stream, False)


if __name__ == "__main__":
    raise SystemExit(main())
