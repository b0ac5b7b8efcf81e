"""The ``aimet`` target: AIMET's QuantizationSimModel, asked which classes it quantizes.

AIMET keeps a registry of quantized module classes (``QuantizationMixin`` and
its legacy fake-quant twin). A module whose class is registered is wrapped
whole, children and all (``nn.MultiheadAttention``); a module without children
whose class is not registered makes ``QuantizationSimModel`` raise; a module
with children but no definition is walked into. qready's own ``qready.nn``
modules are registered first (``qready.interop.aimet``), as a user of a
prepared model does. aimet-torch is imported only when this target is used.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import warnings
from collections.abc import Iterator
from typing import Any

import torch

from qready.errors import InputError
from qready.example_inputs import Example
from qready.targets.base import Sim, Target, runs_code

__all__ = ["AimetTarget"]


class AimetTarget(Target):
    """AIMET 2.x QuantSim: leaves are the classes with a registered quantized definition."""

    name = "aimet"
    summary = "AIMET QuantizationSimModel: a leaf is a module class AIMET has a quantized definition for"
    exports_onnx = True
    flat_io = True  # QuantizationSimModel traces the model: tensors, tuples, lists or dicts of tensors only

    def require(self) -> None:
        try:
            import aimet_torch  # noqa: F401
        except ImportError as error:
            raise InputError(
                "--target aimet needs aimet-torch, which is not installed; pip install 'qready[interop]'"
            ) from error

    @functools.cached_property
    def quantized_classes(self) -> frozenset[type]:
        """Every module class the installed AIMET can quantize, qready's own included."""
        self.require()
        from aimet_torch.nn import QuantizationMixin
        from aimet_torch.nn.fake_quant import _legacy_impl

        from qready.interop.aimet import register_qready_modules

        register_qready_modules()
        return frozenset(QuantizationMixin.cls_to_qcls) | frozenset(_legacy_impl.FakeQuantizationMixin.cls_to_qcls)

    def _ignored(self) -> tuple[type, ...]:
        from aimet_torch.quantsim.quantsim import unquantizable_modules

        return tuple(unquantizable_modules)  # nn.Identity, AIMET's quantizers: never wrapped, never refused

    def is_leaf(self, module: torch.nn.Module) -> bool:
        return type(module) in self.quantized_classes or isinstance(module, self._ignored())

    def refuses(self, module: torch.nn.Module) -> bool:
        # What QuantizationSimModel raises UnknownModuleError for: a class it has no definition for,
        # with no children to wrap instead, whose own forward computes something.
        return (
            not self.is_leaf(module)
            and next(iter(module.children()), None) is None
            and runs_code(module)
        )

    def refusal(self, module: torch.nn.Module) -> str:
        return f"AIMET has no quantized definition for {type(module).__qualname__}"

    def refusal_fix(self, module: torch.nn.Module) -> str:
        return (
            f"register one (@QuantizationMixin.implements({type(module).__name__})) "
            "or let qready prepare decompose it into modules AIMET knows"
        )

    def build_sim(self, model: torch.nn.Module, example: Example, **options: Any) -> Sim:
        """A W8A8 ``QuantizationSimModel`` of ``model`` (``options`` go to its constructor)."""
        _ = self.quantized_classes  # requires AIMET and registers qready's modules
        from aimet_torch.quantsim import QuantizationSimModel

        if example.kwargs:
            raise InputError(
                "AIMET's QuantizationSimModel takes positional tensor inputs only; prepare the model first "
                "(a prepared model takes its inputs as flat tensors)"
            )
        options = {"default_output_bw": 8, "default_param_bw": 8, **options}
        with _quiet_aimet():
            handle = QuantizationSimModel(model, dummy_input=_dummy_input(example), **options)

        def compute_encodings(forward: Any) -> None:
            with _quiet_aimet():
                handle.compute_encodings(lambda sim_model: forward(sim_model))

        def export(directory: str, name: str, example: Example) -> list[str]:
            before = set(os.listdir(directory))
            with _quiet_aimet():
                handle.export(directory, name, dummy_input=_dummy_input(example))
            return sorted(set(os.listdir(directory)) - before)

        return Sim(handle.model, handle, compute_encodings, export)

    def is_quantized(self, module: torch.nn.Module) -> bool:
        from aimet_torch.nn.base import BaseQuantizationMixin

        return isinstance(module, BaseQuantizationMixin)

    def is_quantizer(self, module: torch.nn.Module) -> bool:
        from aimet_torch.quantization.base import QuantizerBase

        return isinstance(module, QuantizerBase)


def _dummy_input(example: Example) -> Any:
    """The example as AIMET's ``dummy_input``: AIMET calls ``model(*dummy)`` on a tuple or list and
    ``model(dummy)`` on anything else, so one list argument (torchvision detectors' images) goes in a tuple."""
    if len(example.args) == 1 and isinstance(example.args[0], torch.Tensor):
        return example.args[0]
    return tuple(example.args)


@contextlib.contextmanager
def _quiet_aimet() -> Iterator[None]:
    """AIMET logs every step at INFO and each validator finding at ERROR, and warns freely:
    keep the user's stderr for qready."""
    previous = logging.root.manager.disable
    logging.disable(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)
