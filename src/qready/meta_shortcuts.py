"""Meta outputs worked out from shapes, for the ops whose meta kernels are slow Python.

Tracing on meta tensors asks torch for each node's output shape, and torch's
meta versions of the most common ops are Python decompositions: ``relu``,
``batch_norm`` and a residual add take about 0.1-0.3 ms each, ``linear`` 0.3 ms,
``layer_norm`` 0.9 ms, against microseconds for the ops themselves in C++. For
those ops the output's shape, strides and dtype follow from the inputs' in a
few lines, written here; anything these lines do not cover exactly (another
dtype, a hook, grad mode, a tensor subclass) returns None and goes to torch.
tests/test_meta_shortcuts.py holds every rule against torch's own kernel.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from qready.meta_calls import has_hooks

__all__ = ["module_output", "op_output", "row_major", "kernel_output"]

# Leaf modules whose output has exactly the shape, strides and dtype of their one input (or is it).
_SHAPE_PRESERVING = frozenset({
    torch.nn.BatchNorm1d, torch.nn.BatchNorm2d, torch.nn.BatchNorm3d, torch.nn.ReLU, torch.nn.ReLU6,
    torch.nn.Identity, torch.nn.Dropout, torch.nn.Hardswish, torch.nn.Hardsigmoid, torch.nn.SiLU, torch.nn.GELU,
    torch.nn.Sigmoid, torch.nn.Tanh,
})
# Out-of-place arithmetic on floating tensors of one dtype (a new tensor, broadcast, its layout worked out
# from the operands'); and the in-place kind, which returns its first operand.
_ELEMENTWISE = frozenset({operator.add, operator.sub, operator.mul})
_FULL_FLOATS = frozenset({torch.float32, torch.float64})
_TENSOR_FIRST = frozenset({torch.add, torch.sub, torch.mul, torch.div, operator.truediv})
_IN_PLACE = frozenset({operator.iadd, operator.isub, operator.imul})
_CONVOLUTIONS = frozenset({torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d})
# Adaptive average pooling by its number of pooled dimensions: torch's meta version of the usual
# (1, 1) pooling is a mean, a Python reduction (0.5 ms a call)
_ADAPTIVE_AVERAGE = {torch.nn.AdaptiveAvgPool1d: 1, torch.nn.AdaptiveAvgPool2d: 2, torch.nn.AdaptiveAvgPool3d: 3}


def module_output(module: Any, args: Any, kwargs: Any) -> torch.Tensor | None:
    """What the torch.nn leaf ``module`` returns for one meta tensor, or None where no rule covers it."""
    if len(args) != 1 or kwargs or not _plain_meta(args[0]) or has_hooks(module):
        return None
    x, kind = args[0], type(module)
    if kind in _SHAPE_PRESERVING:
        if kind is torch.nn.Identity or getattr(module, "inplace", False) or (
            kind is torch.nn.Dropout and (not module.training or module.p == 0 or x.numel() == 0)
        ):
            return x  # the input itself, as the layer hands it back
        return _like(x)
    if kind is torch.nn.Linear:
        return _linear(x, module.weight, module.bias)
    if kind is torch.nn.LayerNorm:
        return _layer_norm(x, module.normalized_shape, module.weight, module.bias)
    if kind in _CONVOLUTIONS and module.padding_mode == "zeros":
        return _convolution(x, module.weight, module.bias, module.stride, module.padding, module.dilation, module.groups)
    pooled = _ADAPTIVE_AVERAGE.get(kind)
    if pooled is not None:
        return _adaptive_average(x, module.output_size, pooled)
    if kind is torch.nn.MaxPool2d and not module.return_indices:
        return _max_pool_2d(x, module.kernel_size, module.stride, module.padding, module.dilation, module.ceil_mode)
    return None


def kernel_output(
    module: Any, args: Any, kwargs: Any, to_meta: Callable[[torch.Tensor], torch.Tensor]
) -> torch.Tensor | None:
    """A convolution's own kernel on stand-ins of its weights (``to_meta``): what its forward computes,
    without torch.func.functional_call swapping every weight in and out around it; None for other modules."""
    if type(module) not in _CONVOLUTIONS or len(args) != 1 or kwargs or not _plain_meta(args[0]) or has_hooks(module):
        return None
    bias = module.bias
    return module._conv_forward(args[0], to_meta(module.weight), None if bias is None else to_meta(bias))


def op_output(target: Any, args: Any, kwargs: Any) -> torch.Tensor | None:
    """What the ``call_function`` of ``target`` returns on meta tensors, or None where no rule covers it."""
    rule = _OPS.get(target) if _hashable(target) else None
    return None if rule is None else rule(args, kwargs)


def row_major(shape: torch.Size) -> tuple[int, ...]:
    """The strides ``torch.empty(shape)`` gives."""
    strides, step = [], 1
    for size in reversed(shape):
        strides.append(step)
        step *= max(size, 1)
    return tuple(reversed(strides))


def _elementwise(args: Any, kwargs: Any) -> torch.Tensor | None:
    """``a + b``, ``a * 2.0``, ``scale * x`` and the like on float32 or float64 meta tensors of one dtype (or a
    tensor and a Python number), broadcast as torch broadcasts, in any layout: see ``_binary_layout``. Not for
    an empty output, nor for half precision (torch computes that in float32 and converts, another layout)."""
    if kwargs or len(args) != 2:
        return None
    tensors = [arg for arg in args if type(arg) is torch.Tensor]
    if not tensors or tensors[0].dtype not in _FULL_FLOATS or not all(
        _number(arg) or (_plain_meta(arg) and arg.dtype == tensors[0].dtype) for arg in args
    ):
        return None
    shape = _broadcast([tensor.shape for tensor in tensors])
    if shape is None or 0 in shape:
        return None
    return _binary_layout(tensors, shape)


def _number(value: Any) -> bool:
    """A Python float, or an int torch takes as a number (not a bool, not past 64 bits)."""
    return type(value) is float or (type(value) is int and -(2**63) <= value < 2**63)


def _broadcast(shapes: list[torch.Size]) -> tuple[int, ...] | None:
    """The shape ``shapes`` broadcast to, or None where they don't."""
    ndim = max(len(shape) for shape in shapes)
    out = [1] * ndim
    for shape in shapes:
        for i, size in enumerate(shape, ndim - len(shape)):
            if size != 1:
                if out[i] not in (1, size):
                    return None
                out[i] = size
    return tuple(out)


