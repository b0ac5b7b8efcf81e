"""KV caches as named tensors: prefill and decode steps of decoder LLMs, prepared bit for bit."""

from __future__ import annotations

import copy
import json

import pytest
import torch

import qready
from qready.errors import InputError
from qready.structure import flatten, leaf_names, unflatten
from tests.models.llm import (
    FAMILIES,
    VOCAB,
    prompt,
    tiny_llm,
    transformers_or_skip,
)


def _same_cache(a, b) -> bool:
    return len(a.layers) == len(b.layers) and all(
        torch.equal(x.keys, y.keys) and torch.equal(x.values, y.values) for x, y in zip(a.layers, b.layers)
    )


def _run(model, **inputs):
    with torch.no_grad():
        return model(**copy.deepcopy(inputs))


def _run_prepared(prepared, **inputs):
    with torch.no_grad():
        return prepared.unflatten_outputs(prepared(*prepared.flatten_inputs(**inputs)))


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_prefill_then_decode_step_are_prepared_bit_identical(family: str) -> None:
    model = tiny_llm(family)
    ids = prompt()
    prefill = qready.prepare(model, {"input_ids": ids})
    assert prefill.input_names == ["input_ids"]
    assert prefill.output_names == [
        "output_logits", "output_cache_0_key", "output_cache_0_value", "output_cache_1_key", "output_cache_1_value",
    ]
    expected = _run(model, input_ids=ids)
    got = _run_prepared(prefill, input_ids=ids)
    assert type(got) is type(expected) and type(got.cache) is type(expected.cache)
    assert torch.equal(got.logits, expected.logits) and _same_cache(got.cache, expected.cache)

    # the decode step is prepared on the original's cache and fed the prepared prefill's cache
    token = prompt(1, seed=1)
    decode = qready.prepare(model, {"input_ids": token, "cache": expected.cache})
    assert decode.input_names == ["input_ids", "cache_0_key", "cache_0_value", "cache_1_key", "cache_1_value"]
    assert decode.prepare_result.ok and decode.prepare_result.verified
    step = _run(model, input_ids=token, cache=expected.cache)
    got_step = _run_prepared(decode, input_ids=token, cache=got.cache)
    assert torch.equal(got_step.logits, step.logits) and _same_cache(got_step.cache, step.cache)
    assert got_step.cache.get_seq_length() == 6
    # the caches handed in stay as they were: the decode step made new ones
    assert expected.cache.get_seq_length() == got.cache.get_seq_length() == 5
    coverage = qready.check(decode, decode.flatten_inputs(input_ids=token, cache=got.cache), select=["QR003", "QR004"])
    assert coverage.ok and coverage.coverage.covered == coverage.coverage.total > 0


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_causal_lm_families_prepare_prefill_and_decode(family: str) -> None:
    model = tiny_llm(family)
    ids = prompt()
    prefill = qready.prepare(model, {"input_ids": ids})
    expected = _run(model, input_ids=ids)
    assert prefill.prepare_result.ok, prefill.prepare_result.summary()
    token = prompt(1, seed=1)
    decode = qready.prepare(model, {"input_ids": token, "cache": expected.cache})
    assert decode.prepare_result.ok, decode.prepare_result.summary()
    got = _run_prepared(decode, input_ids=token, cache=_run_prepared(prefill, input_ids=ids).cache)
    assert torch.equal(got.logits, _run(model, input_ids=token, cache=expected.cache).logits)
    report = qready.check(decode, decode.flatten_inputs(input_ids=token, cache=expected.cache), select=["QR003", "QR004"])
    assert report.ok and report.coverage.covered == report.coverage.total > 0


def test_check_leaves_the_example_cache_as_it_was() -> None:
    model = tiny_llm("llama")
    cache = _run(model, input_ids=prompt()).cache
    keys = [layer.keys.clone() for layer in cache.layers]
    report = qready.check(model, {"input_ids": prompt(1, seed=1), "cache": cache})
    assert "QR005" in {f.code for f in report.findings}  # a cache at the model's boundary is not a tensor
    assert [layer.keys.shape[-2] for layer in cache.layers] == [5, 5]
    assert all(torch.equal(k, layer.keys) for k, layer in zip(keys, cache.layers))


def test_a_cache_flattens_to_named_tensors_and_back_through_json() -> None:
    model = tiny_llm("llama")
    cache = _run(model, input_ids=prompt()).cache
    leaves, spec = flatten({"cache": cache})
    assert leaf_names(spec, "") == ["cache_0_key", "cache_0_value", "cache_1_key", "cache_1_value"]
    rebuilt = unflatten(json.loads(json.dumps(spec)), leaves)["cache"]
    assert type(rebuilt) is type(cache) and rebuilt is not cache and _same_cache(rebuilt, cache)
    assert rebuilt.get_seq_length() == 5 and rebuilt.layers[0].device == cache.layers[0].device


