"""Shared pieces of the benchmark scripts: models, timing, and the BENCHMARKS.md writer."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

BENCHMARKS = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"


def best_of(fn: Callable[[], Any], repeat: int) -> float:
    """The fastest of ``repeat`` runs, in seconds: the least disturbed by the rest of the machine."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def models(names: list[str]) -> list[tuple[str, torch.nn.Module, Any]]:
    """(name, model in eval mode, example inputs) for torchvision names and 'tiny_bert'."""
    import torchvision

    out = []
    for name in names:
        torch.manual_seed(0)
        if name == "tiny_bert":
            import transformers

            config = transformers.BertConfig(
                vocab_size=1000, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                intermediate_size=128, max_position_embeddings=128,
            )
            model = transformers.BertModel(config).eval()
            inputs: Any = {
                "input_ids": torch.randint(0, 1000, (1, 32)),
                "attention_mask": torch.ones(1, 32, dtype=torch.long),
            }
        else:
            model = torchvision.models.get_model(name, weights=None).eval()
            inputs = (torch.randn(1, 3, 224, 224),)
        out.append((name, model, inputs))
    return out


def write_section(name: str, body: str) -> None:
    """Replace the text between ``<!-- name:start -->`` and ``<!-- name:end -->`` in BENCHMARKS.md."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = BENCHMARKS.read_text() if BENCHMARKS.exists() else "# Benchmarks\n"
    block = f"{start}\n{body.rstrip()}\n{end}"
    if start in text:
        text = re.sub(re.escape(start) + r".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    BENCHMARKS.write_text(text)


def machine() -> str:
    import os
    import platform

    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"
