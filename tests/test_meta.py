"""Models without weights (parameters on the meta device): check and prepare from the config alone."""

from __future__ import annotations

import pytest
import torch

import qready
from qready.errors import ModelError
from qready.reporting.text_format import summary_line
from tests.models.llm import FAMILIES, prompt, tiny_config, transformers_or_skip

accelerate = pytest.importorskip("accelerate", reason="accelerate is part of the test extra")


def _empty(family: str, **overrides) -> torch.nn.Module:
    transformers = transformers_or_skip()
    with accelerate.init_empty_weights():
        model = getattr(transformers, FAMILIES[family][1])(tiny_config(family, **overrides)).eval()
    model.tie_weights()  # init_empty_weights re-registers each parameter, which unties them
    return model


def _real(family: str, **overrides) -> torch.nn.Module:
    transformers = transformers_or_skip()
    torch.manual_seed(0)
    return getattr(transformers, FAMILIES[family][1])(tiny_config(family, **overrides)).eval()


def _located(report) -> list[tuple]:
    return sorted((f.code, f.module, f.op, f.file, f.line) for f in report.findings)


@pytest.mark.parametrize("use_cache", [True, False])
def test_check_on_meta_finds_what_it_finds_with_weights_and_says_where_exporters_ran(use_cache: bool) -> None:
    inputs = {"input_ids": prompt(), "use_cache": use_cache}
    empty = _empty("llama", num_hidden_layers=3)
    rules = ["QR002", "QR003", "QR004", "QR005"]  # QR001 (ONNX export) the same way, slower: test_twin.py
    report = qready.check(empty, inputs, select=rules)
    assert report.rules_run == tuple(rules) and not report.skipped
    assert report.ran_on == {"QR002": "a depth-reduced twin: 2 of 3 layers, seeded random weights"}
    assert all(p.is_meta for p in empty.parameters())  # nothing was materialized on the model
    with_weights = qready.check(_real("llama", num_hidden_layers=3), inputs, select=rules)
    assert _located(report) == _located(with_weights) and report.coverage == with_weights.coverage
    assert report.to_dict()["ran_on"]["QR002"].startswith("a depth-reduced twin")
    assert "QR002 ran on a depth-reduced twin: 2 of 3 layers" in summary_line(report)


def test_torch_device_meta_works_for_check_too() -> None:
    transformers = transformers_or_skip()
    with torch.device("meta"):
        model = transformers.LlamaForCausalLM(tiny_config("llama")).eval()
    report = qready.check(  # masks read .item() on positions
        model, {"input_ids": prompt(), "use_cache": False}, select=["QR003", "QR004", "QR005"]
    )
    assert report.coverage.total > 0 and "meta_shapes" in report.timings


@pytest.mark.parametrize("family", ["llama", "gpt2", "gemma3"])
def test_prepare_on_meta_is_verified_against_the_original_with_the_same_seeded_weights(family: str) -> None:
    empty = _empty(family)
    prepared = qready.prepare(empty, {"input_ids": prompt()})
    result = prepared.prepare_result
    assert result.ok and result.verified and not result.leaves
    # the structure around the very same meta tensors: no weights were made for good
    assert all(p.is_meta for p in prepared.parameters())
    assert {id(p) for p in prepared.parameters()} <= {id(p) for p in empty.parameters()}
    assert prepared.output_names[1] == "output_cache_0_key"


def test_constants_folded_from_meta_buffers_are_refused_with_the_fix() -> None:
    transformers = transformers_or_skip()
    with torch.device("meta"):  # buffers too: rotary inv_freq has no values
        model = transformers.LlamaForCausalLM(tiny_config("llama")).eval()
    with pytest.raises(ModelError, match="inv_freq.*accelerate.init_empty_weights"):
        qready.prepare(model, {"input_ids": prompt()}, verify=False)


