"""QR002 jit-trace."""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from qready.errors import one_line
from qready.example_inputs import Example, fresh_like, tensor_leaves
from qready.findings import Finding, Severity
from qready.randomness import same_draws
from qready.rules.base import CheckContext, Rule, RuleExample, image_input
from qready.structure import map_leaves
from qready.source import error_location, forward_location, user_location

__all__ = ["JitTrace", "compare_outputs"]

RTOL = 1e-4
ATOL = 1e-5


class JitTrace(Rule):
    """The model cannot be captured faithfully by ``torch.jit.trace``.

    Quantization toolkits trace the model to find how modules connect (which
    output feeds which input, where to fold batch norms, which quantizers to
    tie). Tracing fails on non-tensor outputs, and it silently records one path
    through Python control flow that depends on tensor values: the traced graph
    then computes something else on other inputs. qready traces on the example
    inputs, reports every tracer warning at the user's line that raised it, and
    runs the trace on a freshly drawn input of the same shapes to catch a
    trace that only fits the example.

    Fix by hand: return tensors or tuples of tensors; replace ``if x.sum() >
    0:`` and ``int(x.max())`` by tensor operations (``torch.where``), or move
    the data-dependent part out of the traced model.

    Prepare: ``qready prepare`` flattens non-tensor inputs and outputs; it
    cannot make data-dependent control flow static, and reports the line.
    """

    code = "QR002"
    name = "jit-trace"
    fix = "replace Python branches on tensor values by tensor operations (torch.where)"
    summary = "torch.jit.trace fails, warns, or records a trace that differs from eager"
    before = "def forward(self, x):\n    if x.sum() > 0:\n        return self.a(x)\n    return self.b(x)"
    after = "def forward(self, x):\n    return torch.where(x.sum() > 0, self.a(x), self.b(x))"

    def check(self, ctx: CheckContext) -> list[Finding]:
        example = ctx.example
        tracer_warnings: dict[tuple[str | None, int | None, str], int] = {}
        failures: list[Finding] = []
        traced = None
        # The strict tracer (what toolkits call) refuses list and dict outputs only once the whole
        # forward has been traced. When a stand-in returning the same containers shows that it
        # will, its refusal is the strict run's: trace once, non-strict, for the warnings and a
        # trace to run on a fresh input. Otherwise, or when that trace fails, strict first as before.
        refusal = _strict_output_refusal(ctx.eager_output)
        if refusal is not None:
            try:
                with _capture_tracer_warnings(tracer_warnings):
                    traced = _trace(ctx.model, example, strict=False)
                failures.append(self._failure(refusal, ctx, strict=True))
            except Exception:  # the forward itself does not trace: the strict run says how, below
                tracer_warnings.clear()
        if traced is None:
            # strict first; when only the output containers stop it, trace again non-strict so the
            # same run still reports warnings and a trace that fits one input
            for strict in (True, False):
                try:
                    with _capture_tracer_warnings(tracer_warnings):
                        traced = _trace(ctx.model, example, strict=strict)
                    break
                except Exception as error:  # any failure of the tracer is what this rule reports
                    failures.append(self._failure(error, ctx, strict=strict))
                    if not strict or "strict=False" not in str(error):
                        break
        if traced is None:
            return failures
        findings = failures + [
            self.finding(
                f"tracer warning: {message}",
                severity=Severity.WARNING,
                op="torch.jit.TracerWarning",
                file=file,
                line=line,
                count=count,
                fix="make this value a tensor operation, or a constant that does not depend on the input",
            )
            for (file, line, message), count in tracer_warnings.items()
        ]
        fresh = fresh_like(example, seed=1)
        with torch.no_grad():
            expected = fresh.call(ctx.model)
            try:
                got = _call_traced(traced, fresh)
            except Exception as error:  # a trace that crashes on other values is a trace that fits only the example
                return findings + [
                    self.finding(
                        f"the traced model fails on a fresh input of the same shapes: {one_line(error)}",
                        op="torch.jit.trace",
                        fix="remove data-dependent control flow from the forward",
                    )
                ]
        mismatch = compare_outputs(tensor_leaves(expected), tensor_leaves(got))
        if mismatch:
            findings.append(
                self.finding(
                    f"the traced model disagrees with eager on a fresh input of the same shapes: {mismatch} "
                    "(control flow that depends on tensor values was baked into the trace)",
                    op="torch.jit.trace",
                    fix="replace Python branches on tensor values by tensor operations (torch.where)",
                )
            )
        return findings

    def _failure(self, error: BaseException, ctx: CheckContext, *, strict: bool) -> Finding:
        file, line = error_location(error)
        if file is None:
            file, line = forward_location(ctx.model)
        reason, fix = _reason(error, ctx.model, ctx.example)
        return self.finding(
            f"torch.jit.trace failed: {reason}",
            op="torch.jit.trace",
            file=file,
            line=line,
            fix=fix,
            details={"log": str(error), "strict": strict},
        )

    @classmethod
    def examples(cls) -> list[RuleExample]:
        return [
            RuleExample("branch on a tensor value", _DataDependent, image_input, True, (("", "torch.jit.TracerWarning"),)),
            RuleExample("dict output", _DictOutput, image_input, True, (("", "torch.jit.trace"),)),
            RuleExample("static graph", _Static, image_input, False),
        ]


