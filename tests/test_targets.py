"""Targets: the toolkit decides the leaf set, QR006 runs under it, the sim's own quantizer coverage."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest
import torch
from models.quant import GatedConv, ResidualBlock, TinyAttention

import qready
from qready.cli import main
from qready.errors import InputError, ModelError
from qready.targets import TARGETS, get_target

SPEC = str(Path(__file__).resolve().parent / "models" / "quant.py")


def image() -> torch.Tensor:
    return torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))


def test_unknown_target_says_which_exist() -> None:
    with pytest.raises(InputError, match=r"unknown target 'tflite'; choose one of generic, aimet"):
        get_target("tflite")
    assert set(TARGETS) == {"generic", "aimet"}


def test_generic_target_runs_the_five_rules_and_refuses_qr006_by_name() -> None:
    report = qready.check(GatedConv(), (image(),), ignore=["QR001", "QR002"])
    assert report.rules_run == ("QR003", "QR004", "QR005")
    # a module of the user's own is no leaf, children or not: the gate's ops have no quantizer around them
    assert sorted((f.code, f.module, f.op) for f in report.findings) == [
        ("QR003", "gate", "torch.Tensor.mul"), ("QR003", "gate", "torch.sigmoid"),
    ]
    assert (report.coverage.covered, report.coverage.total) == (2, 4)
    with pytest.raises(InputError, match=r"QR006 \(unquantizable-module\) needs a toolkit target; pass --target aimet"):
        qready.check(GatedConv(), (image(),), select=["QR006"])


class TestAimet:
    @pytest.fixture(autouse=True)
    def _aimet(self) -> None:
        pytest.importorskip("aimet_torch", reason="the aimet target needs aimet-torch: pip install -e '.[interop]'")
        logging.getLogger("Utils").setLevel(logging.CRITICAL)

    def test_a_custom_module_is_unquantizable_and_its_ops_are_not_covered(self) -> None:
        report = qready.check(GatedConv(), (image(),), ignore=["QR001", "QR002"], target="aimet")
        assert "QR006" in report.rules_run
        [finding] = report.by_code("QR006")
        assert finding.module == "gate" and finding.op.endswith("SigmoidGate")
        assert "AIMET has no quantized definition for SigmoidGate ('gate')" in finding.message
        assert "QuantizationMixin.implements(SigmoidGate)" in finding.fix and "prepare" in finding.fix
        assert finding.file and finding.file.endswith("quant.py")
        # conv and pool are AIMET leaves; the gate's mul and sigmoid run with no quantized module around them
        assert (report.coverage.covered, report.coverage.total) == (2, 4)
        assert {f.op for f in report.by_code("QR003")} == {"torch.Tensor.mul", "torch.sigmoid"}

    def test_prepare_decomposes_the_custom_module_and_the_target_check_is_clean(self) -> None:
        model, x = GatedConv().eval(), image()
        prepared = qready.prepare(model, (x,), target="aimet")
        assert torch.equal(prepared(x), model(x))
        report = qready.check(prepared, (x,), select=["QR003", "QR004", "QR006"], target="aimet")
        assert report.findings == () and (report.coverage.covered, report.coverage.total) == (4, 4)

    def test_multihead_attention_is_an_aimet_leaf(self) -> None:
        report = qready.check(TinyAttention(), (torch.randn(2, 5, 64),), select=["QR006"], target="aimet")
        # norm, attention (wrapped whole, its fused kernel included) and head; the residual add is functional
        assert report.findings == () and (report.coverage.covered, report.coverage.total) == (3, 4)

    def test_quantizer_coverage_on_the_sim_counts_what_check_counts(self) -> None:
        from qready.targets.coverage import quantizer_coverage

        model, x = ResidualBlock().eval(), image()
        original = quantizer_coverage(model, (x,))
        assert (original.covered, original.total) == (2, 3)
        [add] = original.uncovered
        assert add.module == "" and add.op == "torch.Tensor.add" and add.count == 1 and add.file.endswith("quant.py")
        prepared = qready.prepare(model, (x,))
        coverage = quantizer_coverage(prepared, (x,))
        check = qready.check(prepared, (x,), select=["QR003"]).coverage
        assert (coverage.covered, coverage.total) == (check.covered, check.total) == (3, 3)
        assert coverage.uncovered == () and coverage.summary() == "quantizer coverage (aimet sim) 3/3 ops (100.0%)"
        assert [type(m).__name__ for m in model.modules()] == ["ResidualBlock", "Conv2d", "ReLU"]  # untouched

    def test_quantizer_coverage_on_a_model_aimet_refuses_is_one_line(self) -> None:
        from qready.targets.coverage import quantizer_coverage

        with pytest.raises(ModelError, match=r"aimet's quantization simulator does not build on GatedConv .*SigmoidGate"):
            quantizer_coverage(GatedConv(), (image(),))

    def test_cli_target_and_quantizer_coverage(self) -> None:
        out, err = io.StringIO(), io.StringIO()
        argv = ["check", f"{SPEC}:ResidualBlock", "--input", "1x3x8x8", "--select", "QR003,QR006"]
        code = main([*argv, "--target", "aimet", "--quantizer-coverage"], stdout=out, stderr=err)
        lines = out.getvalue().splitlines()
        assert code == 1, err.getvalue()
        assert "quantizer coverage (aimet sim) 2/3 ops (66.7%)" in lines
        assert any("no quantizer  <root>  torch.Tensor.add (1 calls)" in line for line in lines)
        code = main([*argv, "--quantizer-coverage"], stdout=io.StringIO(), stderr=err)
        assert code == 2 and "--quantizer-coverage builds a toolkit's sim: pass --target aimet" in err.getvalue()


def test_cli_prepare_for_aimet_states_the_decomposition_and_saves(tmp_path: Path) -> None:
    pytest.importorskip("aimet_torch", reason="the aimet target needs aimet-torch: pip install -e '.[interop]'")
    out, err = io.StringIO(), io.StringIO()
    argv = ["prepare", f"{SPEC}:TinyAttention", "--input", "2x5x64", "--target", "aimet", "-o", str(tmp_path / "p")]
    code = main(argv, stdout=out, stderr=err)
    assert code == 0, err.getvalue()
    [line] = [line for line in out.getvalue().splitlines() if "decomposed" in line]
    assert line.startswith("<target>  decomposed  attention (torch.nn.MultiheadAttention): its fused eval kernel")
    assert "max |difference| from the original" in line
    loaded = qready.load(tmp_path / "p")
    assert not any(isinstance(m, torch.nn.MultiheadAttention) for m in loaded.modules())


def test_json_reports_name_the_target(tmp_path: Path) -> None:
    """A JSON report says which toolkit its checks and rewrites were made for: the same model reads
    differently under another target."""
    out, err = io.StringIO(), io.StringIO()
    assert main(["check", f"{SPEC}:ResidualBlock", "--input", "1x3x8x8", "--format", "json", "--ignore", "QR001,QR002"],
                stdout=out, stderr=err) in (0, 1), err.getvalue()
    assert json.loads(out.getvalue())["target"] == "generic"
    out = io.StringIO()
    argv = ["prepare", f"{SPEC}:ResidualBlock", "--input", "1x3x8x8", "--format", "json", "-o", str(tmp_path / "g")]
    assert main(argv, stdout=out, stderr=err) == 0, err.getvalue()
    assert json.loads(out.getvalue())["target"] == "generic"
    pytest.importorskip("aimet_torch", reason="the aimet target needs aimet-torch: pip install -e '.[interop]'")
    report = qready.check(ResidualBlock(), (image(),), ignore=["QR001", "QR002"], target="aimet")
    assert report.to_dict()["target"] == "aimet"
    prepared = qready.prepare(ResidualBlock(), (image(),), target="aimet")
    assert prepared.prepare_result.to_dict()["target"] == "aimet"
