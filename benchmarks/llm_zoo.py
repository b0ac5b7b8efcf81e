"""Hugging Face causal LMs at their default config: prefill and a decode step, in the zoo.

Each family (Llama, Qwen2, Qwen3, Mistral, Gemma, Gemma 2, Gemma 3, Phi-3, GPT-2,
Falcon, GPT-NeoX, Mixtral, Qwen2-MoE, OLMo, StableLM, Granite, DeepSeek-V3)
is built from its config with only the sizes made small: ``use_cache=True``
and the default attention implementation stay as they are. Two zoo entries
per family, measured by the zoo's own routine (``zoo.measure``) with the
zoo's criteria (prepared, bit-identical on the example and on a fresh input,
no QR003/QR004 left on the prepared model):

* ``llm/<family>:prefill``: ``input_ids`` in, logits and a ``DynamicCache`` out;
* ``llm/<family>:decode``: one token and the prefill's cache in, logits and the
  grown cache out (the cache as one key and one value tensor per layer).

The entries are the zoo's ``hf-llm`` family (``zoo.py --family hf-llm`` runs
them with the rest); this script runs them alone and writes their own table::

    python benchmarks/llm_zoo.py [--only REGEX] [--skip-onnx] [--no-aimet] [--timeout 300]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from zoo_models import ZooModel  # noqa: E402

RESULTS = HERE / "results" / "llm_zoo.json"
VOCAB = 128
PROMPT = 8
_SMALL: dict[str, Any] = {
    "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
    "num_key_value_heads": 2, "vocab_size": VOCAB,
}

# family -> (config class, model class, config keywords); nothing else of the default config changed
LLM_FAMILIES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "llama": ("LlamaConfig", "LlamaForCausalLM", _SMALL),
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM", _SMALL),
    "qwen3": ("Qwen3Config", "Qwen3ForCausalLM", {**_SMALL, "head_dim": 8}),
    "mistral": ("MistralConfig", "MistralForCausalLM", _SMALL),
    "gemma": ("GemmaConfig", "GemmaForCausalLM", {**_SMALL, "head_dim": 8}),
    "gemma2": ("Gemma2Config", "Gemma2ForCausalLM", {**_SMALL, "head_dim": 8, "sliding_window": 4}),
    "gemma3": ("Gemma3TextConfig", "Gemma3ForCausalLM", {**_SMALL, "head_dim": 8, "sliding_window": 4}),
    "phi3": ("Phi3Config", "Phi3ForCausalLM", {**_SMALL, "pad_token_id": 0}),
    "gpt2": ("GPT2Config", "GPT2LMHeadModel", {"n_embd": 32, "n_layer": 2, "n_head": 4, "vocab_size": VOCAB,
                                               "n_positions": 64}),
    "falcon": ("FalconConfig", "FalconForCausalLM", {"hidden_size": 32, "num_hidden_layers": 2,
                                                     "num_attention_heads": 4, "vocab_size": VOCAB}),
    "gpt_neox": ("GPTNeoXConfig", "GPTNeoXForCausalLM", _SMALL),
    "mixtral": ("MixtralConfig", "MixtralForCausalLM", {**_SMALL, "num_local_experts": 4, "num_experts_per_tok": 2}),
    "qwen2_moe": ("Qwen2MoeConfig", "Qwen2MoeForCausalLM", {
        **_SMALL, "num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 16,
        "shared_expert_intermediate_size": 32,
    }),
    "olmo": ("OlmoConfig", "OlmoForCausalLM", {**_SMALL, "pad_token_id": 0}),
    "stablelm": ("StableLmConfig", "StableLmForCausalLM", _SMALL),
    "granite": ("GraniteConfig", "GraniteForCausalLM", _SMALL),
    "deepseek_v3": ("DeepseekV3Config", "DeepseekV3ForCausalLM", {
        **_SMALL, "num_key_value_heads": 4, "moe_intermediate_size": 16, "first_k_dense_replace": 1,
        "n_routed_experts": 8, "n_shared_experts": 1, "num_experts_per_tok": 2, "n_group": 2, "topk_group": 1,
        "q_lora_rank": 16, "kv_lora_rank": 8, "qk_rope_head_dim": 4, "qk_nope_head_dim": 4, "v_head_dim": 8,
    }),
}


def build_llm(family: str) -> torch.nn.Module:
    """The family's causal LM at its default config, small, weights from the current seed."""
    import transformers

    config_class, model_class, keywords = LLM_FAMILIES[family]
    return getattr(transformers, model_class)(getattr(transformers, config_class)(**keywords))


def _prompt(length: int, seed: int) -> torch.Tensor:
    return torch.randint(0, VOCAB, (1, length), generator=torch.Generator().manual_seed(seed))


def _prefill_inputs() -> dict[str, Any]:
    return {"input_ids": _prompt(PROMPT, seed=0)}


def _as_the_zoo_builds_it(family: str) -> torch.nn.Module:
    """The family's model with the zoo's weights (seed 0), the caller's random state untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return build_llm(family).eval()


def _decode_inputs(family: str) -> Callable[[], dict[str, Any]]:
    """One new token and the cache the model's own prefill returns (built as the zoo builds it)."""

    def inputs() -> dict[str, Any]:
        model = _as_the_zoo_builds_it(family)
        with torch.no_grad():
            cache = model(**_prefill_inputs()).cache
        return {"input_ids": _prompt(1, seed=1), "cache": cache}

    return inputs


def _static_decode_inputs(family: str) -> Callable[[], dict[str, Any]]:
    """One new token and a ``StaticCache`` (16 positions) the model's own prefill filled."""

    def inputs() -> dict[str, Any]:
        import transformers

        model = _as_the_zoo_builds_it(family)
        cache = transformers.StaticCache(config=model.config, max_cache_len=16)
        with torch.no_grad():
            model(**_prefill_inputs(), cache=cache)
        return {"input_ids": _prompt(1, seed=1), "cache": cache}

    return inputs


