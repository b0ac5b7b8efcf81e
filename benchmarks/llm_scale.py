"""LLMs at their real size, without their weights, and a checkpoint round trip with weights.

Part 1, on meta (parameters on the meta device, built from hand-written copies
of the published configs under ``accelerate.init_empty_weights()``): for
Llama-3-70B, Qwen2.5-72B, Mixtral-8x7B and a DeepSeek-V3-style MoE, the time
and peak RSS of ``check`` (QR003-QR005) and of ``prepare`` of the structure
(``verify=False``: verifying needs every weight made real), each in its own
process so that peak RSS is its own. Targets: check < 60 s and < 4 GB, prepare
< 120 s and < 4 GB. Then prepare time for the Llama-3-70B config at 2, 8, 32
and 80 layers (it should grow linearly).

Part 2, with weights: a ~100M-parameter Llama-style model (tied embeddings)
saved with ``save_pretrained`` in shards, prepared from its config on meta
(prefill, and a decode step with a cache), saved, loaded with ``weights=`` the
shards, and compared with the original: prefill and decode logits and cache
bit for bit, and the tied weights one tensor.

    .venv/bin/python benchmarks/llm_scale.py [--configs llama3_70b,...] [--layers 2,8,32,80] [--tokens 16] [--no-roundtrip]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, write_section

# The published configs' shapes, written by hand (no download): what sets the structure and the size.
CONFIGS: dict[str, dict[str, Any]] = {
    "llama3_70b": {
        "model_type": "llama", "hidden_size": 8192, "intermediate_size": 28672, "num_hidden_layers": 80,
        "num_attention_heads": 64, "num_key_value_heads": 8, "vocab_size": 128256, "max_position_embeddings": 8192,
        "rope_theta": 500000.0, "rms_norm_eps": 1e-5, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
    },
    "qwen2.5_72b": {
        "model_type": "qwen2", "hidden_size": 8192, "intermediate_size": 29568, "num_hidden_layers": 80,
        "num_attention_heads": 64, "num_key_value_heads": 8, "vocab_size": 152064, "max_position_embeddings": 32768,
        "rope_theta": 1000000.0, "rms_norm_eps": 1e-6, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
    },
    "mixtral_8x7b": {
        "model_type": "mixtral", "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
        "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 32000, "num_local_experts": 8,
        "num_experts_per_tok": 2, "max_position_embeddings": 32768, "rope_theta": 1000000.0,
        "tie_word_embeddings": False, "torch_dtype": "bfloat16",
    },
    "deepseek_v3_style": {
        "model_type": "deepseek_v3", "hidden_size": 7168, "intermediate_size": 18432, "moe_intermediate_size": 2048,
        "num_hidden_layers": 61, "first_k_dense_replace": 3, "num_attention_heads": 128, "num_key_value_heads": 128,
        "n_routed_experts": 256, "n_shared_experts": 1, "num_experts_per_tok": 8, "n_group": 8, "topk_group": 4,
        "q_lora_rank": 1536, "kv_lora_rank": 512, "qk_rope_head_dim": 64, "qk_nope_head_dim": 128, "v_head_dim": 128,
        "vocab_size": 129280, "max_position_embeddings": 4096, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
    },
}


def build(name: str, layers: int | None = None) -> Any:
    import accelerate
    import torch
    import transformers

    fields = dict(CONFIGS[name])
    if layers is not None:
        fields["num_hidden_layers"] = layers
    model_type = fields.pop("model_type")
    config = transformers.AutoConfig.for_model(model_type, **fields)
    with accelerate.init_empty_weights():
        model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.tie_weights()
    return model.eval()


def worker(task: str, name: str, layers: int | None, tokens: int) -> dict[str, Any]:
    """One measurement in this (fresh) process."""
    import torch

    import qready
    from qready.example_inputs import Example
    from qready.twin import depth_reduced_twin

    start = time.perf_counter()
    model = build(name, layers)
    built = time.perf_counter() - start
    params = sum(p.numel() for p in model.parameters())
    ids = torch.randint(0, 1000, (1, tokens), generator=torch.Generator().manual_seed(0))
    start = time.perf_counter()
    if task == "check":
        report = qready.check(model, {"input_ids": ids}, select=["QR003", "QR004", "QR005"])
        detail = {"findings": len(report.findings), "coverage": str(report.coverage),
                  "mode": next((k for k in report.timings if k.startswith("meta_")), "")}
        # where QR001/QR002 would run: the depth-reduced twin, or why there is none (sized on meta first)
        twin = depth_reduced_twin(model, Example((), {"input_ids": ids}))
        detail["twin"] = twin if isinstance(twin, str) else twin.description
    else:
        prepared = qready.prepare(model, {"input_ids": ids}, verify=False)
        result = prepared.prepare_result
        detail = {"converted": len(result.converted), "leaves": len(result.leaves),
                  "mode": next((k for k in result.timings if k.startswith("meta_")), "")}
    seconds = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    return {"task": task, "config": name, "layers": layers or CONFIGS[name]["num_hidden_layers"],
            "params_b": params / 1e9, "build_s": built, "seconds": seconds, "peak_rss_gb": rss, **detail}


def measure(task: str, name: str, layers: int | None, tokens: int) -> dict[str, Any]:
    argv = [sys.executable, __file__, "--worker", task, "--configs", name, "--tokens", str(tokens)]
    if layers is not None:
        argv += ["--layers", str(layers)]
    run = subprocess.run(argv, capture_output=True, text=True, check=False)
    if run.returncode != 0:
        tail = (run.stderr.strip().splitlines() or ["(no output)"])[-1]
        return {"task": task, "config": name, "layers": layers, "error": tail[:300]}
    return json.loads(run.stdout.strip().splitlines()[-1])


def roundtrip(tokens: int) -> dict[str, Any]:
    """~100M-parameter Llama: save_pretrained shards -> prepare from config on meta -> load(weights=)."""
    import accelerate
    import torch
    import transformers

    import qready

    config = transformers.LlamaConfig(
        hidden_size=768, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=12,
        num_key_value_heads=4, vocab_size=32000, tie_word_embeddings=True, max_position_embeddings=2048,
    )
    torch.manual_seed(0)
    original = transformers.LlamaForCausalLM(config).eval()
    params = sum(p.numel() for p in original.parameters())
    ids = torch.randint(0, 32000, (1, tokens), generator=torch.Generator().manual_seed(0))
    token = torch.randint(0, 32000, (1, 1), generator=torch.Generator().manual_seed(1))
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = Path(tmp) / "checkpoint"
        original.save_pretrained(checkpoint, max_shard_size="100MB")
        shards = len(list(checkpoint.glob("*.safetensors")))
        with accelerate.init_empty_weights():
            empty = transformers.LlamaForCausalLM(transformers.LlamaConfig.from_pretrained(checkpoint)).eval()
        empty.tie_weights()
        cache = transformers.DynamicCache(config=empty.config)
        heads, dim = config.num_key_value_heads, config.hidden_size // config.num_attention_heads
        for layer in range(config.num_hidden_layers):
            cache.update(torch.zeros(1, heads, tokens, dim), torch.zeros(1, heads, tokens, dim), layer)
        start = time.perf_counter()
        prefill = qready.prepare(empty, {"input_ids": ids}, verify=False)
        decode = qready.prepare(empty, {"input_ids": token, "cache": cache}, verify=False)
        prepared_s = time.perf_counter() - start
        qready.save(prefill, Path(tmp) / "prefill")
        qready.save(decode, Path(tmp) / "decode")
        saved_bytes = (Path(tmp) / "prefill" / "weights.safetensors").stat().st_size
        start = time.perf_counter()
        loaded_prefill = qready.load(Path(tmp) / "prefill", weights=checkpoint)
        loaded_decode = qready.load(Path(tmp) / "decode", weights=checkpoint)
        loaded_s = time.perf_counter() - start
        with torch.no_grad():
            expected = original(input_ids=ids)
            expected_step = original(input_ids=token, cache=expected.cache)
            got = loaded_prefill.unflatten_outputs(loaded_prefill(*loaded_prefill.flatten_inputs(input_ids=ids)))
            got_step = loaded_decode.unflatten_outputs(
                loaded_decode(*loaded_decode.flatten_inputs(input_ids=token, cache=got.cache))
            )
    same_cache = all(
        torch.equal(a.keys, b.keys) and torch.equal(a.values, b.values)
        for a, b in zip(got_step.cache.layers, expected_step.cache.layers)
    )
    return {
        "params_m": params / 1e6, "shards": shards, "prepare_s": prepared_s, "load_s": loaded_s,
        "saved_weights_bytes": saved_bytes,
        "prefill_equal": torch.equal(got.logits, expected.logits),
        "decode_equal": torch.equal(got_step.logits, expected_step.logits) and same_cache,
        "tied": all(m.lm_head.weight is m.model.embed_tokens.weight for m in (loaded_prefill, loaded_decode)),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--layers", default="2,8,32,80", help="layer counts for the Llama-3-70B scaling run")
    parser.add_argument("--tokens", type=int, default=16)
    parser.add_argument("--no-roundtrip", action="store_true")
    parser.add_argument("--worker", choices=["check", "prepare"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        layers = int(args.layers) if args.layers and "," not in args.layers else None
        print(json.dumps(worker(args.worker, args.configs, layers, args.tokens)))
        return

    rows = []
    for name in args.configs.split(","):
        for task in ("check", "prepare"):
            row = measure(task, name, None, args.tokens)
            print(row, file=sys.stderr)
            rows.append(row)
    scaling = []
    for layers in [int(n) for n in args.layers.split(",") if n]:
        row = measure("prepare", "llama3_70b", layers, args.tokens)
        print(row, file=sys.stderr)
        scaling.append(row)
    trip = None if args.no_roundtrip else roundtrip(args.tokens)
    if trip:
        print(trip, file=sys.stderr)
    write_section("llm-scale", report(rows, scaling, trip, args))


def report(rows: list[dict[str, Any]], scaling: list[dict[str, Any]], trip: dict[str, Any] | None, args: Any) -> str:
    lines = [
        "## LLMs at their real size, without weights",
        "",
        (f"Machine: {machine()}. Command: `.venv/bin/python benchmarks/llm_scale.py --configs {args.configs} "
        f"--layers {args.layers} --tokens {args.tokens}{' --no-roundtrip' if args.no_roundtrip else ''}`. "
        "Each check and prepare runs in its own process (peak RSS is that process's, Python and torch included), "
        f"on a {args.tokens}-token prompt, parameters on meta (`init_empty_weights`, bfloat16). "
        "Targets: check (QR003-QR005) < 60 s and < 4 GB, prepare of the structure (`verify=False`) < 120 s and < 4 GB. "
        "Times are wall-clock on a machine shared with other jobs: they vary by tens of percent between runs."),
        "",
        "| config | params | task | seconds | peak RSS GB | ran on | result |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['config']} | | {row['task']} | | | | FAILED: {row['error']} |")
            continue
        result = (f"{row['findings']} findings, {row['coverage']}" if row["task"] == "check"
                  else f"{row['converted']} functionals -> modules, {row['leaves']} leaves")
        verdict = "ok" if row["seconds"] < (60 if row["task"] == "check" else 120) and row["peak_rss_gb"] < 4 else "OVER TARGET"
        lines.append(
            f"| {row['config']} | {row['params_b']:.1f}B | {row['task']} | {row['seconds']:.1f} | "
            f"{row['peak_rss_gb']:.2f} | {row['mode'].removeprefix('meta_')} | {result}; {verdict} |"
        )
    twins = [row for row in rows if row.get("twin")]
    if twins:
        lines += ["", "QR001/QR002 (exporting) need real weights: on meta they run on a depth-reduced twin where one fits "
                  "in 2 GiB of real weights (`qready.twin`, measured on meta before anything is made real):", ""]
        lines += [f"- {row['config']}: {row['twin']}" for row in twins]
    if scaling:
        lines += ["", "Prepare time against depth (Llama-3-70B config, layers changed):", "",
                  "| layers | seconds | seconds per layer | peak RSS GB |", "|---|---|---|---|"]
        for row in scaling:
            if "error" in row:
                lines.append(f"| {row['layers']} | FAILED: {row['error']} | | |")
            else:
                lines.append(f"| {row['layers']} | {row['seconds']:.1f} | {row['seconds'] / row['layers']:.3f} | {row['peak_rss_gb']:.2f} |")
    if trip:
        lines += [
            "",
            (f"Round trip with weights: a {trip['params_m']:.0f}M-parameter Llama (tied embeddings) saved by "
            f"`save_pretrained` in {trip['shards']} shards; prefill and decode step prepared from its config on meta "
            f"in {trip['prepare_s']:.1f} s (saved without weights: {trip['saved_weights_bytes']} bytes of buffers), "
            f"loaded with `weights=` the shard directory in {trip['load_s']:.1f} s. Prefill logits bit-identical: "
            f"**{trip['prefill_equal']}**; decode logits and cache bit-identical (fed the loaded prefill's cache): "
            f"**{trip['decode_equal']}**; lm_head tied to embed_tokens: **{trip['tied']}**."),
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
