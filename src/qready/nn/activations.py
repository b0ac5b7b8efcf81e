"""Activations that ``torch.nn`` has no exact module for.

``F.softmax(x, dim, dtype=...)`` casts before the softmax, which ``nn.Softmax``
cannot express; ``F.prelu(x, weight)`` takes its weight as an argument, which
``nn.PReLU`` owns as a parameter. Everything else maps to a ``torch.nn`` class.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from qready.nn._base import OpModule

__all__ = ["FunctionalPReLU", "LogSoftmax", "Softmax", "Softmin"]


class _SoftmaxLike(OpModule):
    __constants__ = ("dim", "dtype")

    def __init__(self, dim: int | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.dim = dim
        self.dtype = dtype


class Softmax(_SoftmaxLike):
    """``F.softmax(input, dim, dtype=dtype)``: ``nn.Softmax`` plus the input cast."""

    def forward(self, input: Tensor) -> Tensor:
        return F.softmax(input, self.dim, dtype=self.dtype)


class LogSoftmax(_SoftmaxLike):
    """``F.log_softmax(input, dim, dtype=dtype)``: ``nn.LogSoftmax`` plus the input cast."""

    def forward(self, input: Tensor) -> Tensor:
        return F.log_softmax(input, self.dim, dtype=self.dtype)


class Softmin(_SoftmaxLike):
    """``F.softmin(input, dim, dtype=dtype)``: ``nn.Softmin`` plus the input cast."""

    def forward(self, input: Tensor) -> Tensor:
        return F.softmin(input, self.dim, dtype=self.dtype)


class FunctionalPReLU(OpModule):
    """``F.prelu(input, weight)`` with the weight as a forward argument (not owned)."""

    def forward(self, input: Tensor, weight: Tensor) -> Tensor:
        return F.prelu(input, weight)