def _binary_layout(tensors: list[torch.Tensor], shape: tuple[int, ...]) -> torch.Tensor:
    """The output torch's meta kernels give an elementwise op of ``tensors`` broadcast to ``shape``: row-major
    where every operand is row-major, channels-last where every one is that, else dense with the dimensions
    in the order of the operands' strides (the first operand deciding first; a broadcast dimension has no
    say; of two with equal strides the larger size goes outside)."""
    dtype = tensors[0].dtype
    ndim = len(shape)
    expanded = [tensor if tensor.shape == shape else tensor.expand(shape) for tensor in tensors]
    row_major_all = channels_last_all = False
    if ndim > 1:
        row_major_all = all(tensor.is_contiguous() for tensor in expanded)
        channels_last_all = all(tensor.is_contiguous(memory_format=torch.channels_last) for tensor in expanded)
        if channels_last_all and not row_major_all:
            return torch.empty(shape, dtype=dtype, device="meta", memory_format=torch.channels_last)
    if ndim <= 1 or (row_major_all and not channels_last_all):
        return torch.empty(shape, dtype=dtype, device="meta")
    strides = [tensor.stride() for tensor in expanded]

    def outer(d0: int, d1: int) -> int:  # 1: d0 goes outside d1, -1: inside, 0: no operand says
        for own in strides:
            s0, s1 = own[d0], own[d1]
            if s0 == 0 or s1 == 0:
                continue
            if s0 == s1:
                if shape[d1] >= shape[d0]:
                    continue
                return 1
            return -1 if s0 < s1 else 1
        return 0

    order = list(range(ndim - 1, -1, -1))  # innermost first; an insertion sort that stops where undecided
    for i in range(1, ndim):
        moving = i
        for j in range(i - 1, -1, -1):
            verdict = outer(order[j], order[moving])
            if verdict > 0:
                order[j], order[moving] = order[moving], order[j]
                moving = j
            elif verdict < 0:
                break
    return torch.empty_permuted(shape, order[::-1], dtype=dtype, device="meta")


