"""Elementwise arithmetic, math, comparison and logical ops as modules.

Binary arithmetic uses the Python operator (``input + other``) so that a call
recorded as ``operator.add(2, x)`` or ``Tensor.__radd__`` takes exactly the
same path as the original, scalars on either side included; ``torch.add(x, y)``
and ``x + y`` run the same kernel. ``inplace=True`` modules update and return
their first operand, as ``add_`` and ``+=`` do.

A Python number operand (``x * 0.5``, ``2 - x``, ``x > 0``) is a constant of
the module, not an input: ``Mul(other=0.5)``, ``Sub(other=2, reflected=True)``,
so that the module takes and returns tensors only (guideline: tensors or tuples
of tensors at every module boundary). The operator still sees the number, so
the kernel torch runs is the one the original expression ran.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from qready.nn._base import OpModule, TensorOrScalar

__all__ = [
    "Abs",
    "Add",
    "BitwiseAnd",
    "BitwiseNot",
    "BitwiseOr",
    "BitwiseXor",
    "Ceil",
    "Clamp",
    "ClampMax",
    "ClampMin",
    "Cos",
    "Div",
    "Equal",
    "Erf",
    "Exp",
    "Floor",
    "FloorDiv",
    "Greater",
    "GreaterEqual",
    "Less",
    "LessEqual",
    "Log",
    "LogicalAnd",
    "LogicalNot",
    "LogicalOr",
    "LogicalXor",
    "MaskedFill",
    "Maximum",
    "Minimum",
    "Mul",
    "Neg",
    "NotEqual",
    "Pow",
    "Reciprocal",
    "Remainder",
    "Round",
    "Rsqrt",
    "Sign",
    "Sin",
    "Sqrt",
    "Square",
    "Sub",
    "Where",
]


class _InplaceCapable(OpModule):
    """An op with an in-place variant, chosen by ``inplace``."""

    __constants__: ClassVar[tuple[str, ...]] = ("inplace",)

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace


class _Binary(OpModule):
    """A binary op whose second operand may be a constant of the module.

    ``other`` holds a Python number that the original call passed (``x > 0``);
    the forward then takes the tensor alone. ``reflected`` puts the constant on
    the left (``2 - x``, which Python runs as ``x.__rsub__(2)``).
    """

    __constants__: ClassVar[tuple[str, ...]] = ("other", "reflected")

    def __init__(self, other: int | float | bool | None = None, reflected: bool = False) -> None:
        super().__init__()
        self.other = other
        self.reflected = reflected

    def operands(self, input: TensorOrScalar, other: TensorOrScalar | None) -> tuple[TensorOrScalar, TensorOrScalar]:
        """The two operands, in the order the original expression had them."""
        if other is None:
            other = self.other
        if self.reflected:
            return other, input  # type: ignore[return-value]  # see above
        return input, other  # type: ignore[return-value]  # see above


class _InplaceBinary(_Binary):
    """A binary op with an in-place variant (``+=``, ``add_``), chosen by ``inplace``."""

    __constants__: ClassVar[tuple[str, ...]] = ("inplace", "other", "reflected")

    def __init__(self, inplace: bool = False, other: int | float | bool | None = None, reflected: bool = False) -> None:
        super().__init__(other, reflected)
        self.inplace = inplace


# --- binary arithmetic -------------------------------------------------------


class _Scaled(_InplaceBinary):
    """``input op alpha * other``: ``add`` and ``sub`` with their ``alpha``."""

    __constants__ = ("alpha", "inplace", "other", "reflected")

    def __init__(
        self, alpha: int | float = 1, inplace: bool = False, other: int | float | bool | None = None,
        reflected: bool = False,
    ) -> None:
        super().__init__(inplace, other, reflected)
        self.alpha = alpha


class Add(_Scaled):
    """``input + alpha * other``: ``torch.add``, ``Tensor.add(_)``, ``+``, ``+=``."""

    def forward(self, input: TensorOrScalar, other: TensorOrScalar | None = None) -> TensorOrScalar:
        input, other = self.operands(input, other)
        if self.alpha != 1:
            if self.inplace:
                return input.add_(other, alpha=self.alpha)  # type: ignore[union-attr]  # inplace is only set where the input is a tensor
            return torch.add(input, other, alpha=self.alpha)
        if self.inplace:
            input += other
            return input
        return input + other


class Sub(_Scaled):
    """``input - alpha * other``: ``torch.sub``, ``Tensor.sub(_)``, ``-``, ``-=``."""

    def forward(self, input: TensorOrScalar, other: TensorOrScalar | None = None) -> TensorOrScalar:
        input, other = self.operands(input, other)
        if self.alpha != 1:
            if self.inplace:
                return input.sub_(other, alpha=self.alpha)  # type: ignore[union-attr]  # inplace is only set where the input is a tensor
            return torch.sub(input, other, alpha=self.alpha)
        if self.inplace:
            input -= other
            return input
        return input - other


class Mul(_InplaceBinary):
    """``input * other``: ``torch.mul``, ``Tensor.mul(_)``, ``*``, ``*=``."""

    def forward(self, input: TensorOrScalar, other: TensorOrScalar | None = None) -> TensorOrScalar:
        input, other = self.operands(input, other)
        if self.inplace:
            input *= other
            return input
        return input * other


class Div(_InplaceBinary):
    """``input / other``, or rounded with ``rounding_mode`` (``'trunc'``, ``'floor'``).

    ``2 / x`` is ``x.reciprocal() * 2`` in torch, not ``torch.div(2, x)``; the
    Python operator keeps that path.
    """

    __constants__ = ("rounding_mode", "inplace", "other", "reflected")

    def __init__(
        self, rounding_mode: str | None = None, inplace: bool = False, other: int | float | bool | None = None,
        reflected: bool = False,
    ) -> None:
        super().__init__(inplace, other, reflected)
        self.rounding_mode = rounding_mode

    def forward(self, input: TensorOrScalar, other: TensorOrScalar | None = None) -> TensorOrScalar:
        input, other = self.operands(input, other)
        if self.rounding_mode is not None:
            if self.inplace:
                return input.div_(other, rounding_mode=self.rounding_mode)  # type: ignore[union-attr]  # inplace is only set where the input is a tensor
            return torch.div(input, other, rounding_mode=self.rounding_mode)
        if self.inplace:
            input /= other
            return input
        return input / other


class FloorDiv(_InplaceBinary):
    """``input // other``: ``torch.floor_divide``, ``//``, ``//=``."""

    def forward(self, input: TensorOrScalar, other: TensorOrScalar | None = None) -> TensorOrScalar:
        input, other = self.operands(input, other)
        if self.inplace:
            input //= other
            return input
        return input // other


