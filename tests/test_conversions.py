"""The functional -> module table: every entry is built, run and compared bit for bit."""

from __future__ import annotations

import copy
import math
import operator
import pickle
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import Tensor, nn

import qready.nn as qnn
from qready.conversions import CONVERSIONS, Conversion, conversion_for, lookup
from qready.nn.generic import TorchFunction, dotted_path, resolve_dotted_path

T = torch.Tensor
Call = tuple[tuple[Any, ...], dict[str, Any]]


def c(*args: Any, **kwargs: Any) -> Call:
    return args, kwargs


# --- seeded inputs: every factory below is called twice and must agree ----------


def x(*shape: int) -> Tensor:
    return torch.randn(*(shape or (2, 3, 4)))


def pos(*shape: int) -> Tensor:
    return torch.rand(*(shape or (2, 3, 4))) + 0.5


def mask(*shape: int) -> Tensor:
    return torch.rand(*(shape or (2, 3, 4))) > 0.5


def ints(*shape: int) -> Tensor:
    return torch.randint(-8, 8, shape or (2, 3, 4))


def param(*shape: int) -> nn.Parameter:
    return nn.Parameter(torch.randn(*shape))


SEQ, IMG, VOL = (1, 4, 8), (1, 4, 6, 6), (1, 4, 4, 4, 4)


@dataclass(frozen=True)
class Example:
    func: Callable[..., Any]
    make: Callable[[], Call]
    index: int

    def __str__(self) -> str:
        return f"{CONVERSIONS[self.func].path}-{self.index}"

    def call(self) -> Call:
        torch.manual_seed(0)
        return self.make()


_CASES: list[tuple[list[Callable[..., Any]], list[Callable[[], Call]]]] = []


def case(keys: list[Callable[..., Any]], *calls: Callable[[], Call]) -> None:
    """Each call is made with each key: ``key(*args, **kwargs)``."""
    _CASES.append((list(dict.fromkeys(keys)), list(calls)))


# Activations.
_RELU = [F.relu, torch.relu, T.relu]
_INPLACE_FLAG = [F.relu, F.relu6, F.silu, F.mish, F.hardswish, F.hardsigmoid, F.selu, F.celu,
                 F.hardtanh, F.leaky_relu, F.elu]
case(_RELU + _INPLACE_FLAG + [
    torch.selu, torch.celu, F.logsigmoid, F.softsign, F.tanhshrink, F.sigmoid, torch.sigmoid,
    T.sigmoid, torch.special.expit, F.tanh, torch.tanh, T.tanh, F.gelu, F.softplus,
    F.hardshrink, torch.hardshrink, T.hardshrink, F.softshrink, F.glu,
    F.relu_, T.relu_, F.selu_, F.celu_, F.hardtanh_, F.leaky_relu_, F.elu_,
], lambda: c(x()))
case(_INPLACE_FLAG, lambda: c(x(), inplace=True), lambda: c(x(), inplace=False))
case([F.relu, F.relu6, F.silu, F.mish, F.hardswish, F.hardsigmoid, F.selu], lambda: c(x(), True))
case([F.gelu], lambda: c(x(), approximate="tanh"), lambda: c(x(), approximate="none"))
case([F.softplus], lambda: c(x(), 2.0, 10.0), lambda: c(x(), beta=0.5))
case([F.hardtanh], lambda: c(x(), -0.5, 0.5), lambda: c(x(), min_val=0.0, max_val=6.0, inplace=True))
case([F.hardtanh_], lambda: c(x(), -0.5, 0.5))
case([F.leaky_relu], lambda: c(x(), 0.2), lambda: c(x(), negative_slope=0.1, inplace=True))
case([F.leaky_relu_], lambda: c(x(), 0.2))
case([F.elu, F.celu, torch.celu], lambda: c(x(), 0.5))
case([F.elu_, F.celu_], lambda: c(x(), alpha=0.5))
case([F.threshold, torch.threshold, F.threshold_], lambda: c(x(), 0.1, 20.0))
case([F.threshold], lambda: c(x(), threshold=0.1, value=2.0, inplace=True))
case([F.hardshrink, torch.hardshrink, T.hardshrink, F.softshrink],
     lambda: c(x(), 0.3), lambda: c(x(), lambd=0.3))
case([F.glu], lambda: c(x(), 0), lambda: c(x(), dim=-1))
case([F.prelu, torch.prelu, T.prelu], lambda: c(x(*IMG), param(4)), lambda: c(x(*IMG), param(1)))
case([F.prelu], lambda: c(x(*IMG), weight=param(4)))

# Softmax family: F.* has _stacklevel third, torch.* and Tensor.* have dtype.
_F_SOFTMAX = [F.softmax, F.log_softmax, F.softmin]
_TORCH_SOFTMAX = [torch.softmax, T.softmax, torch.special.softmax, torch.log_softmax,
                  T.log_softmax, torch.special.log_softmax]
case(_F_SOFTMAX + _TORCH_SOFTMAX,
     lambda: c(x(), -1), lambda: c(x(), dim=1), lambda: c(x(), 1, dtype=torch.float64))
case(_F_SOFTMAX, lambda: c(x(), 1, 3, torch.float64), lambda: c(x(), dim=0, _stacklevel=5))
case([k for k in _TORCH_SOFTMAX if k is not torch.special.log_softmax],  # dtype is keyword-only there
     lambda: c(x(), 1, torch.float64))

# Binary arithmetic, comparisons and logic.
_ADD = [operator.add, torch.add, T.add, T.__add__]
_SUB = [operator.sub, torch.sub, torch.subtract, T.sub, T.subtract, T.__sub__]
_MUL = [operator.mul, torch.mul, torch.multiply, T.mul, T.multiply, T.__mul__]
_DIV = [operator.truediv, torch.div, torch.divide, torch.true_divide, T.div, T.divide,
        T.true_divide, T.__truediv__, T.__div__]
_FLOORDIV = [operator.floordiv, torch.floor_divide, T.floor_divide, T.__floordiv__]
_MOD = [operator.mod, torch.remainder, T.remainder, T.__mod__]
_COMPARE = [
    operator.gt, torch.gt, torch.greater, T.gt, T.greater, T.__gt__,
    operator.ge, torch.ge, torch.greater_equal, T.ge, T.greater_equal, T.__ge__,
    operator.lt, torch.lt, torch.less, T.lt, T.less, T.__lt__,
    operator.le, torch.le, torch.less_equal, T.le, T.less_equal, T.__le__,
    operator.eq, torch.eq, T.eq, T.__eq__,
    operator.ne, torch.ne, torch.not_equal, T.ne, T.not_equal, T.__ne__,
]
_LOGICAL = [torch.logical_and, T.logical_and, torch.logical_or, T.logical_or, torch.logical_xor,
            T.logical_xor]
