"""Buffers read in a traced forward are read by the graph when it runs, as parameters are.

A buffer sliced, expanded or indexed by a size of the input stays a slice of the buffer (the
prepared model runs at every length, not only the example's); what is computed from buffers alone
keeps its real value for Python's questions (a branch on a flag, an int of a count), as eager
answers them; a write into a buffer is a step of the graph, done on every call; and a forward that
keeps a value computed from its inputs as a buffer (state from one call to the next) stays whole.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

import qready
from qready.source import display_path


class Positions(nn.Module):
    """DistilBERT's and GPT-2's way: position ids and a causal mask sliced to the input's length."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("position_ids", torch.arange(32).unsqueeze(0), persistent=False)
        self.register_buffer("causal", torch.tril(torch.ones(32, 32, dtype=torch.bool)))
        self.positions = nn.Embedding(32, 8)
        self.proj = nn.Linear(8, 8)

    def forward(self, x: Tensor) -> Tensor:
        length = x.shape[1]
        h = x + self.positions(self.position_ids[:, :length])
        scores = self.proj(h) @ h.transpose(1, 2)
        return scores.masked_fill(~self.causal[:length, :length], float("-inf")).softmax(-1) @ h


class Flagged(nn.Module):
    """Branches and sizes read from the model's own buffers (ActNorm's flag, a stored count)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("initialized", torch.tensor(1, dtype=torch.uint8))
        self.register_buffer("keep", torch.tensor(5))
        self.proj = nn.Linear(8, 8)

    def forward(self, x: Tensor) -> Tensor:
        if not self.initialized:
            x = x * 0
        return self.proj(x)[:, : int(self.keep.item())] * (self.keep.dim() + 1)


class Counting(nn.Module):
    """Writes into its buffers on every call, without assigning them."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("calls", torch.zeros(()))
        self.register_buffer("last_mean", torch.zeros(8))
        self.proj = nn.Linear(8, 8)

    def forward(self, x: Tensor) -> Tensor:
        self.calls.add_(1)
        self.last_mean[:] = x.mean((0, 1))
        return self.proj(x) + self.last_mean * self.calls


class CountingOut(nn.Module):
    """Writes into its buffers through a function's ``out=``: a write, as ``add_`` is (the first from its
    buffers alone, which the trace computes on real values unless it knows it for a write)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("steps", torch.zeros(()))
        self.register_buffer("total", torch.zeros(8))
        self.proj = nn.Linear(8, 8)

    def forward(self, x: Tensor) -> Tensor:
        torch.add(self.steps, 1, out=self.steps)
        torch.add(self.total, x.mean((0, 1)), out=self.total)
        return self.proj(x) * self.steps + self.total


class Streaming(nn.Module):
    """Keeps the last two frames it saw as its buffer: state from one call to the next."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("cache", torch.zeros(1, 2, 8))
        self.proj = nn.Linear(8, 8)

    def forward(self, x: Tensor) -> Tensor:
        self.cache = torch.cat([self.cache, x], 1)[:, -2:]
        return self.proj(self.cache).sum(1)


class Around(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.act = nn.GELU()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.inner(x))


def _pair(inner: type[nn.Module]) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    model = Around(inner()).eval()
    return model, copy.deepcopy(model)


def test_a_buffer_sliced_to_the_input_length_is_sliced_when_the_graph_runs() -> None:
    model, _ = _pair(Positions)
    prepared = qready.prepare(model, (torch.randn(2, 7, 8),))
    result = prepared.prepare_result
    assert result.leaves == [] and result.fixed_sizes == [] and result.verified
    reads = {node.target for node in prepared.graph.nodes if node.op == "get_attr"}
    assert reads == {"inner.position_ids", "inner.causal"}
    assert set(prepared.state_dict()) == set(model.state_dict())  # position_ids non-persistent still
    with torch.no_grad():
        for shape in ((2, 7, 8), (1, 3, 8), (4, 32, 8)):
            x = torch.randn(*shape)
            assert torch.equal(prepared(x), model(x)), shape