class Remainder(_InplaceBinary):
    """``input % other`` (Python's sign convention): ``torch.remainder``, ``%``, ``%=``."""

    def forward(self, input: TensorOrScalar, other: TensorOrScalar | None = None) -> TensorOrScalar:
        input, other = self.operands(input, other)
        if self.inplace:
            input %= other
            return input
        return input % other


class Pow(_InplaceBinary):
    """``input ** exponent``: ``torch.pow``, ``Tensor.pow(_)``, ``**``, ``**=``."""

    def forward(self, input: TensorOrScalar, exponent: TensorOrScalar | None = None) -> TensorOrScalar:
        input, exponent = self.operands(input, exponent)
        if self.inplace:
            input **= exponent
            return input
        return input**exponent


class Minimum(OpModule):
    """``torch.minimum(input, other)``: elementwise minimum, NaN-propagating."""

    def forward(self, input: Tensor, other: Tensor) -> Tensor:
        return torch.minimum(input, other)


class Maximum(OpModule):
    """``torch.maximum(input, other)``: elementwise maximum, NaN-propagating."""

    def forward(self, input: Tensor, other: Tensor) -> Tensor:
        return torch.maximum(input, other)


# --- unary math --------------------------------------------------------------


class Neg(_InplaceCapable):
    """``-input``: ``torch.neg``, ``Tensor.neg(_)``, unary ``-``."""

    def forward(self, input: TensorOrScalar) -> TensorOrScalar:
        if self.inplace:
            return input.neg_()  # type: ignore[union-attr]  # inplace is only set where the input is a tensor
        return -input


class Abs(_InplaceCapable):
    """``abs(input)``: ``torch.abs``, ``Tensor.abs(_)``, ``abs()``."""

    def forward(self, input: TensorOrScalar) -> TensorOrScalar:
        if self.inplace:
            return input.abs_()  # type: ignore[union-attr]  # inplace is only set where the input is a tensor
        return abs(input)  # type: ignore[return-value]  # abs() of a tensor is a tensor, of a number a number


class Exp(_InplaceCapable):
    """``torch.exp(input)``."""

    def forward(self, input: Tensor) -> Tensor:
        return input.exp_() if self.inplace else torch.exp(input)


class Log(_InplaceCapable):
    """``torch.log(input)``: natural logarithm."""

    def forward(self, input: Tensor) -> Tensor:
        return input.log_() if self.inplace else torch.log(input)


class Sqrt(_InplaceCapable):
    """``torch.sqrt(input)``."""

    def forward(self, input: Tensor) -> Tensor:
        return input.sqrt_() if self.inplace else torch.sqrt(input)