_ARITHMETIC = _ADD + _SUB + _MUL + _DIV + _FLOORDIV + _MOD
case(_ARITHMETIC + _COMPARE + _LOGICAL, lambda: c(x(), x(3, 4)))
case(_ARITHMETIC + _COMPARE, lambda: c(x(), 2), lambda: c(x(), 0.5))
case([k for k in _ARITHMETIC + _COMPARE if vars(operator).get(k.__name__) is k],
     lambda: c(2, x()), lambda: c(0.5, x()))
case([torch.add, T.add, torch.sub, T.sub],
     lambda: c(x(), x(), alpha=2), lambda: c(x(), other=x(), alpha=0.5))
case([torch.add, torch.mul, torch.div, torch.eq], lambda: c(input=x(), other=x()))
case([torch.div, T.div, torch.divide],
     lambda: c(x(), x(), rounding_mode="floor"), lambda: c(x(), 3, rounding_mode="trunc"))
case([torch.maximum, T.maximum, torch.minimum, T.minimum],
     lambda: c(x(), x(3, 4)), lambda: c(x(), other=x()))

_INPLACE_ADD = [operator.iadd, T.add_, T.__iadd__]
_INPLACE_SUB = [operator.isub, T.sub_, T.subtract_, T.__isub__]
_INPLACE_ARITHMETIC = _INPLACE_ADD + _INPLACE_SUB + [
    operator.imul, T.mul_, T.multiply_, T.__imul__,
    operator.itruediv, T.div_, T.divide_, T.true_divide_, T.__itruediv__,
    operator.ifloordiv, T.floor_divide_, T.__ifloordiv__,
    operator.imod, T.remainder_, T.__imod__,
]
case(_INPLACE_ARITHMETIC, lambda: c(x(), x(3, 4)), lambda: c(x(), 3))
case([T.add_, T.sub_], lambda: c(x(), x(), alpha=2))
case([T.div_, T.divide_], lambda: c(x(), x(), rounding_mode="floor"))

_POW = [operator.pow, torch.pow, T.pow, T.__pow__]
case(_POW + [operator.ipow, T.pow_, T.__ipow__],
     lambda: c(pos(), 2), lambda: c(pos(), 0.5), lambda: c(pos(), x(3, 4)))
case([operator.pow], lambda: c(2, x()))
case([torch.pow, T.pow], lambda: c(pos(), exponent=3))

case([T.__radd__, T.__rsub__, T.__rmul__, T.__rtruediv__, T.__rfloordiv__, T.__rmod__,
      T.__rpow__], lambda: c(pos(), 2), lambda: c(pos(), 0.5))
# With a tensor on the left, as when called directly: __rtruediv__ is reciprocal * other,
# not other / self, so that one stays a TorchFunction.
case([T.__radd__, T.__rsub__, T.__rmul__, T.__rtruediv__, T.__rfloordiv__, T.__rmod__,
      T.__rpow__], lambda: c(pos(), pos(3, 4)))

_BITWISE = [operator.and_, torch.bitwise_and, T.bitwise_and, T.__and__,
            operator.or_, torch.bitwise_or, T.bitwise_or, T.__or__,
            operator.xor, torch.bitwise_xor, T.bitwise_xor, T.__xor__]
_INPLACE_BITWISE = [operator.iand, T.bitwise_and_, T.__iand__, operator.ior, T.bitwise_or_,
                    T.__ior__, operator.ixor, T.bitwise_xor_, T.__ixor__]
case(_BITWISE + _INPLACE_BITWISE + [T.__rand__, T.__ror__, T.__rxor__],
     lambda: c(mask(), mask()), lambda: c(ints(), ints(3, 4)))
case([T.__rand__, T.__ror__, T.__rxor__], lambda: c(mask(), True), lambda: c(ints(), 5))
case([operator.invert, operator.inv, torch.bitwise_not, T.bitwise_not, T.__invert__],
     lambda: c(mask()), lambda: c(ints()))
case([torch.logical_not, T.logical_not], lambda: c(x()), lambda: c(mask()))

# Matrix products.
case([operator.matmul, torch.matmul, T.matmul, T.__matmul__],
     lambda: c(x(2, 3, 4), x(4, 5)), lambda: c(x(4), x(2, 4, 3)))
case([T.__rmatmul__], lambda: c(x(4, 5), x(2, 3, 4)), lambda: c(x(2, 4, 3), x(4)))
case([torch.mm, T.mm], lambda: c(x(3, 4), x(4, 5)))
case([torch.mm], lambda: c(x(3, 4), mat2=x(4, 5)))
case([torch.bmm, T.bmm], lambda: c(x(2, 3, 4), x(2, 4, 5)))
case([torch.addmm, T.addmm],
     lambda: c(x(3, 5), x(3, 4), x(4, 5)), lambda: c(x(5), x(3, 4), x(4, 5), beta=0.5, alpha=2.0))
case([torch.baddbmm, T.baddbmm],
     lambda: c(x(2, 3, 5), x(2, 3, 4), x(2, 4, 5)),
     lambda: c(x(2, 3, 5), x(2, 3, 4), x(2, 4, 5), beta=0.0, alpha=0.5))
case([torch.einsum],
     lambda: c("bij,bjk->bik", x(2, 3, 4), x(2, 4, 5)),
     lambda: c("ij,jk", [x(3, 4), x(4, 5)]),
     lambda: c(x(3, 4), [0, 1], x(4, 5), [1, 2]))  # sublist form: a TorchFunction

# Unary math.
_UNARY = [operator.neg, torch.neg, torch.negative, T.neg, T.negative, T.__neg__,
          operator.abs, torch.abs, torch.absolute, T.abs, T.absolute, T.__abs__,
          torch.exp, T.exp, torch.square, T.square, torch.reciprocal, T.reciprocal,
          torch.sin, T.sin, torch.cos, T.cos, torch.erf, T.erf, torch.special.erf,
          torch.sign, T.sign, torch.floor, T.floor, torch.ceil, T.ceil, torch.round, T.round]
