"""qready on a model zoo, side by side with AIMET.

Every torchvision model, a wide sample of timm architectures and tiny Hugging
Face models (see ``zoo_models.py``), each measured in its own subprocess with a
timeout:

* ``qready.check`` completes, and its findings per rule (QR001 with the default
  exporter unless ``--skip-onnx``);
* ``qready.prepare`` succeeds, its own verification is bit-identical, the
  prepared model is bit-identical again on an input this script draws itself,
  and ``qready.check(prepared, select=QR003,QR004)`` finds nothing; the
  submodules left as leaves and why; times of check and prepare;
* when ``aimet_torch`` is importable: AIMET's ``prepare_model`` succeeds and is
  bit-identical, and AIMET's ``ModelValidator.validate_model`` passes on
  AIMET's prepared model and on qready's.

Results are cached per model in ``benchmarks/results/zoo.json`` and written as
the "Zoo" section of ``BENCHMARKS.md``::

    python benchmarks/zoo.py                         # the whole zoo
    python benchmarks/zoo.py --resume                # skip models that have a result
    python benchmarks/zoo.py --only 'resnet|vit' --family tv-classification,timm
    python benchmarks/zoo.py --report-only           # rewrite BENCHMARKS.md from the JSON

``measure(entry)`` is the per-model routine, also used by ``tests/test_zoo_small.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib.metadata
import inspect
import io
import json
import logging
import os
import platform
import re
import shlex
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import torch  # noqa: E402

import qready  # noqa: E402
from qready.example_inputs import Example, as_example, fresh_like, tensor_leaves  # noqa: E402
from common import run_worker, write_record  # noqa: E402
from zoo_models import FAMILIES, ZooModel, describe_inputs, select, zoo  # noqa: E402
from zoo_report import render_section, write_section  # noqa: E402

__all__ = ["measure", "verdict", "aimet_available", "main"]

RESULTS = HERE / "results" / "zoo.json"
BENCHMARKS_MD = ROOT / "BENCHMARKS.md"
RULES = ("QR001", "QR002", "QR003", "QR004", "QR005")
RECHECK = ("QR003", "QR004")
FRESH_SEED = 2  # prepare's own verification uses seed 1: draw another input
DEFAULT_TIMEOUT = 300


# --- the per-model routine --------------------------------------------------------------------


def measure(
    entry: ZooModel,
    *,
    onnx: bool = True,
    aimet: bool = True,
    on_stage: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Measure qready (and AIMET, when ``aimet`` and importable) on one zoo model.

    Returns a JSON-able record; ``record["verdict"]`` holds the pass/fail
    criteria. ``on_stage`` is called with the partial record before each
    stage, so a caller that times out knows where it stopped.
    """
    record: dict[str, Any] = {"name": entry.name, "family": entry.family, "stage": "build",
                              "exporter": "dynamo" if onnx else "skipped"}

    def stage(name: str) -> None:
        record["stage"] = name
        if on_stage is not None:
            on_stage(record)

    stage("build")
    start = time.perf_counter()
    model = entry.model()
    example = entry.example()
    record["build_s"] = round(time.perf_counter() - start, 3)
    record["input"] = describe_inputs(example)
    record["params_m"] = round(sum(p.numel() for p in model.parameters()) / 1e6, 2)
    fresh = fresh_like(as_example(example), seed=FRESH_SEED)
    with torch.no_grad():
        before = tensor_leaves(fresh.call(model))  # to see that check and prepare leave the model alone

    stage("check")
    record["check"] = _check(model, example, onnx)

    stage("prepare")
    prepared, record["prepare"] = _prepare(model, example)
    if prepared is not None:
        stage("reverify")
        record["reverify"] = _reverify(model, fresh, prepared, before)
        stage("recheck")
        record["recheck"] = _recheck(prepared, example)

    if aimet and aimet_available():
        stage("aimet")
        record["aimet"] = _aimet(model, example, prepared)
    record["verdict"] = verdict(record)
    record["stage"] = "done"
    return record


