"""nn.MultiheadAttention decomposed into modules: same outputs up to float reordering, every op a module."""

from __future__ import annotations

import itertools

import pytest
import torch
from models.quant import TinyAttention
from torch import nn

import qready
from qready.passes.decompose_attention import (
    DecomposedMultiheadAttention,
    decompose_attention,
)

CONFIGS = list(itertools.product((True, False), (True, False), (None, "float", "bool"), (False, True)))


@pytest.mark.parametrize("batch_first, need_weights, attn_mask, padding", CONFIGS)
def test_decomposed_attention_matches_torch(batch_first, need_weights, attn_mask, padding) -> None:
    torch.manual_seed(0)
    attention = nn.MultiheadAttention(16, 4, batch_first=batch_first).eval()
    decomposed = DecomposedMultiheadAttention(attention).eval()
    batch, length = 2, 5
    x = torch.randn(batch, length, 16) if batch_first else torch.randn(length, batch, 16)
    kwargs: dict = {"need_weights": need_weights}
    if attn_mask == "float":
        kwargs["attn_mask"] = torch.randn(length, length)
    elif attn_mask == "bool":
        kwargs["attn_mask"] = torch.triu(torch.ones(length, length, dtype=torch.bool), 1)
    if padding:
        kwargs["key_padding_mask"] = torch.tensor([[False] * 4 + [True], [False] * 5])
    with torch.no_grad():
        expected, expected_weights = attention(x, x, x, **kwargs)
        got, weights = decomposed(x, x, x, **kwargs)
    assert got.shape == expected.shape and (got - expected).abs().max() < 1e-5
    if need_weights:
        assert weights.shape == expected_weights.shape and (weights - expected_weights).abs().max() < 1e-6
    else:
        assert weights is None and expected_weights is None


def test_unbatched_and_per_head_weights() -> None:
    torch.manual_seed(0)
    attention = nn.MultiheadAttention(8, 2).eval()
    decomposed = DecomposedMultiheadAttention(attention)
    x = torch.randn(3, 8)
    with torch.no_grad():
        for average in (True, False):
            expected = attention(x, x, x, average_attn_weights=average)
            got = decomposed(x, x, x, average_attn_weights=average)
            assert all(a.shape == b.shape and (a - b).abs().max() < 1e-6 for a, b in zip(expected, got))


def test_configurations_it_does_not_cover_are_left_alone() -> None:
    model = nn.Sequential()
    model.add_module("a", nn.MultiheadAttention(8, 2, add_bias_kv=True))
    model.add_module("b", nn.MultiheadAttention(8, 2))
    assert decompose_attention(model) == ["b"]
    assert type(model.a) is nn.MultiheadAttention and type(model.b) is DecomposedMultiheadAttention


def test_prepare_for_aimet_decomposes_and_states_the_measured_difference(tmp_path) -> None:
    pytest.importorskip("aimet_torch", reason="target='aimet' needs aimet-torch: pip install -e '.[interop]'")
    torch.manual_seed(0)
    model, x = TinyAttention().eval(), torch.randn(2, 5, 64)
    generic = qready.prepare(model, (x,))
    assert any(type(m) is nn.MultiheadAttention for m in generic.modules())
    assert torch.equal(generic(x), model(x))  # no target: bit-identical, attention kept whole

    pytest.importorskip("aimet_torch", reason="the aimet target needs aimet-torch: pip install -e '.[interop]'")
    prepared = qready.prepare(model, (x,), target="aimet")
    assert not any(isinstance(m, (nn.MultiheadAttention, DecomposedMultiheadAttention)) for m in prepared.modules())
    [change] = [c for c in prepared.prepare_result.changes if c.kind == "decomposed"]
    assert change.module == "attention" and change.op == "torch.nn.MultiheadAttention"
    stated = dict(change.details)["max_abs_diff"]
    with torch.no_grad():  # with grad enabled nn.MultiheadAttention skips its fused kernel
        actual = (prepared(x) - model(x)).abs().max().item()
    # the fused eval kernel and the decomposed path round differently: a difference, small and stated
    assert 0 < actual <= stated < 1e-5
    assert prepared.prepare_result.verified and prepared.prepare_result.ok
    assert model.attention.in_proj_weight.shape == (192, 64)  # the user's model is untouched

    report = qready.check(prepared, (x,), select=["QR003", "QR004", "QR005"])
    # only QR005's warning for the Python float scale of 'attention.scale', as for any prepared `x * 0.25`
    assert report.ok and {f.module for f in report.findings} <= {"attention.scale"}
    assert report.coverage.covered == report.coverage.total

    qready.save(prepared, tmp_path / "saved")
    loaded = qready.load(tmp_path / "saved")
    fresh = torch.randn(3, 7, 64)  # another batch size and length
    assert torch.equal(loaded(fresh), prepared(fresh))