_INPLACE_UNARY = [torch.neg_, torch.negative_, T.neg_, T.negative_, torch.abs_, T.abs_,
                  T.absolute_, torch.exp_, T.exp_, torch.square_, T.square_, torch.reciprocal_,
                  T.reciprocal_, torch.sin_, T.sin_, torch.cos_, T.cos_, torch.erf_, T.erf_,
                  T.sign_, torch.floor_, T.floor_, torch.ceil_, T.ceil_, torch.round_, T.round_]
case(_UNARY + _INPLACE_UNARY, lambda: c(x()))
case([torch.log, T.log, torch.sqrt, T.sqrt, torch.rsqrt, T.rsqrt,
      torch.log_, T.log_, torch.sqrt_, T.sqrt_, torch.rsqrt_, T.rsqrt_], lambda: c(pos()))
case([torch.round, T.round, torch.round_, T.round_], lambda: c(x() * 10, decimals=1))
_CLAMP = [torch.clamp, torch.clip, T.clamp, T.clip, torch.clamp_, torch.clip_, T.clamp_, T.clip_]
case(_CLAMP, lambda: c(x(), -0.5, 0.5), lambda: c(x(), min=0.0), lambda: c(x(), max=0.2),
     lambda: c(x(), min=x(3, 4) - 1, max=x(3, 4) + 1), lambda: c(x(), x(3, 4)))
case([torch.clamp_min, T.clamp_min, torch.clamp_min_, T.clamp_min_],
     lambda: c(x(), 0.1), lambda: c(x(), x(3, 4)))
case([torch.clamp_max, T.clamp_max, torch.clamp_max_, T.clamp_max_],
     lambda: c(x(), 0.1), lambda: c(x(), max=x(3, 4)))

# Selection and joining.
case([torch.where], lambda: c(mask(), x(), x(3, 4)), lambda: c(mask(), x(), 0.0),
     lambda: c(condition=mask(), input=x(), other=x()))
case([T.where], lambda: c(x(), mask(), x(3, 4)), lambda: c(x(), mask(), 0.0))
case([torch.masked_fill, T.masked_fill, T.masked_fill_],
     lambda: c(x(), mask(), -1e9), lambda: c(x(), mask(3, 4), float("-inf")),
     lambda: c(x(), mask(), value=torch.tensor(2.0)))
case([torch.cat, torch.concat],
     lambda: c([x(), x()]), lambda: c([x(), x(2, 5, 4)], 1), lambda: c((x(), x()), dim=-1))
case([torch.concatenate], lambda: c([x(), x()]), lambda: c([x(), x(2, 5, 4)], axis=1))
case([torch.stack], lambda: c([x(), x()]), lambda: c((x(), x()), dim=-1))

# Reductions.
case([torch.sum, T.sum, torch.mean, T.mean],
     lambda: c(x()), lambda: c(x(), 1), lambda: c(x(), dim=(0, 2), keepdim=True),
     lambda: c(x(), [1, 2]), lambda: c(x(), 1, True), lambda: c(x(), dtype=torch.float64))
case([torch.prod, T.prod], lambda: c(x()), lambda: c(x(), 1), lambda: c(x(), 1, keepdim=True),
     lambda: c(x(), dtype=torch.float64))
case([torch.norm, T.norm], lambda: c(x()), lambda: c(x(), 1), lambda: c(x(), 2, 1),
     lambda: c(x(), p="fro", dim=(1, 2)), lambda: c(x(), dim=1, keepdim=True))
case([T.norm], lambda: c(x(), 2, 1, False, torch.float64))
case([torch.cumsum, T.cumsum], lambda: c(x(), 1), lambda: c(x(), dim=-1, dtype=torch.float64))
case([torch.amax, T.amax, torch.amin, T.amin],
     lambda: c(x()), lambda: c(x(), 1), lambda: c(x(), (0, 2), True), lambda: c(x(), dim=-1))
case([torch.max, T.max, torch.min, T.min],
     lambda: c(x()), lambda: c(x(), 1), lambda: c(x(), 1, True),
     lambda: c(x(), dim=-1, keepdim=True), lambda: c(x(), x(3, 4)), lambda: c(x(), other=x()))
case([torch.var, T.var, torch.std, T.std],
     lambda: c(x()), lambda: c(x(), 1), lambda: c(x(), True), lambda: c(x(), False),
     lambda: c(x(), 1, False), lambda: c(x(), 1, True, True),
     lambda: c(x(), dim=1, unbiased=False), lambda: c(x(), dim=(0, 1), correction=0, keepdim=True))
case([torch.logsumexp, T.logsumexp], lambda: c(x(), 1), lambda: c(x(), dim=(1, 2), keepdim=True))

# torch.nn.functional layers.
case([F.pad], lambda: c(x(*IMG), (1, 1)), lambda: c(x(*IMG), [1, 2, 0, 1], mode="reflect"),
     lambda: c(x(*IMG), (1, 1, 1, 1), "constant", 0.5), lambda: c(x(*IMG), pad=(2, 0), value=-1.0))
_INTERPOLATE_CALLS = [
    lambda: c(x(*IMG), scale_factor=2),
    lambda: c(x(*IMG), size=(5, 7), mode="bilinear", align_corners=False),
    lambda: c(x(*IMG), (3, 3), None, "bicubic", True),
    lambda: c(x(*IMG), size=[4, 4], mode="area"),
]
case([F.interpolate, F.upsample], *_INTERPOLATE_CALLS)
case([F.interpolate], lambda: c(x(*IMG), scale_factor=1.5, mode="bilinear", antialias=True),
     lambda: c(x(*IMG), scale_factor=0.6, mode="bilinear", recompute_scale_factor=True))
case([F.upsample_nearest, F.upsample_bilinear],
     lambda: c(x(*IMG), scale_factor=2), lambda: c(x(*IMG), (4, 5)))
case([F.grid_sample], lambda: c(x(*IMG), torch.rand(1, 4, 5, 2) * 2 - 1),
     lambda: c(x(*IMG), torch.rand(1, 4, 5, 2) * 2 - 1, "nearest", "border", True),
     lambda: c(x(*IMG), grid=torch.rand(1, 4, 5, 2) * 2 - 1, align_corners=False))
