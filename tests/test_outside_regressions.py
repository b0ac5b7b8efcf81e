"""Idioms of libraries outside the zoo that prepare must trace as eager runs them.

Each model here is a small reproduction, written here, of what one of the outside
benchmark's models (``benchmarks/outside_models.py``) does; the docstring names it.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import nn

import qready


def _prepared_and_equal(model: nn.Module, *examples: tuple[torch.Tensor, ...]) -> qready.PreparedModule:
    prepared = qready.prepare(model, examples[0])
    for example in examples:
        with torch.no_grad():
            want = model(*example)
            got = prepared(*prepared.flatten_inputs(*example))
        got = prepared.unflatten_outputs(got)
        assert torch.equal(want, got)
    return prepared


class NumpySizes(nn.Module):
    """monai's SwinUNETR: ``np.array(x.shape[2:])`` checks the input size, and the window padding
    is ``int(np.ceil(h / window)) * window`` on sizes read from the input."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, 4, 1)
        self.norm = nn.LayerNorm(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = np.array(x.shape[2:])
        if (size % 2 > 0).any():
            raise ValueError("sizes must be even")
        x = self.proj(x)
        b, c, h, w = x.shape
        hp = int(np.ceil(h / 3)) * 3
        x = nn.functional.pad(x, (0, 0, 0, hp - h))
        return self.norm(x.permute(0, 2, 3, 1))


def test_sizes_read_into_numpy_trace_as_in_eager() -> None:
    prepared = _prepared_and_equal(NumpySizes().eval(), (torch.randn(2, 3, 8, 8),), (torch.randn(1, 3, 8, 8),))
    result = prepared.prepare_result
    assert result.leaves == []  # the root traces: numpy reads the example's sizes, as it reads eager's
    assert result.verified and all(d.equal for d in result.diffs)


class TriesKeywordFirst(nn.Module):
    """speechbrain's Xvector: each layer is called with ``lengths=`` first and, where its forward takes no
    such keyword (TypeError), again without it."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([nn.Conv1d(4, 4, 3), nn.LeakyReLU(), nn.Conv1d(4, 2, 1)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.blocks:
            try:
                x = layer(x, lengths=None)
            except TypeError:
                x = layer(x)
        return x


def test_a_call_that_raised_and_was_caught_is_no_call() -> None:
    model = TriesKeywordFirst().eval()
    prepared = _prepared_and_equal(model, (torch.randn(1, 4, 8),), (torch.randn(2, 4, 12),))
    assert prepared.prepare_result.leaves == []
    calls = [n.target for n in prepared.graph.nodes if n.op == "call_module"]
    assert calls == ["blocks.0", "blocks.1", "blocks.2"], "each layer once: the calls that raised left no node"
    report = qready.check(model, (torch.randn(1, 4, 8),), select=["QR004", "QR005"])
    assert list(report.findings) == [], "neither a second run of each layer nor a None input: those calls never ran"


class NoisyPooling(nn.Module):
    """speechbrain's StatisticsPooling adds Gaussian noise to its statistics, in eval mode too."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x).mean(1) + 1e-2 * torch.randn(x.shape[0], 4)


def test_random_draws_are_the_same_for_the_trace_and_eager() -> None:
    report = qready.check(NoisyPooling().eval(), (torch.randn(2, 3, 4),), select=["QR002"])
    assert list(report.findings) == [], "the traced model draws what eager draws: no disagreement to report"


class PadsInline(nn.Module):
    """pretrainedmodels' NASNet: ``nn.ZeroPad2d((1, 0, 1, 0))(x)`` built and called inside the forward."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.ZeroPad2d((1, 0, 1, 0))(x)
        return nn.Sequential(nn.ReLU(), nn.Hardtanh(0.0, 6.0))(self.conv(x))


class ProjectsInline(nn.Module):
    """The same with weights: a layer made in each forward has new random weights every call."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.Conv2d(4, 2, 1)(self.conv(x))


def test_a_stateless_module_made_in_the_forward_is_traced_through() -> None:
    prepared = _prepared_and_equal(PadsInline().eval(), (torch.randn(1, 3, 8, 8),), (torch.randn(2, 3, 10, 6),))
    result = prepared.prepare_result
    assert result.leaves == [], "the padding and activations are the forward's own ops, not a module left whole"
    assert sorted(c.op for c in result.changes) == [
        "torch.nn.functional.hardtanh", "torch.nn.functional.pad", "torch.nn.functional.relu",
    ]
    kept = qready.prepare(ProjectsInline().eval(), (torch.randn(1, 3, 8, 8),))  # weights made on each call
    (leaf,) = kept.prepare_result.leaves
    assert leaf.module == "" and leaf.reason.startswith("NameError: Conv2d is made inside the forward, with weights")


with warnings.catch_warnings():  # torch.jit.script is deprecated; the libraries that use it still do
    warnings.simplefilter("ignore")  # FutureWarning on torch 2.14, DeprecationWarning on 2.13

    @torch.jit.script
    def _hard_swish(x: torch.Tensor) -> torch.Tensor:
        return x * (x + 3).clamp(0, 6) / 6


class ScriptedActivation(nn.Module):
    """geffnet's ``HardSwishJit``: the forward calls a ``torch.jit.script`` function, which refuses a
    tracer's stand-in for its tensor."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _hard_swish(self.conv(x))


def test_a_torchscript_function_is_traced_through_its_python_original() -> None:
    prepared = _prepared_and_equal(ScriptedActivation().eval(), (torch.randn(1, 3, 8, 8),), (torch.randn(2, 3, 6, 9),))
    result = prepared.prepare_result
    assert result.leaves == [], "the activation's ops are recorded, not the module kept whole"
    assert {"torch.Tensor.clamp", "torch.Tensor.add"} <= {c.op for c in result.changes}
    assert type(_hard_swish) is torch.jit.ScriptFunction, "the model's own function is given back"


def test_check_sees_the_ops_of_a_torchscript_function() -> None:
    report = qready.check(ScriptedActivation().eval(), (torch.randn(1, 3, 8, 8),), select=["QR003"])
    assert {"torch.Tensor.clamp", "torch.Tensor.add"} <= {f.op for f in report.findings}
    assert type(_hard_swish) is torch.jit.ScriptFunction
