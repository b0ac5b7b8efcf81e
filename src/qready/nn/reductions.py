"""Reductions and scans with their dimensions as attributes.

``dim=None`` means "over all elements", which several of these ops spell as a
separate overload (``torch.sum(x)`` vs ``torch.sum(x, dim)``); each forward
calls the overload the original call used.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from qready.nn._base import OpModule

__all__ = [
    "AMax",
    "AMin",
    "CumSum",
    "LogSumExp",
    "Max",
    "Mean",
    "Min",
    "Norm",
    "Prod",
    "Std",
    "Sum",
    "Var",
]

_Dim = int | tuple[int, ...] | None


class _DimReduction(OpModule):
    __constants__ = ("dim", "keepdim", "dtype")

    def __init__(
        self, dim: _Dim = None, keepdim: bool = False, dtype: torch.dtype | None = None
    ) -> None:
        super().__init__()
        self.dim = dim
        self.keepdim = keepdim
        self.dtype = dtype


class Sum(_DimReduction):
    """``torch.sum(input, dim, keepdim, dtype=dtype)``."""

    def forward(self, input: Tensor) -> Tensor:
        if self.dim is None and not self.keepdim:
            return torch.sum(input, dtype=self.dtype)
        return torch.sum(input, self.dim, self.keepdim, dtype=self.dtype)


class Mean(_DimReduction):
    """``torch.mean(input, dim, keepdim, dtype=dtype)``."""

    def forward(self, input: Tensor) -> Tensor:
        if self.dim is None and not self.keepdim:
            return torch.mean(input, dtype=self.dtype)
        return torch.mean(input, self.dim, self.keepdim, dtype=self.dtype)


class Prod(OpModule):
    """``torch.prod(input, dim, keepdim, dtype=dtype)`` (one dim, or all elements)."""

    __constants__ = ("dim", "keepdim", "dtype")

    def __init__(
        self, dim: int | None = None, keepdim: bool = False, dtype: torch.dtype | None = None
    ) -> None:
        super().__init__()
        self.dim = dim
        self.keepdim = keepdim
        self.dtype = dtype

    def forward(self, input: Tensor) -> Tensor:
        if self.dim is None:
            return torch.prod(input, dtype=self.dtype)
        return torch.prod(input, self.dim, self.keepdim, dtype=self.dtype)


class Norm(OpModule):
    """``torch.norm(input, p, dim, keepdim, dtype=dtype)`` (also ``Tensor.norm``)."""

    __constants__ = ("p", "dim", "keepdim", "dtype")

    def __init__(
        self,
        p: float | str | None = "fro",
        dim: _Dim = None,
        keepdim: bool = False,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.p = p
        self.dim = dim
        self.keepdim = keepdim
        self.dtype = dtype

    def forward(self, input: Tensor) -> Tensor:
        return torch.norm(input, self.p, self.dim, self.keepdim, dtype=self.dtype)


class CumSum(OpModule):
    """``torch.cumsum(input, dim, dtype=dtype)``."""

    __constants__ = ("dim", "dtype")

    def __init__(self, dim: int, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.dim = dim
        self.dtype = dtype

    def forward(self, input: Tensor) -> Tensor:
        return torch.cumsum(input, self.dim, dtype=self.dtype)


class _ExtremeReduction(OpModule):
    __constants__ = ("dim", "keepdim")

    def __init__(self, dim: int | tuple[int, ...] = (), keepdim: bool = False) -> None:
        super().__init__()
        self.dim = dim
        self.keepdim = keepdim


class AMax(_ExtremeReduction):
    """``torch.amax(input, dim, keepdim)``: maximum values, no indices (``dim=()``: all)."""

    def forward(self, input: Tensor) -> Tensor:
        return torch.amax(input, self.dim, self.keepdim)


class AMin(_ExtremeReduction):
    """``torch.amin(input, dim, keepdim)``: minimum values, no indices (``dim=()``: all)."""

    def forward(self, input: Tensor) -> Tensor:
        return torch.amin(input, self.dim, self.keepdim)


class _ValuesAndIndices(OpModule):
    __constants__ = ("dim", "keepdim")

    def __init__(self, dim: int | None = None, keepdim: bool = False) -> None:
        super().__init__()
        self.dim = dim
        self.keepdim = keepdim


class Max(_ValuesAndIndices):
    """``torch.max`` in all three forms, returning what torch returns.

    ``Max()(x)``: the largest element; ``Max(dim=1)(x)``: the named tuple
    ``(values, indices)``; ``Max()(x, other)``: ``torch.max(x, other)``, which
    torch resolves at run time (elementwise maximum for a tensor ``other``).
    """

    def forward(self, input: Tensor, other: Any = None) -> Any:
        if other is not None:
            return torch.max(input, other)
        if self.dim is None:
            return torch.max(input)
        return torch.max(input, self.dim, self.keepdim)


class Min(_ValuesAndIndices):
    """``torch.min`` in all three forms; see :class:`Max`."""

    def forward(self, input: Tensor, other: Any = None) -> Any:
        if other is not None:
            return torch.min(input, other)
        if self.dim is None:
            return torch.min(input)
        return torch.min(input, self.dim, self.keepdim)


class _Moment(OpModule):
    __constants__ = ("dim", "correction", "keepdim")

    def __init__(
        self, dim: _Dim = None, correction: int | float | None = None, keepdim: bool = False
    ) -> None:
        super().__init__()
        self.dim = dim
        self.correction = correction  # None: torch's default, Bessel's correction (1)
        self.keepdim = keepdim


class Var(_Moment):
    """``torch.var(input, dim, correction=..., keepdim=...)``; ``unbiased=b`` is ``correction=int(b)``."""

    def forward(self, input: Tensor) -> Tensor:
        return torch.var(input, self.dim, correction=self.correction, keepdim=self.keepdim)


class Std(_Moment):
    """``torch.std(input, dim, correction=..., keepdim=...)``; ``unbiased=b`` is ``correction=int(b)``."""

    def forward(self, input: Tensor) -> Tensor:
        return torch.std(input, self.dim, correction=self.correction, keepdim=self.keepdim)


class LogSumExp(OpModule):
    """``torch.logsumexp(input, dim, keepdim)``."""

    __constants__ = ("dim", "keepdim")

    def __init__(self, dim: int | tuple[int, ...], keepdim: bool = False) -> None:
        super().__init__()
        self.dim = dim
        self.keepdim = keepdim

    def forward(self, input: Tensor) -> Tensor:
        return torch.logsumexp(input, self.dim, self.keepdim)
