"""Example inputs: positional and keyword arguments, validated, and fresh draws of them."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from qready.caches import describe_cache, is_cache, own_copy
from qready.errors import InputError
from qready.randomness import same_draws
from qready.structure import flatten, map_leaves, node_type_of, unflatten
from qready.wording import a

__all__ = ["Example", "as_example", "fresh_like", "tensor_leaves"]


@dataclass(frozen=True)
class Example:
    """The arguments a model's forward is called with."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)

    def call(self, model: torch.nn.Module) -> Any:
        # a KV cache grows in the forward: each call gets its own, the example's stays as it was;
        # a forward that draws random numbers draws the same ones on every call (qready.randomness)
        with same_draws(self.args, self.kwargs):
            return model(*own_copy(self.args), **own_copy(self.kwargs))

    def describe(self) -> str:
        parts = [_describe(v) for v in self.args]
        parts += [f"{k}={_describe(v)}" for k, v in self.kwargs.items()]
        return "(" + ", ".join(parts) + ")"


def as_example(example_inputs: Any, example_kwargs: Mapping[str, Any] | None = None) -> Example:
    """Accept ``(x,)``, ``(x, y)``, a mapping of keyword inputs, or an ``Example``."""
    if isinstance(example_inputs, Example):
        if example_kwargs:
            return Example(example_inputs.args, {**example_inputs.kwargs, **example_kwargs})
        return example_inputs
    kwargs = dict(example_kwargs or {})
    if isinstance(example_inputs, Mapping):
        return Example((), {**dict(example_inputs), **kwargs})
    if isinstance(example_inputs, torch.Tensor):
        raise InputError(
            "example_inputs is a bare Tensor; wrap it in a tuple: (x,) "
            "(a tuple holds the model's positional arguments)"
        )
    if isinstance(example_inputs, list):
        raise InputError(
            "example_inputs is a list; pass a tuple of positional arguments, e.g. tuple(inputs), "
            "or (inputs,) if the model takes one list argument"
        )
    if not isinstance(example_inputs, tuple):
        raise InputError(
            f"example_inputs is {a(type(example_inputs).__name__)}; pass a tuple of positional "
            "arguments, e.g. (torch.randn(1, 3, 224, 224),), or a dict of keyword arguments"
        )
    return Example(tuple(example_inputs), kwargs)


def fresh_like(example: Example, seed: int = 0) -> Example:
    """Inputs of the same structure, shapes and dtypes with newly drawn values.

    Floats are drawn from a standard normal; integers and bools uniformly within
    the range the example spans (so token ids stay inside the vocabulary and an
    all-ones attention mask stays all ones).
    """
    generator = torch.Generator().manual_seed(seed)

    def draw(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            return _fresh_tensor(value, generator)
        if node_type_of(value) is not None:  # a cache: new tensors of the same shapes in a new one
            leaves, spec = flatten(value)
            return unflatten(spec, [draw(leaf) for leaf in leaves])
        if isinstance(value, tuple) and hasattr(value, "_fields"):
            return type(value)(*(draw(v) for v in value))
        if isinstance(value, (list, tuple)):
            return type(value)(draw(v) for v in value)
        if isinstance(value, Mapping):
            try:
                return type(value)({k: draw(v) for k, v in value.items()})  # type: ignore[call-arg]  # a concrete Mapping class, rebuilt from a dict
            except TypeError:
                return {k: draw(v) for k, v in value.items()}
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return dataclasses.replace(
                value, **{f.name: draw(getattr(value, f.name)) for f in dataclasses.fields(value)}
            )
        return value

    return Example(tuple(draw(v) for v in example.args), {k: draw(v) for k, v in example.kwargs.items()})


def _fresh_tensor(t: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    if t.numel() == 0:
        return t.clone()
    if t.dtype.is_floating_point or t.dtype.is_complex:
        fresh = torch.randn(t.shape, generator=generator, dtype=torch.float32)
        return fresh.to(dtype=t.dtype, device=t.device).requires_grad_(t.requires_grad)
    low, high = int(t.min()), int(t.max())
    if t.dtype == torch.bool:
        values = torch.randint(low, high + 1, t.shape, generator=generator)
        return values.bool().to(t.device)
    values = torch.randint(low, high + 1, t.shape, generator=generator, dtype=torch.int64)
    return values.to(dtype=t.dtype, device=t.device)


def tensor_leaves(value: Any) -> list[torch.Tensor]:
    """Every tensor inside a (nested) output, in a stable order."""
    leaves: list[torch.Tensor] = []
    map_leaves(value, leaves.append)
    return leaves


def _describe(value: Any) -> str:
    if is_cache(value):
        return describe_cache(value)
    if isinstance(value, torch.Tensor):
        dtype = str(value.dtype).removeprefix("torch.")
        return f"{dtype}[{'x'.join(map(str, value.shape))}]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k!r}: {_describe(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        inner = ", ".join(_describe(v) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner})"
    return repr(value)