def _tensor_first(args: Any, kwargs: Any) -> torch.Tensor | None:
    """``torch.add(x, y)``, ``x / y`` as ``_elementwise``; a number first is torch's to answer (``torch.add`` refuses
    it, ``2.0 / x`` is computed as ``x.reciprocal() * 2.0``)."""
    return _elementwise(args, kwargs) if args and type(args[0]) is torch.Tensor else None


def _in_place(args: Any, kwargs: Any) -> torch.Tensor | None:
    """``a += b`` on two plain meta tensors of one shape and floating dtype, in any layout: ``a`` itself,
    written into. Not where one element of ``a`` stands for several (a stride 0 from ``expand``):
    torch refuses to write there."""
    if kwargs or len(args) != 2:
        return None
    a, b = args
    if not (_plain_meta(a) and _plain_meta(b) and a.dtype == b.dtype and a.shape == b.shape):
        return None
    if any(stride == 0 and size > 1 for size, stride in zip(a.shape, a.stride())):
        return None
    return a  # ``out += identity``: the very tensor, written into


def _functional_linear(args: Any, kwargs: Any) -> torch.Tensor | None:
    bound = _bind(args, kwargs, ("input", "weight", "bias"), {"bias": None})
    if bound is None or not _plain_meta(bound["input"]):
        return None
    return _linear(bound["input"], bound["weight"], bound["bias"])


def _functional_layer_norm(args: Any, kwargs: Any) -> torch.Tensor | None:
    bound = _bind(
        args, kwargs, ("input", "normalized_shape", "weight", "bias", "eps"), {"weight": None, "bias": None, "eps": 1e-5}
    )
    if bound is None or not _plain_meta(bound["input"]) or not isinstance(bound["eps"], float):
        return None
    shape = bound["normalized_shape"]
    shape = (shape,) if type(shape) is int else shape
    if not isinstance(shape, (tuple, list, torch.Size)) or not all(type(s) is int for s in shape):
        return None
    return _layer_norm(bound["input"], tuple(shape), bound["weight"], bound["bias"])


def _functional_convolution(args: Any, kwargs: Any) -> torch.Tensor | None:
    bound = _bind(
        args, kwargs, ("input", "weight", "bias", "stride", "padding", "dilation", "groups"),
        {"bias": None, "stride": 1, "padding": 0, "dilation": 1, "groups": 1},
    )
    if bound is None or not _plain_meta(bound["input"]):
        return None
    return _convolution(*(bound[name] for name in ("input", "weight", "bias", "stride", "padding", "dilation", "groups")))