def _check(model: torch.nn.Module, example: Any, onnx: bool) -> dict[str, Any]:
    start = time.perf_counter()
    try:
        with _quiet():
            report = qready.check(model, example, ignore=() if onnx else ("QR001",))
    except Exception as error:  # a crash is a result here: record it
        return {"completed": False, "error": _one_line(error), "internal": not isinstance(error, qready.QreadyError),
                "traceback": _traceback_tail(error), "time_s": _since(start)}
    counts = {code: 0 for code in RULES}
    errors = {code: 0 for code in RULES}
    for finding in report.findings:
        counts[finding.code] += 1
        errors[finding.code] += finding.severity is qready.Severity.ERROR
    first = {code: next((f.message for f in report.findings if f.code == code), None) for code in ("QR001", "QR002")}
    return {
        "completed": True,
        "time_s": _since(start),
        "counts": counts,
        "errors": errors,
        "coverage": [report.coverage.covered, report.coverage.total],
        "first_message": {k: _shorten(v) for k, v in first.items() if v},
        "timings": {k: round(v, 3) for k, v in report.timings.items()},
    }


def _prepare(model: torch.nn.Module, example: Any) -> tuple[Any, dict[str, Any]]:
    start = time.perf_counter()
    prepared = None
    outcome, error, trace = "ok", None, None
    try:
        with _quiet():
            prepared = qready.prepare(model, example)
    except qready.VerificationError as failure:
        prepared, outcome, error = failure.prepared, "verification-failed", _one_line(failure)
    except qready.QreadyError as failure:
        outcome, error = "refused", _one_line(failure)
    except Exception as failure:  # an internal error of qready: the thing this benchmark must never see
        outcome, error, trace = "crash", _one_line(failure), _traceback_tail(failure)
    record: dict[str, Any] = {"outcome": outcome, "error": error, "time_s": _since(start)}
    if trace:
        record["traceback"] = trace
    result = getattr(prepared, "prepare_result", None)
    if result is None:
        return prepared, record
    record.update(
        graph=isinstance(prepared, qready.PreparedModule),  # False: the root forward stayed Python
        verified=result.verified,
        identical=bool(result.diffs) and all(d.equal for d in result.diffs),
        diffs=[d.to_dict() for d in result.diffs if not d.equal],
        runs=sorted({d.run for d in result.diffs}),
        converted=len(result.converted),
        unrolled=len(result.unrolled),
        unconverted=[{"op": c.op, "scope": c.scope, "reason": dict(c.details).get("reason", "")}
                     for c in result.unconverted],
        leaves=[{"module": f.module, "reason": f.reason, "file": f.file, "line": f.line} for f in result.leaves],
        specialized=[{"file": f, "line": line, "value": str(v)} for f, line, v in result.specialized],
        residual=len(result.residual),
        unexpected=len(result.unexpected),
        inputs=result.input_names,
        outputs=len(result.output_names),
        timings={k: round(v, 3) for k, v in result.timings.items()},
    )
    return prepared, record


def _inputs_of(prepared: torch.nn.Module, example: Example) -> Example:
    """The prepared model's own inputs: flat tensors for a graph, else the original's arguments
    (a model whose root forward stays Python keeps its calling convention)."""
    if isinstance(prepared, qready.PreparedModule):
        return Example(tuple(prepared.flatten_inputs(*example.args, **example.kwargs)))
    return example


def _reverify(model: torch.nn.Module, fresh: Example, prepared: Any, before: list[torch.Tensor]) -> dict[str, Any]:
    """Our own comparison, independent of prepare's: a new input, the original model, bit for bit.

    ``before`` is the original's output on ``fresh`` before check and prepare ran: it must not
    have changed (qready never touches the user's model).
    """
    try:
        with torch.no_grad():
            model.eval()
            expected = fresh.call(model)
            prepared.eval()
            got = _inputs_of(prepared, fresh).call(prepared)
    except Exception as error:  # the prepared model must run wherever the original runs
        return {"identical": False, "error": _one_line(error)}
    want, have = tensor_leaves(expected), tensor_leaves(got)
    unchanged = len(want) == len(before) and all(_same(a, b) for a, b in zip(before, want))
    if not unchanged:
        return {"identical": False, "original_unchanged": False, "error": "the original model computes something else now"}
    if len(want) != len(have):
        return {"identical": False, "error": f"{len(have)} output tensors instead of {len(want)}"}
    for index, (a, b) in enumerate(zip(want, have)):
        if not _same(a, b):
            return {"identical": False, "error": f"output tensor {index} differs (max abs diff {_max_diff(a, b):.3g})"}
    rebuilt = prepared.unflatten_outputs(got) if isinstance(prepared, qready.PreparedModule) else got
    return {
        "identical": True,
        "original_unchanged": True,
        "outputs": len(want),
        "structure_rebuilt": type(rebuilt) is type(expected),
        "state_dict_keys_kept": sorted(prepared.state_dict()) == sorted(model.state_dict()),
    }


