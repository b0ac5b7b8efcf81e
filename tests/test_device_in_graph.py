"""A device read from a traced tensor (``x.device``) and given to a call is read by the graph when it runs.

Prepared on the CPU and moved to another device, the model makes its positions, masks and zeros on
the device it runs on, as the source does, instead of on the example's device baked in as a constant.
The meta device stands for the other device here: a model that computes on the CPU next to tensors
on the meta device fails the same way as one that mixes the CPU and a GPU. A dtype read from a tensor
stays the example's (torch's dtypes are one object each, so ``x.dtype`` cannot be told from the source's
own ``torch.float32``): casting the prepared model says so.
"""

from __future__ import annotations

import subprocess
import warnings
import sys
from pathlib import Path

import pytest
import torch
from torch import Tensor, fx, nn

import qready


class Positional(nn.Module):
    """Positions, a rotary-style buffer moved to the input's device, zeros for padding, and a branch
    on the device's type (an autocast-style choice): what transformers' decoders do with devices."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("inv_freq", torch.rand(8), persistent=False)
        self.proj = nn.Linear(8, 8)

    def forward(self, x: Tensor) -> Tensor:
        positions = torch.arange(x.shape[1], device=x.device, dtype=x.dtype)
        freq = self.inv_freq.to(device=x.device)
        pad = torch.zeros(x.shape[0], 1, 8, device=x.device)
        scale = 2.0 if x.device.type == "cuda" else 1.0
        h = self.proj(x) + positions[None, :, None] * freq * scale
        return torch.cat([h, pad], dim=1)


class ExplicitCpu(nn.Module):
    """A device the source names itself stays that device."""

    def forward(self, x: Tensor) -> Tensor:
        count = torch.tensor([x.shape[1]], device=torch.device("cpu"))
        return x.sum(dim=1) / count.to(x.device)


def _device_arguments(graph: fx.Graph) -> list[object]:
    """What each call of the graph is given as a device (a keyword or a ``.to`` target)."""
    found: list[object] = []
    for node in graph.nodes:
        if node.op not in ("call_function", "call_method"):
            continue
        if "device" in node.kwargs:
            found.append(node.kwargs["device"])
        if node.op == "call_method" and node.target == "to":
            found.extend(a for a in node.args[1:] if isinstance(a, (fx.Node, torch.device, str)))
    return found


def test_a_device_read_from_the_input_is_read_by_the_graph() -> None:
    model = Positional().eval()
    prepared = qready.prepare(model, (torch.randn(2, 5, 8),))
    devices = _device_arguments(prepared.graph)
    assert len(devices) == 3  # arange, zeros, the buffer's move
    for device in devices:
        assert isinstance(device, fx.Node), f"a device baked into the graph: {device!r}"
        assert device.target is getattr and device.args[1] == "device"
    other = torch.randn(3, 9, 8)
    torch.testing.assert_close(prepared(other), model(other), rtol=0, atol=0)


def test_a_prepared_model_moved_to_another_device_computes_there() -> None:
    model = Positional().eval()
    prepared = qready.prepare(model, (torch.randn(2, 5, 8),)).to("meta")
    out = prepared(torch.randn(3, 9, 8, device="meta"))
    assert out.device.type == "meta" and out.shape == (3, 10, 8)
    # the user's model is untouched by the move of the prepared copy, and still runs on the CPU
    assert model.proj.weight.device.type == "cpu" and model(torch.randn(1, 4, 8)).shape == (1, 5, 8)


def test_a_device_the_source_names_stays_in_the_graph() -> None:
    model = ExplicitCpu().eval()
    prepared = qready.prepare(model, (torch.randn(2, 5, 8),))
    devices = _device_arguments(prepared.graph)
    assert torch.device("cpu") in devices  # the source's own torch.device("cpu")
    assert any(isinstance(d, fx.Node) for d in devices)  # the move to x.device
    x = torch.randn(4, 7, 8)
    torch.testing.assert_close(prepared(x), model(x), rtol=0, atol=0)
    assert prepared.to("meta")(x.to("meta")).device.type == "meta"


def test_a_saved_model_reads_its_device_after_a_load_in_a_new_process(tmp_path: Path) -> None:
    model = Positional().eval()
    x = torch.randn(2, 5, 8)
    prepared = qready.prepare(model, (x,))
    qready.save(prepared, tmp_path / "prepared")
    other = torch.randn(3, 9, 8)
    torch.save({"x": other, "y": model(other)}, tmp_path / "io.pt")
    script = (
        "import sys, torch, qready\n"
        "m = qready.load(sys.argv[1])\n"
        "io = torch.load(sys.argv[2])\n"
        "torch.testing.assert_close(m(io['x']), io['y'], rtol=0, atol=0)\n"
        "out = m.to('meta')(io['x'].to('meta'))\n"
        "assert out.device.type == 'meta' and out.shape == (3, 10, 8), out\n"
        "print('ok')\n"
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "prepared"), str(tmp_path / "io.pt")],
        cwd=elsewhere, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_a_prepared_llama_makes_positions_and_masks_where_it_runs() -> None:
    transformers = pytest.importorskip("transformers", reason="transformers is in the test extras")
    config = transformers.LlamaConfig(
        vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, use_cache=False,
    )
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config).eval()
    ids = torch.randint(0, 64, (2, 7))
    prepared = qready.prepare(model, (ids,))
    devices = _device_arguments(prepared.graph)
    assert devices and all(isinstance(d, fx.Node) for d in devices), devices
    other = torch.randint(0, 64, (3, 11))
    expected = model(other).logits
    torch.testing.assert_close(prepared.unflatten_outputs(prepared(other)).logits, expected, rtol=0, atol=0)
    moved = prepared.unflatten_outputs(prepared.to("meta")(other.to("meta"))).logits
    assert moved.device.type == "meta" and moved.shape == expected.shape


def test_a_dtype_read_from_the_input_is_the_examples_and_a_cast_of_the_model_says_so() -> None:
    """``dtype=x.dtype`` is a constant of the graph (a dtype cannot be told from the source's own
    ``torch.float32``): casting the prepared model warns, naming the first such line; a model whose
    graph names no dtype casts silently, and so does a move to another device."""
    prepared = qready.prepare(Positional().eval(), (torch.randn(2, 5, 8),))
    with pytest.warns(UserWarning, match=r"traced in float32, and its graph names float32 as a constant at 1 step") as caught:
        prepared.to(torch.float64)
    line = next(n for n, text in enumerate(Path(__file__).read_text().splitlines(), 1) if "dtype=x.dtype" in text)
    assert f"test_device_in_graph.py:{line})" in str(caught[0].message)
    assert caught[0].filename == __file__  # said at the user's own call
    plain = qready.prepare(nn.Sequential(nn.Linear(8, 8), nn.ReLU()).eval(), (torch.randn(2, 8),))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plain.to(torch.float64)
        assert plain(torch.randn(3, 8, dtype=torch.float64)).dtype == torch.float64
        plain.to("meta")