def test_python_gets_the_real_values_of_what_is_computed_from_buffers_alone() -> None:
    model, _ = _pair(Flagged)
    prepared = qready.prepare(model, (torch.randn(2, 7, 8),))
    result = prepared.prepare_result
    assert result.leaves == [] and result.fixed_sizes == [] and result.verified
    with torch.no_grad():
        for shape in ((2, 7, 8), (3, 9, 8)):
            x = torch.randn(*shape)
            out = prepared(x)
            assert out.shape[1] == 5 and torch.equal(out, model(x))


def test_a_write_into_a_buffer_is_a_step_of_the_graph_and_the_trace_leaves_the_buffers_as_they_were() -> None:
    model, twin = _pair(Counting)
    prepared = qready.prepare(model, (torch.randn(2, 3, 8),), verify=False)
    assert prepared.prepare_result.leaves == []
    assert prepared.get_buffer("inner.calls").item() == 0 and not prepared.get_buffer("inner.last_mean").any()
    assert model.inner.calls.item() == 0  # the user's model, untouched
    with torch.no_grad():
        for _ in range(3):
            x = torch.randn(2, 3, 8)
            assert torch.equal(prepared(x), twin(x))
    assert prepared.get_buffer("inner.calls").item() == twin.inner.calls.item() == 3
    assert torch.equal(prepared.get_buffer("inner.last_mean"), twin.inner.last_mean)


@pytest.mark.parametrize("inner", [Counting, CountingOut])
def test_a_forward_that_reads_what_it_wrote_into_its_buffers_is_verified_from_the_same_state(
    inner: type[nn.Module],
) -> None:
    """The original's runs and the prepared model's each start from the buffers as they were: the output
    depends on them, and the verified copy carries them on call after call as eager does."""
    model, twin = _pair(inner)
    before = {name: tensor.clone() for name, tensor in model.named_buffers()}
    prepared = qready.prepare(model, (torch.randn(2, 3, 8),))
    result = prepared.prepare_result
    assert result.verified and result.leaves == [], result.summary()
    assert all(torch.equal(tensor, before[name]) for name, tensor in model.named_buffers())  # the user's, untouched
    assert all(torch.equal(tensor, before[name]) for name, tensor in prepared.named_buffers())  # the trace wrote none
    with torch.no_grad():
        for length in (3, 5, 2):
            x = torch.randn(2, length, 8)
            assert torch.equal(prepared(x), twin(x))
    assert all(torch.equal(prepared.get_buffer(name), tensor) for name, tensor in twin.named_buffers())


def test_a_forward_that_keeps_a_traced_value_as_its_buffer_stays_whole() -> None:
    model, twin = _pair(Streaming)
    before = model.inner.cache.clone()
    prepared = qready.prepare(model, (torch.randn(1, 3, 8),))
    [leaf] = prepared.prepare_result.leaves
    assert leaf.module == "inner" and "buffer 'inner.cache'" in leaf.reason and "from one call to the next" in leaf.reason
    assert (leaf.file, leaf.line) == _line_of("self.cache = torch.cat")  # the line that computes what it keeps
    assert isinstance(prepared.get_buffer("inner.cache"), Tensor)  # no stand-in of the trace left behind
    assert torch.equal(model.inner.cache, before)
    with torch.no_grad():  # its state carried from call to call, as eager carries it
        for length in (3, 1, 4):
            x = torch.randn(1, length, 8)
            assert torch.equal(prepared(x), twin(x))


def test_a_root_that_keeps_a_traced_value_as_its_buffer_keeps_its_forward() -> None:
    torch.manual_seed(0)
    model = Streaming().eval()
    twin = copy.deepcopy(model)
    prepared = qready.prepare(model, (torch.randn(1, 3, 8),))
    [leaf] = prepared.prepare_result.leaves
    assert leaf.module == "" and (leaf.file, leaf.line) == _line_of("self.cache = torch.cat")
    with torch.no_grad():
        for length in (3, 2):
            x = torch.randn(1, length, 8)
            assert torch.equal(prepared(x), twin(x))