def test_only_exporter_rules_selected_on_meta_without_a_twin_runs_nothing_and_says_why() -> None:
    with torch.device("meta"):
        model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU())
    report = qready.check(model, (torch.randn(1, 4),), select=["QR001"])
    assert report.rules_run == () and set(report.skipped) == {"QR001"} and report.ok and not report.ran_on
    assert report.skipped["QR001"] == (
        "the weights are on the meta device, and exporting (torch.onnx.export) needs real values; "
        "Sequential has no Hugging Face config with num_hidden_layers to build a depth-reduced twin from"
    )


def test_cli_checks_and_prepares_a_config_json_alone(tmp_path) -> None:
    import io
    import json

    from qready.cli import main

    tiny_config("llama", tie_word_embeddings=True).save_pretrained(tmp_path / "config")
    spec = f"hf:{tmp_path / 'config' / 'config.json'}"
    out, err = io.StringIO(), io.StringIO()
    code = main(
        ["check", spec, "--input", "int64:1x8", "--format", "json", "--select", "QR002,QR003,QR004,QR005"],
        stdout=out, stderr=err,
    )
    report = json.loads(out.getvalue())
    assert code == 1 and report["rules_run"] == ["QR002", "QR003", "QR004", "QR005"] and "skipped" not in report
    assert report["ran_on"] == {"QR002": "a depth-reduced twin: 2 of 2 layers, seeded random weights"}
    assert report["model"] == "LlamaForCausalLM" and report["summary"]["counts"]["QR003"] > 0
    # --kwargs change the config: a depth-reduced twin
    code = main(
        ["prepare", f"hf:{tmp_path / 'config'}", "--kwargs", '{"num_hidden_layers": 1}', "--input", "int64:1x8",
         "-o", str(tmp_path / "prepared")], stdout=io.StringIO(), stderr=err,
    )
    assert code == 0, err.getvalue()
    manifest = json.loads((tmp_path / "prepared" / "manifest.json").read_text())
    assert "model.layers.0.mlp.up_proj.weight" in manifest["without_values"]
    assert not any(key.startswith("model.layers.1.") for key in manifest["without_values"])
    with pytest.raises(Exception, match="prepared without weights"):
        qready.load(tmp_path / "prepared")


def test_cli_config_spec_errors_are_one_line(tmp_path) -> None:
    import io

    from qready.cli import main

    (tmp_path / "config.json").write_text('{"hidden_size": 8}')
    err = io.StringIO()
    assert main(["check", f"hf:{tmp_path}", "--input", "int64:1x8"], stdout=io.StringIO(), stderr=err) == 2
    assert 'has no "model_type"' in err.getvalue() and len(err.getvalue().strip().splitlines()) == 1


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
@pytest.mark.parametrize("family", ["mixtral", "qwen2_moe"])
def test_mixture_of_experts_on_meta_checks_and_prepares(family: str, dtype: torch.dtype) -> None:
    # transformers routes experts through grouped_mm for weights that are not on the CPU (meta included);
    # its meta kernel takes only bfloat16 where the CPU kernel takes float32 too: shapes cannot answer
    # in float32, and the forward runs again on seeded values
    model = _empty(family).to(dtype)
    report = qready.check(model, {"input_ids": prompt()}, select=["QR003", "QR004", "QR005"])
    assert report.coverage.total > 0 and not report.skipped
    assert ("meta_values" if dtype == torch.float32 else "meta_shapes") in report.timings
    prepared = qready.prepare(model, {"input_ids": prompt()})
    assert prepared.prepare_result.ok and prepared.prepare_result.verified and not prepared.prepare_result.leaves
    assert all(p.is_meta for p in prepared.parameters())


def test_wrong_inputs_on_meta_are_still_the_inputs_fault() -> None:
    # a shape error on meta is tried again on values, where the real kernel says what is wrong
    with pytest.raises(ModelError, match="check that the example inputs"):
        qready.check(_empty("llama"), {"input_ids": prompt(), "attention_mask": torch.ones(1, 3, 7)}, select=["QR003"])