for _shape, _f_max, _torch_max, _f_avg, _adaptive_avg, _adaptive_max in [
    (SEQ, F.max_pool1d, torch.max_pool1d, F.avg_pool1d, F.adaptive_avg_pool1d, F.adaptive_max_pool1d),
    (IMG, F.max_pool2d, torch.max_pool2d, F.avg_pool2d, F.adaptive_avg_pool2d, F.adaptive_max_pool2d),
    (VOL, F.max_pool3d, torch.max_pool3d, F.avg_pool3d, F.adaptive_avg_pool3d, F.adaptive_max_pool3d),
]:
    case([_f_max, _torch_max, _f_avg],
         lambda s=_shape: c(x(*s), 2), lambda s=_shape: c(x(*s), 3, 2, 1),
         lambda s=_shape: c(x(*s), kernel_size=2, stride=1, ceil_mode=True))
    case([_f_max], lambda s=_shape: c(x(*s), 2, return_indices=True),
         lambda s=_shape: c(x(*s), 2, 1, 0, 2))
    case([_torch_max], lambda s=_shape: c(x(*s), 2, stride=()))
    case([_f_avg], lambda s=_shape: c(x(*s), 3, 2, 1, True, False))
    case([_adaptive_avg, _adaptive_max], lambda s=_shape: c(x(*s), 3),
         lambda s=_shape: c(x(*s), output_size=(2,) * (len(s) - 2)))
    case([_adaptive_max], lambda s=_shape: c(x(*s), 2, True))
case([F.avg_pool2d], lambda: c(x(*IMG), 2, divisor_override=3))
case([F.avg_pool3d], lambda: c(x(*VOL), 2, 2, 0, False, True, 5))
case([F.adaptive_avg_pool2d], lambda: c(x(*IMG), (None, 3)))

case([F.batch_norm],
     lambda: c(x(*IMG), torch.zeros(4), torch.ones(4)),
     lambda: c(x(*IMG), torch.zeros(4), torch.ones(4), param(4), param(4), True, 0.2, 1e-3),
     lambda: c(x(*IMG), torch.zeros(4), torch.ones(4), weight=param(4), training=False, eps=1e-3),
     lambda: c(x(*IMG), None, None, training=True))
case([F.instance_norm], lambda: c(x(*IMG)),
     lambda: c(x(*IMG), weight=param(4), bias=param(4), eps=1e-3),
     lambda: c(x(*IMG), torch.zeros(4), torch.ones(4), use_input_stats=True, momentum=0.5))
case([F.group_norm], lambda: c(x(*IMG), 2), lambda: c(x(*IMG), 2, param(4), param(4), 1e-3),
     lambda: c(x(*IMG), num_groups=4, weight=param(4)))
case([F.layer_norm], lambda: c(x(), (4,)), lambda: c(x(), [3, 4], param(3, 4), param(3, 4)),
     lambda: c(x(), normalized_shape=(4,), eps=1e-3, weight=param(4)))
case([F.rms_norm], lambda: c(x(), (4,)), lambda: c(x(), [4], param(4), 1e-6))
case([F.normalize], lambda: c(x()), lambda: c(x(), 1.0, -1), lambda: c(x(), dim=0, eps=1e-3))
case([F.linear], lambda: c(x(), param(5, 4)), lambda: c(x(), param(5, 4), param(5)),
     lambda: c(x(), weight=param(5, 4), bias=param(5)))
for _shape, _conv, _transpose in [
    (SEQ, F.conv1d, F.conv_transpose1d),
    (IMG, F.conv2d, F.conv_transpose2d),
    (VOL, F.conv3d, F.conv_transpose3d),
]:
    _k = (3,) * (len(_shape) - 2)
    case([_conv], lambda s=_shape, k=_k: c(x(*s), param(6, 4, *k)),
         lambda s=_shape, k=_k: c(x(*s), param(6, 4, *k), param(6), 2, 1),
         lambda s=_shape, k=_k: c(x(*s), param(6, 4, *k), None, padding="same"),
         lambda s=_shape, k=_k: c(x(*s), param(6, 2, *k), stride=1, groups=2, dilation=1))
    case([_transpose], lambda s=_shape, k=_k: c(x(*s), param(4, 6, *k)),
         lambda s=_shape, k=_k: c(x(*s), param(4, 6, *k), param(6), 2, 1, 1),
         lambda s=_shape, k=_k: c(x(*s), param(4, 3, *k), groups=2, dilation=2))
case([F.embedding], lambda: c(torch.randint(0, 10, (2, 3)), param(10, 4)),
     lambda: c(torch.randint(0, 10, (2, 3)), param(10, 4), 0),
     lambda: c(torch.randint(0, 10, (2, 3)), weight=param(10, 4), padding_idx=-1),
     lambda: c(torch.randint(0, 10, (2, 3)), torch.randn(10, 4) * 3, max_norm=1.0))
case([F.dropout], lambda: c(x()), lambda: c(x(), 0.3, False), lambda: c(x(), p=0.5, training=True),
     lambda: c(x(), 0.2, True, True))
case([F.scaled_dot_product_attention],
     lambda: c(x(1, 2, 4, 8), x(1, 2, 4, 8), x(1, 2, 4, 8)),
     lambda: c(x(1, 2, 4, 8), x(1, 2, 4, 8), x(1, 2, 4, 8), mask(4, 4)),
     lambda: c(x(1, 2, 4, 8), x(1, 2, 4, 8), x(1, 2, 4, 8), is_causal=True),
     lambda: c(x(1, 2, 4, 8), x(1, 2, 4, 8), x(1, 2, 4, 8), None, 0.0, False, scale=0.5),
     lambda: c(x(1, 2, 4, 8), x(1, 1, 4, 8), x(1, 1, 4, 8), enable_gqa=True),
     lambda: c(x(1, 2, 4, 8), x(1, 2, 4, 8), x(1, 2, 4, 8), dropout_p=0.5))


def _examples() -> dict[Callable[..., Any], list[Example]]:
    examples: dict[Callable[..., Any], list[Example]] = {}
    for keys, calls in _CASES:
        for key in keys:
            for make in calls:
                of_key = examples.setdefault(key, [])
                of_key.append(Example(key, make, len(of_key)))
    return examples


EXAMPLES_BY_KEY = _examples()
EXAMPLES = [example for examples in EXAMPLES_BY_KEY.values() for example in examples]


# --- comparing runs ------------------------------------------------------------------


def _leaves(value: Any) -> Iterator[Tensor]:
    if isinstance(value, Tensor):
        yield value
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from _leaves(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)


