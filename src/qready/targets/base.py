"""What a target is: the toolkit a user quantizes with, and what it wraps as one unit.

A quantization toolkit that wraps modules decides what a leaf is: the module
classes it has a quantized definition for are wrapped whole, a module without
children that it has no definition for is refused, and ops that run anywhere
else have no quantizer. A :class:`Target` answers those questions for one
toolkit, and builds the toolkit's simulation of a model where the toolkit can.
Rules and passes ask the target; they never name a toolkit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from qready.errors import InputError
from qready.example_inputs import Example
from qready.ops import CONTAINERS, is_leaf_module

__all__ = ["Sim", "Target"]


@dataclass
class Sim:
    """A toolkit's quantization simulation of a model, and how to run it."""

    model: torch.nn.Module  # the simulated model, quantizers in place
    handle: Any  # the toolkit's own object (AIMET's QuantizationSimModel)
    compute_encodings: Callable[[Callable[[torch.nn.Module], Any]], None]
    export: Callable[[str, str, Example], list[str]]  # (directory, name, example) -> files written


class Target:
    """A quantization toolkit, as far as checks and ``prepare`` need to know it.

    Subclasses set ``name`` and ``summary`` and override what their toolkit
    decides. The base class is the guidelines' own view (``generic``): the
    leaves of ``qready.ops.is_leaf_module`` (torch.nn built-ins without
    children, multi-head attention, the recurrent layers, ``qready.nn``), and
    nothing is refused.
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    #: The toolkit exports ONNX from the float model, so fused kernels without an
    #: ONNX export (``nn.MultiheadAttention``'s eval fast path) must become modules.
    exports_onnx: ClassVar[bool] = False
    #: The toolkit takes a model with tensor inputs and outputs only: a model whose own forward
    #: stays Python (an untraceable root) is then called with flat tensors, as a graph is, and the
    #: submodules its forward calls that return lists return tuples (AIMET's export keeps no list).
    flat_io: ClassVar[bool] = False

    def require(self) -> None:
        """Raise ``InputError`` when the toolkit is not installed."""

    def is_leaf(self, module: torch.nn.Module) -> bool:
        """Whether a quantizer wraps ``module`` whole: ops in its forward count as covered."""
        return is_leaf_module(module)

    def refuses(self, module: torch.nn.Module) -> bool:
        """Whether the toolkit cannot wrap ``module`` and has no children of it to wrap instead."""
        return False

    def refusal(self, module: torch.nn.Module) -> str:
        """Why ``module`` is refused, in the toolkit's words, for a finding's message."""
        return f"{self.name} cannot quantize {type(module).__qualname__}"

    def refusal_fix(self, module: torch.nn.Module) -> str:
        return "let qready prepare decompose it into modules the toolkit knows"

    def build_sim(self, model: torch.nn.Module, example: Example) -> Sim:
        raise InputError(f"target {self.name!r} has no quantization simulator; choose --target aimet")

    def is_quantized(self, module: torch.nn.Module) -> bool:
        """In a sim built by this target: whether ``module`` is a quantized module."""
        return False

    def is_quantizer(self, module: torch.nn.Module) -> bool:
        """In a sim: whether ``module`` is a quantizer itself (its arithmetic is not the model's)."""
        return False


def runs_code(module: torch.nn.Module) -> bool:
    """A module whose own forward computes something: not a container, not an abstract Module."""
    return not isinstance(module, CONTAINERS) and type(module).forward is not torch.nn.Module.forward
