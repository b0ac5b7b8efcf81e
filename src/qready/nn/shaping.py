"""Ops that join, pad or resample tensors."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from qready.nn._base import OpModule

__all__ = ["Cat", "GridSample", "Interpolate", "Pad", "Stack"]


class Cat(OpModule):
    """``torch.cat(tensors, dim)`` (also ``concat``, ``concatenate``); the tensors come in as one tuple."""

    __constants__ = ("dim",)

    def __init__(self, dim: int = 0) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, tensors: Sequence[Tensor]) -> Tensor:
        return torch.cat(tensors, self.dim)


class Stack(OpModule):
    """``torch.stack(tensors, dim)``; the tensors come in as one tuple."""

    __constants__ = ("dim",)

    def __init__(self, dim: int = 0) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, tensors: Sequence[Tensor]) -> Tensor:
        return torch.stack(tensors, self.dim)


class Pad(OpModule):
    """``F.pad(input, pad, mode, value)``.

    ``pad`` is an attribute when constant; padding computed from shapes at run
    time comes in as the forward argument ``pad`` instead.
    """

    __constants__ = ("pad", "mode", "value")

    def __init__(
        self, pad: tuple[int, ...] | None = None, mode: str = "constant", value: float | None = None
    ) -> None:
        super().__init__()
        self.pad = pad
        self.mode = mode
        self.value = value

    def forward(self, input: Tensor, pad: Sequence[int] | None = None) -> Tensor:
        padding = self.pad if pad is None else pad
        return F.pad(input, padding, self.mode, self.value)


class Interpolate(OpModule):
    """``F.interpolate(input, size, scale_factor, mode, align_corners, ...)``.

    ``size``/``scale_factor`` are attributes when constant; a size taken from
    another tensor's shape at run time comes in as a forward argument instead.
    """

    __constants__ = (
        "size",
        "scale_factor",
        "mode",
        "align_corners",
        "recompute_scale_factor",
        "antialias",
    )

    def __init__(
        self,
        size: int | tuple[int, ...] | None = None,
        scale_factor: float | tuple[float, ...] | None = None,
        mode: str = "nearest",
        align_corners: bool | None = None,
        recompute_scale_factor: bool | None = None,
        antialias: bool = False,
    ) -> None:
        super().__init__()
        self.size = size
        self.scale_factor = scale_factor
        self.mode = mode
        self.align_corners = align_corners
        self.recompute_scale_factor = recompute_scale_factor
        self.antialias = antialias

    def forward(
        self,
        input: Tensor,
        size: int | Sequence[int] | None = None,
        scale_factor: float | Sequence[float] | None = None,
    ) -> Tensor:
        return F.interpolate(
            input,
            size=self.size if size is None else size,
            scale_factor=self.scale_factor if scale_factor is None else scale_factor,
            mode=self.mode,
            align_corners=self.align_corners,
            recompute_scale_factor=self.recompute_scale_factor,
            antialias=self.antialias,
        )


class GridSample(OpModule):
    """``F.grid_sample(input, grid, mode, padding_mode, align_corners)``."""

    __constants__ = ("mode", "padding_mode", "align_corners")

    def __init__(
        self, mode: str = "bilinear", padding_mode: str = "zeros", align_corners: bool | None = None
    ) -> None:
        super().__init__()
        self.mode = mode
        self.padding_mode = padding_mode
        self.align_corners = align_corners

    def forward(self, input: Tensor, grid: Tensor) -> Tensor:
        return F.grid_sample(input, grid, self.mode, self.padding_mode, self.align_corners)
