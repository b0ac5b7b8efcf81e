"""What check and prepare must never do to a user's model, and what a prepared model must keep.

On every model here (the guideline examples, the tricky ones, torchvision models
at small input sizes, a tiny BERT): after ``check`` or ``prepare`` the model is
exactly as before, also when its forward raises half-way; the prepared model
holds every parameter and buffer under the original names with the same values,
keeps tying, training flags, dtype (float16 and bfloat16 too) and device; and
two runs give the same report and the same generated code.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import torch
from optional import torchvision
from torch import nn

import qready
from invariants import assert_unchanged, snapshot
from models import seed, tricky
from models.hf import tiny_bert

Case = Callable[[], tuple[nn.Module, Any]]
OBSERVED = ("QR003", "QR004", "QR005")


class TiedLinear(nn.Module):
    """Two layers that share one weight (and not the bias), like an encoder/decoder pair."""

    def __init__(self) -> None:
        super().__init__()
        self.encode = nn.Linear(8, 8)
        self.decode = nn.Linear(8, 8)
        self.decode.weight = self.encode.weight
        self.act = nn.GELU()
        self.register_buffer("scale", torch.full((8,), 0.5))
        self.register_buffer("offset", torch.zeros(8), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.act(self.encode(x))) * self.scale + self.offset


class UnusedState(nn.Module):
    """Weights the forward never reads (a spare head, a nested non-persistent buffer): the graph drops
    them, and prepare (and load) must put them back under their names."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Linear(8, 8)
        self.spare = nn.Linear(8, 3)
        self.extra = nn.Module()
        self.extra.register_buffer("table", torch.arange(4.0))
        self.extra.register_buffer("cache", torch.ones(2), persistent=False)
        self.gain = nn.Parameter(torch.full((2,), 3.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def torchvision_model(name: str, size: int) -> Case:
    return lambda: (torchvision.models.get_model(name, weights=None), (torch.randn(1, 3, size, size),))


CASES: dict[str, Case] = {
    "FunctionalRelu": lambda: (seed.FunctionalRelu(), (seed.image(),)),
    "ReusedRelu": lambda: (seed.ReusedRelu(), (seed.image(), seed.image())),
    "TwoRelus": lambda: (seed.TwoRelus(), (seed.image(), seed.image())),
    "DictIO": lambda: (seed.DictIO(), seed.dict_inputs()),
    "TensorIO": lambda: (seed.TensorIO(), (seed.image(3), seed.image(1))),
    "PositionalArguments": lambda: (tricky.PositionalArguments(), (torch.randn(2, 8),)),
    "TiedEmbedding": lambda: (tricky.TiedEmbedding(), (torch.randint(0, 20, (2, 5)),)),
    "GatedNet": lambda: (tricky.GatedNet(), (torch.randn(2, 8),)),
    "SharedChild": lambda: (tricky.SharedChild(), (seed.image(),)),
    "TiedLinear": lambda: (TiedLinear(), (torch.randn(2, 8),)),
    "resnet18": torchvision_model("resnet18", 32),
    "mobilenet_v3_small": torchvision_model("mobilenet_v3_small", 32),
    "tiny_bert": tiny_bert,
}
SMALL = [name for name in CASES if name not in ("resnet18", "mobilenet_v3_small", "tiny_bert")]


def call(model: nn.Module, inputs: Any) -> Any:
    return model(**inputs) if isinstance(inputs, dict) else model(*inputs)


def mixed_state(model: nn.Module) -> nn.Module:
    """Training mode with one child in eval, a frozen parameter, and hooks: all of it must survive."""
    model.train()
    children = [m for _, m in model.named_modules() if m is not model]
    children[len(children) // 2].eval()
    next(model.parameters()).requires_grad_(False)
    model.register_forward_pre_hook(lambda module, args: None)
    children[-1].register_forward_hook(lambda module, args, output: None)
    children[0].register_full_backward_hook(lambda module, grad_in, grad_out: None)
    return model


def without_timings(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if k != "timings"}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


def prepared_outputs(prepared: nn.Module, inputs: Any) -> Any:
    if isinstance(prepared, qready.PreparedModule):
        args, kwargs = (inputs, {}) if isinstance(inputs, tuple) else ((), inputs)
        return prepared.unflatten_outputs(prepared(*prepared.flatten_inputs(*args, **kwargs)))
    return call(prepared, inputs)


def held(prepared: nn.Module, key: str, original: torch.Tensor) -> torch.Tensor:
    return prepared.get_parameter(key) if isinstance(original, nn.Parameter) else prepared.get_buffer(key)


def tensors(value: Any) -> list[torch.Tensor]:
    from qready.example_inputs import tensor_leaves

    return tensor_leaves(value)


# -- the user's model is never changed ------------------------------------------------------------


@pytest.mark.parametrize("name", CASES)
def test_check_leaves_the_model_exactly_as_it_was(name: str) -> None:
    model, inputs = CASES[name]()
    mixed_state(model)
    before = snapshot(model)
    qready.check(model, inputs, select=None if name in SMALL else OBSERVED)
    assert_unchanged(model, before)


# the private copy keeps the user's hooks (they may change outputs); tracing calls them on proxies
@pytest.mark.filterwarnings("ignore:For backward hooks to be called")
@pytest.mark.parametrize("name", CASES)
def test_prepare_leaves_the_model_exactly_as_it_was(name: str) -> None:
    model, inputs = CASES[name]()
    mixed_state(model)
    before = snapshot(model)
    prepared = qready.prepare(model, inputs)
    assert_unchanged(model, before)
    originals = {id(t) for t in [*model.parameters(), *model.buffers()]}
    assert not any(id(t) in originals for t in [*prepared.parameters(), *prepared.buffers()])


@pytest.mark.parametrize("name", CASES)
def test_a_forward_that_raises_half_way_leaves_the_model_as_it_was(name: str) -> None:
    model, inputs = CASES[name]()
    mixed_state(model)
    children = [m for _, m in model.named_modules() if m is not model and next(m.children(), None) is None]
    stop = children[len(children) // 2]

    def raise_half_way(module: nn.Module, args: Any, output: Any) -> None:
        raise RuntimeError("stopped half-way")

    stop.register_forward_hook(raise_half_way)
    before = snapshot(model)
    with pytest.raises(qready.ModelError, match="raised RuntimeError: stopped half-way"):
        qready.check(model, inputs, select=OBSERVED)
    assert_unchanged(model, before)
    with pytest.raises(qready.ModelError, match="raised RuntimeError: stopped half-way"):
        qready.prepare(model, inputs)
    assert_unchanged(model, before)


# -- the prepared model keeps what the original holds ----------------------------------------------


@pytest.mark.parametrize("mode", ["eval", "train"])
@pytest.mark.parametrize("name", CASES)
def test_prepared_model_holds_every_tensor_under_its_original_name(name: str, mode: str) -> None:
    model, inputs = CASES[name]()
    model.train(mode == "train")
    prepared = qready.prepare(model, inputs)

    assert sorted(prepared.state_dict()) == sorted(model.state_dict())
    state = prepared.state_dict()
    for key, value in model.state_dict().items():
        assert torch.equal(state[key], value), key
    named = [*model.named_parameters(remove_duplicate=False), *model.named_buffers(remove_duplicate=False)]
    for key, tensor in named:  # non-persistent buffers and every name of a shared tensor too
        kept = held(prepared, key, tensor)
        assert torch.equal(kept, tensor) and kept.dtype == tensor.dtype and kept.device == tensor.device, key
        assert kept.requires_grad == tensor.requires_grad, key

    # tied parameters stay tied: one storage for all the names of one tensor of the original
    groups: dict[int, list[tuple[str, torch.Tensor]]] = {}
    for key, tensor in named:
        groups.setdefault(id(tensor), []).append((key, tensor))
    for group in groups.values():
        assert len({held(prepared, key, tensor).data_ptr() for key, tensor in group}) == 1, [k for k, _ in group]

    # training flags, module by module, and the root's
    assert prepared.training == model.training
    present = dict(prepared.named_modules())
    for path, module in model.named_modules():
        if path in present:
            assert present[path].training == module.training, path


def test_tied_weights_share_one_storage_in_the_prepared_model() -> None:
    model, inputs = CASES["TiedLinear"]()
    prepared = qready.prepare(model.eval(), inputs)
    assert prepared.get_parameter("decode.weight").data_ptr() == prepared.get_parameter("encode.weight").data_ptr()
    assert prepared.get_parameter("decode.bias").data_ptr() != prepared.get_parameter("encode.bias").data_ptr()
    assert "offset" not in prepared.state_dict() and torch.equal(prepared.get_buffer("offset"), model.offset)


def test_state_the_graph_dropped_is_back_after_prepare_and_after_load(tmp_path) -> None:
    model, inputs = UnusedState(), (torch.randn(2, 8),)
    prepared = qready.prepare(model.eval(), inputs)
    qready.save(prepared, tmp_path / "saved")
    loaded = qready.load(tmp_path / "saved")
    for got in (prepared, loaded):
        assert sorted(got.state_dict()) == sorted(model.state_dict())
        assert "extra.cache" not in got.state_dict() and torch.equal(got.get_buffer("extra.cache"), torch.ones(2))
        assert isinstance(got.get_parameter("gain"), nn.Parameter) and torch.equal(got.get_parameter("gain"), model.gain)
        assert torch.equal(got.get_parameter("spare.weight"), model.spare.weight)
    assert prepared.get_parameter("gain") is not model.gain  # prepare's own copy, not the user's tensor


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["float16", "bfloat16"])
@pytest.mark.parametrize("name", ["FunctionalRelu", "DictIO", "PositionalArguments", "TiedEmbedding", "TiedLinear", "resnet18", "tiny_bert"])
def test_half_precision_models_keep_their_dtype_and_prepare_bit_identical(name: str, dtype: torch.dtype) -> None:
    model, inputs = CASES[name]()
    model = model.to(dtype).eval()

    def cast(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            return value.to(dtype) if value.is_floating_point() else value
        if isinstance(value, dict):
            return {k: cast(v) for k, v in value.items()}
        return tuple(cast(v) for v in value)

    inputs = cast(inputs)
    before = snapshot(model)
    qready.check(model, inputs, select=OBSERVED)
    prepared = qready.prepare(model, inputs)
    assert_unchanged(model, before)
    assert prepared.prepare_result.verified
    assert {t.dtype for t in prepared.parameters()} == {t.dtype for t in model.parameters()} == {dtype}
    assert all(t.device == torch.device("cpu") for t in [*prepared.parameters(), *prepared.buffers()])
    with torch.no_grad():
        expected, got = tensors(call(model, inputs)), tensors(prepared_outputs(prepared, inputs))
    assert [t.dtype for t in got] == [t.dtype for t in expected]
    assert all(torch.equal(g, e) for g, e in zip(got, expected))


# -- the same model, the same answer --------------------------------------------------------------


@pytest.mark.parametrize("name", CASES)
def test_two_runs_give_the_same_report_and_the_same_code(name: str) -> None:
    model, inputs = CASES[name]()
    model.eval()
    select = None if name in SMALL else OBSERVED
    first, second = (qready.check(model, inputs, select=select).to_dict() for _ in range(2))
    assert json.dumps(without_timings(first), sort_keys=True) == json.dumps(without_timings(second), sort_keys=True)
    one, two = qready.prepare(model, inputs), qready.prepare(model, inputs)
    assert one.code == two.code
    assert without_timings(one.prepare_result.to_dict()) == without_timings(two.prepare_result.to_dict())
