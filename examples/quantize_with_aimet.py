"""Quantize with AIMET after ``qready prepare``: a torchvision CNN and a small vision transformer.

For each model: ``qready.prepare(target="aimet")`` -> AIMET ``QuantizationSimModel``
(W8A8) -> ``compute_encodings`` on a seeded calibration set -> SQNR of the
quantized output against the float model's -> ``sim.export`` (ONNX +
encodings) -> the exported ONNX runs in onnxruntime and matches the float
model up to the weights' quantization, and AIMET's QDQ export (activations quantized as well)
runs in onnxruntime and matches the sim. Each comparison is an SQNR in dB.

Weights are random (``weights=None``): the numbers show the pipeline works end
to end, not a trained model's accuracy. Needs aimet-torch
(``pip install -e '.[interop]'``)::

    python examples/quantize_with_aimet.py            # resnet18 at 224x224, ViT at 64x64
    python examples/quantize_with_aimet.py --small    # 32x32 inputs, a few seconds each
"""

from __future__ import annotations

import argparse
import math
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
import torchvision
from aimet_torch.batch_norm_fold import fold_all_batch_norms

import qready
from qready.example_inputs import Example
from qready.targets import get_target
from qready.targets.coverage import build_sim


@dataclass(frozen=True)
class Result:
    model: str
    sqnr_db: float  # quantized (sim) vs float model, on held-out inputs
    exported: tuple[str, ...]  # files sim.export wrote
    onnx_sqnr_db: float  # the sim.export ONNX (weights as the sim quantized them) in onnxruntime vs float
    qdq_sqnr_db: float  # AIMET's QDQ ONNX (activations quantized too) in onnxruntime vs the sim
    decomposed: tuple[str, ...]  # modules prepare decomposed for the export

    def line(self) -> str:
        return (
            f"{self.model:<10} SQNR {self.sqnr_db:5.1f} dB  exported {', '.join(self.exported)}  "
            f"exported ONNX in ORT vs float {self.onnx_sqnr_db:5.1f} dB  QDQ ONNX in ORT vs sim {self.qdq_sqnr_db:5.1f} dB"
            + (f"  decomposed {', '.join(self.decomposed)}" if self.decomposed else "")
        )


def sqnr_db(reference: torch.Tensor, quantized: torch.Tensor) -> float:
    noise = (reference - quantized).pow(2).sum().item()
    return math.inf if noise == 0 else 10 * math.log10(reference.pow(2).sum().item() / noise)


def quantize(name: str, model: torch.nn.Module, shape: tuple[int, ...], *, calibration_batches: int = 4) -> Result:
    """The whole pipeline on one model; every random draw is seeded."""
    model = model.eval()
    generator = torch.Generator().manual_seed(0)
    example = torch.randn(shape, generator=generator)
    calibration = [torch.randn(shape, generator=generator) for _ in range(calibration_batches)]
    held_out = torch.randn(shape, generator=generator)

    prepared = qready.prepare(model, (example,), target="aimet").eval()
    decomposed = tuple(c.module for c in prepared.prepare_result.changes if c.kind == "decomposed")
    fold_all_batch_norms(prepared, input_shapes=shape, dummy_input=example)  # as AIMET recommends before QuantSim
    sim = build_sim(prepared, Example((example,)), get_target("aimet"))
    sim.compute_encodings(lambda m: [m(batch) for batch in calibration])
    with torch.no_grad():
        reference = model(held_out)
        quantized = sim.model(held_out)

    with tempfile.TemporaryDirectory() as directory:
        exported = sim.export(directory, name, Example((example,)))
        onnx_output = _run_onnx(Path(directory) / f"{name}.onnx", held_out)
        qdq_path = Path(directory) / f"{name}_qdq.onnx"
        _export_qdq(sim.model, example, qdq_path)
        qdq_output = _run_onnx(qdq_path, held_out)
    return Result(
        model=name,
        sqnr_db=sqnr_db(reference, quantized),
        exported=tuple(f for f in exported if f.endswith((".onnx", ".encodings")) and "temp" not in f),
        onnx_sqnr_db=sqnr_db(reference, torch.from_numpy(onnx_output)),
        qdq_sqnr_db=sqnr_db(quantized, torch.from_numpy(qdq_output)),
        decomposed=decomposed,
    )


def _export_qdq(sim_model: torch.nn.Module, example: torch.Tensor, path: Path) -> None:
    """AIMET's own export with QuantizeLinear/DequantizeLinear in the graph: the sim, runnable anywhere."""
    import aimet_torch.onnx

    aimet_torch.onnx.export(sim_model, (example,), str(path), input_names=["input"], output_names=["output"],
                            opset_version=21, dynamo=False)


def _run_onnx(path: Path, x: torch.Tensor) -> np.ndarray:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # the graph as exported
    session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    [output] = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    return output


def _vit(image: int) -> torch.nn.Module:
    model = torchvision.models.VisionTransformer(
        image_size=image, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64, num_classes=10
    )
    torch.nn.init.normal_(model.heads.head.weight, std=0.1)  # torchvision starts the head at zero: all outputs 0
    return model


def models(small: bool) -> dict[str, tuple[Callable[[], torch.nn.Module], tuple[int, ...]]]:
    image = 32 if small else 224
    vit_image = 32 if small else 64
    return {
        "resnet18": (lambda: torchvision.models.resnet18(weights=None), (1, 3, image, image)),
        "vit_tiny": (lambda: _vit(vit_image), (1, 3, vit_image, vit_image)),
    }


def main(argv: list[str] | None = None) -> list[Result]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="small inputs: a quick run")
    options = parser.parse_args(argv)
    results = []
    for name, (build, shape) in models(options.small).items():
        torch.manual_seed(0)  # the same random weights on every run
        results.append(quantize(name, build(), shape))
        print(results[-1].line())
    return results


if __name__ == "__main__":
    main()