def _assert_same(actual: Any, expected: Any) -> None:
    """Bit for bit, with the same types, dtypes and tuple classes (named tuples too)."""
    assert type(actual) is type(expected)
    if isinstance(expected, Tensor):
        assert actual.dtype == expected.dtype
        assert torch.equal(actual, expected), (actual, expected)
    elif isinstance(expected, (tuple, list)):
        assert len(actual) == len(expected)
        for a, e in zip(actual, expected):
            _assert_same(a, e)
    else:
        assert actual == expected


def _run_both(example: Example, build: Callable[[Call], tuple[nn.Module, Call]]) -> nn.Module:
    """Run the original call and the built module on equal fresh inputs; compare everything."""
    ref_args, ref_kwargs = example.call()
    new_args, new_kwargs = example.call()
    ref_inputs, new_inputs = list(_leaves((ref_args, ref_kwargs))), list(_leaves((new_args, new_kwargs)))
    untouched = [t.detach().clone() for t in ref_inputs]

    torch.manual_seed(1)  # dropout
    expected = example.func(*ref_args, **ref_kwargs)
    module, (args, kwargs) = build((new_args, new_kwargs))
    torch.manual_seed(1)
    actual = module(*args, **kwargs)

    _assert_same(actual, expected)
    # In-place exactly when the original is: the same inputs mutated the same
    # way, and the result is the same input object (or none of them).
    for ref, new, before in zip(ref_inputs, new_inputs, untouched):
        assert torch.equal(new, ref), "inputs changed differently"
        assert torch.equal(new, before) == torch.equal(ref, before)
    returned = [i for i, t in enumerate(ref_inputs) if t is expected]
    assert [i for i, t in enumerate(new_inputs) if t is actual] == returned
    return module


def _build_eagerly(conversion: Conversion) -> Callable[[Call], tuple[nn.Module, Call]]:
    def build(call: Call) -> tuple[nn.Module, Call]:
        module, args, kwargs = conversion.build(*call)
        return module, (args, kwargs)

    return build


# --- every entry --------------------------------------------------------------------


def _build_through_fx(example: Example, conversion: Conversion) -> Callable[[Call], tuple[nn.Module, Call]]:
    """The call as a node of an fx graph, replaced by the built module as a pass would."""

    def build(call: Call) -> tuple[nn.Module, Call]:
        graph = fx.Graph()
        tensors = list(_leaves(call))
        placeholders = {id(t): graph.placeholder(f"t{i}") for i, t in enumerate(tensors)}

        def to_node(value: Any) -> Any:
            return placeholders[id(value)] if isinstance(value, Tensor) else value

        node = graph.call_function(
            example.func,
            fx.node.map_aggregate(call[0], to_node),
            fx.node.map_aggregate(call[1], to_node),
        )
        graph.output(node)
        root = nn.Module()
        # fx Nodes are the opaque arguments here, exactly what the pass passes.
        module, args, kwargs = conversion.build(node.args, node.kwargs)
        root.add_module(conversion.name, module)
        with graph.inserting_after(node):
            replacement = graph.call_module(conversion.name, args, kwargs)
        node.replace_all_uses_with(replacement)
        graph.erase_node(node)
        graph.lint()
        return fx.GraphModule(root, graph), (tuple(tensors), {})

    return build


@pytest.mark.parametrize("func", list(CONVERSIONS), ids=lambda func: CONVERSIONS[func].path)
def test_entry_is_bit_identical(func: Callable[..., Any]) -> None:
    """Each example call, eagerly with real tensors and as an fx node with fx Nodes as arguments."""
    conversion = CONVERSIONS[func]
    examples = EXAMPLES_BY_KEY.get(func, [])
    assert examples, f"no example call for {conversion.path}"
    for example in examples:
        try:
            module = _run_both(example, _build_eagerly(conversion))
            assert not list(module.parameters()) and not list(module.buffers())
            _run_both(example, _build_through_fx(example, conversion))
        except Exception as error:
            raise AssertionError(f"example {example} failed: {error!r}") from error


@pytest.mark.parametrize("func", list(CONVERSIONS), ids=lambda func: CONVERSIONS[func].path)
def test_the_pass_reaches_every_entry(func: Callable[..., Any]) -> None:
    """The value-changing gate lets every entry through (F.dropout once stopped there, matched by
    name), and FunctionalsToModules replaces the call by the entry's module, with the same result."""
    from qready.ops import changes_values
    from qready.passes.functionals_to_modules import FunctionalsToModules

    assert changes_values(func), f"{CONVERSIONS[func].path} never reaches the conversion table"
    example = EXAMPLES_BY_KEY[func][0]
    call = example.call()
    graph = fx.Graph()
    tensors = list(_leaves(call))
    placeholders = {id(t): graph.placeholder(f"t{i}") for i, t in enumerate(tensors)}
    for node in placeholders.values():
        node.meta["qready_tensor"] = True

    def to_node(value: Any) -> Any:
        return placeholders[id(value)] if isinstance(value, Tensor) else value

    graph.output(graph.call_function(func, fx.node.map_aggregate(call[0], to_node), fx.node.map_aggregate(call[1], to_node)))
    gm = fx.GraphModule(nn.Module(), graph)
    result = FunctionalsToModules()(gm)
    assert [change.kind for change in result.changes] == ["functional"]
    assert not [n for n in gm.graph.nodes if n.op == "call_function" and n.target is func]
    again = example.call()  # equal fresh inputs: the call may work in place
    torch.manual_seed(1)  # dropout
    expected = func(*call[0], **call[1])
    torch.manual_seed(1)
    _assert_same(result.graph_module(*_leaves(again)), expected)


def test_a_user_function_named_like_a_data_movement_op_changes_values() -> None:
    from qready.ops import changes_values

    def view(t: Tensor) -> Tensor:  # the user's own, not torch's: matched by identity, not by name
        return t * 2

    assert changes_values(view) and not changes_values(torch.Tensor.view)
    assert not changes_values(torch.Tensor.shape.__get__) and changes_values(F.dropout)


def test_examples_use_table_keys_only() -> None:
    assert all(lookup(example.func) is not None for example in EXAMPLES)


def test_keys_are_callables_not_names() -> None:
    assert len(CONVERSIONS) > 300
    for func, conversion in CONVERSIONS.items():
        assert callable(func) and not isinstance(func, str)
        assert conversion.func is func
        assert resolve_dotted_path(conversion.path) is func
        assert conversion.name.isidentifier()