class Rsqrt(_InplaceCapable):
    """``torch.rsqrt(input)``: ``1 / sqrt(input)`` in one kernel."""

    def forward(self, input: Tensor) -> Tensor:
        return input.rsqrt_() if self.inplace else torch.rsqrt(input)


class Square(_InplaceCapable):
    """``torch.square(input)``."""

    def forward(self, input: Tensor) -> Tensor:
        return input.square_() if self.inplace else torch.square(input)


class Reciprocal(_InplaceCapable):
    """``torch.reciprocal(input)``: ``1 / input``."""

    def forward(self, input: Tensor) -> Tensor:
        return input.reciprocal_() if self.inplace else torch.reciprocal(input)


class Sin(_InplaceCapable):
    """``torch.sin(input)``."""

    def forward(self, input: Tensor) -> Tensor:
        return input.sin_() if self.inplace else torch.sin(input)


class Cos(_InplaceCapable):
    """``torch.cos(input)``."""

    def forward(self, input: Tensor) -> Tensor:
        return input.cos_() if self.inplace else torch.cos(input)


class Erf(_InplaceCapable):
    """``torch.erf(input)``: the Gauss error function."""

    def forward(self, input: Tensor) -> Tensor:
        return input.erf_() if self.inplace else torch.erf(input)


class Sign(_InplaceCapable):
    """``torch.sign(input)``: -1, 0 or 1."""

    def forward(self, input: Tensor) -> Tensor:
        return input.sign_() if self.inplace else torch.sign(input)


class Floor(_InplaceCapable):
    """``torch.floor(input)``."""

    def forward(self, input: Tensor) -> Tensor:
        return input.floor_() if self.inplace else torch.floor(input)


class Ceil(_InplaceCapable):
    """``torch.ceil(input)``."""

    def forward(self, input: Tensor) -> Tensor:
        return input.ceil_() if self.inplace else torch.ceil(input)


class Round(OpModule):
    """``torch.round(input, decimals=...)``: round half to even."""

    __constants__ = ("decimals", "inplace")

    def __init__(self, decimals: int = 0, inplace: bool = False) -> None:
        super().__init__()
        self.decimals = decimals
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        # ``round(x)`` and ``round(x, decimals=0)`` are separate overloads.
        if self.decimals == 0:
            return input.round_() if self.inplace else torch.round(input)
        if self.inplace:
            return input.round_(decimals=self.decimals)
        return torch.round(input, decimals=self.decimals)


class Clamp(OpModule):
    """``torch.clamp(input, min, max)`` (also ``clip``).

    ``min``/``max`` are attributes when constant; a tensor bound comes in as a
    forward argument instead and takes the place of the attribute.
    """

    __constants__ = ("min", "max", "inplace")

    def __init__(
        self, min: float | None = None, max: float | None = None, inplace: bool = False
    ) -> None:
        super().__init__()
        self.min = min
        self.max = max
        self.inplace = inplace

    def forward(
        self,
        input: Tensor,
        min: Tensor | float | None = None,
        max: Tensor | float | None = None,
    ) -> Tensor:
        low = self.min if min is None else min
        high = self.max if max is None else max
        if self.inplace:
            return input.clamp_(low, high)
        return torch.clamp(input, low, high)


class ClampMin(OpModule):
    """``torch.clamp_min(input, min)``; a tensor ``min`` comes in as a forward argument."""

    __constants__ = ("min", "inplace")

    def __init__(self, min: float | None = None, inplace: bool = False) -> None:
        super().__init__()
        self.min = min
        self.inplace = inplace

    def forward(self, input: Tensor, min: Tensor | float | None = None) -> Tensor:
        low = self.min if min is None else min
        return input.clamp_min_(low) if self.inplace else torch.clamp_min(input, low)


class ClampMax(OpModule):
    """``torch.clamp_max(input, max)``; a tensor ``max`` comes in as a forward argument."""

    __constants__ = ("max", "inplace")

    def __init__(self, max: float | None = None, inplace: bool = False) -> None:
        super().__init__()
        self.max = max
        self.inplace = inplace

    def forward(self, input: Tensor, max: Tensor | float | None = None) -> Tensor:
        high = self.max if max is None else max
        return input.clamp_max_(high) if self.inplace else torch.clamp_max(input, high)


# --- comparisons (boolean tensors as values) ---------------------------------


class Greater(_Binary):
    """``input > other``: ``torch.gt``, ``torch.greater``."""

    def forward(self, input: TensorOrScalar, other: TensorOrScalar | None = None) -> TensorOrScalar:
        input, other = self.operands(input, other)
        return input > other


class GreaterEqual(_Binary):
    """``input >= other``: ``torch.ge``, ``torch.greater_equal``."""

    def forward(self, input: TensorOrScalar, other: TensorOrScalar | None = None) -> TensorOrScalar:
        input, other = self.operands(input, other)
        return input >= other


