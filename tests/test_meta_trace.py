"""The trace runs on meta stand-ins wherever shapes decide, and gives the graph real values would give.

A trace that falls back to real values holds every activation of the example
until it ends (40 MiB for a 100M-parameter Llama on 32 tokens): the fallback
is for data-dependent kernels, never for bookkeeping such as moving a mask
onto the device of the input.
"""

from __future__ import annotations

import pytest
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


def test_a_model_without_weights_is_traced_on_stand_ins_alone() -> None:
    """Under qready's mode for meta weights, small tensors made on meta become real ones; the tracer's
    own stand-ins (a weight's twin, a remembered output) must stay meta, or each layer's values turn
    real and are copied op by op (a 32-layer Llama-3-70B config took 12 s instead of 1)."""
    accelerate = pytest.importorskip("accelerate", reason="accelerate is part of the test extra")
    from qready.meta import meta_weights
    from tests.models.llm import FAMILIES, prompt, tiny_config, transformers_or_skip

    transformers = transformers_or_skip()
    with accelerate.init_empty_weights():
        model = getattr(transformers, FAMILIES["llama"][1])(tiny_config("llama", num_hidden_layers=3)).eval()
    inputs = {"input_ids": prompt(), "use_cache": False}
    example = as_example((), inputs)
    signature = flat_signature(model, example)
    forward = make_flat_forward(model, signature, concrete_of=lambda proxy: proxy.tracer.values[proxy.node])
    with meta_weights(model, torch.device("cpu"), values=False), torch.no_grad():
        _, tracer, failures = trace_with_leaves(model, forward, signature.input_values, set())
    assert tracer.meta and failures == []
    hidden = [v for v in tracer.values.values() if isinstance(v, torch.Tensor) and v.dim() == 3 and v.shape[-1] >= 16]
    assert hidden and all(v.is_meta for v in hidden), "activations stay stand-ins"
    assert all(twin.is_meta for twin in tracer._meta_twins.values())
    prepared = qready.prepare(model, inputs, verify=False)
    assert prepared.prepare_result.leaves == []


class PoolsThenFlattens(nn.Module):
    """Weightless leaves (pooling), one of them with a forward hook that changes what it returns."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.pool = nn.MaxPool2d(2)
        self.head_pool = nn.AdaptiveAvgPool2d(2)
        self.head_pool.register_forward_hook(lambda module, args, out: out.flatten(1))
        self.linear = nn.Linear(16, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.head_pool(self.pool(self.conv(x))))


def test_a_weightless_leaf_runs_on_stand_ins_with_its_hooks() -> None:
    """A leaf with no weights runs its own forward on the stand-ins, and one with a hook runs through
    its hooks: the value the trace records is what eager's call returns."""
    model = PoolsThenFlattens().eval()
    x = torch.randn(2, 3, 12, 12)
    graph, tracer, failures = _trace(model, x)
    assert tracer.meta and failures == []
    shapes = {str(n.target): tuple(tracer.values[n].shape) for n in graph.nodes if n.op == "call_module"}
    with torch.no_grad():
        pooled = model.pool(model.conv(x))
        assert shapes == {
            "conv": tuple(model.conv(x).shape), "pool": tuple(pooled.shape),
            "head_pool": tuple(model.head_pool(pooled).shape), "linear": (2, 5),
        }
    assert shapes["head_pool"] == (2, 16), "the hook's flattened output, not the pooling's own"
    prepared = qready.prepare(model, (x,))
    assert prepared.prepare_result.verified and torch.equal(prepared(x), model(x))
