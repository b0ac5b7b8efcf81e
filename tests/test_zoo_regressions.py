"""Regressions found by the model zoo (benchmarks/zoo.py), each on the smallest model that shows it."""

from __future__ import annotations

import functools
import operator

import torch
from torch import nn

import qready

QR = ("QR003", "QR004")


def _assert_prepared_cleanly(model: nn.Module, example, fresh) -> qready.PreparedModule:
    prepared = qready.prepare(model, example)
    result = prepared.prepare_result
    assert isinstance(prepared, qready.PreparedModule), "the root forward should trace"
    assert result.ok and result.verified and result.leaves == [], result.summary()
    args = prepared.flatten_inputs(**fresh) if isinstance(fresh, dict) else prepared.flatten_inputs(*fresh)
    expected = model(**fresh) if isinstance(fresh, dict) else model(*fresh)
    assert torch.equal(prepared(*args), expected)
    assert qready.check(prepared, args, select=QR).findings == ()
    return prepared


class ShiftRight(nn.Module):
    """``shift_tokens_right`` (BART, T5, Whisper decoders): item assignment into a new tensor."""

    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(10, 4)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        shifted = ids.new_zeros(ids.shape)
        shifted[:, 1:] = ids[:, :-1].clone()
        shifted[:, 0] = 3
        return self.embedding(shifted)


def test_item_assignment_is_traced_in_order_not_left_as_a_leaf() -> None:
    model = ShiftRight().eval()
    ids, fresh = torch.randint(0, 10, (2, 6)), torch.randint(0, 10, (2, 6))
    prepared = _assert_prepared_cleanly(model, (ids,), (fresh,))
    writes = [n for n in prepared.graph.nodes if n.op == "call_function" and n.target is operator.setitem]
    assert len(writes) == 2


def _default_from_attribute(forward):
    """Like Hugging Face's ``merge_with_config_defaults``: fills a keyword the call did not pass."""

    @functools.wraps(forward)
    def wrapper(self, *args, **kwargs):
        if kwargs.get("scale") is None:
            kwargs["scale"] = self.default_scale
        return forward(self, *args, **kwargs)

    return wrapper


class DecoratedForward(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 4)
        self.default_scale = 2.0

    @_default_from_attribute
    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, scale: float | None = None) -> torch.Tensor:
        return self.linear(x) * scale


def test_keyword_arguments_reach_the_forward_as_keywords() -> None:
    # Binding every argument by position made the decorator add `scale` a second time:
    # "forward() got multiple values for argument 'scale'", and the root was not traced.
    model = DecoratedForward().eval()
    example = {"x": torch.randn(2, 4), "mask": None, "scale": 3.0}
    fresh = {"x": torch.randn(2, 4), "mask": None, "scale": 3.0}
    _assert_prepared_cleanly(model, example, fresh)


