"""Whole-model findings (QR001/QR002) say what failed in the user's terms and where: the
forward's line when the tracer names none, no printed tensor values, no qready-internal names."""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch
from torch import nn

import qready
from qready.errors import one_line, readable


@dataclass
class Out:
    logits: torch.Tensor


class DataclassOut(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> Out:
        return Out(self.linear(x))


class KeywordOnly(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor, *, mask: torch.Tensor) -> torch.Tensor:
        return self.linear(x) * mask


def _forward_line(cls: type) -> int:
    return inspect.getsourcelines(cls.forward)[1]


def test_a_trace_failure_without_a_user_line_points_at_forward_and_prints_no_tensor_values() -> None:
    report = qready.check(DataclassOut(), (torch.randn(2, 4),), select=["QR002"])
    (finding,) = report.findings
    assert finding.file is not None and finding.file.endswith("test_trace_messages.py")
    assert finding.line == _forward_line(DataclassOut)
    assert "tensor(...)" in finding.message and "tensor([[" not in finding.message


def test_a_keyword_only_input_is_named_with_a_fix_that_fits() -> None:
    report = qready.check(KeywordOnly(), (torch.randn(2, 4),), example_kwargs={"mask": torch.ones(2, 4)}, select=["QR002"])
    (finding,) = report.findings
    assert finding.message == "torch.jit.trace failed: it cannot pass keyword-only argument(s) 'mask'"
    assert finding.fix is not None and "ordinary parameters of forward" in finding.fix
    assert finding.line == _forward_line(KeywordOnly)


def test_messages_name_a_users_file_module_as_the_user_knows_it() -> None:
    text = "Found <class 'qready_user_io_models_8e6e304e658f.Out'> in output, got tensor([[0.5, -1.25e-03]], dtype=torch.float16)"
    assert readable(text) == "Found <class 'io_models.Out'> in output, got tensor(...)"
    assert one_line(ValueError(text + "\nsecond line")) == readable(text)


def test_an_export_failure_without_a_user_line_points_at_forward() -> None:
    report = qready.check(DataclassOut(), (torch.randn(2, 4),), select=["QR001"], onnx_exporter="torchscript")
    (finding,) = report.findings
    assert finding.file is not None and finding.file.endswith("test_trace_messages.py")
    assert finding.line in (_forward_line(DataclassOut), _forward_line(DataclassOut) + 1)  # def, or its return


class DictOutWithBranch(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        y = self.linear(x)
        if y.sum() > 0:  # a tracer warning: one per trace of the forward
            y = y * 2
        return {"out": y}


def test_a_dict_output_is_refused_as_the_strict_tracer_refuses_it_and_the_forward_is_traced_once() -> None:
    model = DictOutWithBranch().eval()
    x = torch.randn(2, 4)
    findings = [f for f in qready.check(model, (x,), select=["QR002"]).findings if f.code == "QR002"]
    try:
        torch.jit.trace(model, (x,), check_trace=False, strict=True)
    except RuntimeError as error:
        refusal = str(error)
    failed = [f for f in findings if f.op == "torch.jit.trace"]
    assert [dict(f.details)["log"] for f in failed] == [refusal]
    assert dict(failed[0].details)["strict"] is True
    assert failed[0].line == _forward_line(DictOutWithBranch)
    warned = [f for f in findings if f.op == "torch.jit.TracerWarning"]
    assert [f.count for f in warned] == [1]
