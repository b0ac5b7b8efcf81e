"""Tiny Hugging Face models built from configs: no downloads, the real code paths."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn


def tiny_bert() -> tuple[nn.Module, dict[str, Any]]:
    """A two-layer BERT and keyword inputs for it; skips the test where transformers is missing."""
    transformers = pytest.importorskip("transformers", reason="transformers is part of the test extra")
    config = transformers.BertConfig(
        vocab_size=64, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
        max_position_embeddings=32,
    )
    inputs = {"input_ids": torch.randint(0, 64, (1, 8)), "attention_mask": torch.ones(1, 8, dtype=torch.long)}
    return transformers.BertModel(config), inputs