class LayerScale(nn.Module):
    """A custom module without children that runs several ops (timm's LayerScale2d, NF-Net's
    weight-standardized conv, Hugging Face's RMSNorm): no toolkit has a quantized version of it."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((channels,), 0.5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma.view(1, -1, 1, 1) + 1.0


class ScaledBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.quant = torch.ao.quantization.QuantStub()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.scale = LayerScale(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale(self.conv(self.quant(x)))


def test_custom_module_without_children_is_traced_so_each_of_its_ops_gets_a_module() -> None:
    model = ScaledBlock().eval()
    prepared = _assert_prepared_cleanly(model, (torch.randn(1, 3, 8, 8),), (torch.randn(1, 3, 8, 8),))
    called = [str(n.target) for n in prepared.graph.nodes if n.op == "call_module"]
    assert called[:2] == ["quant", "conv"]  # built-ins (torch.nn, torch.ao) stay whole
    assert "scale" not in called and {"scale.mul", "scale.add"} <= set(called)
    assert sorted(prepared.state_dict()) == sorted(model.state_dict())


def test_custom_module_without_children_that_cannot_be_traced_stays_a_leaf() -> None:
    class Gate(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * 2 if x.sum() > 0 else x - 1

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 1)
            self.gate = Gate()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.gate(self.conv(x))

    model = Net().eval()
    prepared = qready.prepare(model, (torch.randn(1, 3, 4, 4),))
    assert [leaf.module for leaf in prepared.prepare_result.leaves] == ["gate"]
    assert prepared.prepare_result.verified


class TopPositive(nn.Module):
    """Detection post-processing in small: keep the positive scores, then the best k of those."""

    def forward(self, scores: torch.Tensor) -> torch.Tensor:
        kept = scores[scores > 0]
        return kept.topk(min(3, kept.size(0))).values


class ScoreHead(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.act = nn.Hardtanh()
        self.top = TopPositive()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.top(self.act(x))


def test_size_of_a_data_dependent_selection_is_never_baked_into_the_graph() -> None:
    # ssd300/retinanet: a boolean mask selects a data-dependent number of boxes, and its size
    # picks topk's k. Traced with the example's size, the graph failed ("selected index k out of
    # range") or returned other shapes on inputs with fewer boxes, after passing verification.
    model = ScoreHead().eval()
    prepared = qready.prepare(model, (torch.linspace(-1, 1, 8),))
    result = prepared.prepare_result
    assert [leaf.module for leaf in result.leaves] == ["top"]
    assert "depends on the data" in result.leaves[0].reason and result.specialized == []
    few = torch.tensor([-1.0, -0.5, -0.2, 0.4])  # one positive score: k = 1
    assert torch.equal(prepared(few), model(few))


class RootTopPositive(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.act = nn.Hardtanh()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scores = self.act(x)
        kept = scores[scores > 0]
        return kept.topk(min(3, kept.size(0))).values


def test_data_dependent_size_in_the_root_forward_is_not_specialized() -> None:
    model = RootTopPositive().eval()
    prepared = qready.prepare(model, (torch.linspace(-1, 1, 8),))
    result = prepared.prepare_result
    assert result.specialized == [] and [leaf.module for leaf in result.leaves] == [""]
    few = torch.tensor([-1.0, -0.5, -0.2, 0.4])
    assert torch.equal(prepared(few), model(few))


class Cancellation(nn.Module):
    """One output near 0 from terms of 1e6, the other at 1e7: untrained resnet152 and
    inception_v3 reach 1e8 to 1e11, and onnxruntime's float32 rounding moves their small
    elements by more than 1e-4 of their own size."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(256, 2, bias=False)
        with torch.no_grad():
            self.linear.weight.mul_(1e7)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)

    def example(self) -> torch.Tensor:
        x = torch.randn(1, 256)
        w = self.linear.weight[0].detach()
        return x - (x @ w) / (w @ w) * w  # output 0 cancels to about 1


def test_onnx_outputs_are_compared_at_the_scale_of_each_output() -> None:
    from qready.rules.qr002_jit_trace import compare_outputs

    model = Cancellation().eval()
    x = model.example()
    assert qready.check(model, (x,), select=["QR001"]).findings == ()
    # a disagreement at the output's own scale is still one
    assert compare_outputs([torch.tensor([1.0, 2.0])], [torch.tensor([1.0, 2.1])]) == "output 0 differs by up to 0.1"
    assert compare_outputs([torch.tensor([1e8, 1.0])], [torch.tensor([1e8 + 8, 1.001])]) == ""
    assert compare_outputs([torch.tensor([float("nan"), 1.0])], [torch.tensor([0.0, 1.0])]).startswith("output 0")


class Images:
    """Like torchvision's ImageList: a plain object qready cannot flatten into tensors."""

    def __init__(self, tensors: torch.Tensor) -> None:
        self.tensors = tensors


class SharedHead(nn.Module):
    """Like the R-CNN RPN head: one conv applied to every feature level."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.act = nn.ReLU()

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        return [self.act(self.conv(f)) for f in features]


class Proposals(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.head = SharedHead()

    def forward(self, images: Images, features: list[torch.Tensor]) -> list[torch.Tensor]:
        return [o.mean(dim=(2, 3)) + images.tensors.mean() for o in self.head(features)]


class TwoStageDetector(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Conv2d(3, 4, 3, padding=1)
        self.proposals = Proposals()

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        keep = x[x > 0].numel()  # a data-dependent size: the root forward cannot be traced
        features = self.backbone(x)
        scores = self.proposals(Images(x), [features, features[:, :, ::2, ::2]])
        return [s * keep for s in scores]


def test_a_child_that_cannot_be_prepared_whole_has_its_own_callees_prepared() -> None:
    # fasterrcnn/maskrcnn/keypointrcnn: `rpn` takes an ImageList, so it was left whole with its
    # head's convs running once per feature level: QR004 remained inside it.
    model = TwoStageDetector().eval()
    x, fresh = torch.randn(1, 3, 8, 8), torch.randn(1, 3, 8, 8)
    prepared = qready.prepare(model, (x,))
    result = prepared.prepare_result
    assert result.verified and [leaf.module for leaf in result.leaves] == ["", "proposals"]
    assert qready.check(prepared, (x,), select=QR).findings == ()
    assert all(torch.equal(a, b) for a, b in zip(prepared(fresh), model(fresh)))
