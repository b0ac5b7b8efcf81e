"""Tiny decoder LLMs from Hugging Face configs: the real code paths, a few thousand weights."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from llm_zoo import LLM_FAMILIES, VOCAB  # noqa: E402  # one table of families, for the zoo and the tests

# family -> (config class, model class, config keywords); every one at its default use_cache=True.
# The tests run these; the zoo (benchmarks/llm_zoo.py) runs every family of the table.
FAMILIES: dict[str, tuple[str, str, dict[str, Any]]] = {
    name: LLM_FAMILIES[name]
    for name in ("llama", "qwen2", "qwen3", "mistral", "gemma", "gemma2", "gemma3", "phi3", "gpt2", "gpt_neox",
                 "falcon", "mixtral", "qwen2_moe")
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
