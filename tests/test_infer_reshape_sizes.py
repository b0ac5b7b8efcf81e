"""A size computed from other sizes in a reshape becomes -1: same outputs at every shape, and no
size arithmetic left for a jit trace (AIMET's ModelValidator) to see as an op outside a module."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import qready


class RadixSplit(nn.Module):
    """timm's SplitAttn idiom: ``B, RC, H, W = x.shape; x.reshape(B, radix, RC // radix, H, W)``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        b, rc, h, w = x.shape
        return x.reshape(b, 2, rc // 2, h, w).view((b, rc, h * w))


def _jit_ops(model: nn.Module, x: torch.Tensor) -> set[str]:
    with torch.no_grad():
        graph = torch.jit.trace(model, (x,), check_trace=False).inlined_graph
    return {node.kind() for node in graph.nodes()}


def test_computed_size_becomes_minus_one_and_outputs_stay_identical() -> None:
    torch.manual_seed(0)
    model = RadixSplit().eval()
    prepared = qready.prepare(model, (torch.randn(2, 3, 4, 4),))
    assert "floordiv" not in prepared.code and "-1" in prepared.code
    assert "aten::floor_divide" in _jit_ops(model, torch.randn(2, 3, 4, 4))  # what the original shows a jit trace
    assert not {"aten::floor_divide", "aten::mul"} & _jit_ops(prepared, torch.randn(2, 3, 4, 4))
    for shape in ((2, 3, 4, 4), (3, 3, 5, 7), (1, 3, 1, 1)):
        x = torch.randn(*shape)
        with torch.no_grad():
            assert torch.equal(prepared(x), model(x))


def test_two_computed_sizes_keep_their_arithmetic() -> None:
    class TwoComputed(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            b, c = x.shape
            return x.reshape(b * 2, c // 2) * 1.0

    model = TwoComputed().eval()
    prepared = qready.prepare(model, (torch.randn(4, 6),))
    assert "-1" not in prepared.code  # -1 may stand for one size only
    x = torch.randn(6, 8)
    assert torch.equal(prepared(x), model(x))


def test_a_shape_built_by_adding_tuples_is_not_a_size() -> None:
    class SplitHeads(nn.Module):  # GPT-2's idiom: the new shape is one tuple, built with +
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.view(x.size()[:-1] + (2, x.size(-1) // 2)) * 1.0

    model = SplitHeads().eval()
    prepared = qready.prepare(model, (torch.randn(2, 3, 8),))
    for shape in ((2, 3, 8), (1, 5, 4)):
        x = torch.randn(*shape)
        assert prepared(x).shape == model(x).shape == (*shape[:-1], 2, shape[-1] // 2)
        assert torch.equal(prepared(x), model(x))


def test_aimet_validator_accepts_the_prepared_split() -> None:
    pytest.importorskip("aimet_torch", reason="aimet-torch is not installed (pip install 'qready[interop]')")
    from aimet_torch.model_validator.model_validator import ModelValidator

    torch.manual_seed(0)
    model = RadixSplit().eval()
    x = torch.randn(2, 3, 4, 4)
    prepared = qready.prepare(model, (x,))
    assert ModelValidator.validate_model(prepared, (x,))
