"""Call-site dispatch is a step of the pass manager: its changes come back with the passes', and it
runs on the prepared copy in eval mode, before the original's training flags are copied over."""

from __future__ import annotations

import torch
from torch import nn

import qready
from qready.dispatch import DispatchCallSites
from qready.passes.base import PassManager


# what NormGate's own forward calls on the example's path (the batch norm runs inside its leaf module)
DISPATCHED = ["torch.Tensor.add", "torch.Tensor.gt", "torch.Tensor.sum", "torch.relu"]


class NormGate(nn.Module):
    """A branch on data keeps this module whole; its batch norm runs inside it."""

    def __init__(self) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn(x)
        if y.sum() > -1e9:
            return torch.relu(y) + 1
        return y


class Gated(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.gate = NormGate()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gate(self.lin(x))


def test_a_model_in_training_mode_keeps_the_statistics_of_a_norm_inside_a_leaf() -> None:
    # the dispatch step runs the prepared copy once; in training mode that run would move the batch
    # norm's running statistics, and the prepared model would no longer compute what the original does
    torch.manual_seed(0)
    model = Gated().train()
    x = torch.randn(3, 4)
    prepared = qready.prepare(model, (x,))
    result = prepared.prepare_result
    assert result is not None and result.verified
    assert [leaf.module for leaf in result.leaves] == ["gate"]
    assert sorted(c.op for c in result.dispatched) == DISPATCHED
    assert torch.equal(prepared.get_buffer("gate.bn.running_mean"), model.gate.bn.running_mean)
    assert int(prepared.get_buffer("gate.bn.num_batches_tracked")) == int(model.gate.bn.num_batches_tracked) == 0
    assert prepared.training and prepared.get_submodule("gate.bn").training  # the original's flags, after the run
    with torch.no_grad():
        assert torch.equal(prepared.eval()(x), model.eval()(x))


def test_dispatch_reports_its_changes_through_the_pass_manager() -> None:
    model = Gated().eval()
    x = torch.randn(3, 4)
    expected = model(x)
    manager = PassManager([DispatchCallSites(lambda m: {"gate": m.gate}, lambda m: m(x))])
    same, changes = manager(model)
    assert same is model and manager.modified
    assert {c.kind for c in changes} == {"dispatched"} and all(c.module.startswith("gate.") for c in changes)
    assert {c.op for c in changes} >= {"torch.Tensor.sum", "torch.relu"}
    assert all(isinstance(model.get_submodule(c.module), nn.Module) for c in changes)
    assert torch.equal(model(x), expected)  # now through the modules of its call sites, the same numbers
    nothing = PassManager([DispatchCallSites(lambda m: {}, lambda m: m(x))])
    assert nothing(model)[1] == [] and not nothing.modified
