"""Running rules over one model: the one place that does it, below ``api.check`` and verification."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from qready.example_inputs import Example
from qready.findings import Coverage, Finding
from qready.guard import blame_forward, preserved, require_tensor_output
from qready.rules.base import CheckContext, Rule
from qready.targets.base import Target
from qready.targets.generic import GenericTarget

__all__ = ["RuleRun", "run_rules"]


@dataclass(frozen=True)
class RuleRun:
    """What running some rules on one model found, sorted; coverage is None when no rule observed."""

    findings: list[Finding]
    coverage: Coverage | None
    timings: dict[str, float] = field(default_factory=dict)


def run_rules(
    model: torch.nn.Module,
    example: Example,
    rules: Sequence[type[Rule]],
    *,
    onnx_exporter: str | None = None,
    target: Target | None = None,
    progress: Callable[[str], None] | None = None,
) -> RuleRun:
    """Run ``rules`` on ``model``: the instrumented forward once, before any rule that observes,
    else one plain forward (its errors are the user's, or qready's: see ``guard.blame_forward``).
    The model runs in eval mode and gets its flags back afterwards."""
    ctx = CheckContext(model, example, onnx_exporter=onnx_exporter, target=target or GenericTarget())
    findings: list[Finding] = []
    timings: dict[str, float] = {}
    observation = None
    with preserved(model):
        if any(rule.observes for rule in rules):
            if progress:
                progress("forward")
            start = time.perf_counter()
            observation = ctx.observation
            timings["observe"] = time.perf_counter() - start
        else:
            try:
                output = ctx.eager_output  # the exporters' rules compare with it
            except Exception as error:
                raise blame_forward(model, example, error) from error
            require_tensor_output(model, output)
        for rule in rules:
            if progress:
                progress(rule.code)
            start = time.perf_counter()
            findings.extend(rule().check(ctx))
            timings[rule.code] = time.perf_counter() - start
    coverage = Coverage(observation.covered_ops, observation.total_ops) if observation else None
    findings.sort(key=lambda f: (f.code, f.file or "", f.line or 0, f.module, f.op))
    return RuleRun(findings, coverage, timings)