@pytest.mark.parametrize(
    "func",
    [F.relu, torch.relu, T.relu, T.relu_, T.sigmoid, T.add, T.add_, operator.add, operator.iadd,
     operator.mul, operator.matmul, operator.truediv, operator.floordiv, operator.sub,
     operator.pow, operator.neg, operator.abs, operator.gt, operator.lt, operator.ge, operator.le,
     operator.eq, operator.ne, operator.and_, operator.or_, operator.mod, operator.imul,
     operator.isub, operator.itruediv, T.__radd__, T.__rsub__, T.__rmul__, T.__rtruediv__,
     T.__rpow__, T.__rmatmul__, T.__add__, T.__mul__, T.__pow__, F.interpolate, F.upsample,
     F.grid_sample, F.embedding, F.dropout, F.scaled_dot_product_attention, F.layer_norm,
     F.batch_norm, F.group_norm, F.instance_norm, F.normalize, F.linear, F.conv_transpose2d,
     F.adaptive_max_pool2d, F.adaptive_avg_pool3d, torch.einsum, torch.where, T.masked_fill_,
     torch.concat, torch.stack, torch.var, torch.std, torch.prod, torch.logsumexp, torch.max,
     torch.clip, torch.clamp_min, torch.clamp_max, F.softmin, F.glu, F.logsigmoid, F.prelu],
    ids=lambda f: dotted_path(f),
)
def test_required_forms_are_covered(func: Callable[..., Any]) -> None:
    assert lookup(func) is not None


# --- specific behaviour -------------------------------------------------------------


def test_linear_keeps_the_same_parameter() -> None:
    emb = nn.Embedding(10, 4)
    h = torch.randn(2, 4)
    module, args, kwargs = lookup(F.linear).build((h, emb.weight), {})
    assert isinstance(module, qnn.FunctionalLinear)
    assert args[1] is emb.weight and not kwargs
    assert not list(module.parameters())
    assert torch.equal(module(*args), F.linear(h, emb.weight))


def test_user_function_named_like_torch_is_not_matched() -> None:
    def pad(x: Tensor, amount: int) -> Tensor:
        return x

    def relu(x: Tensor) -> Tensor:
        return x

    assert lookup(pad) is None and lookup(relu) is None
    assert lookup(F.pad) is not None


def test_unhashable_callable_is_not_in_the_table() -> None:
    class Unhashable:
        __hash__ = None  # type: ignore[assignment]

        def __call__(self) -> None:
            return None

    assert lookup(Unhashable()) is None


@pytest.mark.parametrize(
    ("func", "args", "kwargs", "hint"),
    [
        (F.softmax, (torch.randn(2, 3),), {"dim": -1}, "nn.Softmax(dim=-1)"),
        (T.softmax, (torch.randn(2, 3), 1), {}, "nn.Softmax(dim=1)"),
        (F.softmax, (torch.randn(2, 3), 1), {"dtype": torch.float32},
         "qready.nn.Softmax(dim=1, dtype=torch.float32)"),
        (F.relu, (torch.randn(2, 3),), {}, "nn.ReLU()"),
        (F.relu, (torch.randn(2, 3),), {"inplace": True}, "nn.ReLU(inplace=True)"),
        (T.relu_, (torch.randn(2, 3),), {}, "nn.ReLU(inplace=True)"),
        (operator.add, (torch.randn(2, 3), 1), {}, "qready.nn.Add(other=1)"),
        (T.add, (torch.randn(2, 3), torch.randn(2, 3)), {"alpha": 2}, "qready.nn.Add(alpha=2)"),
        (operator.iadd, (torch.randn(2, 3), 1), {}, "qready.nn.Add(inplace=True, other=1)"),
        (F.gelu, (torch.randn(2, 3),), {"approximate": "tanh"}, "nn.GELU(approximate='tanh')"),
        (torch.clamp, (torch.randn(2, 3), 0.0, 6.0), {}, "qready.nn.Clamp(min=0.0, max=6.0)"),
        (torch.einsum, ("ij->ji", torch.randn(2, 3)), {}, "qready.nn.Einsum('ij->ji')"),
        (torch.add, (torch.randn(2),), {"other": 1, "out": torch.empty(2)},
         "qready.nn.TorchFunction('torch.add')"),
    ],
)
def test_hint(func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], hint: str) -> None:
    assert lookup(func).hint(args, kwargs) == hint


def test_names_and_module_texts() -> None:
    assert (lookup(F.relu).name, lookup(F.relu).module) == ("relu", "nn.ReLU")
    assert (lookup(operator.add).name, lookup(operator.add).module) == ("add", "qready.nn.Add")
    assert lookup(operator.iadd).name == "iadd"
    assert lookup(F.linear).name == "linear"
    assert lookup(T.softmax).name == "softmax"
    assert lookup(operator.and_).name == "and_"  # not the keyword: fx writes self.<name>


def test_literals_move_into_the_constructor_and_opaque_values_stay_arguments() -> None:
    class Dim(nn.Module):
        def forward(self, x: Tensor) -> Tensor:
            return torch.softmax(x, x.dim() - 1)

    graph = fx.symbolic_trace(Dim()).graph
    node = next(n for n in graph.nodes if n.target is torch.softmax)
    module, args, kwargs = lookup(torch.softmax).build(node.args, node.kwargs)
    assert isinstance(module, TorchFunction) and module.path == "torch.softmax"
    assert args == node.args and kwargs == node.kwargs

    module, args, kwargs = lookup(torch.softmax).build((node.args[0], 1), {})
    assert isinstance(module, nn.Softmax) and module.dim == 1 and args == (node.args[0],)


def test_interpolate_with_a_size_from_the_graph() -> None:
    graph = fx.Graph()
    y, size = graph.placeholder("y"), graph.placeholder("size")
    module, args, kwargs = lookup(F.interpolate).build((y,), {"size": size, "mode": "bilinear"})
    assert isinstance(module, qnn.Interpolate) and module.mode == "bilinear" and module.size is None
    assert args == (y,) and kwargs == {"size": size}


def test_clamp_with_a_tensor_bound_keeps_it_as_an_argument() -> None:
    low = torch.zeros(3)
    module, args, kwargs = lookup(torch.clamp).build((torch.randn(3),), {"min": low, "max": 1.0})
    assert isinstance(module, qnn.Clamp) and module.max == 1.0 and module.min is None
    assert kwargs["min"] is low


