"""``qready``: argv -> options -> API -> emitter -> exit code.

Exit codes: 0 clean, 1 findings (or a failed verification), 2 usage, load,
model or internal error, 130 interrupted (Ctrl-C); a closed stdout (``| head``) ends quietly
with 141.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import os
import signal
import sys
import threading
import traceback
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

from qready.errors import QreadyError, one_line
from qready.fixing.command import add_fix_options, add_fix_parser, run_fix, wants_fix
from qready.reporting import EMITTERS
from qready.exporters import EXPORTERS

if TYPE_CHECKING:  # rich and the report are imported when a command needs them: `qready --help` stays fast
    from rich.console import Console
    from rich.status import Status

    import torch

    from qready.findings import Report

__all__ = ["main", "build_parser"]

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a process stopped by Ctrl-C
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a shell reports `yes | head`
CHECK_FORMATS = tuple(EMITTERS)  # a new emitter is a new --format choice


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]  # argparse's error returns NoReturn; this one raises a QreadyError instead
        raise QreadyError(f"{message} (see {self.prog} --help)")


_LEAF_HELP = "a submodule path or module class your toolkit wraps whole (its ops count as quantized)"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="qready", description="Check and prepare PyTorch models for quantization toolkits.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    parser.add_argument("--version", action=_ShowVersion, nargs=0, help="print qready's version and exit")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    check = commands.add_parser("check", help="report where a model breaks the five model guidelines")
    _add_model_arguments(check)
    check.add_argument(
        "--format", choices=CHECK_FORMATS, default=None,
        help="default: from the suffix of -o (.json, .sarif, .html), else text; html needs -o FILE",
    )
    check.add_argument("--select", type=_codes, action="extend", help="rule codes, names or code prefixes to run, comma-separated (default: all)")
    check.add_argument("--extend-select", type=_codes, action="extend", default=[], help="rules to run in addition to --select (or to the default)")
    check.add_argument("--ignore", type=_codes, action="extend", help="rule codes, names or code prefixes to skip")
    check.add_argument("--onnx-exporter", choices=EXPORTERS, default=None, help="the exporter QR001 runs (default: dynamo)")
    check.add_argument(
        "--quantizer-coverage", action="store_true",
        help="also build the --target toolkit's sim and count the ops that run behind a quantizer (text format)",
    )
    check.add_argument("--leaf", action="append", default=[], metavar="MODULE", help=_LEAF_HELP)
    check.add_argument("--exit-zero", action="store_true", help="exit 0 even when there are findings")
    check.add_argument("-o", "--output", metavar="FILE", help="write the report to this file instead of stdout")
    check.add_argument("--statistics", action="store_true", help="print how many findings each rule has, not the findings (text format)")
    check.add_argument("--show-all", action="store_true", help="one line per finding: do not group a source line's findings across modules")
    _add_output_arguments(check)
    check.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    add_fix_options(check)

    prepare = commands.add_parser("prepare", help="rewrite a model so it follows the guidelines, verified")
    _add_model_arguments(prepare)
    prepare.add_argument("-o", "--output", required=True, metavar="OUT_DIR", help="directory to write (must not exist)")
    prepare.add_argument("--exclude", action="append", default=[], metavar="MODULE_PATH", help="keep this submodule whole")
    prepare.add_argument("--leaf", action="append", default=[], metavar="MODULE", help=_LEAF_HELP)
    prepare.add_argument("--format", choices=("text", "json"), default="text", help="what prepare changed, as lines or as JSON")
    prepare.add_argument("--html", metavar="FILE", help="also write an HTML report: the check of the original and what prepare did")
    prepare.add_argument("--no-tie-weights", action="store_true", help="give unrolled copies their own weights")
    prepare.add_argument("--no-verify", action="store_true", help="skip the bit-for-bit comparison and re-check")
    prepare.add_argument(
        "--recheck", type=_codes, action="extend", metavar="RULES",
        help="rules to check the prepared model with, comma-separated, or 'all' "
        "(default: QR003-QR005; QR001 and QR002 too where --html checked the original with them)",
    )
    prepare.add_argument("--force", action="store_true", help="write OUT_DIR even if it exists or verification failed")
    _add_output_arguments(prepare)
    prepare.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)

    add_fix_parser(commands, _add_model_arguments)

    rules = commands.add_parser("rules", help="list the rules")
    rules.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    explain = commands.add_parser("explain", help="print a rule's documentation")
    explain.add_argument("rule", help="rule code or name, e.g. QR003 or functional-op")
    explain.add_argument("--debug", action="store_true", help=argparse.SUPPRESS)
    return parser


class _ShowVersion(argparse.Action):
    """``--version``, printed by ``main`` on its own stdout (argparse's action writes to sys.stdout)."""

    def __call__(self, *args: object, **kwargs: object) -> None:
        raise _VersionRequested


class _VersionRequested(Exception):
    pass


def _add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", metavar="SPEC", help="package.module:callable, path/to/file.py:Name, hf:path/to/config.json (no weights), or a directory qready prepare -o wrote")
    parser.add_argument("--input", action="append", metavar="[DTYPE:]SHAPE", help="e.g. 1x3x224x224 or int64:1x16")
    parser.add_argument("--inputs", metavar="MODULE:FUNCTION", help="function returning the example inputs")
    parser.add_argument("--kwargs", metavar="JSON", help="JSON keyword arguments for the model class or factory")
    parser.add_argument(
        "--target", default=None, metavar="TOOLKIT",
        help="the quantization toolkit: generic (default, the guidelines) or aimet (its quantized module classes)",
    )


def _add_output_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-q", "--quiet", action="store_true", help="print only findings (check) or nothing (prepare), no progress or summary")
    parser.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                        help="colour text output: auto = on a terminal unless NO_COLOR is set")
    parser.add_argument("--timings", action="store_true", help="include the seconds each step took (JSON leaves them out: runs compare equal)")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("qready")
    except PackageNotFoundError:  # a source tree on sys.path, not installed
        return "unknown"


