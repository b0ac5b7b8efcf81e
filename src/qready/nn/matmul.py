"""Matrix products between activations (both operands are forward arguments)."""

from __future__ import annotations

import torch
from torch import Tensor

from qready.nn._base import OpModule

__all__ = ["AddMM", "BAddBMM", "BatchMatMul", "Einsum", "MM", "MatMul"]


class MatMul(OpModule):
    """``input @ other``: ``torch.matmul``, ``Tensor.matmul``, ``@``."""

    def forward(self, input: Tensor, other: Tensor) -> Tensor:
        return input @ other


class MM(OpModule):
    """``torch.mm(input, mat2)``: product of two 2-D matrices."""

    def forward(self, input: Tensor, mat2: Tensor) -> Tensor:
        return torch.mm(input, mat2)


class BatchMatMul(OpModule):
    """``torch.bmm(input, mat2)``: batched product of 3-D tensors."""

    def forward(self, input: Tensor, mat2: Tensor) -> Tensor:
        return torch.bmm(input, mat2)


class AddMM(OpModule):
    """``torch.addmm(input, mat1, mat2, beta=beta, alpha=alpha)``: ``beta*input + alpha*mat1@mat2``."""

    __constants__ = ("beta", "alpha")

    def __init__(self, beta: int | float = 1, alpha: int | float = 1) -> None:
        super().__init__()
        self.beta = beta
        self.alpha = alpha

    def forward(self, input: Tensor, mat1: Tensor, mat2: Tensor) -> Tensor:
        return torch.addmm(input, mat1, mat2, beta=self.beta, alpha=self.alpha)


class BAddBMM(OpModule):
    """``torch.baddbmm(input, batch1, batch2, beta=beta, alpha=alpha)``."""

    __constants__ = ("beta", "alpha")

    def __init__(self, beta: int | float = 1, alpha: int | float = 1) -> None:
        super().__init__()
        self.beta = beta
        self.alpha = alpha

    def forward(self, input: Tensor, batch1: Tensor, batch2: Tensor) -> Tensor:
        return torch.baddbmm(input, batch1, batch2, beta=self.beta, alpha=self.alpha)


class Einsum(OpModule):
    """``torch.einsum(equation, *operands)`` with the equation as an attribute."""

    __constants__ = ("equation",)

    def __init__(self, equation: str) -> None:
        super().__init__()
        self.equation = equation

    def forward(self, *operands: Tensor) -> Tensor:
        return torch.einsum(self.equation, *operands)

    def extra_repr(self) -> str:
        return repr(self.equation)
