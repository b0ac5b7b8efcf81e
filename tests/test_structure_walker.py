"""The one walker over nested values (structure.map_leaves) and its users."""

from __future__ import annotations

import copy
from collections import OrderedDict
from dataclasses import dataclass
from typing import NamedTuple

import torch

import json

import pytest
from torch import nn

import qready
from qready.caches import own_copy
from qready.example_inputs import tensor_leaves
from qready.ops import has_tensor
from qready.preparing import _clone
from qready.structure import flatten, iter_leaves, map_leaves, unflatten


@dataclass
class Boxes:
    boxes: torch.Tensor
    labels: list[torch.Tensor]
    name: str = "boxes"


@dataclass(frozen=True)
class Frozen:
    x: torch.Tensor


class Pair(NamedTuple):
    a: torch.Tensor
    b: int


def _nested() -> dict:
    t = torch.arange(4.0)
    return {
        "boxes": Boxes(t, [t + 1]),
        "frozen": Frozen(t * 2),
        "pair": Pair(t - 1, 3),
        "ordered": OrderedDict(z=t + 2),
        "plain": [(t, None, 1.5)],
    }


def test_map_leaves_rebuilds_every_container_as_its_own_type() -> None:
    value = _nested()
    doubled = map_leaves(value, lambda t: t * 10)
    assert type(doubled["boxes"]) is Boxes and doubled["boxes"].name == "boxes"
    assert torch.equal(doubled["boxes"].labels[0], (torch.arange(4.0) + 1) * 10)
    assert type(doubled["frozen"]) is Frozen and torch.equal(doubled["frozen"].x, torch.arange(4.0) * 20)
    assert type(doubled["pair"]) is Pair and doubled["pair"].b == 3
    assert type(doubled["ordered"]) is OrderedDict and torch.equal(doubled["ordered"]["z"], (torch.arange(4.0) + 2) * 10)
    assert doubled["plain"][0][1:] == (None, 1.5)
    assert torch.equal(value["boxes"].boxes, torch.arange(4.0))  # the input is left as it was


def test_the_clone_of_a_submodules_arguments_reaches_into_dataclasses() -> None:
    # was: _clone ignored dataclasses, so a later in-place op changed what the submodule had seen
    value = _nested()
    cloned = _clone(value)
    value["boxes"].boxes.add_(100)
    value["frozen"].x.add_(100)
    assert torch.equal(cloned["boxes"].boxes, torch.arange(4.0))
    assert torch.equal(cloned["frozen"].x, torch.arange(4.0) * 2)


def test_tensor_leaves_finds_every_tensor_in_order() -> None:
    leaves = tensor_leaves(_nested())
    assert len(leaves) == 6
    assert torch.equal(leaves[0], torch.arange(4.0)) and torch.equal(leaves[1], torch.arange(4.0) + 1)


# -- each user of the walker on a dataclass (flatten, iter_leaves, has_tensor, own_copy, prepare) -----------


def test_flatten_and_iter_leaves_take_a_dataclass_apart_in_the_same_order() -> None:
    value = _nested()
    leaves, spec = flatten(value)
    assert [id(t) for t in leaves] == [id(t) for t in iter_leaves(value)] == [id(t) for t in tensor_leaves(value)]
    rebuilt = unflatten(json.loads(json.dumps(spec)), leaves)
    assert type(rebuilt["boxes"]) is Boxes and rebuilt["boxes"].name == "boxes"
    assert torch.equal(rebuilt["boxes"].labels[0], value["boxes"].labels[0])
    assert type(rebuilt["frozen"]) is Frozen and type(rebuilt["pair"]) is Pair


def test_has_tensor_sees_a_tensor_held_only_by_a_dataclass() -> None:
    # was: lists, tuples and dicts only, so a namedtuple around a dataclass of tensors looked tensor-free
    assert has_tensor(Pair(Frozen(torch.ones(1)), 2))
    assert has_tensor({"a": [Boxes(torch.ones(1), [])]})
    assert not has_tensor(Pair(Frozen(None), 2))
    assert not has_tensor({"a": [1, "x", None]})


@dataclass
class WithCache:
    cache: object
    scale: torch.Tensor


def test_own_copy_copies_a_cache_held_by_a_dataclass_and_shares_the_rest() -> None:
    transformers = pytest.importorskip("transformers", reason="a KV cache needs transformers")
    cache = transformers.DynamicCache()
    cache.update(torch.zeros(1, 1, 2, 4), torch.zeros(1, 1, 2, 4), 0)
    value = {"state": WithCache(cache, torch.ones(2))}
    copied = own_copy(value)
    assert type(copied["state"]) is WithCache and copied["state"] is not value["state"]
    assert copied["state"].cache is not cache and copied["state"].scale is value["state"].scale
    copied["state"].cache.update(torch.ones(1, 1, 1, 4), torch.ones(1, 1, 1, 4), 0)
    assert cache.get_seq_length() == 2 and copied["state"].cache.get_seq_length() == 3


@dataclass
class Detections:
    boxes: torch.Tensor
    scores: torch.Tensor


class Detector(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(4, 8)

    def forward(self, x: torch.Tensor) -> Detections:
        y = self.head(x)
        return Detections(boxes=y[:, :4], scores=torch.sigmoid(y[:, 4:]))


def test_a_dataclass_output_is_flattened_by_prepare_and_rebuilt_after_save_and_load(tmp_path) -> None:
    model, x = Detector().eval(), torch.randn(2, 4)
    prepared = qready.prepare(model, (x,))
    assert prepared.output_names == ["boxes", "scores"] and prepared.outputs_flattened
    qready.save(prepared, tmp_path / "saved")
    loaded = qready.load(tmp_path / "saved")
    expected = model(x)
    for got in (prepared.call_original(x), loaded.call_original(copy.deepcopy(x))):
        assert type(got) is Detections
        assert torch.equal(got.boxes, expected.boxes) and torch.equal(got.scores, expected.scores)
