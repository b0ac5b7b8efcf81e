"""Where the results of op calls go during one eager forward.

A quantizer belongs on a value the model computes with. The result of
``emb.abs().max() > 1.0`` only decides a Python ``if``, and ``~pad_mask`` is a
boolean mask: neither is ever quantized, so neither is a quantization point.
This records, per op call, who consumed its result (later op calls, module
inputs, the model's output) and resolves which calls feed values.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from typing import Any

import torch

__all__ = ["OpCall", "ValueFlow"]


class OpCall:
    """One op call outside leaf modules: what its result is, and who used it."""

    __slots__ = ("consumers", "feeds_values", "kind", "sink")

    def __init__(self, kind: str) -> None:
        self.kind = kind  # "value": a non-boolean tensor; "bool": boolean tensors only; "python": no tensor
        self.consumers: list[OpCall] = []
        self.sink = False  # read by a module or returned by the model
        self.feeds_values = True


class ValueFlow:
    """Producers of live tensors (by identity, held weakly: no activation is kept alive) and the
    op calls that consumed them, in the order they ran."""

    def __init__(self) -> None:
        self.calls: list[OpCall] = []
        self._producers: dict[int, tuple[weakref.ref[torch.Tensor], OpCall]] = {}

    def op(self, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any, *, in_leaf: bool) -> OpCall | None:
        """Record one op call; inside a leaf only its inputs count (a leaf's quantizers see them)."""
        consumed = [p for p in map(self._producer, _tensors((args, kwargs))) if p is not None]
        if in_leaf:
            for producer in consumed:
                producer.sink = True
            return None
        outputs = list(_tensors(result))
        kind = "python" if not outputs else "bool" if all(t.dtype == torch.bool for t in outputs) else "value"
        call = OpCall(kind)
        for producer in consumed:
            producer.consumers.append(call)
        for tensor in outputs:
            self._producers[id(tensor)] = (weakref.ref(tensor), call)
        self.calls.append(call)
        return call

    def read_by_module(self, value: Any) -> None:
        """Tensors passed to a module or returned by the model: values that count."""
        for tensor in _tensors(value):
            producer = self._producer(tensor)
            if producer is not None:
                producer.sink = True

    def resolve(self) -> None:
        """``feeds_values`` for every call: its result is a non-boolean tensor that a module reads,
        the model returns, nothing reads (kept, to be safe), or a call that feeds values reads."""
        for call in reversed(self.calls):  # consumers ran later: they are resolved first
            call.feeds_values = call.kind == "value" and (
                call.sink or not call.consumers or any(c.feeds_values for c in call.consumers)
            )

    def _producer(self, tensor: torch.Tensor) -> OpCall | None:
        entry = self._producers.get(id(tensor))
        if entry is None or entry[0]() is not tensor:  # a freed tensor's id may be reused
            return None
        return entry[1]


def _tensors(value: Any) -> Iterator[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (tuple, list)):
        for item in value:
            yield from _tensors(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors(item)