class Less(_Binary):
    """``input < other``: ``torch.lt``, ``torch.less``."""

    def forward(self, input: TensorOrScalar, other: TensorOrScalar | None = None) -> TensorOrScalar:
        input, other = self.operands(input, other)
        return input < other


class LessEqual(_Binary):
    """``input <= other``: ``torch.le``, ``torch.less_equal``."""

    def forward(self, input: TensorOrScalar, other: TensorOrScalar | None = None) -> TensorOrScalar:
        input, other = self.operands(input, other)
        return input <= other


class Equal(_Binary):
    """``input == other`` elementwise: ``torch.eq`` (not ``torch.equal``)."""

    def forward(self, input: TensorOrScalar, other: TensorOrScalar | None = None) -> TensorOrScalar:
        input, other = self.operands(input, other)
        return input == other


class NotEqual(_Binary):
    """``input != other`` elementwise: ``torch.ne``, ``torch.not_equal``."""

    def forward(self, input: TensorOrScalar, other: TensorOrScalar | None = None) -> TensorOrScalar:
        input, other = self.operands(input, other)
        return input != other


# --- bitwise and logical ------------------------------------------------------


class BitwiseAnd(_InplaceBinary):
    """``input & other``: ``torch.bitwise_and``, ``&``, ``&=`` (logical and on bool masks)."""

    def forward(self, input: TensorOrScalar, other: TensorOrScalar | None = None) -> TensorOrScalar:
        input, other = self.operands(input, other)
        if self.inplace:
            input &= other
            return input
        return input & other


class BitwiseOr(_InplaceBinary):
    """``input | other``: ``torch.bitwise_or``, ``|``, ``|=``."""

    def forward(self, input: TensorOrScalar, other: TensorOrScalar | None = None) -> TensorOrScalar:
        input, other = self.operands(input, other)
        if self.inplace:
            input |= other
            return input
        return input | other


class BitwiseXor(_InplaceBinary):
    """``input ^ other``: ``torch.bitwise_xor``, ``^``, ``^=``."""

    def forward(self, input: TensorOrScalar, other: TensorOrScalar | None = None) -> TensorOrScalar:
        input, other = self.operands(input, other)
        if self.inplace:
            input ^= other
            return input
        return input ^ other


class BitwiseNot(OpModule):
    """``~input``: ``torch.bitwise_not`` (logical not on bool masks)."""

    def forward(self, input: TensorOrScalar) -> TensorOrScalar:
        return ~input


class LogicalAnd(OpModule):
    """``torch.logical_and(input, other)``."""

    def forward(self, input: Tensor, other: Tensor) -> Tensor:
        return torch.logical_and(input, other)


class LogicalOr(OpModule):
    """``torch.logical_or(input, other)``."""

    def forward(self, input: Tensor, other: Tensor) -> Tensor:
        return torch.logical_or(input, other)


class LogicalXor(OpModule):
    """``torch.logical_xor(input, other)``."""

    def forward(self, input: Tensor, other: Tensor) -> Tensor:
        return torch.logical_xor(input, other)


class LogicalNot(OpModule):
    """``torch.logical_not(input)``."""

    def forward(self, input: Tensor) -> Tensor:
        return torch.logical_not(input)


# --- selection -----------------------------------------------------------------


class Where(OpModule):
    """``torch.where(condition, input, other)``; ``x.where(c, y)`` is ``where(c, x, y)``.

    A Python number for ``input`` or ``other`` is a constant of the module; the
    forward then takes the tensors alone (``other`` by keyword when ``input`` is
    the constant).
    """

    __constants__ = ("input", "other")

    def __init__(self, input: int | float | bool | None = None, other: int | float | bool | None = None) -> None:
        super().__init__()
        self.input = input
        self.other = other

    def forward(
        self, condition: Tensor, input: TensorOrScalar | None = None, other: TensorOrScalar | None = None
    ) -> Tensor:
        return torch.where(
            condition,
            self.input if input is None else input,
            self.other if other is None else other,
        )


class MaskedFill(_InplaceCapable):
    """``input.masked_fill(mask, value)``; ``inplace`` is ``masked_fill_``.

    A Python number ``value`` (``float('-inf')``) is a constant of the module.
    """

    __constants__ = ("inplace", "value")

    def __init__(self, inplace: bool = False, value: int | float | bool | None = None) -> None:
        super().__init__(inplace)
        self.value = value

    def forward(self, input: Tensor, mask: Tensor, value: Tensor | float | None = None) -> Tensor:
        fill = self.value if value is None else value
        if self.inplace:
            return input.masked_fill_(mask, fill)
        return torch.masked_fill(input, mask, fill)
