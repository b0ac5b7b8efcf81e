"""Make qready's own modules known to AIMET's QuantizationSimModel.

AIMET quantizes the module classes it knows and refuses the others. A
prepared model holds ``qready.nn`` modules (``Add``, ``MatMul``, ...), so
before building a ``QuantizationSimModel`` call::

    from qready.interop.aimet import register_qready_modules
    register_qready_modules()

Each qready module gets a quantized subclass with one input quantizer per
tensor operand and one output quantizer, as AIMET's own elementwise modules
have. aimet-torch is not a dependency of qready: this module imports it only
when the function runs.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch

import qready.nn as qnn

__all__ = ["register_qready_modules"]

_registered: dict[type, type] = {}

# The ONNX op type of each qready module whose class name is not already that op's name. AIMET's
# connected graph matches its config's supergroups (``Add`` + ``Relu``, ``Conv`` + ``Relu``...) by op
# type: without these an ``Add`` followed by a ``ReLU`` would get an output quantizer of its own, one
# more rounding than AIMET's own prepared model has.
_ONNX_OP_TYPES: dict[type, str] = {
    qnn.Cat: "Concat",
    qnn.Mean: "ReduceMean",
    qnn.Sum: "ReduceSum",
    qnn.Max: "ReduceMax",
    qnn.Min: "ReduceMin",
    qnn.Maximum: "Max",
    qnn.Minimum: "Min",
    qnn.BatchMatMul: "MatMul",
    qnn.MM: "MatMul",
    qnn.Interpolate: "Resize",
    qnn.Clamp: "Clip",
    qnn.MaskedFill: "Where",
    qnn.FunctionalConv1d: "Conv",
    qnn.FunctionalConv2d: "Conv",
    qnn.FunctionalConv3d: "Conv",
    qnn.FunctionalLinear: "Gemm",
    qnn.FunctionalLayerNorm: "LayerNormalization",
    qnn.FunctionalBatchNorm: "BatchNormalization",
    qnn.FunctionalGroupNorm: "GroupNormalization",
}


def register_qready_modules() -> dict[type, type]:
    """Register a quantized definition of every ``qready.nn`` module with AIMET; idempotent."""
    from aimet_torch import onnx_utils
    from aimet_torch.nn import QuantizationMixin

    for name in qnn.__all__:
        cls = getattr(qnn, name)
        if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)) or cls in _registered:
            continue
        quantized = type(
            f"Quantized{cls.__name__}",
            (QuantizationMixin, cls),
            {
                "__quant_init__": _quant_init(_operand_count(cls)),
                "forward": _quantized_forward,
                "__module__": __name__,
            },
        )
        QuantizationMixin.implements(cls)(quantized)
        op_type = [_ONNX_OP_TYPES.get(cls, cls.__name__)]
        onnx_utils.map_torch_types_to_onnx.setdefault(cls, op_type)
        onnx_utils.map_torch_types_to_onnx.setdefault(quantized, op_type)
        _registered[cls] = quantized
    return dict(_registered)


def _operand_count(cls: type) -> int:
    """Positional operands of the module's forward (``Add``: 2, ``Relu``-like: 1)."""
    parameters = list(inspect.signature(cls.forward).parameters.values())[1:]  # type: ignore[attr-defined]  # AIMET's API is untyped; used as its documentation says
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if any(p.kind is p.VAR_POSITIONAL for p in parameters):
        return max(len(positional), 2)
    return max(len(positional), 1)


def _quant_init(operands: int):
    def __quant_init__(self: Any) -> None:
        super(type(self), self).__quant_init__()
        self.input_quantizers = torch.nn.ModuleList([None] * operands)  # type: ignore[list-item]  # AIMET's API is untyped; used as its documentation says
        self.output_quantizers = torch.nn.ModuleList([None])  # type: ignore[list-item]  # AIMET's API is untyped; used as its documentation says

    return __quant_init__


def _quantized_forward(self: Any, *args: Any, **kwargs: Any) -> Any:
    args = tuple(
        _quantize(quantizer, arg) for quantizer, arg in zip(self.input_quantizers, args)
    ) + args[len(self.input_quantizers):]
    output = super(type(self), self).forward(*args, **kwargs)
    return _quantize(self.output_quantizers[0], output)


def _quantize(quantizer: Any, value: Any) -> Any:
    # Masks, indices and shapes pass through: only floating-point activations are quantized.
    if quantizer is None or not isinstance(value, torch.Tensor) or not value.is_floating_point():
        return value
    return quantizer(value)
