"""Inputs of other sizes: what verification adds so that a prepared model is held to the
batch sizes and sequence lengths the original itself accepts."""

from __future__ import annotations

from typing import Any

import torch

from qready.example_inputs import Example, fresh_like, tensor_leaves
from qready.guard import call_preserved

__all__ = ["other_sizes"]


def other_sizes(original: torch.nn.Module, example: Example) -> list[tuple[str, Example, Any]]:
    """Inputs one larger along the batch dimension, and along the sequence dimension of token
    inputs, with the original's outputs on them; a size the original itself rejects is skipped."""
    if not _plain((example.args, example.kwargs)):
        return []  # a cache or other object holds sizes of its own: growing only the tensors around it says nothing
    tensors = tensor_leaves((example.args, example.kwargs))
    candidates = []
    if tensors and all(t.dim() > 0 for t in tensors) and len({t.shape[0] for t in tensors}) == 1:
        candidates.append(("batch+1", 0, lambda t: True))
    tokens = [t for t in tensors if t.dim() >= 2 and not t.dtype.is_floating_point]
    if tokens and len({t.shape[1] for t in tokens}) == 1:
        length = tokens[0].shape[1]
        candidates.append(("length+1", 1, lambda t: t.dim() >= 2 and t.shape[1] == length))
    runs = []
    for name, dim, grows in candidates:
        grown = _map_tensors(example, lambda t, dim=dim, grows=grows: torch.cat([t, t.narrow(dim, 0, 1)], dim) if grows(t) else t)
        inputs = fresh_like(grown, seed=2)
        try:
            with torch.no_grad():
                expected = call_preserved(original, inputs)
        except Exception:  # the original's own sizes are fixed here: nothing to hold the prepared model to
            continue
        runs.append((name, inputs, expected))
    return runs


def _plain(value: Any) -> bool:
    if isinstance(value, (torch.Tensor, bool, int, float, str)) or value is None:
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(_plain(v) for v in value.values())
    return False


def _map_tensors(example: Example, change: Any) -> Example:
    def walk(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            return change(value)
        if isinstance(value, tuple) and hasattr(value, "_fields"):
            return type(value)(*(walk(v) for v in value))
        if isinstance(value, (list, tuple)):
            return type(value)(walk(v) for v in value)
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        return value

    return Example(walk(example.args), walk(example.kwargs))
