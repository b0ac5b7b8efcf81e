"""Quantizer coverage measured on the toolkit's own simulation of a model.

``check`` counts the value-changing ops that run inside a leaf module, where a
quantizer *could* sit. This builds the target toolkit's simulation (AIMET's
``QuantizationSimModel``, W8A8), calibrates it on the example, runs one forward
of the simulated model and counts, with the same op counting, the ops that run
inside a module the toolkit actually quantized. The quantizers' own arithmetic
is not counted: it is the toolkit's, not the model's.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from qready.errors import InputError, ModelError
from qready.example_inputs import Example, as_example
from qready.guard import preserved
from qready.observe import observe
from qready.targets import Target, get_target
from qready.targets.base import Sim

__all__ = ["QuantizerCoverage", "UncoveredOp", "build_sim", "quantizer_coverage"]


@dataclass(frozen=True)
class UncoveredOp:
    """Calls of one op from one line that ran in the simulated model with no quantized module around them."""

    op: str
    module: str
    file: str | None
    line: int | None
    count: int


@dataclass(frozen=True)
class QuantizerCoverage:
    target: str
    covered: int
    total: int
    uncovered: tuple[UncoveredOp, ...]

    @property
    def ratio(self) -> float:
        return self.covered / self.total if self.total else 1.0

    def summary(self) -> str:
        return f"quantizer coverage ({self.target} sim) {self.covered}/{self.total} ops ({100 * self.ratio:.1f}%)"

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "covered": self.covered,
            "total": self.total,
            "uncovered": [vars(op) for op in self.uncovered],
        }


def build_sim(model: torch.nn.Module, example: Example, target: Target, **options: Any) -> Sim:
    """The target toolkit's simulation of ``model``; a model the toolkit refuses is the user's to fix."""
    try:
        return target.build_sim(model, example, **options)
    except InputError:
        raise
    except Exception as error:  # the toolkit refused the model (unknown modules, dict outputs, ...)
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise ModelError(
            f"{target.name}'s quantization simulator does not build on {type(model).__name__} "
            f"({type(error).__name__}: {first}); run qready prepare --target {target.name} first, "
            f"or qready check --target {target.name} to see why"
        ) from error


def quantizer_coverage(
    model: torch.nn.Module,
    example_inputs: tuple[Any, ...] | Mapping[str, Any],
    *,
    target: str | Target = "aimet",
) -> QuantizerCoverage:
    """Build ``target``'s sim on ``model`` and count the ops of one forward that run behind a quantizer.

    The model runs in eval mode; it is not changed (the sim is built on a copy).
    """
    chosen = get_target(target)
    example = as_example(example_inputs)
    with preserved(model), torch.no_grad():
        sim = build_sim(copy.deepcopy(model).eval(), example, chosen)
        try:
            sim.compute_encodings(example.call)
        except Exception as error:
            raise ModelError(
                f"{chosen.name}'s sim of {type(model).__name__} failed to calibrate on the example "
                f"({type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''})"
            ) from error
    return sim_coverage(sim.model, example, chosen)


def sim_coverage(sim_model: torch.nn.Module, example: Example, target: Target) -> QuantizerCoverage:
    """One forward of a calibrated simulated model: the ops that ran inside a quantized module, and the others."""
    with torch.no_grad():
        observation = observe(sim_model, example, is_leaf=target.is_quantized)
    quantizers = {path for path, module in sim_model.named_modules() if target.is_quantizer(module)}

    def in_quantizer(path: str) -> bool:
        parts = path.split(".")
        return any(".".join(parts[:i]) in quantizers for i in range(1, len(parts) + 1))

    uncovered = tuple(
        UncoveredOp(site.op, site.module, site.file, site.line, site.count)
        for site in observation.op_sites
        if not in_quantizer(site.module)
    )
    return QuantizerCoverage(
        target=target.name,
        covered=observation.covered_ops,
        total=observation.covered_ops + sum(op.count for op in uncovered),
        uncovered=uncovered,
    )