def _convolution(
    x: torch.Tensor, weight: Any, bias: Any, stride: Any, padding: Any, dilation: Any, groups: Any
) -> torch.Tensor | None:
    """``F.conv{1,2,3}d`` on a batch: (N, out channels, each size (L + 2p - d(k - 1) - 1) // s + 1), row-major
    where the input and the weight are (the kernel picks channels-last from either; that goes to torch)."""
    spatial = x.dim() - 2
    strides, paddings, dilations = (_per_dim(value, spatial) for value in (stride, padding, dilation))
    if (
        torch.is_grad_enabled() or spatial not in (1, 2, 3) or not _weight(weight, x.dtype, spatial + 2)
        or strides is None or paddings is None or dilations is None or type(groups) is not int or groups < 1
        or min(strides) < 1 or min(dilations) < 1 or min(paddings) < 0
        or x.shape[1] != weight.shape[1] * groups or weight.shape[0] % groups
        or not (bias is None or (_weight(bias, x.dtype, 1) and bias.shape[0] == weight.shape[0]))
        or x.stride() != row_major(x.shape) or weight.stride() != row_major(weight.shape)
    ):
        return None
    out = [
        (length + 2 * p - d * (k - 1) - 1) // s + 1
        for length, k, s, p, d in zip(x.shape[2:], weight.shape[2:], strides, paddings, dilations)
    ]
    if min(out) <= 0:
        return None  # the kernel says what is wrong
    return torch.empty((x.shape[0], weight.shape[0], *out), dtype=x.dtype, device="meta")


def _per_dim(value: Any, count: int) -> tuple[int, ...] | None:
    """A stride, padding or dilation as one int per spatial dimension; None for ``"same"`` and the like."""
    if type(value) is int:
        return (value,) * count
    if isinstance(value, (tuple, list)) and len(value) == count and all(type(v) is int for v in value):
        return tuple(value)
    return None


def _linear(x: torch.Tensor, weight: Any, bias: Any) -> torch.Tensor | None:
    """``F.linear``: the input's leading sizes and the weight's rows, row-major."""
    if (
        torch.is_grad_enabled() or x.dim() < 1 or not _weight(weight, x.dtype, 2) or x.shape[-1] != weight.shape[1]
        or not (bias is None or (_weight(bias, x.dtype, 1) and bias.shape[0] == weight.shape[0]))
    ):
        return None
    return torch.empty((*x.shape[:-1], weight.shape[0]), dtype=x.dtype, device="meta")


def _adaptive_average(x: torch.Tensor, output_size: Any, pooled: int) -> torch.Tensor | None:
    """``F.adaptive_avg_pool{1,2,3}d``, batched or not: the input's leading sizes and ``output_size`` (a None
    there keeps the input's size), in the input's layout: row-major, or channels-last for a batch of images
    (convnext's head). Other layouts go to torch."""
    sizes = (output_size,) * pooled if type(output_size) is int else output_size
    if (
        x.dim() not in (pooled + 1, pooled + 2) or not isinstance(sizes, (tuple, list)) or len(sizes) != pooled
        or not all(s is None or (type(s) is int and s > 0) for s in sizes)
        or any(size == 0 for size in x.shape[1:])
    ):
        return None
    layout = _image_layout(x) if pooled == 2 else (torch.contiguous_format if x.stride() == row_major(x.shape) else None)
    if layout is None:
        return None
    spatial = x.shape[-pooled:]
    shape = (*x.shape[:-pooled], *(own if s is None else s for s, own in zip(sizes, spatial)))
    return torch.empty(shape, dtype=x.dtype, device="meta", memory_format=layout)


