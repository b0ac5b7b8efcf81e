"""The trace runs on meta stand-ins wherever shapes decide, and gives the graph real values would give.

A trace that falls back to real values holds every activation of the example
until it ends (40 MiB for a 100M-parameter Llama on 32 tokens): the fallback
is for data-dependent kernels, never for bookkeeping such as moving a mask
onto the device of the input.
"""

from __future__ import annotations

import torch
from torch import nn

import qready
from qready.example_inputs import as_example
from qready.flatten_io import flat_signature, make_flat_forward
from qready.tracing import trace_with_leaves


def _trace(model: nn.Module, *inputs: torch.Tensor):  # type: ignore[no-untyped-def]
    example = as_example(inputs)
    signature = flat_signature(model, example)
    forward = make_flat_forward(model, signature, concrete_of=lambda proxy: proxy.tracer.values[proxy.node])
    with torch.no_grad():
        return trace_with_leaves(model, forward, signature.input_values, set())


class MovesItsMask(nn.Module):
    """transformers' mask code: ``mask.to(x.device)``, ``.cpu()``, ``.to(device=..., dtype=...)``."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mask = (torch.arange(x.shape[1]) < 3).to(x.device)
        scale = x.new_ones(x.shape[-1]).cpu().to(device=x.device, dtype=x.dtype)
        y = self.linear(x).to(x.device) * scale
        return y.masked_fill(~mask[None, :, None], 0.0).to("cpu")


def test_moves_onto_the_example_device_stay_on_stand_ins() -> None:
    model = MovesItsMask().eval()
    x = torch.randn(2, 5, 8)
    graph, tracer, failures = _trace(model, x)
    assert tracer.meta, "moving a value onto the device it is on needs no real values"
    assert failures == []
    assert all(value.is_meta for value in tracer.values.values() if isinstance(value, torch.Tensor) and value.dim() > 1)
    prepared = qready.prepare(model, (x,))
    assert prepared.prepare_result.verified
    other = torch.randn(3, 7, 8)
    assert torch.equal(prepared(other), model(other))


def test_a_move_to_another_device_is_still_the_user_code_running() -> None:
    class ToMeta(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.to("meta").shape[0] * x

    model = ToMeta().eval()
    x = torch.randn(2, 3)
    _, tracer, _ = _trace(model, x)
    assert torch.equal(qready.prepare(model, (x,))(x), model(x))
    assert tracer.meta