class _Encoder(nn.Module):
    def __init__(self, nested: bool) -> None:
        super().__init__()
        layer = nn.TransformerEncoderLayer(16, 2, 32, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=nested)

    def forward(self, x: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        return self.encoder(x, src_key_padding_mask=padding)


@pytest.mark.parametrize("nested", [False, True])
def test_attention_in_transformer_encoders(nested) -> None:
    pytest.importorskip("aimet_torch", reason="target='aimet' needs aimet-torch: pip install -e '.[interop]'")
    torch.manual_seed(0)
    model = _Encoder(nested).eval()
    x, padding = torch.randn(2, 5, 16), torch.tensor([[False] * 4 + [True], [False] * 5])
    prepared = qready.prepare(model, (x, padding), target="aimet")
    decomposed = [c for c in prepared.prepare_result.changes if c.kind == "decomposed"]
    with torch.no_grad():
        difference = (prepared(x, padding) - model(x, padding)).abs().max().item()
    unfused = [c.module for c in prepared.prepare_result.changes if c.kind == "unfused"]
    # the encoder computes its nested-tensor result (zeros at padded positions) without nested tensors,
    # and the layers read the decomposed attention and take their unfused path
    assert unfused == (["encoder"] if nested else []) + ["encoder.layers.0", "encoder.layers.1"]
    assert [c.module for c in decomposed] == ["encoder.layers.0.self_attn", "encoder.layers.1.self_attn"]
    assert difference < 1e-5
    if nested:  # the padded position: zeros in both (eager takes the nested path without grad only)
        with torch.no_grad():
            assert torch.equal(prepared(x, padding)[0, 4], model(x, padding)[0, 4])


def test_a_checkpoint_of_the_original_loads_into_the_prepared_attention(tmp_path) -> None:
    """The decomposition splits in_proj_weight into three projections; a checkpoint of the original
    still loads (load_state_dict splits it), and state_dict() names the tensors the model has, as
    named_parameters() does (AIMET's export matches the two)."""
    pytest.importorskip("aimet_torch", reason="target='aimet' needs aimet-torch: pip install -e '.[interop]'")
    torch.manual_seed(0)
    model, x = TinyAttention().eval(), torch.randn(2, 5, 64)
    prepared = qready.prepare(model, (x,), target="aimet")
    own = [name for name, _ in prepared.named_parameters()]
    assert list(prepared.state_dict()) == own and "attention.q_proj.weight" in own
    assert torch.equal(prepared.state_dict()["attention.k_proj.weight"], model.attention.in_proj_weight[64:128])

    torch.manual_seed(1)
    trained = TinyAttention().eval()  # another checkpoint of the same architecture
    prepared.load_state_dict(trained.state_dict())  # strict: every key matches
    with torch.no_grad():
        assert (prepared(x) - trained(x)).abs().max() < 1e-5
    assert torch.equal(prepared.attention.k_proj.weight, trained.attention.in_proj_weight[64:128])
    prepared.load_state_dict(prepared.state_dict())  # and its own keys load too

    qready.save(prepared, tmp_path / "saved")
    loaded = qready.load(tmp_path / "saved")
    assert list(loaded.state_dict()) == own
    loaded.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert (loaded(x) - model(x)).abs().max() < 1e-5