def _color(choice: str, stream: TextIO) -> bool:
    """``--color``: always, never, or on a terminal when NO_COLOR is unset or empty (no-color.org)."""
    if choice != "auto":
        return choice == "always"
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and not os.environ.get("NO_COLOR")


def _codes(text: str) -> list[str]:
    return [part for part in (p.strip() for p in text.split(",")) if part]


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    args_list = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args_list
    with _INTERRUPTS:
        try:
            options = build_parser().parse_args(args_list)
            return _run(options, stdout, stderr)
        except SystemExit as exit_:  # --help
            return int(exit_.code or 0)
        except _VersionRequested:
            stdout.write(f"qready {_version()}\n")
            return EXIT_OK
        except KeyboardInterrupt:
            return _interrupted(stderr)
        except BrokenPipeError:  # `qready check ... | head`: the reader has all it wants
            _silence(stdout)
            return EXIT_BROKEN_PIPE
        except QreadyError as error:
            if _INTERRUPTS.seen:  # torch turned the interrupt into another error on its way up
                return _interrupted(stderr)
            if debug:
                traceback.print_exc(file=stderr)
            stderr.write(f"qready: error: {error}\n")
            return EXIT_ERROR
        except Exception as error:  # a bug in qready or torch: one line, traceback on demand
            if _INTERRUPTS.seen:
                return _interrupted(stderr)
            if debug:
                traceback.print_exc(file=stderr)
            first = one_line(str(error), limit=None)
            stderr.write(f"qready: internal error: {type(error).__name__}: {first} (rerun with --debug for the traceback)\n")
            return EXIT_ERROR


def _interrupted(stderr: TextIO) -> int:
    stderr.write("qready: interrupted\n")
    return EXIT_INTERRUPTED


