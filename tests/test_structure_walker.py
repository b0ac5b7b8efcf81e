"""The one walker over nested values (structure.map_leaves) and its users."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import NamedTuple

import torch

from qready.example_inputs import tensor_leaves
from qready.preparing import _clone
from qready.structure import map_leaves


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
