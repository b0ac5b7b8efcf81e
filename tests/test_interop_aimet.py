"""AIMET accepts what qready prepares: its validator passes and QuantizationSimModel builds.

Runs only where the optional `interop` extra (aimet-torch) is installed.
"""

from __future__ import annotations

import logging

import pytest
import torch
from optional import torchvision

import qready
from models import seed

aimet_torch = pytest.importorskip("aimet_torch", reason="aimet-torch is optional: pip install -e '.[interop]'")


@pytest.fixture(autouse=True)
def _quiet_aimet() -> None:
    logging.getLogger("Utils").setLevel(logging.CRITICAL)  # AIMET logs each finding at ERROR


def validate(model: torch.nn.Module, inputs: tuple) -> bool:
    from aimet_torch.model_validator.model_validator import ModelValidator

    return bool(ModelValidator.validate_model(model, model_input=inputs if len(inputs) > 1 else inputs[0]))


def test_validator_rejects_resnet18_and_accepts_it_prepared() -> None:
    model, x = torchvision.models.resnet18().eval(), torch.randn(1, 3, 64, 64)
    assert not validate(model, (x,))
    assert validate(qready.prepare(model, (x,)).eval(), (x,))


@pytest.mark.parametrize("cls, inputs", [
    (seed.FunctionalRelu, lambda: (seed.image(),)),
    (seed.ReusedRelu, lambda: (seed.image(), seed.image())),
    (seed.DictIO, seed.dict_inputs),
])
def test_validator_accepts_the_prepared_seed_examples(cls, inputs) -> None:
    example = inputs()
    prepared = qready.prepare(cls().eval(), example).eval()
    assert validate(prepared, prepared.flatten_inputs(*example))


def test_quantsim_builds_and_computes_encodings_on_prepared_resnet18() -> None:
    from aimet_torch.quantsim import QuantizationSimModel

    from qready.interop.aimet import register_qready_modules

    register_qready_modules()
    model, x = torchvision.models.resnet18().eval(), torch.randn(1, 3, 64, 64)
    prepared = qready.prepare(model, (x,)).eval()
    sim = QuantizationSimModel(prepared, dummy_input=x)
    sim.compute_encodings(lambda m: m(x))
    add = sim.model.get_submodule("layer1.0.iadd")  # `out += identity`: in place, as the source says
    relu = sim.model.get_submodule("layer1.0.relu_1")  # Add + ReLU: one quantizer, after the ReLU
    assert len(add.input_quantizers) == 2 and relu.output_quantizers[0].is_initialized()
    with torch.no_grad():
        error = (sim.model(x) - model(x)).abs().max().item()
    assert 0 < error < 0.5  # quantization noise, not a broken graph


def test_qready_modules_join_aimets_supergroups_like_its_own() -> None:
    """AIMET fuses Add + ReLU (one quantizer after the ReLU); qready's Add must be seen as an Add to join."""
    from aimet_torch.quantsim import QuantizationSimModel

    from qready.interop.aimet import register_qready_modules

    register_qready_modules()
    model, x = torchvision.models.resnet18().eval(), torch.randn(1, 3, 32, 32)
    sim = QuantizationSimModel(qready.prepare(model, (x,)).eval(), dummy_input=x)
    add, relu = sim.model.get_submodule("layer1.0.iadd"), sim.model.get_submodule("layer1.0.relu_1")
    assert add.output_quantizers[0] is None and relu.output_quantizers[0] is not None


class _FunctionalNorm(torch.nn.Module):
    """Weights read by a functional call (as timm's RepVGG and GhostNet do): qready's FunctionalBatchNorm."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.bn = torch.nn.BatchNorm2d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bn = self.bn
        return torch.nn.functional.batch_norm(self.conv(x), bn.running_mean, bn.running_var, bn.weight, bn.bias)


def test_quantsim_builds_on_functional_modules_that_take_their_weights_as_inputs() -> None:
    from qready.example_inputs import Example
    from qready.targets import get_target

    x = torch.randn(1, 3, 8, 8)
    prepared = qready.prepare(_FunctionalNorm().eval(), (x,)).eval()
    assert any(type(m).__name__ == "FunctionalBatchNorm" for m in prepared.modules())
    sim = get_target("aimet").build_sim(prepared, Example((x,)))
    sim.compute_encodings(lambda m: m(x))
    [norm] = [m for m in sim.model.modules() if type(m).__name__ == "QuantizedFunctionalBatchNorm"]
    assert len(norm.input_quantizers) == 1  # the activation; running statistics and affine stay unquantized
    with torch.no_grad():
        assert (sim.model(x) - prepared(x)).abs().max() < 0.2


def test_quantsim_builds_on_a_prepared_model_that_slices_its_buffers_by_the_input_length() -> None:
    """DistilBERT's ``position_ids[:, :length]`` is read by the graph: the sim AIMET builds around it runs at
    another batch size and length than the example's, within quantization noise of the float model."""
    transformers = pytest.importorskip("transformers", reason="transformers is in the test extras")
    from qready.example_inputs import Example
    from qready.targets import get_target

    config = transformers.DistilBertConfig(
        vocab_size=300, dim=32, n_layers=1, n_heads=2, hidden_dim=64, max_position_embeddings=64
    )
    torch.manual_seed(0)
    model = transformers.DistilBertModel(config).eval()
    ids = torch.randint(3, 300, (2, 12))
    prepared = qready.prepare(model, {"input_ids": ids}, target="aimet").eval()
    assert prepared.prepare_result.leaves == [] and prepared.prepare_result.verified
    assert any(n.op == "get_attr" and n.target.endswith("position_ids") for n in prepared.graph.nodes)
    sim = get_target("aimet").build_sim(prepared, Example(prepared.flatten_inputs(input_ids=ids)))
    sim.compute_encodings(lambda m: m(*prepared.flatten_inputs(input_ids=ids)))
    other = torch.randint(3, 300, (3, 20))
    with torch.no_grad():
        quantized = prepared.unflatten_outputs(sim.model(*prepared.flatten_inputs(input_ids=other)))
        expected = model(input_ids=other).last_hidden_state
    assert quantized.last_hidden_state.shape == (3, 20, 32)
    assert 0 < (quantized.last_hidden_state - expected).abs().max().item() < 0.5