def _recheck(prepared: Any, example: Any) -> dict[str, Any]:
    """``qready.check(prepared, select=QR003,QR004)`` on the prepared model's flat inputs."""
    inputs = _inputs_of(prepared, as_example(example))
    try:
        with _quiet():
            report = qready.check(prepared, inputs.args, example_kwargs=inputs.kwargs, select=RECHECK)
    except Exception as error:  # the prepared model must be checkable
        return {"completed": False, "error": _one_line(error), "remaining": None}
    leaves = [leaf.module for leaf in prepared.prepare_result.leaves] + list(prepared.prepare_result.excluded)
    inside = [f for f in report.findings if any(p == "" or f.module == p or f.module.startswith(p + ".") for p in leaves)]
    return {
        "completed": True,
        "remaining": len(report.findings),
        "by_code": {code: len(report.by_code(code)) for code in RECHECK},
        "inside_leaves": len(inside),
        "outside_leaves": len(report.findings) - len(inside),
        "first": [f"{f.code} {f.module or '<root>'}: {f.op}" for f in report.findings[:5]],
        "coverage": [report.coverage.covered, report.coverage.total],
    }


# --- AIMET, in the same process ------------------------------------------------------------------


def aimet_available() -> bool:
    try:
        import aimet_torch.model_preparer  # noqa: F401
        import aimet_torch.model_validator.model_validator  # noqa: F401
    except Exception:  # not installed, or installed against another torch: no AIMET columns
        return False
    return True


def _aimet(model: torch.nn.Module, example: Any, qready_prepared: Any) -> dict[str, Any]:
    import aimet_torch
    from aimet_torch.model_preparer import prepare_model
    from aimet_torch.model_validator.model_validator import ModelValidator

    example = as_example(example)
    record: dict[str, Any] = {
        "version": getattr(aimet_torch, "__version__", "?"),
        "has_silu": any(isinstance(m, torch.nn.SiLU) for m in model.modules()),  # prepare_model swaps these
    }
    work = copy.deepcopy(model)  # prepare_model adds modules to the submodules it shares with its input
    start = time.perf_counter()
    try:
        with _quiet():
            aimet_model = prepare_model(work)
        record["prepare"] = "ok"
    except Exception as error:  # AIMET's failure is a result
        aimet_model = None
        record["prepare"] = "failed"
        record["prepare_error"] = _one_line(error)
    record["prepare_s"] = _since(start)

    if aimet_model is not None:
        record["identical"], record["identical_error"] = _aimet_identical(model, aimet_model, example)
        positional = _positional(model, example)
        record["validator_on_aimet"], record["validator_on_aimet_log"] = _validate(
            ModelValidator, aimet_model, positional
        )
    else:
        record["identical"] = None
        record["validator_on_aimet"] = None
    if qready_prepared is not None:
        inputs = _positional(qready_prepared, _inputs_of(qready_prepared, example))
        record["validator_on_qready"], record["validator_on_qready_log"] = _validate(
            ModelValidator, qready_prepared, inputs
        )
    else:
        record["validator_on_qready"] = None
    return record


def _aimet_identical(model: torch.nn.Module, aimet_model: torch.nn.Module, example: Example) -> tuple[bool, str | None]:
    fresh = fresh_like(example, seed=FRESH_SEED)
    try:
        with torch.no_grad(), _quiet():
            model.eval()
            aimet_model.eval()
            for run in (example, fresh):
                want, have = tensor_leaves(run.call(model)), tensor_leaves(run.call(aimet_model))
                if len(want) != len(have):
                    return False, f"{len(have)} output tensors instead of {len(want)}"
                for index, (a, b) in enumerate(zip(want, have)):
                    if not _same(a, b):
                        return False, f"output tensor {index} differs (max abs diff {_max_diff(a, b):.3g})"
    except Exception as error:  # AIMET's model that does not run is not identical
        return False, _one_line(error)
    return True, None


