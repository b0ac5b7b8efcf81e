"""``qready``: argv -> options -> API -> emitter -> exit code.

Exit codes: 0 clean, 1 findings (or a failed verification), 2 usage, load,
model or internal error.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

from qready.errors import QreadyError

if TYPE_CHECKING:  # rich and the report are imported when a command needs them: `qready --help` stays fast
    from rich.console import Console
    from rich.status import Status

    import torch

    from qready.findings import Report

__all__ = ["main", "build_parser"]

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2
CHECK_FORMATS = ("text", "json", "sarif", "github", "html")  # the names in qready.reporting.EMITTERS


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise QreadyError(f"{message} (see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="qready", description="Check and prepare PyTorch models for quantization toolkits.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    check = commands.add_parser("check", help="report where a model breaks the five model guidelines")
    _add_model_arguments(check)
    check.add_argument("--format", choices=CHECK_FORMATS, default="text", help="html needs -o FILE")
    check.add_argument("--select", type=_codes, help="comma-separated rule codes or names to run")
    check.add_argument("--ignore", type=_codes, help="comma-separated rule codes or names to skip")
    check.add_argument("--onnx-exporter", choices=("dynamo", "torchscript"), default=None)
    check.add_argument(
        "--quantizer-coverage", action="store_true",
        help="also build the --target toolkit's sim and count the ops that run behind a quantizer (text format)",
    )
    check.add_argument("--exit-zero", action="store_true", help="exit 0 even when there are findings")
    check.add_argument("-o", "--output", help="write the report to this file instead of stdout")
    check.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)

    prepare = commands.add_parser("prepare", help="rewrite a model so it follows the guidelines, verified")
    _add_model_arguments(prepare)
    prepare.add_argument("-o", "--output", required=True, metavar="OUT_DIR", help="directory to write (must not exist)")
    prepare.add_argument("--exclude", action="append", default=[], metavar="MODULE_PATH", help="keep this submodule whole")
    prepare.add_argument("--format", choices=("text", "json"), default="text")
    prepare.add_argument("--html", metavar="FILE", help="also write an HTML report: the check of the original and what prepare did")
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
    parser.add_argument(
        "--target", default=None, metavar="TOOLKIT",
        help="the quantization toolkit: generic (default, the guidelines) or aimet (its quantized module classes)",
    )


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

    if options.format == "html" and not options.output:
        raise QreadyError("--format html writes one self-contained file; pass -o report.html")
    if options.quantizer_coverage and (options.target in (None, "generic") or options.format != "text"):
        raise QreadyError("--quantizer-coverage builds a toolkit's sim: pass --target aimet, with --format text")
    progress = options.format == "text" and stderr.isatty()
    model, example = _load(options)
    with _Progress(stderr, type(model).__name__, enabled=progress) as shown:
        report = check(
            model, example, select=options.select, ignore=options.ignore, onnx_exporter=options.onnx_exporter,
            progress=shown.update, target=options.target,
        )
        shown.done(report)
    if options.format == "html":
        from qready.reporting.html import render_html

        page = render_html(report, module_paths=_module_types(model))
        _write(options.output, lambda stream, color: stream.write(page), stdout)
    else:
        _write(options.output, lambda stream, color: emit(report, options.format, stream, color=color), stdout)
    covered = True
    if options.quantizer_coverage:
        from qready.targets.coverage import quantizer_coverage

        coverage = quantizer_coverage(model, example, target=options.target)
        stdout.write(coverage.summary() + "\n")
        for op in coverage.uncovered:
            where = f"{op.file}:{op.line}" if op.file else "<unknown>"
            stdout.write(f"{where}  no quantizer  {op.module or '<root>'}  {op.op} ({op.count} calls)\n")
        covered = not coverage.uncovered
    if options.exit_zero or (report.ok and covered):
        return EXIT_OK
    return EXIT_FINDINGS


def _prepare(options: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    from qready.api import prepare
    from qready.errors import VerificationError
    from qready.prepared import PreparedModule
    from qready.reporting.prepare_text import emit_prepare_json, emit_prepare_text
    from qready.serialize import check_destination, save

    check_destination(options.output, overwrite=options.force)  # before a long prepare, not after it
    model, example = _load(options)
    report = None
    if options.html:
        from qready.api import check

        report = check(model, example)  # before prepare, on the user's untouched model
    failure: VerificationError | None = None
    try:
        prepared = prepare(
            model, example, exclude=options.exclude, tie_weights=not options.no_tie_weights, verify=not options.no_verify,
            target=options.target,
        )
    except VerificationError as error:
        if error.prepared is None:
            raise
        failure, prepared = error, error.prepared
    result = prepared.prepare_result
    emit = emit_prepare_json if options.format == "json" else emit_prepare_text
    emit(result, stdout, stdout.isatty())
    if report is not None:
        from qready.reporting.html import render_html

        # written even when verification failed: that is when the report is most needed
        page = render_html(report, module_paths=_module_types(model), prepare_result=result)
        _write(options.html, lambda stream, color: stream.write(page), stdout)
    if failure is not None and not options.force:
        stderr.write(f"qready: {failure}; nothing written (pass --force to write it anyway)\n")
        return EXIT_FINDINGS
    if not isinstance(prepared, PreparedModule):  # the model kept its Python forward: not code we can write
        stderr.write(f"qready: {type(prepared).__name__} kept its own Python forward, so it cannot be saved as code; nothing written\n")
        return EXIT_FINDINGS
    save(prepared, options.output, overwrite=options.force)
    if options.format == "text":
        stdout.write(f"wrote {options.output}\n")
    return EXIT_OK if result.ok else EXIT_FINDINGS


def _module_types(model: torch.nn.Module) -> dict[str, str]:
    return {name: type(module).__name__ for name, module in model.named_modules()}


class _Progress:
    """A spinner on stderr naming the step that runs, then one line a rule: time and findings."""

    def __init__(self, stderr: TextIO, model: str, *, enabled: bool) -> None:
        self.model = model
        self.console: Console | None = None
        self.status: Status | None = None
        if enabled:
            from rich.console import Console

            self.console = Console(file=stderr, highlight=False)
            self.status = self.console.status(f"checking {model}")

    def __enter__(self) -> _Progress:
        if self.status is not None:
            self.status.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.status is not None:
            self.status.stop()

    def update(self, step: str) -> None:
        if self.status is not None:
            from qready.rules import get_rule

            what = "the instrumented forward" if step == "forward" else f"{step} {get_rule(step).name}"
            self.status.update(f"checking {self.model}: {what}")

    def done(self, report: Report) -> None:
        if self.console is None or self.status is None:
            return
        self.status.stop()
        from qready.findings import Severity
        from qready.rules import get_rule

        if "observe" in report.timings:  # the one instrumented forward that QR003-QR005 share
            self.console.print(f"  [dim]ran[/]  forward, observed    {report.timings['observe']:6.2f} s")
        for code in report.rules_run:
            found = report.by_code(code)
            errors = sum(f.severity is Severity.ERROR for f in found)
            mark = "[red]fail[/]" if errors else "[yellow]warn[/]" if found else "[green]pass[/]"
            tally = f"{len(found)} finding(s)" if found else ""
            self.console.print(f"  {mark} {code} {get_rule(code).name:<14} {report.timings.get(code, 0.0):6.2f} s  {tally}")


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
