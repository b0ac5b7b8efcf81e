"""Equivalence, bit for bit: the prepared model against the original."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["OutputDiff", "compare_exact", "first_difference"]


@dataclass(frozen=True)
class OutputDiff:
    """One output of one run: equal or not, and by how much."""

    run: str  # "example" or "fresh"
    name: str
    equal: bool
    max_abs_diff: float

    def to_dict(self) -> dict[str, Any]:
        return {"run": self.run, "name": self.name, "equal": self.equal, "max_abs_diff": self.max_abs_diff}


def compare_exact(run: str, names: list[str], expected: list[Any], got: list[Any]) -> list[OutputDiff]:
    """Compare outputs with ``torch.equal``; keep the max difference of those that differ."""
    if len(expected) != len(got):
        return [OutputDiff(run, f"{len(got)} outputs instead of {len(expected)}", False, float("inf"))]
    diffs = []
    for name, want, have in zip(names, expected, got):
        if not isinstance(want, torch.Tensor) or not isinstance(have, torch.Tensor):
            equal = type(want) is type(have) and want == have
            diffs.append(OutputDiff(run, name, bool(equal), 0.0 if equal else float("inf")))
            continue
        if want.shape != have.shape or want.dtype != have.dtype:
            diffs.append(OutputDiff(run, name, False, float("inf")))
            continue
        equal = torch.equal(want, have) or _equal_with_nans(want, have)
        diff = 0.0 if equal else _max_abs_diff(want, have)
        diffs.append(OutputDiff(run, name, equal, diff))
    return diffs


def first_difference(diffs: list[OutputDiff]) -> OutputDiff | None:
    return next((d for d in diffs if not d.equal), None)


def _equal_with_nans(a: torch.Tensor, b: torch.Tensor) -> bool:
    if not (a.is_floating_point() or a.is_complex()):
        return False
    nan_a, nan_b = torch.isnan(a), torch.isnan(b)
    return bool(torch.equal(nan_a, nan_b) and torch.equal(a[~nan_a], b[~nan_b]))


def _max_abs_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    if a.numel() == 0:
        return 0.0
    if a.dtype == torch.bool:
        return float((a != b).any())
    return float((a.double() - b.double()).abs().max())