def llm_zoo() -> list[ZooModel]:
    """Two entries per family, ``llm/<family>:prefill`` and ``llm/<family>:decode``, and Llama's
    decode step on a ``StaticCache`` (``llm/llama:decode-static``)."""
    entries = []
    for family in LLM_FAMILIES:
        build = lambda family=family: build_llm(family)
        entries.append(ZooModel(f"llm/{family}:prefill", "hf-llm", build, _prefill_inputs))
        entries.append(ZooModel(f"llm/{family}:decode", "hf-llm", build, _decode_inputs(family)))
    build = lambda: build_llm("llama")
    entries.append(ZooModel("llm/llama:decode-static", "hf-llm", build, _static_decode_inputs("llama")))
    return entries


# --- the run and its table --------------------------------------------------------------------------


def _cell(record: dict[str, Any] | None) -> str:
    if record is None:
        return "not run"
    verdict = record.get("verdict") or {}
    if verdict.get("prepare_pass") and verdict.get("check_completes"):
        prep = record["prepare"]
        leaves = len(prep.get("leaves") or [])
        return f"pass ({prep['converted']} converted, {leaves} leaves, {record['prepare']['time_s']:.1f} s)"
    return f"FAIL: {verdict.get('reason')}"


def render(records: dict[str, dict[str, Any]], command: str, environment: dict[str, Any]) -> str:
    passed = sum(
        1 for r in records.values() if (r.get("verdict") or {}).get("prepare_pass") and r["verdict"]["check_completes"]
    )
    lines = [
        "## Hugging Face causal LMs at their default config (prefill and decode step)",
        "",
        (f"`{command}` ({environment.get('machine', '')}, torch {environment.get('torch', '')}, transformers "
         f"{environment.get('transformers', '')}). Each family's causal LM from its config with only the sizes "
         "made small (2 layers, hidden 32; `use_cache=True`, default attention implementation), random weights "
         f"(seed 0). Prefill: {PROMPT} tokens in, logits and cache out. Decode: one token and the prefill's cache in, "
         "logits and the grown cache out. Measured by the zoo's routine, one subprocess each: `check` completes, "
         "`prepare` verifies bit-identical, the prepared model is bit-identical again on a fresh input drawn by the "
         "benchmark, and `check(prepared, select=QR003,QR004)` finds nothing. "
         f"**{passed}/{len(records)} pass.**"),
        "",
        "| family | prefill | decode | check findings (prefill) | coverage (decode) |",
        "|---|---|---|---|---|",
    ]
    for family in LLM_FAMILIES:
        prefill, decode = records.get(f"llm/{family}:prefill"), records.get(f"llm/{family}:decode")
        counts = ((prefill or {}).get("check") or {}).get("counts") or {}
        findings = ", ".join(f"{code} {n}" for code, n in counts.items() if n) or "-"
        coverage = ((decode or {}).get("check") or {}).get("coverage")
        lines.append(f"| {family} | {_cell(prefill)} | {_cell(decode)} | {findings} | "
                     f"{f'{coverage[0]}/{coverage[1]}' if coverage else '-'} |")
    static = records.get("llm/llama:decode-static")
    coverage = ((static or {}).get("check") or {}).get("coverage")
    lines.append(f"| llama, StaticCache (16 positions) | not bit-identical by design, see below | {_cell(static)} | | "
                 f"{f'{coverage[0]}/{coverage[1]}' if coverage else '-'} |")
    lines += [
        "",
        ("A prefill into an empty `StaticCache` is not in the table: transformers' eager forward then attends "
         "causally over the new tokens only, while traced (as `prepare`, `torch.export` and the ONNX exporter see "
         "it, with the cache length an input) it masks all preallocated positions, and the two differ by about one "
         "ulp (max abs diff 6e-8 on Llama's logits). `prepare` raises `VerificationError` saying so and what to do "
         "(prefill with a `DynamicCache`); the static decode step above is bit-identical."),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import shlex

    import zoo
    from common import write_section

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], prog="benchmarks/llm_zoo.py")
    parser.add_argument("--only", metavar="REGEX", help="entries whose name (llm/llama:decode) matches")
    parser.add_argument("--skip-onnx", action="store_true", help="leave QR001 (ONNX export) out of check")
    parser.add_argument("--no-aimet", action="store_true", help="leave AIMET out")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per entry")
    parser.add_argument("--report-only", action="store_true", help="rewrite the table from the JSON, run nothing")
    args = parser.parse_args(argv)
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"models": {}}
    command = " ".join(["python", "benchmarks/llm_zoo.py", *map(shlex.quote, sys.argv[1:] if argv is None else argv)])
    if not args.report_only:
        pattern = re.compile(args.only) if args.only else None
        aimet = not args.no_aimet and zoo.aimet_available()
        data["environment"] = zoo.environment()
        data["command"] = command
        for entry in llm_zoo():
            if pattern is not None and not pattern.search(entry.name):
                continue
            record = zoo._run_isolated(entry, onnx=not args.skip_onnx, aimet=aimet, timeout=args.timeout)
            data["models"][entry.name] = record
            print(zoo._status_line(record), file=sys.stderr)
            RESULTS.parent.mkdir(parents=True, exist_ok=True)
            RESULTS.write_text(json.dumps(data, indent=1, default=str))
    write_section("llm-zoo", render(data["models"], data.get("command", command), data.get("environment", {})))
    return 0


if __name__ == "__main__":
    sys.exit(main())
