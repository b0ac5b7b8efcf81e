"""qready.check on the guideline examples and on real models nobody here wrote."""

from __future__ import annotations

import json

import pytest
import torch
from optional import torchvision
from torch import nn

import qready
from invariants import assert_unchanged, snapshot
from models import seed
from models.hf import tiny_bert

OBSERVED = ("QR003", "QR004", "QR005")


def test_functional_relu_is_reported_at_its_line_with_the_module_to_use() -> None:
    report = qready.check(seed.FunctionalRelu(), (seed.image(),), select=OBSERVED)
    [finding] = report.findings
    assert (finding.code, finding.rule, finding.module, finding.op) == (
        "QR003", "functional-op", "", "torch.nn.functional.relu",
    )
    assert finding.file.endswith("tests/models/seed.py")
    line = _line_of(seed.FunctionalRelu.forward, "torch.nn.functional.relu(x)")
    assert finding.line == line
    assert finding.fix == "use nn.ReLU()"
    assert str(report.coverage) == "coverage 1/2 ops (50.0%)"


def test_reused_relu_is_reported_once_with_both_call_sites() -> None:
    report = qready.check(seed.ReusedRelu(), (seed.image(), seed.image()), select=OBSERVED)
    [finding] = report.findings
    assert (finding.code, finding.module, finding.count) == ("QR004", "relu", 2)
    assert finding.detail("holds_parameters") is False
    lines = [_line_of(seed.ReusedRelu.forward, text) for text in ("self.relu(self.conv1(x))", "self.relu(self.conv2(x2))")]
    assert finding.detail("call_sites") == [f"{finding.file}:{line}" for line in lines]


def test_dict_io_is_reported_on_both_sides_of_the_root() -> None:
    report = qready.check(seed.DictIO(), seed.dict_inputs(), select=OBSERVED)
    [finding] = report.findings
    assert (finding.code, finding.module, finding.op) == ("QR005", "", "DictIO")
    values = finding.detail("values")
    assert [(v["side"], v["path"], v["kind"]) for v in values] == [("input", "inputs[0]", "dict"), ("output", "output", "dict")]
    assert "'image_rgb', 'image_bw'" in finding.message


@pytest.mark.parametrize("model, inputs", [
    (seed.ModuleRelu, lambda: (seed.image(),)),
    (seed.TwoRelus, lambda: (seed.image(), seed.image())),
    (seed.TensorIO, lambda: (seed.image(3), seed.image(1))),
])
def test_corrected_seed_examples_pass_every_rule(model, inputs) -> None:
    report = qready.check(model(), inputs())
    assert report.findings == ()
    assert report.ok
    assert report.coverage.ratio == 1.0


def test_resnet18_residual_adds_and_reused_relus() -> None:
    model = torchvision.models.resnet18()
    report = qready.check(model, (torch.randn(1, 3, 64, 64),), select=OBSERVED)
    blocks = [f"layer{i}.{j}" for i in range(1, 5) for j in range(2)]
    qr003 = report.by_code("QR003")
    assert [(f.module, f.op) for f in qr003] == [(b, "torch.Tensor.add_") for b in blocks]
    assert all(f.file.endswith("torchvision/models/resnet.py") for f in qr003)
    assert len({f.line for f in qr003}) == 1  # `out += identity` in BasicBlock.forward
    qr004 = report.by_code("QR004")
    assert sorted(f.module for f in qr004) == sorted(f"{b}.relu" for b in blocks)
    assert all(f.count == 2 and f.detail("holds_parameters") is False for f in qr004)
    assert report.by_code("QR005") == ()
    assert (report.coverage.covered, report.coverage.total) == (60, 68)


def test_mobilenet_v3_small_squeeze_excite_and_residual_adds() -> None:
    model = torchvision.models.mobilenet_v3_small()
    report = qready.check(model, (torch.randn(1, 3, 64, 64),), select=OBSERVED)
    qr003 = report.by_code("QR003")
    adds = sorted(f.module for f in qr003 if f.op == "torch.Tensor.add_")
    assert adds == sorted(f"features.{i}" for i in (3, 5, 6, 8, 10, 11))  # blocks with use_res_connect
    assert all(f.fix == "use qready.nn.Add(inplace=True)" for f in qr003 if f.op == "torch.Tensor.add_")
    scales = [f for f in qr003 if f.op == "torch.Tensor.mul"]  # scale * input in SqueezeExcitation
    assert len(scales) == 9 and all(f.file.endswith("torchvision/ops/misc.py") for f in scales)
    assert len(qr003) == 15
    assert report.by_code("QR004") == () and report.by_code("QR005") == ()
    assert (report.coverage.covered, report.coverage.total) == (141, 156)  # with the classifier's dropout


