"""Prepare the structure from a config, load the original checkpoint later (``qready.load(weights=)``)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import qready
from qready.errors import LoadError, ModelError
from tests.models.llm import VOCAB, prompt, tiny_config, transformers_or_skip

accelerate = pytest.importorskip("accelerate", reason="accelerate is part of the test extra")


def _zeros_cache(config, length: int):
    transformers = transformers_or_skip()
    cache = transformers.DynamicCache(config=config)
    heads, dim = config.num_key_value_heads, config.hidden_size // config.num_attention_heads
    for layer in range(config.num_hidden_layers):
        cache.update(torch.zeros(1, heads, length, dim), torch.zeros(1, heads, length, dim), layer)
    return cache


def _run_prepared(prepared, **inputs):
    with torch.no_grad():
        return prepared.unflatten_outputs(prepared(*prepared.flatten_inputs(**inputs)))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> tuple[Path, torch.nn.Module]:
    """A small tied Llama saved by save_pretrained in several shards, and the model itself."""
    transformers = transformers_or_skip()
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(tiny_config("llama", tie_word_embeddings=True)).eval()
    directory = tmp_path_factory.mktemp("checkpoint") / "llama"
    model.save_pretrained(directory, max_shard_size="20KB")
    return directory, model


def _empty_from(directory: Path) -> torch.nn.Module:
    transformers = transformers_or_skip()
    with accelerate.init_empty_weights():
        model = transformers.LlamaForCausalLM(transformers.LlamaConfig.from_pretrained(directory)).eval()
    model.tie_weights()
    return model


def test_structure_prepared_from_config_loads_sharded_checkpoint_bit_identical(checkpoint, tmp_path) -> None:
    directory, original = checkpoint
    index = json.loads((directory / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) > 2 and "lm_head.weight" not in index["weight_map"]
    empty = _empty_from(directory)
    ids, token = prompt(), prompt(1, seed=1)
    prefill = qready.save(qready.prepare(empty, {"input_ids": ids}), tmp_path / "prefill")
    decode = qready.save(
        qready.prepare(empty, {"input_ids": token, "cache": _zeros_cache(empty.config, 5)}), tmp_path / "decode"
    )
    weights_file = (prefill / "weights.safetensors").stat().st_size
    assert weights_file < 4096  # buffers only (rotary inv_freq, folded constants), no weight

    loaded_prefill = qready.load(prefill, weights=directory)
    loaded_decode = qready.load(decode, weights=directory / "model.safetensors.index.json")
    for loaded in (loaded_prefill, loaded_decode):
        assert loaded.lm_head.weight is loaded.model.embed_tokens.weight
        assert not any(t.is_meta for t in loaded.state_dict().values())
    with torch.no_grad():
        expected = original(input_ids=ids)
        expected_step = original(input_ids=token, cache=expected.cache)
    got = _run_prepared(loaded_prefill, input_ids=ids)
    assert torch.equal(got.logits, expected.logits)
    got_step = _run_prepared(loaded_decode, input_ids=token, cache=got.cache)
    assert torch.equal(got_step.logits, expected_step.logits)
    assert all(torch.equal(a.keys, b.keys) for a, b in zip(got_step.cache.layers, expected_step.cache.layers))


@pytest.mark.parametrize("form", ["state_dict", "safetensors_file", "pt_file"])
def test_other_checkpoint_forms_fill_the_same_model(checkpoint, tmp_path, form: str) -> None:
    from safetensors.torch import save_file

    directory, original = checkpoint
    saved = qready.save(qready.prepare(_empty_from(directory), {"input_ids": prompt()}, verify=False), tmp_path / "p")
    state = {k: v.clone() for k, v in original.state_dict().items() if k != "lm_head.weight"}
    if form == "state_dict":
        weights = state
    elif form == "safetensors_file":
        weights = tmp_path / "model.safetensors"
        save_file(state, str(weights))
    else:
        weights = tmp_path / "model.pt"
        torch.save(state, weights)
    loaded = qready.load(saved, weights=weights)
    with torch.no_grad():
        assert torch.equal(_run_prepared(loaded, input_ids=prompt()).logits, original(input_ids=prompt()).logits)


def test_load_with_weights_in_a_new_process_from_another_directory(checkpoint, tmp_path) -> None:
    directory, original = checkpoint
    saved = qready.save(qready.prepare(_empty_from(directory), {"input_ids": prompt()}), tmp_path / "prepared")
    with torch.no_grad():
        torch.save(original(input_ids=prompt()).logits, tmp_path / "expected.pt")
    script = textwrap.dedent(f"""
        import torch, qready
        loaded = qready.load({str(saved)!r}, weights={str(directory)!r})
        ids = torch.randint(0, {VOCAB}, (1, 5), generator=torch.Generator().manual_seed(0))  # prompt()
        with torch.no_grad():
            logits = loaded.unflatten_outputs(loaded(*loaded.flatten_inputs(input_ids=ids))).logits
        assert torch.equal(logits, torch.load({str(tmp_path / 'expected.pt')!r})), "logits differ"
        assert loaded.lm_head.weight is loaded.model.embed_tokens.weight, "untied"
        print("same")
    """)
    run = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0 and run.stdout.strip().endswith("same"), run.stderr[-2000:]


def test_checkpoint_problems_are_one_line_errors(checkpoint, tmp_path) -> None:
    directory, original = checkpoint
    saved = qready.save(qready.prepare(_empty_from(directory), {"input_ids": prompt()}, verify=False), tmp_path / "p")
    with pytest.raises(LoadError, match="prepared without weights.*pass weights="):
        qready.load(saved)
    partial = {k: v for k, v in original.state_dict().items() if "layers.1." not in k}
    with pytest.raises(LoadError, match=r"no tensor for \d+ of the model's weights, such as 'model.layers.1"):
        qready.load(saved, weights=partial)
    wrong = dict(original.state_dict())
    wrong["model.norm.weight"] = torch.ones(7)
    with pytest.raises(LoadError, match=r"'model.norm.weight' of shape \[7\], the model expects \[32\]"):
        qready.load(saved, weights=wrong)
    with pytest.raises(LoadError, match="does not exist"):
        qready.load(saved, weights=tmp_path / "nowhere")


def test_untied_meta_embeddings_are_refused_before_preparing(checkpoint) -> None:
    transformers = transformers_or_skip()
    directory, _ = checkpoint
    with accelerate.init_empty_weights():  # re-registers each parameter: lm_head no longer is embed_tokens
        model = transformers.LlamaForCausalLM(transformers.LlamaConfig.from_pretrained(directory)).eval()
    with pytest.raises(ModelError, match=r"'lm_head.weight' tied to 'model.embed_tokens.weight'.*tie_weights\(\)"):
        qready.prepare(model, {"input_ids": prompt()})
