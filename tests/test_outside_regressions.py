"""Idioms of libraries outside the zoo that prepare must trace as eager runs them.

Each model here is a small reproduction, written here, of what one of the outside
benchmark's models (``benchmarks/outside_models.py``) does; the docstring names it.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

import qready


def _prepared_and_equal(model: nn.Module, *examples: tuple[torch.Tensor, ...]) -> qready.PreparedModule:
    prepared = qready.prepare(model, examples[0])
    for example in examples:
        with torch.no_grad():
            want = model(*example)
            got = prepared(*prepared.flatten_inputs(*example))
        got = prepared.unflatten_outputs(got)
        assert torch.equal(want, got)
    return prepared


class NumpySizes(nn.Module):
    """monai's SwinUNETR: ``np.array(x.shape[2:])`` checks the input size, and the window padding
    is ``int(np.ceil(h / window)) * window`` on sizes read from the input."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, 4, 1)
        self.norm = nn.LayerNorm(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = np.array(x.shape[2:])
        if (size % 2 > 0).any():
            raise ValueError("sizes must be even")
        x = self.proj(x)
        b, c, h, w = x.shape
        hp = int(np.ceil(h / 3)) * 3
        x = nn.functional.pad(x, (0, 0, 0, hp - h))
        return self.norm(x.permute(0, 2, 3, 1))


def test_sizes_read_into_numpy_trace_as_in_eager() -> None:
    prepared = _prepared_and_equal(NumpySizes().eval(), (torch.randn(2, 3, 8, 8),), (torch.randn(1, 3, 8, 8),))
    result = prepared.prepare_result
    assert result.leaves == []  # the root traces: numpy reads the example's sizes, as it reads eager's
    assert result.verified and all(d.equal for d in result.diffs)
