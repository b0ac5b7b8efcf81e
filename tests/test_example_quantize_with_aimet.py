"""examples/quantize_with_aimet.py runs end to end: prepare -> QuantSim W8A8 -> encodings -> export -> onnxruntime."""

from __future__ import annotations

import importlib.util
import logging
import math
import sys
from pathlib import Path

import pytest

pytest.importorskip("aimet_torch", reason="the AIMET example needs aimet-torch: pip install -e '.[interop]'")

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "quantize_with_aimet.py"


def test_the_example_quantizes_exports_and_runs_in_onnxruntime(capsys, monkeypatch) -> None:
    logging.getLogger("Utils").setLevel(logging.CRITICAL)
    spec = importlib.util.spec_from_file_location("quantize_with_aimet", EXAMPLE)
    example = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, example)  # its dataclass resolves annotations there
    spec.loader.exec_module(example)

    results = {r.model: r for r in example.main(["--small"])}
    assert set(results) == {"resnet18", "vit_tiny"}
    for result in results.values():
        assert {f"{result.model}.onnx", f"{result.model}.encodings"} <= set(result.exported)
        # the exported float graph differs from the float model by the weights' quantization only
        assert result.onnx_sqnr_db > 30
        # AIMET's QDQ graph in onnxruntime computes what the sim computes (exact, or rounding apart)
        assert result.qdq_sqnr_db > 50
    # W8A8 with random weights: a quantized model, not noise (noise alone would be ~0 dB)
    assert results["resnet18"].sqnr_db > 25 and results["vit_tiny"].sqnr_db > 10
    assert not math.isinf(results["resnet18"].sqnr_db)
    assert results["resnet18"].decomposed == ()
    assert results["vit_tiny"].decomposed == tuple(
        f"encoder.layers.encoder_layer_{i}.self_attention" for i in range(2)
    )
    assert "vit_tiny   SQNR" in capsys.readouterr().out
