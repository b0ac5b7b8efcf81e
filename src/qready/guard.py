"""The guard over the user's model: what must hold before qready runs it, and what it gives back.

``preserved`` puts the model in eval mode for a block and restores every
module's training flag afterwards, also when the block raises. The
``require_*`` checks fail early, with one line, on a model that has nothing to
run or returns nothing to quantize. ``blame_forward`` decides who owns an
exception out of the model's forward: the user (their line, their inputs) or
qready (an internal error). Nesting too deep for Python's recursion limit is
recognised here too, since any walk over the model may hit it first.
"""

from __future__ import annotations

import reprlib
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from qready.errors import InternalError, ModelError, forward_failure, internal_error, too_deep_message
from qready.example_inputs import Example, tensor_leaves
from qready.source import error_location, raised_by_qready
from qready.walks import modules_of

__all__ = [
    "preserved", "call_preserved", "require_runnable", "require_tensor_output", "blame_forward",
    "nesting_depth", "nested_too_deep", "too_deep",
]


@contextmanager
def preserved(model: torch.nn.Module, *, buffers: bool = True) -> Iterator[None]:
    """Run a block in eval mode and give the model its own training flags back afterwards, and with
    ``buffers`` its buffers as they were: a forward that writes into its buffers (a step counter, a
    streaming cache) run by qready must leave the user's model as it found it. Pass ``buffers=False``
    for a block that does not run the model."""
    modules = modules_of(model)
    flags = [(m, m.training) for m in modules]
    kept = _buffers_of(modules) if buffers else []
    try:
        if any(training for _, training in flags):  # eval() sets every flag, 0.6 ms on resnet50
            model.eval()
        yield
    finally:
        for module, training in flags:
            if module.training is not training:
                module.training = training
        _put_back(kept)


def call_preserved(model: torch.nn.Module, example: Example) -> Any:
    """``example.call(model)`` in eval mode, its flags and buffers given back afterwards: every such run starts
    from the model's state as it is (a forward that counts its calls computes the same each time)."""
    with preserved(model):
        return example.call(model)


_Kept = tuple[torch.nn.Module, str, torch.Tensor, int, torch.Tensor]


def _buffers_of(modules: list[torch.nn.Module]) -> list[_Kept]:
    """Each buffer, where it is held, with its version counter and a copy of its values."""
    kept = []
    for module in modules:
        for name, tensor in module._buffers.items():
            if tensor is not None and not tensor.is_inference():  # an inference tensor cannot be written outside inference mode
                kept.append((module, name, tensor, tensor._version, tensor.detach().clone()))
    return kept


def _put_back(kept: list[_Kept]) -> None:
    """Each buffer back in its place (a forward may assign another), its values back where written in place."""
    for module, name, tensor, version, values in kept:
        if module._buffers.get(name) is not tensor:
            module._buffers[name] = tensor
        if tensor._version != version:
            with torch.no_grad():
                tensor.copy_(values)


def require_runnable(model: torch.nn.Module) -> None:
    """Fail before any work on a model that has nothing to run."""
    name = type(model).__name__
    if getattr(type(model), "forward", None) is torch.nn.Module.forward:
        raise ModelError(
            f"{name} has no forward method, so there is nothing to run; pass the model that computes "
            "the outputs, or define forward(self, ...)"
        )
    if isinstance(model, (torch.nn.Sequential, torch.nn.ModuleList, torch.nn.ModuleDict)) and len(model) == 0:
        raise ModelError(f"{name} is empty: it has no layers to check or prepare; add its layers or pass the model that holds them")


def require_tensor_output(model: torch.nn.Module, output: Any) -> None:
    """A model must produce at least one tensor: there is nothing to quantize otherwise."""
    if not tensor_leaves(output):
        shown = "None" if output is None else f"{reprlib.repr(output)} ({type(output).__name__}), no tensor"
        raise ModelError(
            f"forward of {type(model).__name__} returned {shown}; return the model's output "
            "tensor(s): a tensor, or a tuple or dict of tensors"
        )


def blame_forward(model: torch.nn.Module, example: Example, error: BaseException) -> ModelError | InternalError:
    """The error to raise for an exception out of ``model``'s forward run by qready: the user's
    (a ModelError naming their line and inputs) or, when qready's own code raised it, an InternalError."""
    if isinstance(error, RecursionError) and nested_too_deep(model):
        return ModelError(too_deep(model))
    if raised_by_qready(error):
        return internal_error(f"qready failed while running the forward of {type(model).__name__}", error)
    return ModelError(forward_failure(type(model).__name__, example.describe(), error, *error_location(error)))


def nesting_depth(model: torch.nn.Module) -> int:
    """How deep submodules nest below ``model`` (without recursion: it is asked of models too deep for it)."""
    deepest = 0
    stack = [(model, 0)]
    seen: set[int] = set()
    while stack:
        module, depth = stack.pop()
        if id(module) in seen:
            continue
        seen.add(id(module))
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in module._modules.values() if child is not None)
    return deepest


def nested_too_deep(model: torch.nn.Module) -> bool:
    """Whether nesting can explain a RecursionError: a plain forward takes about four frames a
    level, qready's hooks and tracing a few more. Otherwise the recursion is a bug somewhere."""
    return nesting_depth(model) * 4 >= sys.getrecursionlimit() // 2


def too_deep(model: torch.nn.Module) -> str:
    """The message for a RecursionError that nesting, not the model's code, caused."""
    return too_deep_message(type(model).__name__, nesting_depth(model), sys.getrecursionlimit())
