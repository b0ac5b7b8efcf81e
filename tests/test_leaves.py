"""The leaf policy: a leaf is what a module-wrapping quantizer wraps whole, in check and prepare alike."""

from __future__ import annotations

import io
import warnings

import pytest
import torch
from torch import nn

import qready
from qready.cli import main
from qready.errors import InputError
from qready.ops import is_leaf_module
from tests.models.leafy import Affine, CallsWrapped, Encoder, Recurrent, WithAffine


def _functional_ops(report: qready.Report) -> set[tuple[str, str]]:
    return {(f.module, f.op) for f in report.by_code("QR003")}


def _no_functionals(prepared: torch.nn.Module) -> None:
    calls = [n for n in prepared.graph.nodes if n.op in ("call_function", "call_method")]
    assert all(n.target in (getattr,) or str(n.target) == "getitem" or "getitem" in str(n.target) for n in calls), calls


def test_the_leaf_set() -> None:
    assert is_leaf_module(nn.Conv2d(1, 1, 1)) and is_leaf_module(nn.LSTM(2, 2)) and is_leaf_module(nn.GRUCell(2, 2))
    assert is_leaf_module(nn.MultiheadAttention(4, 2)) and is_leaf_module(qready.nn.Add())
    assert not is_leaf_module(nn.TransformerEncoderLayer(8, 2, 16))
    assert not is_leaf_module(nn.Sequential(nn.ReLU()))
    assert not is_leaf_module(Affine())  # no children, but no toolkit knows it


def test_a_users_module_without_submodules_is_checked_and_prepared() -> None:
    torch.manual_seed(0)
    model, x = WithAffine().eval(), torch.randn(2, 8)
    assert _functional_ops(qready.check(model, (x,), select=["QR003"])) == {
        ("affine", "torch.Tensor.mul"), ("affine", "torch.Tensor.add"),
    }
    prepared = qready.prepare(model, (x,))
    assert {type(m).__name__ for m in prepared.affine.children()} == {"Mul", "Add"}
    other = torch.randn(5, 8)
    assert torch.equal(prepared(other), model(other))
    assert qready.check(prepared, (other,), select=["QR003"]).findings == ()


def test_a_declared_leaf_is_wrapped_whole_in_check_and_prepare() -> None:
    torch.manual_seed(0)
    model, x = WithAffine().eval(), torch.randn(2, 8)
    for leaves in (["affine"], ["Affine"], [Affine]):
        assert qready.check(model, (x,), select=["QR003"], leaves=leaves).findings == ()
    prepared = qready.prepare(model, (x,), leaves=["affine"])
    assert "affine" in prepared.prepare_result.excluded and list(prepared.affine.children()) == []
    assert torch.equal(prepared(x), model(x))
    with pytest.raises(InputError, match="--leaf 'Nothing' is neither a submodule path nor a module class"):
        qready.check(model, (x,), leaves=["Nothing"])


def test_leaf_on_the_command_line(tmp_path) -> None:
    spec = "tests/models/leafy.py:WithAffine"
    args = ["check", spec, "--input", "2x8", "--select", "QR003"]
    out = io.StringIO()
    assert main(args, stdout=out, stderr=io.StringIO()) == 1 and "affine" in out.getvalue()
    assert main([*args, "--leaf", "affine"], stdout=io.StringIO(), stderr=io.StringIO()) == 0
    out_dir = tmp_path / "prepared"
    code = main(["prepare", spec, "--input", "2x8", "--leaf", "Affine", "-o", str(out_dir)], stdout=io.StringIO(), stderr=io.StringIO())
    assert code == 0 and (out_dir / "model.py").exists()


def test_multi_head_attention_and_lstm_are_wrapped_whole() -> None:
    torch.manual_seed(0)
    model, x = Recurrent().eval(), torch.randn(2, 5, 8)
    report = qready.check(model, (x,), select=["QR003"])
    assert report.findings == () and report.coverage is not None
    prepared = qready.prepare(model, (x,))
    assert {n.target for n in prepared.graph.nodes if n.op == "call_module"} == {"lstm", "attention"}
    assert torch.equal(prepared(x), model(x))


@pytest.mark.parametrize("norm_first", [False, True])
def test_transformer_encoder_layers_are_walked_into(norm_first) -> None:
    torch.manual_seed(0)
    model = Encoder(norm_first=norm_first).eval()
    x, padding = torch.randn(2, 5, 16), torch.zeros(2, 5, dtype=torch.bool)
    found = _functional_ops(qready.check(model, (x, padding), select=["QR003"]))
    assert ("encoder.layers.0", "torch.nn.functional.relu") in found and ("encoder.layers.1", "torch.Tensor.add") in found
    prepared = qready.prepare(model, (x, padding))
    called = {n.target for n in prepared.graph.nodes if n.op == "call_module"}
    assert {"encoder.layers.0.relu", "encoder.layers.0.self_attn", "encoder.layers.1.add"} <= called
    assert not any(n.target is torch.nn.functional.relu for n in prepared.graph.nodes)
    unfused = {c.module: dict(c.details)["max_abs_diff"] for c in prepared.prepare_result.changes if c.kind == "unfused"}
    assert set(unfused) == {"encoder.layers.0", "encoder.layers.1"}
    with torch.no_grad():  # eval without grad: eager runs the fused kernel, ~1e-7 away, as reported
        difference = (prepared(x, padding) - model(x, padding)).abs().max().item()
    assert difference <= 1e-5 and max(unfused.values()) <= 1e-5
    assert prepared.prepare_result.verified
    assert qready.check(prepared, (x, padding), select=["QR003"]).findings == ()


def test_a_nested_tensor_encoder_keeps_its_zeros_at_padded_positions() -> None:
    torch.manual_seed(0)
    model = Encoder(nested=True).eval()
    x = torch.randn(3, 5, 16)
    padding = torch.tensor([[False] * 5, [False] * 3 + [True] * 2, [False] * 4 + [True]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nested tensors are a prototype
        prepared = qready.prepare(model, (x, padding))
        with torch.no_grad():
            want, got = model(x, padding), prepared(x, padding)
            # a mask whose padding is not at the end: eager takes the plain path, and so does the graph
            scattered = torch.tensor([[True] + [False] * 4, [False] * 5, [False] * 5])
            assert (prepared(x, scattered) - model(x, scattered)).abs().max() <= 1e-5
    assert torch.equal(got[1, 3:], want[1, 3:])  # the norm of zeros, as the nested path leaves them
    assert (got - want).abs().max() <= 1e-5
    assert "encoder" in {c.module for c in prepared.prepare_result.changes if c.kind == "unfused"}


def test_a_function_the_user_wrapped_with_fx_wrap_is_traced_into() -> None:
    torch.manual_seed(0)
    model, x = CallsWrapped().eval(), torch.randn(2, 4)
    assert len(_functional_ops(qready.check(model, (x,), select=["QR003"]))) == 3
    prepared = qready.prepare(model, (x,))
    assert {type(m).__name__ for m in prepared.children()} >= {"ReLU", "Mul", "Add"}
    other = torch.randn(3, 4)
    assert torch.equal(prepared(other), model(other))
    assert qready.check(prepared, (other,), select=["QR003"]).findings == ()
