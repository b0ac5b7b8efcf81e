"""QR001/QR002 on a model without weights: run on a depth-reduced twin with seeded random weights."""

from __future__ import annotations

import copy

import pytest
import torch

import qready
from qready.example_inputs import Example
from qready.twin import depth_reduced_twin
from tests.models.llm import FAMILIES, prompt, tiny_config, transformers_or_skip

accelerate = pytest.importorskip("accelerate", reason="accelerate is part of the test extra")


def _empty(config) -> torch.nn.Module:
    transformers = transformers_or_skip()
    with accelerate.init_empty_weights():
        model = transformers.AutoModelForCausalLM.from_config(config).eval()
    model.tie_weights()
    return model


def _exporter_findings(report) -> list[tuple[str, str]]:
    return sorted((f.code, f.module) for f in report.findings if f.code in ("QR001", "QR002"))


def test_both_exporters_run_on_the_twin_and_the_report_says_so() -> None:
    empty = _empty(tiny_config("llama", num_hidden_layers=5))
    report = qready.check(empty, {"input_ids": prompt()}, select=["QR001", "QR002", "QR003"])
    assert report.rules_run == ("QR001", "QR002", "QR003") and not report.skipped
    assert set(report.ran_on) == {"QR001", "QR002"}
    assert report.ran_on["QR001"] == "a depth-reduced twin: 2 of 5 layers, seeded random weights"
    # the default config returns a DynamicCache: neither exporter takes it, on the twin as on the model
    assert _exporter_findings(report) == [("QR001", ""), ("QR002", "")]
    assert "DynamicCache" in report.by_code("QR001")[0].message
    assert {"twin_QR001", "twin_QR002", "meta_shapes"} <= set(report.timings)
    assert all(p.is_meta for p in empty.parameters())


def test_a_decode_step_cache_is_cut_to_the_twins_depth() -> None:
    transformers = transformers_or_skip()
    config = tiny_config("llama", num_hidden_layers=4)
    torch.manual_seed(0)
    real = transformers.LlamaForCausalLM(config).eval()
    with torch.no_grad():
        cache = real(input_ids=prompt()).cache
    step = {"input_ids": prompt(1, seed=1), "cache": cache}
    report = qready.check(_empty(config), step, select=["QR002", "QR004"])
    assert report.ran_on == {"QR002": "a depth-reduced twin: 2 of 4 layers, seeded random weights"}
    assert _exporter_findings(report) == _exporter_findings(qready.check(real, step, select=["QR002"]))
    assert len(cache.layers) == 4 and cache.get_seq_length() == 5  # the example's cache is as it was


@pytest.mark.parametrize(
    ("config_class", "keywords", "kept"),
    [
        # one of each layer kind: Gemma 3 has five sliding-window layers, then a full one
        ("Gemma3TextConfig", {**FAMILIES["gemma3"][2], "num_hidden_layers": 8}, 6),
        # the dense layers before the first mixture of experts, and one of those
        ("DeepseekV3Config", {
            "hidden_size": 32, "intermediate_size": 64, "moe_intermediate_size": 16, "num_hidden_layers": 6,
            "first_k_dense_replace": 3, "num_attention_heads": 4, "num_key_value_heads": 4, "vocab_size": 100,
            "n_routed_experts": 4, "num_experts_per_tok": 2, "n_group": 1, "topk_group": 1, "q_lora_rank": 16,
            "kv_lora_rank": 8, "qk_rope_head_dim": 4, "qk_nope_head_dim": 4, "v_head_dim": 8,
        }, 4),
    ],
)
def test_the_twin_keeps_one_layer_of_each_kind(config_class: str, keywords: dict, kept: int) -> None:
    transformers = transformers_or_skip()
    empty = _empty(getattr(transformers, config_class)(**keywords))
    twin = depth_reduced_twin(empty, Example((), {"input_ids": prompt()}))
    assert not isinstance(twin, str), twin
    assert len(twin.model.model.layers) == twin.model.config.num_hidden_layers == kept
    kinds = getattr(empty.config, "layer_types", None)
    if kinds:
        assert twin.model.config.layer_types == kinds[:kept] and set(twin.model.config.layer_types) == set(kinds)
    assert not any(p.is_meta for p in twin.model.parameters())
    again = depth_reduced_twin(empty, Example((), {"input_ids": prompt()}))
    assert all(torch.equal(a, b) for a, b in zip(twin.model.state_dict().values(), again.model.state_dict().values()))


def test_a_twin_over_the_budget_is_not_built_and_the_reason_says_its_size() -> None:
    empty = _empty(tiny_config("llama", num_hidden_layers=4))
    reason = depth_reduced_twin(empty, Example((), {"input_ids": prompt()}), budget=1024)
    assert isinstance(reason, str)
    assert reason.startswith("a depth-reduced twin (2 of 4 layers) would still hold") and "GiB qready makes real" in reason


def test_the_twin_leaves_the_model_and_its_config_alone() -> None:
    empty = _empty(tiny_config("gemma3", num_hidden_layers=8))
    before = copy.deepcopy(empty.config.to_dict())
    state = torch.random.get_rng_state()
    depth_reduced_twin(empty, Example((), {"input_ids": prompt()}))
    assert empty.config.to_dict() == before and len(empty.model.layers) == 8
    assert torch.equal(torch.random.get_rng_state(), state)  # seeded without touching the caller's generator