def _silence(stdout: TextIO) -> None:
    """Point the closed stdout at /dev/null, so that Python's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stdout.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):
        pass  # not a real file: nothing will flush it


class _InterruptWatch:
    """Remembers that Ctrl-C was pressed. Code inside torch (the ONNX exporter's lazy imports)
    sometimes catches the KeyboardInterrupt and fails with another error instead: without this,
    that error would become a QR001 finding or an error message, when the user asked to stop."""

    def __init__(self) -> None:
        self.seen = False
        self._previous: Any = None

    def __enter__(self) -> _InterruptWatch:
        self.seen = False
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def _handle(self, signum: int, frame: object) -> None:
        self.seen = True
        raise KeyboardInterrupt

    def stop_if_seen(self) -> None:
        """Called before anything is written: an interrupted run writes nothing."""
        if self.seen:
            raise KeyboardInterrupt


_INTERRUPTS = _InterruptWatch()


def _run(options: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    if options.command == "rules":
        from qready.rules import RULES

        width = max(len(rule.name) for rule in RULES)
        for rule in RULES:
            stdout.write(f"{rule.code}  {rule.name:<{width}}  {rule.summary}\n")
        return EXIT_OK
    if options.command == "explain":
        from qready.rules import get_rule
        from qready.reporting.explain import explain

        stdout.write(explain(get_rule(options.rule)) + "\n")
        return EXIT_OK
    if wants_fix(options):  # `qready fix`, `qready check --fix/--diff`
        return run_fix(options, stdout, stderr)
    if options.command == "check":
        return _check(options, stdout, stderr)
    if options.command == "prepare":
        return _prepare(options, stdout, stderr)
    raise QreadyError(f"unknown command {options.command!r}")


def _load(options: argparse.Namespace):
    import torch

    from qready.inputs import load_example, load_model, parse_kwargs

    kwargs = parse_kwargs(options.kwargs)
    if not options.input and not options.inputs:
        load_example(None, None)  # says what to pass, before a slow model build
    torch.manual_seed(0)  # the same weights on every run: reports and saved models are reproducible
    model = load_model(options.spec, kwargs)
    return model, load_example(options.input, options.inputs, seed=0)


# the formats a report file's suffix names; a .txt or any other file is text unless --format says
_SUFFIX_FORMATS = {".json": "json", ".sarif": "sarif", ".html": "html", ".htm": "html"}
_FILE_KINDS = {"json": "a JSON", "sarif": "a SARIF", "html": "an HTML"}


def _report_format(chosen: str | None, output: str | None) -> str:
    """``--format``, or the one ``-o``'s suffix names; refuses a --format that contradicts the suffix
    (``--format json -o report.html`` would write JSON that a browser shows as text)."""
    named = _SUFFIX_FORMATS.get(os.path.splitext(output or "")[1].lower())
    if chosen is None:
        return named or "text"
    if named is not None and named != chosen:
        raise QreadyError(
            f"--format {chosen} does not fit -o {output} ({_FILE_KINDS[named]} file name); "
            f"drop --format to write {named}, or name the file for {chosen}"
        )
    return chosen


def _check(options: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    from qready.api import check
    from qready.reporting import emit
    from qready.reporting.text_format import emit_statistics, emit_text
    from qready.rules import select_rules

    options.format = _report_format(options.format, options.output)
    if options.format == "html" and not options.output:
        raise QreadyError("--format html writes one self-contained file; pass -o report.html")
    if options.statistics and options.format != "text":
        raise QreadyError("--statistics prints a table of counts per rule; use it with --format text")
    if options.quantizer_coverage and (options.target in (None, "generic") or options.format != "text"):
        raise QreadyError("--quantizer-coverage builds a toolkit's sim: pass --target aimet, with --format text")
    _check_report_paths(options.output)
    select = options.select
    if options.extend_select:
        from qready.suppression import configured_rules

        configured, _ = configured_rules(select, options.ignore)  # --select, else [tool.qready] select
        select = [*(configured or ["QR"]), *options.extend_select]  # "QR": every rule that can run
    select_rules(select, options.ignore)  # an unknown code fails now, before the model is built
    progress = options.format == "text" and not options.quiet and stderr.isatty()
    model, example = _load(options)
    with _Progress(stderr, type(model).__name__, enabled=progress, color=_color(options.color, stderr)) as shown:
        report = check(
            model, example, select=select, ignore=options.ignore, onnx_exporter=options.onnx_exporter,
            progress=shown.update, target=options.target, leaves=options.leaf,
        )
        shown.done(report)
    _INTERRUPTS.stop_if_seen()
    if not options.timings:  # they differ on every run: two runs' reports compare equal without them
        report = dataclasses.replace(report, timings={})
    if options.format == "html":
        from qready.reporting.html import render_html

        page = render_html(report, module_paths=_module_types(model))
        _write(options.output, lambda stream, color: stream.write(page), stdout, options.color)
    elif options.format == "text":
        def write_text(stream: TextIO, color: bool) -> None:
            if options.statistics:
                emit_statistics(report, stream, color, summary=not options.quiet)
            else:
                emit_text(report, stream, color, show_all=options.show_all, summary=not options.quiet)

        _write(options.output, write_text, stdout, options.color)
    else:
        _write(options.output, lambda stream, color: emit(report, options.format, stream, color=color), stdout, options.color)
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
    from qready.prepared import result_of
    from qready.reporting.prepare_text import emit_prepare_json, emit_prepare_text
    from qready.rules import select_rules
    from qready.serialize import check_destination, save

    check_destination(options.output, overwrite=options.force)  # before a long prepare, not after it
    if options.recheck and [key.lower() for key in options.recheck] != ["all"]:
        select_rules(options.recheck, None)  # an unknown code fails now, before the model is built
    _check_report_paths(options.html)
    model, example = _load(options)
    report = None
    if options.html:
        from qready.api import check

        report = check(model, example, leaves=options.leaf)  # before prepare, on the user's untouched model
    failure: VerificationError | None = None
    try:
        recheck = options.recheck
        if recheck is None and report is not None:  # the exporters ran on the original: run them on the result too
            recheck = list(report.rules_run)
        prepared = prepare(
            model, example, exclude=options.exclude, tie_weights=not options.no_tie_weights, verify=not options.no_verify,
            target=options.target, recheck=recheck, leaves=options.leaf,
        )
    except VerificationError as error:
        if error.prepared is None:
            raise
        failure, prepared = error, error.prepared
    _INTERRUPTS.stop_if_seen()
    result = result_of(prepared)
    shown = result if options.timings else dataclasses.replace(result, timings={})
    if options.format == "json":
        emit_prepare_json(shown, stdout)
    elif not options.quiet:
        emit_prepare_text(shown, stdout, _color(options.color, stdout))
    if report is not None:
        from qready.reporting.html import render_html

        # written even when verification failed: that is when the report is most needed
        page = render_html(report, module_paths=_module_types(model), prepare_result=result)
        _write(options.html, lambda stream, color: stream.write(page), stdout, options.color)
    if failure is not None and not options.force:
        stderr.write(f"qready: {failure}; nothing written (pass --force to write it anyway)\n")
        return EXIT_FINDINGS
    if not prepared.saveable:  # the model kept its Python forward: not code we can write
        stderr.write(f"qready: {type(prepared).__name__} kept its own Python forward, so it cannot be saved as code; nothing written\n")
        return EXIT_FINDINGS
    _INTERRUPTS.stop_if_seen()
    save(prepared, options.output, overwrite=options.force)
    if options.format == "text" and not options.quiet:
        stdout.write(f"wrote {options.output}\n")
    return EXIT_OK if result.ok else EXIT_FINDINGS


def _check_report_paths(*paths: str | None) -> None:
    """Before the model is even built: a report that cannot be written should not cost a whole run."""
    from qready.files import check_report_path

    for path in paths:
        if path is not None:
            check_report_path(path)


def _module_types(model: torch.nn.Module) -> dict[str, str]:
    return {name: type(module).__name__ for name, module in model.named_modules()}


class _Progress:
    """A spinner on stderr naming the step that runs, then one line a rule: time and findings."""

    def __init__(self, stderr: TextIO, model: str, *, enabled: bool, color: bool = True) -> None:
        self.model = model
        self.console: Console | None = None
        self.status: Status | None = None
        if enabled:
            from rich.console import Console

            # no colour means no escape codes at all: not even bold or dim (NO_COLOR, --color never)
            self.console = Console(file=stderr, highlight=False, color_system="auto" if color else None)
            self.status = self.console.status(f"checking {model}")

    def __enter__(self) -> _Progress:
        if self.status is not None:
            self.status.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.status is not None:
            self.status.stop()

    def update(self, step: str) -> None:
        _INTERRUPTS.stop_if_seen()  # between rules: a swallowed Ctrl-C stops the run here
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


def _write(path: str | None, write, stdout: TextIO, color_choice: str = "auto") -> None:
    if path is None:
        write(stdout, _color(color_choice, stdout))
        return
    from qready.files import atomic_text

    with atomic_text(path) as stream:
        write(stream, color_choice == "always")  # a file is not a terminal: colour only when asked for


if __name__ == "__main__":
    raise SystemExit(main())
