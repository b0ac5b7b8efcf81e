"""The zoo's causal-LM family (benchmarks/llm_zoo.py): a few entries on every CI build, the zoo's criteria."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
pytest.importorskip("transformers", reason="transformers is part of the test extra")

from llm_zoo import LLM_FAMILIES, llm_zoo, render  # noqa: E402
from zoo import measure  # noqa: E402
from zoo_models import FAMILIES, select  # noqa: E402

ENTRIES = {entry.name: entry for entry in llm_zoo()}


def test_every_family_has_a_prefill_and_a_decode_entry_in_the_zoo() -> None:
    assert "hf-llm" in FAMILIES
    assert len(LLM_FAMILIES) >= 16
    for family in LLM_FAMILIES:
        assert {f"llm/{family}:prefill", f"llm/{family}:decode"} <= set(ENTRIES)
    assert {entry.family for entry in ENTRIES.values()} == {"hf-llm"}
    assert [e.name for e in select(list(ENTRIES.values()), only=":decode-static")] == ["llm/llama:decode-static"]


@pytest.mark.parametrize("name", ["llm/llama:decode", "llm/mixtral:prefill", "llm/deepseek_v3:decode", "llm/llama:decode-static"])
def test_causal_lm_entries_prepare_bit_identical_clean_and_without_leaves(name: str) -> None:
    record = measure(ENTRIES[name], onnx=False, aimet=False)
    verdict = record["verdict"]
    assert verdict["check_completes"] and verdict["prepare_pass"], verdict["reason"]
    assert record["prepare"]["identical"] and record["reverify"]["identical"]
    assert record["reverify"]["structure_rebuilt"] and record["recheck"]["remaining"] == 0
    assert record["prepare"]["leaves"] == [] and record["prepare"]["converted"] > 0
    if name.endswith("decode") or name.endswith("decode-static"):
        assert "cache_0_key" in record["prepare"]["inputs"] and "cache_1_value" in record["prepare"]["inputs"]


def test_the_table_says_pass_and_fail_per_step() -> None:
    passed = {"verdict": {"prepare_pass": True, "check_completes": True},
              "prepare": {"converted": 12, "leaves": [], "time_s": 1.5}, "check": {"counts": {"QR003": 4}, "coverage": [9, 10]}}
    failed = {"verdict": {"prepare_pass": False, "check_completes": True, "reason": "prepare refused: why"}, "check": {}}
    table = render({"llm/llama:prefill": passed, "llm/llama:decode": failed}, "python benchmarks/llm_zoo.py", {})
    assert "| llama | pass (12 converted, 0 leaves, 1.5 s) | FAIL: prepare refused: why | QR003 4 | - | - / - |" in table
    assert "**1/2 pass.**" in table and "| qwen2 | not run | not run |" in table