def test_vit_b_16_class_token_concat_and_attention_outputs() -> None:
    # vit_b_16's architecture at a size CI can afford: same code paths, fewer and thinner layers
    model = torchvision.models.VisionTransformer(
        image_size=32, patch_size=16, num_layers=2, num_heads=2, hidden_dim=16, mlp_dim=32
    )
    report = qready.check(model, (torch.randn(1, 3, 32, 32),), select=OBSERVED)
    ops = {(f.module, f.op) for f in report.by_code("QR003")}
    assert ("", "torch.cat") in ops  # class token concatenated in the root forward
    assert ("encoder.layers.encoder_layer_0", "torch.Tensor.add") in ops  # residual adds
    qr005 = {f.module: f for f in report.by_code("QR005")}
    # nn.MultiheadAttention returns (output, None) with need_weights=False
    assert "output[1] is None" in qr005["encoder.layers.encoder_layer_0.self_attention"].message


def test_tiny_bert_reports_its_model_output_dict() -> None:
    model, inputs = tiny_bert()
    model.eval()
    report = qready.check(model, inputs, select=OBSERVED)
    root = next(f for f in report.by_code("QR005") if f.module == "")
    assert "BaseModelOutputWithPoolingAndCrossAttentions" in root.message
    assert "'last_hidden_state', 'pooler_output'" in root.message
    residual_adds = {f.module for f in report.by_code("QR003") if f.op == "torch.Tensor.add"}
    assert {"encoder.layer.0.output", "encoder.layer.1.output", "encoder.layer.0.attention.output"} <= residual_adds


def test_check_leaves_the_model_as_it_was() -> None:
    model = torchvision.models.resnet18()
    model.train()
    model.layer1.eval()
    model.fc.weight.requires_grad_(False)
    model.layer2.register_forward_hook(lambda m, i, o: None)
    before = snapshot(model)
    qready.check(model, (torch.randn(1, 3, 32, 32),), select=OBSERVED + ("QR002",))
    assert_unchanged(model, before)


class _RaisesHalfway(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)
        self.head = nn.Linear(5, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.conv(x)))  # shapes don't fit: raises inside head


def test_a_forward_that_raises_is_a_model_error_and_leaves_the_model_unchanged() -> None:
    model = _RaisesHalfway()
    before = snapshot(model)
    with pytest.raises(qready.ModelError, match=r"forward of _RaisesHalfway raised RuntimeError: .*test_check.py:\d+.*float32\[1x3x8x8\]"):
        qready.check(model, (torch.randn(1, 3, 8, 8),))
    assert_unchanged(model, before)


def test_two_runs_give_identical_json() -> None:
    def run() -> dict:
        report = qready.check(torchvision.models.resnet18(), (torch.randn(1, 3, 32, 32),), select=OBSERVED + ("QR002",))
        data = json.loads(report.to_json())
        data.pop("timings")
        return data

    torch.manual_seed(0)
    first = run()
    torch.manual_seed(0)
    assert run() == first


def test_select_and_ignore_choose_rules_by_code_or_name() -> None:
    report = qready.check(seed.ReusedRelu(), (seed.image(), seed.image()), select=["functional-op", "QR004"], ignore=["qr003"])
    assert report.rules_run == ("QR004",)
    with pytest.raises(qready.QreadyError, match="unknown rule 'QR999'; choose from QR001"):
        qready.check(seed.ReusedRelu(), (seed.image(), seed.image()), select=["QR999"])


def test_report_json_carries_the_schema_version_and_findings() -> None:
    data = qready.check(seed.FunctionalRelu(), (seed.image(),), select=OBSERVED).to_dict()
    assert data["schema_version"] == 1
    assert data["summary"]["counts"] == {"QR003": 1, "QR004": 0, "QR005": 0}
    assert data["summary"]["coverage"] == {"covered": 1, "total": 2, "ratio": 0.5}
    assert data["findings"][0]["severity"] == "error"


def _line_of(function, text: str) -> int:
    import inspect

    lines, start = inspect.getsourcelines(function)
    return start + next(i for i, line in enumerate(lines) if text in line)


def test_every_rule_example_breaks_all_five_rules_and_each_points_at_its_line() -> None:
    from every_rule import EveryRule

    report = qready.check(EveryRule(), (torch.randn(1, 3, 32, 32),))
    assert {code: n > 0 for code, n in report.counts().items()} == dict.fromkeys(("QR001", "QR002", "QR003", "QR004", "QR005"), True)
    branch = _line_of(EveryRule.forward, "if x.mean() > 0.5")
    [onnx] = report.by_code("QR001")
    assert onnx.line == branch and "control flow depends on a tensor value" in onnx.message
    strict, warning = report.by_code("QR002")  # the dict output stops a strict trace; a lenient one still warns
    assert "dict at the output" in strict.message and strict.detail("strict") is True
    assert warning.line == branch and warning.severity is qready.Severity.WARNING


def test_coverage_is_not_measured_without_the_observed_rules() -> None:
    report = qready.check(seed.FunctionalRelu(), (seed.image(),), select=["QR002"])
    assert report.coverage is None and report.to_dict()["summary"]["coverage"] is None
