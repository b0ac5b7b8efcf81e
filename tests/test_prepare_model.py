"""preparing.prepare_model, the whole of prepare after its arguments: the retry after a branch that
was specialized to the example fails on another input, and the flags of a model that kept its forward."""

from __future__ import annotations

import inspect

import torch
from torch import nn

import qready
from qready.prepared import KeptForward


class Branchy(nn.Module):
    """The root branches on its input's values: the example (ones) takes the first branch, the
    fresh input prepare draws (standard normal) the second."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 4)
        self.b = nn.Linear(4, 4)
        self.drop = nn.Dropout(0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.mean() > 0.5:
            return torch.relu(self.a(x))
        return self.drop(self.b(x)) * 2


def test_a_branch_specialized_to_the_example_is_prepared_again_keeping_the_forward() -> None:
    model = Branchy().train()
    prepared = qready.prepare(model, (torch.ones(2, 4),))
    result = prepared.prepare_result
    assert isinstance(prepared, KeptForward) and isinstance(prepared, Branchy)
    assert result is not None and result.verified and result.specialized == []
    root = result.leaves[0]
    assert (root.module, root.reason) == ("", "a Python branch on tensor data that differs between inputs")
    assert root.file is not None and root.file.endswith("test_prepare_model.py") and root.line == _line_of(Branchy.forward, "if x.mean()")
    # the model's own flags: it was copied in eval mode, and gets them back as the graph way does
    assert prepared.training and prepared.a.training and prepared.drop.training
    assert model.training and model.a.training  # and the user's model is as it was
    prepared.eval()
    model.eval()
    with torch.no_grad():
        for x in (torch.ones(3, 4), -torch.ones(3, 4), torch.randn(5, 4)):
            assert torch.equal(prepared(x), model(x))


def _line_of(function: object, text: str) -> int:
    lines, first = inspect.getsourcelines(function)
    return first + next(i for i, line in enumerate(lines) if text in line)