@pytest.mark.parametrize(
    ("func", "inplace"),
    [(torch.masked_fill, False), (T.masked_fill, False), (T.masked_fill_, True)],
)
def test_masked_fill_keeps_its_in_place_meaning(func: Callable[..., Any], inplace: bool) -> None:
    x, fill = torch.randn(3), torch.tensor([True, False, True])
    module, args, kwargs = lookup(func).build((x, fill, 0.0), {})
    assert isinstance(module, qnn.MaskedFill) and module.inplace is inplace
    assert (module(*args, **kwargs) is x) is inplace


def test_unknown_arguments_wrap_the_call_unchanged() -> None:
    out = torch.empty(3)
    a, b = torch.randn(3), torch.randn(3)
    module, args, kwargs = lookup(torch.add).build((a, b), {"out": out})
    assert isinstance(module, TorchFunction) and kwargs["out"] is out
    result = module(*args, **kwargs)
    assert result is out and torch.equal(out, a + b)


# --- the generic fallback -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("func", "path", "args"),
    [
        (torch.special.i0, "torch.special.i0", (torch.randn(3),)),
        (F.pixel_shuffle, "torch.nn.functional.pixel_shuffle", (torch.randn(1, 4, 2, 2), 2)),
        (T.sigmoid_, "torch.Tensor.sigmoid_", (torch.randn(3),)),
        (torch.fmod, "torch.fmod", (torch.randn(3), 0.7)),
        (operator.lshift, "operator.lshift", (torch.tensor([1, 2]), 1)),
        (math.floor, "math.floor", (2.5,)),
    ],
)
def test_generic_fallback_round_trips_its_path(func: Callable[..., Any], path: str, args: tuple[Any, ...]) -> None:
    assert lookup(func) is None
    conversion = conversion_for(func)
    assert conversion.path == path and resolve_dotted_path(path) is func
    assert conversion.module == f"qready.nn.TorchFunction({path!r})"
    assert conversion.name == func.__name__.strip("_")
    module, new_args, new_kwargs = conversion.build(args, {})
    assert isinstance(module, TorchFunction) and module.path == path
    literals = tuple((i, a) for i, a in enumerate(args) if not isinstance(a, Tensor))
    assert _config(module) == {"path": path, "constants": literals}  # held, not passed: tensors alone go in
    assert all(isinstance(a, Tensor) for a in new_args) and not new_kwargs
    expected = func(*[a.clone() if isinstance(a, Tensor) else a for a in args])
    _assert_same(module(*new_args, **new_kwargs), expected)
    assert conversion.hint(args, {}) == f"qready.nn.TorchFunction({path!r})"


def test_conversion_for_prefers_the_table() -> None:
    assert conversion_for(F.relu) is lookup(F.relu)


def test_non_importable_callable_raises() -> None:
    def local_op(x: Tensor) -> Tensor:
        return x

    with pytest.raises(ValueError, match="local_op"):
        conversion_for(local_op)
    with pytest.raises(ValueError, match="lambda"):
        conversion_for(lambda x: x)
    with pytest.raises(ValueError, match="cannot wrap"):
        conversion_for(torch.randn(2).add)  # a bound method of one tensor


def test_torch_function_only_resolves_trusted_paths() -> None:
    with pytest.raises(ValueError, match="only dotted paths under"):
        TorchFunction("os.system")
    with pytest.raises(ValueError, match="no callable"):
        TorchFunction("torch.no_such_function")
    with pytest.raises(ValueError, match="no callable"):
        TorchFunction("torch.nn")


# --- module rules: plain attributes, rebuildable, picklable, traceable ----------------------


def _one_example_per_module_class() -> list[Example]:
    seen: dict[type[nn.Module], Example] = {}
    for example in EXAMPLES:
        module = CONVERSIONS[example.func].build(*example.call())[0]
        seen.setdefault(type(module), example)
    return list(seen.values())


PER_CLASS = _one_example_per_module_class()


def _module_id(example: Example) -> str:
    # "nn.Softmax" and "qready.nn.Softmax" are different classes with one name.
    return CONVERSIONS[example.func].hint(*example.call()).split("(")[0]


def _is_plain(value: Any) -> bool:
    if isinstance(value, tuple):
        return all(_is_plain(item) for item in value)
    return isinstance(value, (int, float, bool, str, type(None), torch.dtype))


def _config(module: nn.Module) -> dict[str, Any]:
    return {k: v for k, v in vars(module).items() if not k.startswith("_") and k != "training"}


def test_every_qready_module_class_is_exercised() -> None:
    exercised = {type(CONVERSIONS[e.func].build(*e.call())[0]) for e in PER_CLASS}
    declared = {getattr(qnn, name) for name in qnn.__all__} - {qnn.OpModule}
    assert declared - exercised == set()


@pytest.mark.parametrize("example", PER_CLASS, ids=_module_id)
def test_module_is_plain_rebuildable_and_picklable(example: Example) -> None:
    conversion = CONVERSIONS[example.func]
    module = conversion.build(*example.call())[0]
    config = _config(module)
    if isinstance(module, qnn.OpModule):
        assert set(config) == set(type(module).__constants__)
        assert all(_is_plain(value) for value in config.values()), config
        assert type(module).extra_repr is not nn.Module.extra_repr

    def rebuilt_by_serializer(m: nn.Module) -> nn.Module:
        obj = type(m).__new__(type(m))
        nn.Module.__init__(obj)
        for key, value in _config(m).items():
            setattr(obj, key, value)
        return obj

    for clone in (pickle.loads(pickle.dumps(module)), copy.deepcopy(module), rebuilt_by_serializer(module)):
        _run_both(example, lambda call, clone=clone: (clone, conversion.build(*call)[1:]))