def test_static_cache_decode_step_is_prepared_bit_identical() -> None:
    transformers = transformers_or_skip()
    model = tiny_llm("llama")
    cache = transformers.StaticCache(config=model.config, max_cache_len=16)
    cache = _run(model, input_ids=prompt(), cache=cache).cache
    token = prompt(1, seed=1)
    decode = qready.prepare(model, {"input_ids": token, "cache": cache})
    assert "cache_0_cumulative_length" in decode.input_names
    assert int(cache.layers[0].cumulative_length) == 5  # prepare ran the forward on copies only
    expected = _run(model, input_ids=token, cache=cache)
    got = _run_prepared(decode, input_ids=token, cache=cache)
    assert torch.equal(got.logits, expected.logits) and _same_cache(got.cache, expected.cache)
    # like the original's, the prepared step writes into the static cache it is given
    assert int(cache.layers[0].cumulative_length) == 6 and _same_cache(cache, expected.cache)


def test_static_cache_prefill_says_why_it_is_not_bit_identical_and_what_to_do() -> None:
    # transformers' eager forward attends causally over the new tokens of an empty static cache,
    # a traced one masks all 16 preallocated positions: they round differently (by an ulp or so)
    transformers = transformers_or_skip()
    model = tiny_llm("llama")
    cache = transformers.StaticCache(config=model.config, max_cache_len=16)
    cache.early_initialization(1, 2, 8, torch.float32, torch.device("cpu"))
    with pytest.raises(qready.VerificationError, match=(
        r"output 'output_logits' max abs diff .*; the example fills an empty StaticCache \(a prefill\).*"
        r"prefill with a DynamicCache \(or none\) and prepare the decode steps with the StaticCache"
    )) as failure:
        qready.prepare(model, {"input_ids": prompt(), "cache": cache})
    assert 0 < failure.value.prepared.prepare_result.diffs[0].max_abs_diff < 1e-6
    assert int(cache.layers[0].cumulative_length) == 0  # the example's cache is as it was


def test_an_unallocated_static_cache_says_how_to_allocate_it() -> None:
    transformers = transformers_or_skip()
    model = tiny_llm("llama")
    cache = transformers.StaticCache(config=model.config, max_cache_len=16)
    with pytest.raises(InputError, match="StaticCache whose layer 0 is not allocated.*early_initialization"):
        qready.prepare(model, {"input_ids": prompt(), "cache": cache})


def test_encoder_decoder_cache_round_trips() -> None:
    transformers = transformers_or_skip()
    torch.manual_seed(0)
    config = transformers.T5Config(
        vocab_size=VOCAB, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4, decoder_start_token_id=0
    )
    model = transformers.T5ForConditionalGeneration(config).eval()
    ids = prompt()
    first = _run(model, input_ids=ids, decoder_input_ids=ids[:, :3])
    step = {"input_ids": ids, "decoder_input_ids": ids[:, 3:4], "cache": first.cache,
            "encoder_outputs": (first.encoder_last_hidden_state,)}
    decode = qready.prepare(model, step)
    assert "cache_cross_attention_cache_1_value" in decode.input_names
    got = _run_prepared(decode, **step)
    expected = _run(model, **step)
    assert type(got.cache) is type(expected.cache)
    assert torch.equal(got.logits, expected.logits)
    assert _same_cache(got.cache.self_attention_cache, expected.cache.self_attention_cache)


def test_inputs_of_another_structure_are_refused_in_one_line() -> None:
    model = tiny_llm("llama")
    cache = _run(model, input_ids=prompt()).cache
    decode = qready.prepare(model, {"input_ids": prompt(1), "cache": cache}, verify=False)
    with pytest.raises(InputError, match=r"traced with argument\(s\) cache; pass them as the example did"):
        decode.flatten_inputs(input_ids=prompt(1))


def test_saved_decode_step_loads_and_rebuilds_the_cache(tmp_path) -> None:
    model = tiny_llm("gpt2")
    cache = _run(model, input_ids=prompt()).cache
    token = prompt(1, seed=1)
    decode = qready.prepare(model, {"input_ids": token, "cache": cache})
    loaded = qready.load(qready.save(decode, tmp_path / "decode"))
    got = _run_prepared(loaded, input_ids=token, cache=cache)
    expected = _run(model, input_ids=token, cache=cache)
    assert torch.equal(got.logits, expected.logits) and _same_cache(got.cache, expected.cache)