def _reason(error: BaseException, model: nn.Module, example: Example) -> tuple[str, str]:
    """The tracer's message, or what it means where it is cryptic: it binds keyword inputs as
    positional ones, so a keyword-only parameter is "not in forward() method's arguments"."""
    keyword_only = [
        name for name, p in inspect.signature(model.forward).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and name in example.kwargs
    ]
    if keyword_only and "method's arguments" in str(error):
        names = ", ".join(repr(n) for n in keyword_only)
        return (
            f"it cannot pass keyword-only argument(s) {names}",
            "make them ordinary parameters of forward (before any *args)",
        )
    return one_line(error), "return tensors or tuples of tensors and avoid Python-side use of tensor values"


class _Returns(nn.Module):
    """A stand-in whose output has the containers of ``output``, each tensor its input."""

    def __init__(self, output: Any) -> None:
        super().__init__()
        self.output = output

    def forward(self, x: torch.Tensor) -> Any:
        return map_leaves(self.output, lambda _: x)


def _strict_output_refusal(output: Any) -> BaseException | None:
    """What the strict tracer raises on a forward returning ``output``'s containers (lists, dicts),
    found by tracing a stand-in that returns them; None when it accepts them or refuses them for
    a reason that non-strict tracing shares (only the refusal that names ``strict=False`` counts)."""
    if not _has_list_or_dict(output):
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.jit.trace(_Returns(output), (torch.zeros(1),), check_trace=False, strict=True)
    except Exception as error:  # the refusal is the point
        return error if "strict=False" in str(error) else None
    return None


def _has_list_or_dict(value: Any) -> bool:
    """A list or dict in ``value``, through the tuples, lists and dicts the tracer reads outputs as."""
    if isinstance(value, (list, dict)):
        return True
    return isinstance(value, tuple) and any(_has_list_or_dict(v) for v in value)


def _trace(model: nn.Module, example: Example, *, strict: bool) -> torch.jit.ScriptModule:
    if not example.kwargs:
        return torch.jit.trace(model, example.args, check_trace=False, strict=strict)
    return torch.jit.trace(
        model, example_kwarg_inputs=_as_kwargs(model, example), check_trace=False, strict=strict
    )


def _call_traced(traced: torch.jit.ScriptModule, example: Example) -> Any:
    """The traced model on ``example``, drawing the random numbers ``example.call`` draws for eager (a
    forward that adds noise in eval mode, as speechbrain's statistics pooling does, agrees with itself)."""
    with same_draws(example.args, example.kwargs):
        if not example.kwargs:
            return traced(*example.args)
        return traced(**_as_kwargs(traced, example))


def _as_kwargs(model: nn.Module, example: Example) -> dict[str, Any]:
    if not example.args:
        return dict(example.kwargs)
    names = list(inspect.signature(model.forward).parameters)
    return {**dict(zip(names, example.args)), **example.kwargs}


@contextmanager
def _capture_tracer_warnings(seen: dict[tuple[str | None, int | None, str], int]) -> Iterator[None]:
    """Record each TracerWarning at the user line on the stack when it was raised."""
    with warnings.catch_warnings():
        # torch.jit.trace's own deprecation notice (a FutureWarning on torch 2.14, a DeprecationWarning on 2.13)
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.trace(_method)?` is deprecated")
        warnings.simplefilter("always", torch.jit.TracerWarning)
        original = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            if not issubclass(category, torch.jit.TracerWarning):
                return original(message, category, filename, lineno, file, line)
            where_file, where_line = user_location(skip=2)
            key = (where_file, where_line, str(message).splitlines()[0])
            seen[key] = seen.get(key, 0) + 1

        warnings.showwarning = show
        yield


def compare_outputs(expected: list[torch.Tensor], got: list[Any]) -> str:
    """'' when outputs agree within tolerance, else what differs first."""
    if len(expected) != len(got):
        return f"{len(got)} outputs instead of {len(expected)}"
    for i, (want, have) in enumerate(zip(expected, got)):
        have = torch.as_tensor(have)
        if tuple(want.shape) != tuple(have.shape):
            return f"output {i} has shape {tuple(have.shape)} instead of {tuple(want.shape)}"
        if want.is_floating_point():
            if not _close(want.float(), have.float()):
                diff = (want.float() - have.float()).abs().nan_to_num(nan=float("inf")).max().item()
                return f"output {i} differs by up to {diff:.3g}"
        elif not torch.equal(want, have.to(want.dtype)):
            return f"output {i} differs"
    return ""


def _close(want: torch.Tensor, have: torch.Tensor) -> bool:
    """Within ``ATOL + RTOL`` times the output's largest magnitude; NaN and infinities where eager has them.

    Rounding error in a sum grows with the size of the summands, not of the result:
    a small element of an output whose other elements are large (untrained deep
    networks reach 1e8) cannot be held to its own magnitude, and an exporter
    that reorders a reduction would be flagged for float32 rounding.
    """
    finite = torch.isfinite(want)
    if not torch.equal(finite, torch.isfinite(have)):
        return False
    if not torch.equal(want[~finite].nan_to_num(), have[~finite].nan_to_num()):  # same infinities, NaN where NaN
        return False
    if not finite.any():
        return True
    scale = want[finite].abs().max()
    return bool(((want - have)[finite].abs() <= ATOL + RTOL * scale).all())


class _DataDependent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 3, 1)
        self.b = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            return self.a(x)
        return self.b(x)


class _DictOutput(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"out": self.conv(x)}


class _Static(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv(x))
