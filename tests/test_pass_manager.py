"""The pass template: pre- and post-conditions, and lint/recompile/modified done once, by the base."""

from __future__ import annotations

import operator

import pytest
import torch
import torch.fx as fx
from torch import nn

from qready.errors import InternalError, QreadyError
from qready.passes.base import Pass, PassError, PassManager, PassResult, check_graph
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


class Holds(nn.Module):
    """A module with a submodule, a parameter read directly and a method call: every kind of target."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = nn.Sequential(nn.Linear(3, 3))
        self.scale = nn.Parameter(torch.ones(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.inner(x) * self.inner[0].weight.sum() + self.scale).relu()


def _node(gm: fx.GraphModule, op: str) -> fx.Node:
    return next(n for n in gm.graph.nodes if n.op == op)


def _foreign_argument(gm: fx.GraphModule) -> None:
    node = _node(gm, "call_method")
    node.args = (fx.Graph().placeholder("stray"),)


def _used_before_defined(gm: fx.GraphModule) -> None:
    _node(gm, "placeholder").append(_node(gm, "call_method"))  # the relu moved above its input


def _name_twice(gm: fx.GraphModule) -> None:
    _node(gm, "call_method").name = _node(gm, "call_module").name


def _uncallable(gm: fx.GraphModule) -> None:
    next(n for n in gm.graph.nodes if n.op == "call_function").target = "not a function"


def _missing_module(gm: fx.GraphModule) -> None:
    _node(gm, "call_module").target = "inner.7"


def _missing_attribute(gm: fx.GraphModule) -> None:
    _node(gm, "get_attr").target = "inner.0.gone"


def _module_target_not_a_name(gm: fx.GraphModule) -> None:
    _node(gm, "call_module").target = nn.ReLU()


def _unknown_opcode(gm: fx.GraphModule) -> None:
    _node(gm, "call_method").op = "call_somehow"


@pytest.mark.parametrize("breaks", [
    _foreign_argument, _used_before_defined, _name_twice, _uncallable, _missing_module, _missing_attribute,
    _module_target_not_a_name, _unknown_opcode,
])
def test_the_graph_check_rejects_what_fx_lint_rejects(breaks) -> None:
    gm = fx.symbolic_trace(Holds())
    gm.graph.lint()
    check_graph(gm)  # a sound graph passes both
    breaks(gm)
    with pytest.raises(Exception):  # noqa: B017, PT011  # fx raises RuntimeError or ValueError by fault
        gm.graph.lint()
    with pytest.raises(ValueError, match=r"^node \w+ "):
        check_graph(gm)


class Residual(nn.Module):
    """One activation run three times, a functional add and a reshape: every pass rewrites it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self.conv(self.act(x)))
        return self.act(y + x).flatten(1)


def test_the_graph_check_passes_every_graph_a_prepare_builds() -> None:
    from qready import prepare

    for model, x in ((Residual(), torch.randn(2, 3, 8, 8)), (Holds(), torch.randn(2, 3))):
        prepared = prepare(model.eval(), (x,), share_weights=True, verify=False)
        assert prepared.prepare_result.changes  # the passes rewrote it
        graphs = [m for m in prepared.modules() if isinstance(m, fx.GraphModule)]
        assert graphs
        for gm in graphs:
            gm.graph.lint()
            check_graph(gm)
