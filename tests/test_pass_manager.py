"""The pass template: pre- and post-conditions, and lint/recompile/modified done once, by the base."""

from __future__ import annotations

import operator

import pytest
import torch
import torch.fx as fx
from torch import nn

from qready.errors import InternalError, QreadyError
from qready.passes.base import Pass, PassError, PassManager, PassResult
from qready.passes.functionals_to_modules import FunctionalsToModules
from qready.passes.unroll_reused_modules import UnrollReusedModules


class Doubles(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + x


class AddToMul(Pass):
    """Rewrites the graph and leaves lint() and recompile() to the base."""

    name = "add-to-mul"

    def call(self, gm: fx.GraphModule) -> PassResult:
        for node in gm.graph.nodes:
            if node.target is operator.add:
                node.target = operator.mul
        return PassResult(gm, True)


class Untouched(Pass):
    name = "untouched"

    def call(self, gm: fx.GraphModule) -> PassResult:
        return PassResult(gm, False)


class BrokenPromise(Untouched):
    name = "broken-promise"

    def ensures(self, gm: fx.GraphModule) -> None:
        raise PassError("the graph still has an add")


def test_the_base_recompiles_a_modified_graph_and_the_manager_aggregates_modified() -> None:
    gm = fx.symbolic_trace(Doubles())
    manager = PassManager([Untouched(), AddToMul()])
    gm, changes = manager(gm)
    x = torch.tensor([3.0])
    assert torch.equal(gm(x), x * x) and "x * x" in gm.code  # recompiled without the pass asking
    assert manager.modified and changes == []
    again = PassManager([Untouched()])
    again(fx.symbolic_trace(Doubles()))
    assert not again.modified


def test_a_broken_post_condition_names_the_pass_and_those_before_it() -> None:
    with pytest.raises(PassError, match=r"pass broken-promise after add-to-mul: the graph still has an add") as caught:
        PassManager([AddToMul(), BrokenPromise()])(fx.symbolic_trace(Doubles()))
    assert isinstance(caught.value, InternalError) and not isinstance(caught.value, QreadyError)


class Dangles(Pass):
    """Leaves a node that reads a value no node defines: what lint() exists to catch."""

    name = "dangles"

    def call(self, gm: fx.GraphModule) -> PassResult:
        stray = fx.Graph().placeholder("stray")
        output = next(n for n in gm.graph.nodes if n.op == "output")
        with gm.graph.inserting_before(output):
            gm.graph.call_function(operator.neg, (stray,))
        return PassResult(gm, True)


def test_a_malformed_graph_is_caught_once_after_the_graph_passes_naming_them() -> None:
    with pytest.raises(PassError, match=r"malformed after pass add-to-mul, dangles: ") as caught:
        PassManager([AddToMul(), Dangles(), Untouched()])(fx.symbolic_trace(Doubles()))
    assert isinstance(caught.value, InternalError)


def test_unroll_ensures_each_module_is_called_once() -> None:
    class Reuses(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.act = nn.ReLU()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.act(self.act(x))

    gm = fx.symbolic_trace(Reuses())
    with pytest.raises(PassError, match="modules still called more than once: act"):
        UnrollReusedModules().ensures(gm)
    result = UnrollReusedModules()(gm)
    assert [c.module for c in result.changes] == ["act_1"]


def test_functionals_to_modules_ensures_nothing_convertible_is_left() -> None:
    gm = fx.symbolic_trace(Doubles())
    for node in gm.graph.nodes:
        if node.op == "placeholder":
            node.meta["qready_tensor"] = True
    with pytest.raises(PassError, match=r"calls left unconverted although the table converts them: (operator|torch\.Tensor)\.add"):
        FunctionalsToModules().ensures(gm)
    FunctionalsToModules()(gm)  # converts, then its own post-condition holds
    assert not [n for n in gm.graph.nodes if n.op == "call_function"]
