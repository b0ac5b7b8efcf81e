"""Capture sees what eager sees: calling conventions, fallbacks, tensor checks, general shapes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import qready
from qready.errors import InputError


def _equal(a, b) -> bool:
    a = a if isinstance(a, tuple) else (a,)
    b = b if isinstance(b, tuple) else (b,)
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))


# -- calling conventions -----------------------------------------------------------------------


class StarInputs(nn.Module):
    """AIMET's test models' convention: ``forward(self, *inputs)``."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 4)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.linear(inputs[0]) + inputs[1] * inputs[2])


class EveryKind(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 4)

    def forward(self, x, *rest, scale: float = 2.0, offset, **extra):
        out = self.linear(x) * scale + offset
        for r in rest:
            out = out + r
        if "bias" in extra:
            out = out - extra["bias"]
        return torch.relu(out)


def test_star_inputs_with_three_tensors_prepare_and_verify(tmp_path) -> None:
    model = StarInputs().eval()
    inputs = tuple(torch.randn(2, 4, generator=torch.Generator().manual_seed(i)) for i in range(3))
    prepared = qready.prepare(model, inputs)
    assert prepared.prepare_result.verified
    assert _equal(prepared(*prepared.flatten_inputs(*inputs)), model(*inputs))
    qready.save(prepared, tmp_path / "star")
    loaded = qready.load(tmp_path / "star")
    assert torch.equal(loaded(*loaded.flatten_inputs(*inputs)), model(*inputs))


def test_var_positional_keyword_only_defaults_and_var_keyword_bind_like_python() -> None:
    model = EveryKind().eval()
    x, y, z, o, b = (torch.randn(2, 4, generator=torch.Generator().manual_seed(i)) for i in range(5))
    prepared = qready.prepare(model, (x, y, z), example_kwargs={"offset": o, "bias": b})
    result = prepared.prepare_result
    assert result.verified and result.inputs_flattened
    assert result.input_names == ["x", "rest_0", "rest_1", "offset", "extra_bias"]
    # keywords in another order bind to the same parameters
    flat = prepared.flatten_inputs(x, y, z, bias=b, offset=o)
    assert _equal(prepared(*flat), model(x, y, z, offset=o, bias=b))
    with pytest.raises(InputError, match="offset"):
        prepared.flatten_inputs(x, y, z, bias=b)


class DictOnly(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 4)

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.linear(inputs["a"]) + inputs["b"]


@pytest.mark.parametrize("exporter", ["dynamo", "torchscript"])
def test_a_dict_as_the_only_positional_input_exports(exporter: str) -> None:
    pytest.importorskip("onnxruntime", reason="QR001 runs the export in onnxruntime")
    inputs = {"a": torch.randn(2, 4), "b": torch.randn(2, 4)}
    report = qready.check(DictOnly().eval(), (inputs,), select=["QR001"], onnx_exporter=exporter)
    assert report.findings == ()