def _positional(model: torch.nn.Module, example: Example) -> tuple[Any, ...]:
    """The example as positional arguments, for AIMET's validator (it calls ``model(*inputs)``)."""
    if not example.kwargs:
        return tuple(example.args)
    bound = inspect.signature(model.forward).bind(*example.args, **example.kwargs)
    return tuple(bound.args)


_VALIDATOR_CHECK = ("validate_for_reused_modules", "validate_for_missing_modules")
_MISSING_MODULE_OP = re.compile(r"^\s+\S+; op_type: (\S+)\s+parent module: (.*)$", re.MULTILINE)
_REUSED = re.compile(r"used more than once in the model: (\[.*?\])")


def _validate(validator: Any, model: torch.nn.Module, inputs: tuple[Any, ...]) -> tuple[Any, dict[str, Any]]:
    """``validate_model``'s answer (True/False, or the error it raised), and what its log says failed."""
    log = io.StringIO()
    handler = logging.StreamHandler(log)
    logger = logging.getLogger("Utils")  # AimetLogger.LogAreas.Utils: where the validator logs
    logger.addHandler(handler)
    try:
        with _quiet(), torch.no_grad():
            model.eval()
            passed = validator.validate_model(model, inputs)
    except Exception as error:  # the validator itself raises on models it cannot trace
        return f"error: {_one_line(error)}", {}
    finally:
        logger.removeHandler(handler)
    if passed:
        return True, {}
    text = log.getvalue()
    failed = text.rpartition("checks failed:")[2]  # then one line per failed check
    ops = sorted({f"{op_type} in {parent.strip()}" for op_type, parent in _MISSING_MODULE_OP.findall(text)})
    reused = _REUSED.search(text)
    return False, {
        "checks": [name for name in _VALIDATOR_CHECK if f"function {name}" in failed],
        "missing_modules": ops[:12],
        "reused_modules": _shorten(reused.group(1), 400) if reused else None,
    }


# --- verdicts ------------------------------------------------------------------------------------


def verdict(record: dict[str, Any]) -> dict[str, Any]:
    """The benchmark's criteria for one model, and the reason when one fails."""
    check = record.get("check") or {}
    prep = record.get("prepare") or {}
    reverify = record.get("reverify") or {}
    recheck = record.get("recheck") or {}
    status = record.get("status", "ok")  # set by the parent: timeout / died
    check_ok = bool(check.get("completed"))
    prepared = prep.get("outcome") in ("ok", "verification-failed") and "identical" in prep
    identical = bool(prepared and prep.get("identical") and reverify.get("identical"))
    remaining = recheck.get("remaining")
    clean = remaining == 0
    specialized = bool(prep.get("specialized"))
    passed = status == "ok" and prep.get("outcome") == "ok" and identical and clean and not specialized
    died = status not in ("ok", "timeout")  # the worker exited without a record: a crash too
    crash = died or bool(check.get("internal")) or prep.get("outcome") == "crash"
    silently_wrong = prep.get("outcome") == "ok" and (
        not reverify.get("identical", True) or (recheck.get("outside_leaves") or 0) > 0
    )
    aimet = record.get("aimet") or {}
    out = {
        "check_completes": check_ok,
        "prepare_pass": passed,
        "identical": identical,
        "clean": clean,
        "crash": crash,
        "silently_wrong": silently_wrong,
        "timeout": status == "timeout",
        "aimet_prepare": aimet.get("prepare") == "ok" if aimet else None,
        "aimet_identical": aimet.get("identical") if aimet else None,
        "validator_on_aimet": aimet.get("validator_on_aimet") is True if aimet else None,
        "validator_on_qready": aimet.get("validator_on_qready") is True if aimet else None,
    }
    out["reason"] = None if passed and check_ok else _reason(record, status)
    return out