def _max_pool_2d(
    x: torch.Tensor, kernel_size: Any, stride: Any, padding: Any, dilation: Any, ceil_mode: Any
) -> torch.Tensor | None:
    """``F.max_pool2d`` (no indices) of one image or a batch: each size ``(L + 2p - d(k - 1) - 1 [+ s - 1 with
    ceil_mode]) // s + 1``, one less where ceil_mode's last window would start past the padded input, in
    the input's layout (row-major or channels-last). Where torch refuses (a padding over half the kernel,
    an output smaller than one), torch says why."""
    kernels, paddings, dilations = (_per_dim(value, 2) for value in (kernel_size, padding, dilation))
    strides = kernels if stride is None or stride == () or stride == [] else _per_dim(stride, 2)
    layout = _image_layout(x) if x.dim() == 4 else (torch.contiguous_format if x.dim() == 3 else None)
    if (
        kernels is None or strides is None or paddings is None or dilations is None or layout is None
        or type(ceil_mode) is not bool or any(size == 0 for size in x.shape)
        or min(kernels) < 1 or min(strides) < 1 or min(dilations) < 1 or min(paddings) < 0
        or any(p > k // 2 for p, k in zip(paddings, kernels))
    ):
        return None
    out = []
    for length, k, s, p, d in zip(x.shape[-2:], kernels, strides, paddings, dilations):
        size = (length + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
        if ceil_mode and (size - 1) * s >= length + p:
            size -= 1
        out.append(size)
    if min(out) < 1:
        return None
    return torch.empty((*x.shape[:-2], *out), dtype=x.dtype, device="meta", memory_format=layout)


def _image_layout(x: torch.Tensor) -> torch.memory_format | None:
    """Row-major or channels-last: the layouts torch's pooling keeps; None for any other strides. A
    4-d tensor both layouts describe (sizes of 1 where they differ) is row-major, as torch takes it."""
    if x.stride() == row_major(x.shape):
        return torch.contiguous_format
    if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        return torch.channels_last
    return None


def _layer_norm(x: torch.Tensor, shape: tuple[int, ...], weight: Any, bias: Any) -> torch.Tensor | None:
    """``F.layer_norm``: the input's shape; its strides when it is contiguous (torch normalizes
    ``input.contiguous()``, the input itself then), else row-major."""
    if (
        torch.is_grad_enabled() or not shape or x.dim() < len(shape) or tuple(x.shape[-len(shape):]) != tuple(shape)
        or not all(p is None or (_weight(p, x.dtype, len(shape)) and tuple(p.shape) == tuple(shape)) for p in (weight, bias))
    ):
        return None
    if x.is_contiguous():
        return torch.empty_strided(x.shape, x.stride(), dtype=x.dtype, device="meta")
    return torch.empty(x.shape, dtype=x.dtype, device="meta")


_OPS: dict[Any, Callable[[Any, Any], torch.Tensor | None]] = {
    **{op: _elementwise for op in _ELEMENTWISE},
    **{op: _tensor_first for op in _TENSOR_FIRST},
    **{op: _in_place for op in _IN_PLACE},
    F.linear: _functional_linear, torch._C._nn.linear: _functional_linear,
    F.layer_norm: _functional_layer_norm,
    F.conv1d: _functional_convolution, F.conv2d: _functional_convolution, F.conv3d: _functional_convolution,
}


def _bind(args: Any, kwargs: Any, names: tuple[str, ...], defaults: dict[str, Any]) -> dict[str, Any] | None:
    """Positional and keyword arguments by parameter name, or None when they don't fit ``names``."""
    if len(args) > len(names) or any(name not in names for name in kwargs):
        return None
    bound = {**defaults, **dict(zip(names, args)), **kwargs}
    return bound if all(name in bound for name in names) else None


def _weight(value: Any, dtype: torch.dtype, dim: int) -> bool:
    """A plain tensor of ``dtype`` with ``dim`` dimensions (a parameter, its meta stand-in, a buffer)."""
    return isinstance(value, torch.Tensor) and type(value) in (torch.Tensor, torch.nn.Parameter) and (
        value.dtype == dtype and value.dim() == dim
    )


def _plain_meta(value: Any) -> bool:
    return type(value) is torch.Tensor and value.is_meta and value.layout is torch.strided and value.dtype.is_floating_point


def _like(tensor: torch.Tensor) -> torch.Tensor:
    """``torch.empty_like(tensor)``; a row-major one without torch's Python version of it."""
    if tensor.stride() == row_major(tensor.shape):
        return torch.empty(tensor.shape, dtype=tensor.dtype, device="meta")
    return torch.empty_like(tensor)


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True
