"""A leaf's call sites from its source: the arm of a branch the example did not take runs in modules too."""

from __future__ import annotations

import pytest
import torch

import qready
from qready.source_sites import source_sites
from tests.models.leafy import Gate, WithGate


def _gate(positive: bool) -> WithGate:
    torch.manual_seed(0)
    model = WithGate().eval()
    with torch.no_grad():
        model.gate.linear.weight.fill_(0.1)
        model.gate.linear.bias.fill_(0.0)
    return model


@pytest.mark.parametrize("example_sign", [1.0, -1.0])
def test_the_other_arm_of_a_branch_runs_in_modules(example_sign) -> None:
    model = _gate(True)
    example, other = torch.ones(2, 4) * example_sign, -torch.ones(3, 4) * example_sign
    prepared = qready.prepare(model, (example,))
    result = prepared.prepare_result
    assert [leaf.module for leaf in result.leaves] == ["gate"]
    from_source = {c.op for c in result.dispatched if dict(c.details).get("occurrence") == 0}
    # the arm the example did not take, found in the source (and in the method that arm calls)
    assert from_source == ({"torch.nn.functional.relu", "torch.Tensor.sub"} if example_sign > 0 else {"torch.sigmoid", "torch.Tensor.mul"})
    assert torch.equal(prepared(other), model(other)) and torch.equal(prepared(example), model(example))
    report = qready.check(prepared, (other,), select=["QR003", "QR004"])
    assert report.findings == ()
    # the same input on the original: the arm's ops are findings there
    assert {f.op for f in qready.check(model, (other,), select=["QR003"]).findings} >= from_source


def test_a_call_the_source_cannot_resolve_is_reported_with_its_line() -> None:
    model = _gate(True)
    prepared = qready.prepare(model, (torch.ones(2, 4),))
    unconverted = prepared.prepare_result.unconverted
    assert [(c.op, c.scope) for c in unconverted] == [("scale(...)", "gate")]
    assert unconverted[0].file.endswith("leafy.py") and unconverted[0].line is not None
    assert "0 residual findings" not in prepared.prepare_result.summary()


def test_sites_from_source_name_the_callable_a_torch_function_mode_sees() -> None:
    sites, unresolved = source_sites(Gate())
    by_function = {(s.qualname.rpartition(".")[2], getattr(s.func, "__name__", "")) for s in sites}
    assert {("forward", "relu"), ("forward", "sub"), ("forward", "mul"), ("squash", "sigmoid"), ("forward", "sum")} <= by_function
    assert ("forward", "Linear") not in by_function  # a submodule call is the submodule's
    assert [u.text for u in unresolved] == ["scale"]


class LiteralThreshold(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > -1e9:  # -1e9 is Python arithmetic on a literal, not a call on a tensor
            return x * 2 ** 8
        return -x


def test_arithmetic_on_literals_is_no_call_site() -> None:
    sites, unresolved = source_sites(LiteralThreshold())
    assert sorted(getattr(s.func, "__name__", "") for s in sites) == ["gt", "mul", "neg", "sum"]
    line = {getattr(s.func, "__name__", ""): s.line for s in sites}
    assert line["neg"] == line["gt"] + 2  # -x, not -1e9
    assert unresolved == []