def _reason(record: dict[str, Any], status: str) -> str:
    check = record.get("check") or {}
    prep = record.get("prepare") or {}
    reverify = record.get("reverify") or {}
    recheck = record.get("recheck") or {}
    if status == "timeout":
        return f"timed out after {record.get('timeout_s')} s in stage {record.get('stage')}"
    if status != "ok":
        last = (record.get("log_tail") or "").strip().splitlines()[-1:] or [""]
        return f"worker died ({status}) in stage {record.get('stage')}: {_shorten(last[0], 200)}"
    if not check.get("completed"):
        return f"check failed: {check.get('error')}"
    if prep.get("outcome") in ("refused", "crash"):
        return f"prepare {prep['outcome']}: {prep.get('error')}"
    if prep.get("outcome") == "verification-failed":
        return f"prepare verification failed: {prep.get('error')}"
    if not reverify.get("identical"):
        return f"differs on a fresh input: {reverify.get('error')}"
    if prep.get("specialized"):
        s = prep["specialized"][0]
        return f"data-dependent branch in the root forward specialized at {s['file']}:{s['line']}"
    if recheck.get("remaining"):
        leaves = prep.get("leaves") or []
        why = f"; leaf {leaves[0]['module']}: {leaves[0]['reason']}" if leaves else ""
        return (f"{recheck['remaining']} QR003/QR004 finding(s) left ({recheck.get('inside_leaves')} inside "
                f"{len(leaves)} leaf module(s)){why}")
    if not recheck.get("completed", True):
        return f"check of the prepared model failed: {recheck.get('error')}"
    return "unknown"


# --- small helpers -------------------------------------------------------------------------------


def _same(a: torch.Tensor, b: Any) -> bool:
    if not isinstance(b, torch.Tensor) or a.shape != b.shape or a.dtype != b.dtype:
        return False
    if torch.equal(a, b):
        return True
    if a.is_floating_point() or a.is_complex():
        nan_a, nan_b = torch.isnan(a), torch.isnan(b)
        return bool(torch.equal(nan_a, nan_b) and torch.equal(a[~nan_a], b[~nan_b]))
    return False


def _max_diff(a: torch.Tensor, b: Any) -> float:
    if not isinstance(b, torch.Tensor) or a.shape != b.shape or a.numel() == 0:
        return float("inf")
    return float((a.double() - b.double()).abs().max())


def _since(start: float) -> float:
    return round(time.perf_counter() - start, 3)


def _one_line(error: BaseException, limit: int = 300) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__
    return _shorten(text, limit)


def _shorten(text: str | None, limit: int = 300) -> str | None:
    if text is None:
        return None
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _traceback_tail(error: BaseException, frames: int = 6) -> list[str]:
    summary = traceback.extract_tb(error.__traceback__)[-frames:]
    return [f"{Path(f.filename).name}:{f.lineno} {f.name}" for f in summary]


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Warnings from models and toolkits are not results; keep them out of the record and the terminal."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# --- one model in a subprocess -------------------------------------------------------------------


def _worker(name: str, out: Path, onnx: bool, aimet: bool) -> int:
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    logging.getLogger().setLevel(logging.ERROR)
    [entry] = [m for m in zoo() if m.name == name]
    record = measure(entry, onnx=onnx, aimet=aimet, on_stage=lambda partial: write_record(out, partial))
    write_record(out, record)
    return 0


def _run_isolated(entry: ZooModel, *, onnx: bool, aimet: bool, timeout: float) -> dict[str, Any]:
    """``measure`` in a fresh Python process, killed after ``timeout`` seconds."""
    options = ([] if onnx else ["--skip-onnx"]) + ([] if aimet else ["--no-aimet"])
    run = run_worker(Path(__file__), entry.name, timeout=timeout, options=options)
    record = run.record or {"name": entry.name, "family": entry.family, "stage": "start"}
    if run.status != "ok" or record.get("stage") != "done":
        record["status"] = run.status if run.status != "ok" else "incomplete"
        record["timeout_s"] = timeout
        record["log_tail"] = run.log_tail
        record["verdict"] = verdict(record)
    else:
        record["status"] = "ok"
    record["wall_s"] = run.wall_s
    return record


# --- the whole run -------------------------------------------------------------------------------


def _load(path: Path) -> dict[str, Any]:
    if path.exists():
        return json.loads(path.read_text())
    return {"schema": 1, "models": {}}


def _store(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str, sort_keys=False) + "\n")
    tmp.replace(path)


