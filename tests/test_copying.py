"""qready's module-tree copy makes what copy.deepcopy makes: new modules, shared objects shared
once, tensors in the memo kept, and classes with their own copying copied their way."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from qready.copying import copy_parameters, deepcopy_module


class OwnCopy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(2, 2)
        self.copies = 0

    def __deepcopy__(self, memo: dict[int, Any]) -> OwnCopy:
        new = OwnCopy()
        new.copies = self.copies + 1
        return new


class Model(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.shared = nn.Linear(2, 2)
        self.blocks = nn.Sequential(self.shared, nn.ReLU(), self.shared)
        self.own = OwnCopy()
        self.config = {"sizes": [1, 2], "name": "m"}
        self.same_config = self.config
        self.register_buffer("scale", torch.ones(2))
        self.register_forward_hook(lambda m, i, o: None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.own.linear(self.blocks(x)) * self.scale


def _shape(module: nn.Module) -> list[tuple[str, type, list[str]]]:
    return [(name, type(m), sorted(vars(m))) for name, m in module.named_modules(remove_duplicate=False)]


def test_a_copy_is_the_deepcopy_of_the_tree() -> None:
    model = Model()
    ours, theirs = deepcopy_module(model, {}), copy.deepcopy(model)
    assert _shape(ours) == _shape(theirs)
    assert ours.blocks[0] is ours.shared and ours.blocks[2] is ours.shared and ours.shared is not model.shared
    assert ours.same_config is ours.config and ours.config == model.config and ours.config is not model.config
    assert ours.own.copies == 1  # its own __deepcopy__ ran
    assert len(ours._forward_hooks) == 1
    kept = {k: v for k, v in model.state_dict().items() if not k.startswith("own.")}  # OwnCopy makes new weights
    assert all(torch.equal(v, ours.state_dict()[k]) and v is not ours.state_dict()[k] for k, v in kept.items())
    assert list(ours.state_dict()) == list(theirs.state_dict())


def test_tensors_in_the_memo_are_shared_as_deepcopy_shares_them() -> None:
    model = Model()
    memo = {id(t): t for t in [*model.parameters(), *model.buffers()]}
    ours = deepcopy_module(model, dict(memo))
    assert ours.shared.weight is model.shared.weight and ours.scale is model.scale
    assert ours.own.linear.weight is not model.own.linear.weight  # its own copy ignores the memo, as with deepcopy


def test_buffers_are_copied_as_deepcopy_copies_them_views_included() -> None:
    owner = nn.Module()
    owner.register_buffer("stats", torch.arange(6.0))
    owner.register_buffer("head", owner.stats[:2])  # a view, after the tensor it views
    owner.register_buffer("mask", torch.ones(2, 3, dtype=torch.bool).t())  # not contiguous: deepcopy's own way
    mine, theirs = deepcopy_module(owner, {}), copy.deepcopy(owner)
    for name in ("stats", "head", "mask"):
        a, b = getattr(mine, name), getattr(theirs, name)
        assert torch.equal(a, b) and (a.dtype, a.shape, a.stride()) == (b.dtype, b.shape, b.stride()), name
        assert a.untyped_storage()._cdata != getattr(owner, name).untyped_storage()._cdata, name
    assert mine.head.untyped_storage()._cdata == mine.stats.untyped_storage()._cdata, "the view views the copy"
    mine.stats.add_(1)
    assert torch.equal(mine.head, torch.tensor([1.0, 2.0])) and torch.equal(owner.stats, torch.arange(6.0))


class Marked(nn.Parameter):
    """A parameter subclass: copied its own way, as deepcopy copies it."""


def _with_parameters() -> nn.Module:
    model = Model()
    model.shared.bias.requires_grad_(False)
    model.blocks[1].register_parameter("noted", nn.Parameter(torch.zeros(2)))
    model.blocks[1].noted.qready_note = "copied deepcopy's way"  # an attribute on a parameter
    model.marked = Marked(torch.ones(3))
    return model


def test_parameters_are_copied_as_deepcopy_copies_them_first_or_on_the_way() -> None:
    for copied_first in (False, True):
        model = _with_parameters()
        memo: dict[int, Any] = {}
        if copied_first:
            copy_parameters(list(model.parameters()), memo)
        ours, theirs = deepcopy_module(model, memo), copy.deepcopy(model)
        assert ours.blocks[0].weight is ours.shared.weight, "a tied parameter is copied once"
        ours_named, theirs_named = dict(ours.named_parameters()), dict(theirs.named_parameters())
        assert list(ours_named) == list(theirs_named)
        for name, mine in ours_named.items():
            original, reference = model.get_parameter(name), theirs_named[name]
            assert type(mine) is type(reference) and mine.requires_grad == reference.requires_grad, name
            assert vars(mine) == vars(reference), name
            if not name.startswith("own."):  # OwnCopy makes new weights
                assert torch.equal(mine, original), name
                assert mine.untyped_storage()._cdata != original.untyped_storage()._cdata, name
        assert not ours.shared.bias.requires_grad and type(ours.marked) is Marked
