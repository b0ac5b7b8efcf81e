"""Tiny decoder LLMs from Hugging Face configs: the real code paths, a few thousand weights."""

from __future__ import annotations

from typing import Any

import pytest
import torch

VOCAB = 100
_COMMON: dict[str, Any] = {
    "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
    "num_key_value_heads": 2, "vocab_size": VOCAB,
}

# family -> (config class, model class, config keywords); every one at its default use_cache=True
FAMILIES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "llama": ("LlamaConfig", "LlamaForCausalLM", _COMMON),
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM", _COMMON),
    "qwen3": ("Qwen3Config", "Qwen3ForCausalLM", {**_COMMON, "head_dim": 8}),
    "mistral": ("MistralConfig", "MistralForCausalLM", _COMMON),
    "gemma": ("GemmaConfig", "GemmaForCausalLM", {**_COMMON, "head_dim": 8}),
    "gemma2": ("Gemma2Config", "Gemma2ForCausalLM", {**_COMMON, "head_dim": 8, "sliding_window": 4}),
    "gemma3": ("Gemma3TextConfig", "Gemma3ForCausalLM", {**_COMMON, "head_dim": 8, "sliding_window": 4}),
    "phi3": ("Phi3Config", "Phi3ForCausalLM", {**_COMMON, "pad_token_id": 0}),
    "gpt2": ("GPT2Config", "GPT2LMHeadModel", {"n_embd": 32, "n_layer": 2, "n_head": 4, "vocab_size": VOCAB, "n_positions": 64}),
    "gpt_neox": ("GPTNeoXConfig", "GPTNeoXForCausalLM", _COMMON),
    "falcon": ("FalconConfig", "FalconForCausalLM", {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": VOCAB}),
    "mixtral": ("MixtralConfig", "MixtralForCausalLM", {**_COMMON, "num_local_experts": 4, "num_experts_per_tok": 2}),
    "qwen2_moe": (
        "Qwen2MoeConfig", "Qwen2MoeForCausalLM",
        {**_COMMON, "num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 16, "shared_expert_intermediate_size": 32},
    ),
}


def transformers_or_skip() -> Any:
    return pytest.importorskip("transformers", reason="transformers is part of the test extra")


def tiny_config(family: str, **overrides: Any) -> Any:
    transformers = transformers_or_skip()
    config_class, _, keywords = FAMILIES[family]
    return getattr(transformers, config_class)(**{**keywords, **overrides})


def tiny_llm(family: str, **overrides: Any) -> torch.nn.Module:
    """The family's causal LM at its default config, small, seeded, in eval mode."""
    transformers = transformers_or_skip()
    torch.manual_seed(0)
    return getattr(transformers, FAMILIES[family][1])(tiny_config(family, **overrides)).eval()


def prompt(length: int = 5, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, VOCAB, (1, length), generator=torch.Generator().manual_seed(seed))