class _TensorArgs(nn.Module):
    """Calls ``module`` with the example's tensors as the only traced inputs."""

    def __init__(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        super().__init__()
        self.module = module
        tensors = list(_leaves((args, kwargs)))
        self.positions = {id(t): i for i, t in enumerate(tensors)}
        self.call = (args, kwargs)

    def forward(self, *tensors: Tensor) -> Any:
        def swap(value: Any) -> Any:
            return tensors[self.positions[id(value)]] if isinstance(value, Tensor) else value

        args = fx.node.map_aggregate(self.call[0], swap)
        kwargs = fx.node.map_aggregate(self.call[1], swap)
        return self.module(*args, **kwargs)


@pytest.mark.parametrize("example", PER_CLASS, ids=_module_id)
def test_module_traces_with_jit(example: Example) -> None:
    args, kwargs = example.call()
    module, new_args, new_kwargs = CONVERSIONS[example.func].build(args, kwargs)
    wrapper = _TensorArgs(module, new_args, new_kwargs)
    tensors = [t.detach().clone() for t in _leaves((new_args, new_kwargs))]
    torch.manual_seed(1)
    traced = torch.jit.trace(wrapper, tuple(tensors), check_trace=False)
    fresh = [t.detach().clone() for t in _leaves((new_args, new_kwargs))]
    torch.manual_seed(1)
    expected = wrapper(*[t.clone() for t in fresh])
    torch.manual_seed(1)
    # The TorchScript optimizer may decompose ops (addmm -> mm + add); the
    # recorded graph itself is what must match.
    with torch.jit.optimized_execution(False):
        _assert_same(traced(*[t.clone() for t in fresh]), expected)


def test_onnx_export_of_qready_modules(tmp_path: Any) -> None:
    onnxruntime = pytest.importorskip("onnxruntime")

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.randn(4, 4))
            self.linear = qnn.FunctionalLinear()
            self.add = qnn.Add()
            self.softmax = qnn.Softmax(dim=-1, dtype=torch.float32)
            self.clamp = qnn.Clamp(min=-1.0, max=1.0)
            self.cat = qnn.Cat(dim=1)
            self.mean = qnn.Mean(dim=1, keepdim=True)
            self.max = qnn.Max(dim=1)
            self.interpolate = qnn.Interpolate(scale_factor=2.0)
            self.generic = TorchFunction("torch.nn.functional.hardswish")

        def forward(self, x: Tensor) -> Tensor:
            h = self.add(self.linear(x, self.weight), x)
            h = self.generic(self.clamp(self.softmax(h)))
            h = self.mean(self.cat([h, x])) + self.max(x).values[:, None]
            return self.interpolate(h[:, None, :]).flatten(1)

    torch.manual_seed(0)
    model, example = Block().eval(), torch.randn(2, 4)
    path = tmp_path / "block.onnx"
    torch.onnx.export(model, (example,), str(path), dynamo=True, verbose=False)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (output,) = session.run(None, {session.get_inputs()[0].name: example.numpy()})
    torch.testing.assert_close(torch.from_numpy(output), model(example))


# --- through torch.fx, as the prepare pass uses the table --------------------------------


def _convert_graph(gm: fx.GraphModule) -> fx.GraphModule:
    """Replace every table op by a call_module, the way qready's pass does."""
    for node in list(gm.graph.nodes):
        if node.op == "call_function":
            func = node.target
        elif node.op == "call_method":
            func = getattr(torch.Tensor, node.target, None)
        else:
            continue
        conversion = lookup(func) if func is not None else None
        if conversion is None:
            continue
        module, args, kwargs = conversion.build(node.args, node.kwargs)
        name = f"{conversion.name}_{node.name}"
        gm.add_submodule(name, module)
        with gm.graph.inserting_after(node):
            replacement = gm.graph.call_module(name, args, kwargs)
        node.replace_all_uses_with(replacement)
        gm.graph.erase_node(node)
    gm.graph.lint()
    gm.recompile()
    return gm


class _Ops(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(10, 8)
        self.register_buffer("low", torch.full((8,), -0.5))

    def forward(self, x: Tensor, y: Tensor) -> tuple[Tensor, ...]:
        h = F.linear(x, self.emb.weight)  # tied weight: must stay the embedding's Parameter
        a = x.softmax(-1) + torch.softmax(x, 1) + F.softmax(x, dim=1)
        b = F.softmax(x, 1, dtype=torch.float64)
        c = F.interpolate(y, size=y.shape[-2:], mode="bilinear") * 2 - 1
        d = F.interpolate(y, scale_factor=2)
        e = torch.clamp(x, min=self.low) / 3
        f = x.masked_fill(x > 0, float("-inf"))
        g = torch.max(x, 1)
        i = torch.max(x, dim=1, keepdim=True).values
        j = F.gelu(x, approximate="tanh") + F.relu(x, inplace=False) - 2 ** x
        k = torch.cat([x, x], dim=-1).sum(-1, keepdim=True) @ torch.ones(1, 3)
        return h, a, b, c, d, e, f, g.values, g.indices, i, j, k


def test_symbolic_trace_and_convert_every_op() -> None:
    torch.manual_seed(0)
    model = _Ops().eval()
    x, y = torch.randn(2, 8), torch.randn(1, 3, 4, 5)
    expected = model(x, y)
    gm = _convert_graph(fx.symbolic_trace(model))
    left = [n for n in gm.graph.nodes if n.op in ("call_function", "call_method")
            and lookup(n.target if n.op == "call_function" else getattr(torch.Tensor, n.target)) is not None]
    assert not left
    for actual, reference in zip(gm(x, y), expected):
        _assert_same(actual, reference)

    linear = next(m for m in gm.modules() if isinstance(m, qnn.FunctionalLinear))
    assert not list(linear.parameters())
    assert gm.get_parameter("emb.weight") is model.emb.weight
    interpolate = [m for m in gm.modules() if isinstance(m, qnn.Interpolate)]
    assert [m.size for m in interpolate] == [None, None] and interpolate[1].scale_factor == 2.0
    assert any(isinstance(m, nn.Softmax) and m.dim == -1 for m in gm.modules())
    assert any(isinstance(m, qnn.Softmax) and m.dtype == torch.float64 for m in gm.modules())
    assert any(isinstance(m, qnn.Max) and m.dim == 1 and m.keepdim for m in gm.modules())


def test_in_place_ops_stay_in_place_through_fx() -> None:
    class InPlace(nn.Module):
        def forward(self, x: Tensor) -> Tensor:
            y = x.clone()
            y.add_(1).mul_(2)
            y.masked_fill_(y > 2, 0.0)
            z = F.relu(y, inplace=True)
            return torch.clamp_(z, max=1.5)

    torch.manual_seed(0)
    x = torch.randn(3, 4)
    expected = InPlace()(x)
    gm = _convert_graph(fx.symbolic_trace(InPlace()))
    modules = [m for m in gm.modules() if m is not gm and not isinstance(m, qnn.Greater)]
    assert [type(m) for m in modules] == [qnn.Add, qnn.Mul, qnn.MaskedFill, nn.ReLU, qnn.Clamp]
    assert all(m.inplace for m in modules)
    _assert_same(gm(x), expected)