def environment() -> dict[str, Any]:
    versions = {}
    for package in ("torch", "torchvision", "timm", "transformers", "onnx", "onnxruntime", "onnxscript", "aimet-torch"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:  # optional packages that are not installed
            continue
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "torch_threads": min(2, os.cpu_count() or 1),
        "versions": versions,
    }


class _Progress:
    """A rich progress bar on a terminal, one plain line per model otherwise (both on stderr)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self.bar = None
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TimeElapsedColumn(), TimeRemainingColumn(), console=Console(stderr=True))
            self.task = self.bar.add_task("zoo", total=total)

    def __enter__(self) -> _Progress:
        if self.bar is not None:
            self.bar.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)

    def start(self, name: str) -> None:
        if self.bar is not None:
            self.bar.update(self.task, description=name)

    def finish(self, record: dict[str, Any]) -> None:
        self.done += 1
        line = _status_line(record)
        if self.bar is not None:
            self.bar.console.print(line, markup=False, highlight=False)
            self.bar.advance(self.task)
        else:
            print(f"[{self.done}/{self.total}] {line}", file=sys.stderr, flush=True)


def _status_line(record: dict[str, Any]) -> str:
    v = record.get("verdict") or {}
    mark = "PASS" if v.get("prepare_pass") and v.get("check_completes") else "FAIL"
    aimet = record.get("aimet")
    aimet_text = f"  aimet prepare {aimet.get('prepare')}" if aimet else ""
    why = f"  {v.get('reason')}" if v.get("reason") else ""
    return f"{mark} {record['name']} ({record.get('wall_s', 0):.1f} s){aimet_text}{why}"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], prog="benchmarks/zoo.py")
    parser.add_argument("--only", metavar="REGEX", help="models whose name (tv/resnet18, timm/..., hf/...) matches")
    parser.add_argument("--family", metavar="NAMES", default="",
                        help=f"comma-separated families or prefixes ({', '.join(FAMILIES)}; 'tv', 'timm', 'hf')")
    parser.add_argument("--resume", action="store_true",
                        help="skip models that already have a result made with the same options")
    parser.add_argument("--skip-onnx", action="store_true", help="leave QR001 (ONNX export) out of check")
    parser.add_argument("--no-aimet", action="store_true", help="leave the AIMET columns out")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds per model (default 300)")
    parser.add_argument("--results", type=Path, default=RESULTS, help="the JSON cache of per-model results")
    parser.add_argument("--markdown", type=Path, default=BENCHMARKS_MD, help="the file whose Zoo section is written")
    parser.add_argument("--report-only", action="store_true", help="rewrite the Zoo section from the JSON, run nothing")
    parser.add_argument("--list", action="store_true", help="print the selected models and exit")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    onnx, aimet = not args.skip_onnx, not args.no_aimet
    if args.worker:
        return _worker(args.worker, args.worker_out, onnx, aimet)

    families = [f.strip() for f in args.family.split(",") if f.strip()]
    entries = select(zoo(), only=args.only, families=families)
    if args.list:
        for entry in entries:
            print(f"{entry.name}\t{entry.family}")
        return 0

    data = _load(args.results)
    command = " ".join(["python", "benchmarks/zoo.py", *map(shlex.quote, sys.argv[1:] if argv is None else argv)])
    if not args.report_only:
        aimet = aimet and aimet_available()
        options = {"exporter": "dynamo" if onnx else "skipped", "aimet": aimet}
        todo = [e for e in entries if not (args.resume and data["models"].get(e.name, {}).get("options") == options)]
        data["environment"] = environment()
        with _Progress(len(todo)) as progress:
            for entry in todo:
                progress.start(entry.name)
                record = _run_isolated(entry, onnx=onnx, aimet=aimet, timeout=args.timeout)
                record["options"] = options
                record["command"] = command
                record["timestamp"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
                data["models"][entry.name] = record
                _store(args.results, data)
                progress.finish(record)
    order = {entry.name: index for index, entry in enumerate(zoo())}
    records = [r for name, r in data["models"].items() if name in order]
    records.sort(key=lambda r: order[r["name"]])
    section = render_section(records, data.get("environment", {}), timeout=args.timeout)
    write_section(args.markdown, section)
    print(section.summary_text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