@pytest.mark.parametrize("family", ["bert", "roberta", "albert", "distilbert"])
def test_transformers_embeddings_are_traced_through_and_run_at_every_length(family: str) -> None:
    transformers = pytest.importorskip("transformers")
    sizes = dict(vocab_size=500, num_hidden_layers=1, max_position_embeddings=64)
    configs = {
        "bert": lambda: transformers.BertConfig(hidden_size=32, num_attention_heads=2, intermediate_size=64, **sizes),
        "roberta": lambda: transformers.RobertaConfig(hidden_size=32, num_attention_heads=2, intermediate_size=64, **sizes),
        "albert": lambda: transformers.AlbertConfig(
            embedding_size=16, hidden_size=32, num_attention_heads=2, intermediate_size=64, **sizes
        ),
        "distilbert": lambda: transformers.DistilBertConfig(
            vocab_size=500, dim=32, n_layers=1, n_heads=2, hidden_dim=64, max_position_embeddings=64
        ),
    }
    torch.manual_seed(0)
    model = transformers.AutoModel.from_config(configs[family]()).eval()
    prepared = qready.prepare(model, {"input_ids": torch.randint(3, 500, (2, 12))})
    result = prepared.prepare_result
    assert result.leaves == [] and result.verified, result.summary()
    assert not [site for site in result.fixed_sizes if "embeddings" in str(site[0])]
    with torch.no_grad():
        for shape in ((2, 12), (3, 5), (1, 40)):
            ids = torch.randint(3, 500, shape)
            expected = model(input_ids=ids).last_hidden_state
            assert torch.equal(prepared.call_original(input_ids=ids).last_hidden_state, expected), shape


def test_checking_a_model_that_writes_into_its_buffers_leaves_them_as_they_were() -> None:
    model, _ = _pair(Counting)
    before = {name: tensor.clone() for name, tensor in model.named_buffers()}
    held = dict(model.inner._buffers)
    qready.check(model, (torch.randn(2, 3, 8),))
    assert all(model.inner._buffers[name] is tensor for name, tensor in held.items())
    assert all(torch.equal(tensor, before[name]) for name, tensor in model.named_buffers())


class Feeding(nn.Module):
    """Writes a traced value into its child's buffer: the child is no help whole, the caller is."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = Streaming()
        self.act = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        self.inner.cache = self.act(x[:, -2:])
        return self.inner.proj(self.inner.cache).sum(1)


def test_a_caller_that_keeps_a_traced_value_in_its_child_buffer_keeps_its_forward() -> None:
    torch.manual_seed(0)
    model = Around(Feeding()).eval()
    twin = copy.deepcopy(model)
    prepared = qready.prepare(model, (torch.randn(1, 3, 8),))
    assert [leaf.module for leaf in prepared.prepare_result.leaves] != []
    with torch.no_grad():
        for length in (3, 2):
            x = torch.randn(1, length, 8)
            assert torch.equal(prepared(x), twin(x))
    assert isinstance(model.inner.inner.cache, Tensor) and not model.inner.inner.cache.any()


def test_a_saved_model_reads_its_buffers_after_a_load_in_a_new_process(tmp_path: Path) -> None:
    """The saved forward slices ``position_ids`` by the input's length: the loader traces it the same way."""
    model, _ = _pair(Positions)
    qready.save(qready.prepare(model, (torch.randn(2, 7, 8),)), tmp_path / "saved")
    x = torch.randn(3, 11, 8)
    torch.save({"x": x, "expected": model(x)}, tmp_path / "io.pt")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    script = (
        "import torch, qready\n"
        f"io = torch.load({str(tmp_path / 'io.pt')!r})\n"
        f"loaded = qready.load({str(tmp_path / 'saved')!r})\n"
        "assert torch.equal(loaded(io['x']), io['expected'])\n"
        "print('equal')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=elsewhere, check=False)
    assert done.returncode == 0 and done.stdout.strip() == "equal", done.stderr[-2000:]


def _line_of(text: str) -> tuple[str, int]:
    """This file, as qready shows it, and the line of ``text`` in it."""
    lines = Path(__file__).read_text().splitlines()
    shown = display_path(__file__)
    return shown, next(number for number, line in enumerate(lines, 1) if text in line)
