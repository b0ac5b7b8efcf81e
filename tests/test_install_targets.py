"""A PreparedModule holds what fx.GraphModule's constructor would put in it for the same root and
graph: the same modules at the same paths (plain ones on the way), the very same parameters and
buffers, non-persistent buffers still non-persistent, and the attributes that are none of those
(a plain tensor attribute, a constant) as fx installs them."""

from __future__ import annotations

import torch
import torch.fx as fx
from torch import nn

from qready.prepared import PreparedModule


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 4)
        self.norm = nn.LayerNorm(4)
        self.register_buffer("scale", torch.full((4,), 2.0))
        self.register_buffer("offset", torch.ones(4), persistent=False)
        self.gain = nn.Parameter(torch.ones(4))
        self.plain = torch.arange(4.0)  # a tensor attribute, neither parameter nor buffer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.linear(x)) * self.scale + self.offset * self.gain + self.plain


class Model(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.Sequential(Block(), Block())
        self.head = nn.Sequential(nn.ReLU(), nn.Linear(4, 2))
        self.unused = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.blocks(x)
        return self.head(y) + self.head[1].bias  # head whole, then one of its parameters


def _layout(module: nn.Module) -> list[tuple[str, str, object]]:
    return [(path, type(sub).__name__, sub.training) for path, sub in module.named_modules(remove_duplicate=False)]


def _non_persistent(module: nn.Module) -> set[str]:
    return {f"{path}.{name}" for path, sub in module.named_modules() for name in sub._non_persistent_buffers_set}


def _state(module: nn.Module) -> list[tuple[str, int]]:
    return [(name, id(t)) for name, t in [*module.named_parameters(remove_duplicate=False), *module.named_buffers(remove_duplicate=False)]]


def test_a_prepared_module_holds_what_graph_module_would() -> None:
    model = Model()
    for leaves in (True, False):  # blocks called whole, or traced into (get_attr of each block's tensors)
        tracer = fx.Tracer() if leaves else _TraceInto()
        graph = tracer.trace(model)
        expected, ours = fx.GraphModule(model, graph), PreparedModule(model, graph)
        assert _layout(ours) == _layout(expected)
        assert _state(ours) == _state(expected) and _state(ours)  # the very same tensors
        # non-persistent buffers as the model has them (GraphModule before torch 2.14 made them persistent)
        assert _non_persistent(ours) == {name for name in _non_persistent(model) if name in dict(ours.named_buffers())}
        assert set(ours.state_dict()) == set(expected.state_dict()) - _non_persistent(model)
        assert not hasattr(ours, "unused")
        x = torch.randn(3, 4)
        assert torch.equal(ours(x), model(x))
        if not leaves:
            plain = ours.get_submodule("blocks.0").plain
            assert plain is model.blocks[0].plain  # fx's own path for an attribute that is no buffer


def test_registration_hooks_run_as_torch_runs_them() -> None:
    """With a global registration hook installed, each target goes through torch's own setattr, which runs it."""
    seen: list[str] = []
    handle = nn.modules.module.register_module_module_registration_hook(lambda owner, name, sub: seen.append(name))
    try:
        PreparedModule(Model(), fx.Tracer().trace(Model()))
    finally:
        handle.remove()
    assert "blocks" in seen and "head" in seen


class _TraceInto(fx.Tracer):
    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return type(m) is not Block and super().is_leaf_module(m, qualname)
