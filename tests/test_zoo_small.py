"""A few fast zoo models, measured by the zoo's own routine with the zoo's criteria.

``benchmarks/zoo.py`` runs the whole zoo; these run on every CI build: one model
per family, at small input sizes, without the ONNX export (QR001 has its own
tests) and, where AIMET is installed, one model side by side with AIMET.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from zoo import aimet_available, measure  # noqa: E402
import zoo_models  # noqa: E402
from zoo_models import ZooModel  # noqa: E402


def _torchvision(name: str, size: int) -> ZooModel:
    torchvision = pytest.importorskip("torchvision")
    return ZooModel(
        f"tv/{name}", "tv-classification",
        lambda: torchvision.models.get_model(name, weights=None),
        lambda: (torch.randn(1, 3, size, size),),
    )


def _timm(name: str, size: int) -> ZooModel:
    timm = pytest.importorskip("timm", reason="timm is in the bench extra, not the test extra")
    return ZooModel(f"timm/{name}", "timm", lambda: timm.create_model(name, pretrained=False),
                    lambda: (torch.randn(1, 3, size, size),))


def _huggingface(name: str) -> ZooModel:
    pytest.importorskip("transformers", reason="transformers is part of the test extra")
    [entry] = [m for m in zoo_models._huggingface() if m.name == name]  # not zoo(): it needs torchvision
    return entry


def assert_meets_the_zoo_criteria(record: dict) -> None:
    verdict = record["verdict"]
    assert verdict["check_completes"], record["check"]
    assert not verdict["crash"] and not verdict["silently_wrong"], verdict["reason"]
    assert verdict["prepare_pass"], verdict["reason"]
    assert record["prepare"]["identical"] and record["reverify"]["identical"]
    assert record["recheck"]["remaining"] == 0


CASES = {
    "torchvision resnet18": lambda: _torchvision("resnet18", 64),
    "torchvision mobilenet_v3_small": lambda: _torchvision("mobilenet_v3_small", 64),
    "hf bert": lambda: _huggingface("hf/bert"),
    "hf gpt2": lambda: _huggingface("hf/gpt2"),
    "hf whisper encoder": lambda: _huggingface("hf/whisper-encoder"),
    "timm convnext_atto": lambda: _timm("convnext_atto", 64),
    "timm mobilenetv3_small_050": lambda: _timm("mobilenetv3_small_050", 64),
}


@pytest.mark.parametrize("case", list(CASES))
def test_small_zoo_model_prepares_bit_identical_and_clean(case: str) -> None:
    record = measure(CASES[case](), onnx=False, aimet=False)
    assert record["exporter"] == "skipped" and record["check"]["counts"]["QR001"] == 0
    assert_meets_the_zoo_criteria(record)


@pytest.mark.skipif(not aimet_available(), reason="aimet-torch is the interop extra")
def test_side_by_side_with_aimet_on_resnet18() -> None:
    record = measure(_torchvision("resnet18", 64), onnx=False, aimet=True)
    assert_meets_the_zoo_criteria(record)
    aimet = record["aimet"]
    assert aimet["prepare"] == "ok" and aimet["identical"] is True
    # wherever AIMET's validator passes on AIMET's model, it passes on qready's
    assert aimet["validator_on_aimet"] is True and aimet["validator_on_qready"] is True


def test_qready_never_imports_aimet() -> None:
    code = (
        "import sys, torch, qready, qready.cli\n"
        "m = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.ReLU())\n"
        "qready.prepare(m, (torch.randn(1, 3, 8, 8),))\n"
        "qready.check(m, (torch.randn(1, 3, 8, 8),), select=['QR003', 'QR004', 'QR005'])\n"
        "assert not [name for name in sys.modules if name.startswith('aimet')], 'qready imported aimet'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=120)
