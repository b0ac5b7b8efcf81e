"""``type(x)`` and ``len(x)`` in a traced forward answer as on the tensor eager passes."""

from __future__ import annotations

import torch
from torch import Tensor, nn

import qready


class TypeBranch(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.act = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        same = type(x) == torch.Tensor  # noqa: E721  # a spelling users write
        if type(x) is torch.Tensor and same and type(x).__name__ == "Tensor":
            y = self.act(self.fc(x))
        else:
            y = self.fc(x) * 100
        if type(self.fc.weight) is nn.Parameter and isinstance(int, type) and issubclass(type(self.fc), nn.Module):
            return y
        return -y


class LengthScale(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: Tensor) -> Tensor:
        n = len(x)
        return self.fc(x) / n


class Wrapped(nn.Module):
    """The same checks one level down, inside a submodule."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = TypeBranch()
        self.scale = LengthScale()

    def forward(self, x: Tensor) -> Tensor:
        return self.scale(self.inner(x))


def _prepared_runs_like_eager(model: nn.Module) -> qready.Prepared:
    model.eval()
    prepared = qready.prepare(model, (torch.randn(3, 4),))
    result = prepared.prepare_result
    assert result.leaves == [] and not result.shape_bound and not result.specialized, result.summary()
    with torch.no_grad():
        for batch in (3, 5, 1):
            x = torch.randn(batch, 4)
            assert torch.equal(prepared(x), model(x))
    return prepared


def test_type_of_a_traced_tensor_is_its_class() -> None:
    prepared = _prepared_runs_like_eager(TypeBranch())
    assert "act" in dict(prepared.named_modules())  # the branch eager takes


def test_len_of_a_traced_tensor_is_its_first_size_and_stays_symbolic() -> None:
    prepared = _prepared_runs_like_eager(LengthScale())
    assert any(n.op == "call_method" and n.target == "size" for n in prepared.graph.nodes)


def test_type_and_len_in_submodules() -> None:
    _prepared_runs_like_eager(Wrapped())


def test_stand_ins_are_put_back_after_tracing() -> None:
    import builtins
    import sys

    _prepared_runs_like_eager(Wrapped())
    namespace = vars(sys.modules[__name__])
    assert "type" not in namespace and "len" not in namespace
    from qready import tracing

    assert builtins.type is tracing._real_type and builtins.len is tracing._real_len
    assert builtins.isinstance is tracing._real_isinstance


class Factories(nn.Module):
    """Tensor factories sized from the input, as attention masks and position ids are built."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: Tensor) -> Tensor:
        B, T, C = x.shape
        mask = torch.ones(T, T).tril() == 0
        scores = self.fc(x) @ x.transpose(1, 2)
        positions = torch.arange(T).float() + torch.zeros(B, T) + torch.full((B, T), 0.5)
        return scores.masked_fill(mask, 0.0).sum(-1) + positions + torch.eye(T)[0]


def test_a_size_from_the_input_into_a_tensor_factory_is_not_a_leaf_with_torchs_message() -> None:
    """torch's argument parser refuses a traced size (``ones() takes 1 positional argument but 2 were
    given``): the tracer's limit, not the user's code, so never a leaf's reason; the size stays one."""
    model = Factories().eval()
    prepared = qready.prepare(model, (torch.randn(2, 5, 4),))
    result = prepared.prepare_result
    assert result.leaves == [] and not result.shape_bound, result.summary()
    with torch.no_grad():
        for shape in ((2, 5, 4), (3, 7, 4), (1, 1, 4)):
            x = torch.randn(*shape)
            assert torch.equal(prepared(x), model(x))


class BufferExpandedByInput(nn.Module):
    """BERT's embeddings without ``token_type_ids`` (sentence-transformers calls it so): a buffer
    sliced and expanded by sizes read from the input."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("token_type_ids", torch.zeros(1, 16, dtype=torch.long), persistent=False)
        self.types = nn.Embedding(2, 4)

    def forward(self, ids: Tensor) -> Tensor:
        return self.types(self.token_type_ids[:, : ids.shape[1]].expand(ids.shape[0], -1)) * 2


class AttributeExpandedByInput(BufferExpandedByInput):
    """The same tensor held as a plain attribute, no buffer: the trace holds it as a value."""

    def __init__(self) -> None:
        super().__init__()
        table = self.token_type_ids
        del self.token_type_ids
        self.token_type_ids = table


class EmbedsThenActs(nn.Module):
    def __init__(self, embeddings: nn.Module) -> None:
        super().__init__()
        self.embeddings = embeddings

    def forward(self, ids: Tensor) -> Tensor:
        return torch.relu(self.embeddings(ids))


def test_a_buffer_sliced_and_expanded_by_traced_sizes_stays_in_the_graph() -> None:
    model = EmbedsThenActs(BufferExpandedByInput()).eval()
    prepared = qready.prepare(model, (torch.randint(0, 32, (2, 8)),))
    assert prepared.prepare_result.leaves == [] and not prepared.prepare_result.fixed_sizes
    reads = [node.target for node in prepared.graph.nodes if node.op == "get_attr"]
    assert reads == ["embeddings.token_type_ids"]  # read from the model when it runs, not a slice of the example's
    assert "embeddings.token_type_ids" not in prepared.state_dict()  # non-persistent, as in the original
    with torch.no_grad():
        for shape in ((2, 8), (3, 5), (1, 16)):
            ids = torch.randint(0, 32, shape)
            assert torch.equal(prepared(ids), model(ids))


def test_a_tensor_attribute_expanded_by_a_traced_size_is_a_leaf_whose_reason_says_so() -> None:
    before = dict(vars(torch.Tensor))
    model = EmbedsThenActs(AttributeExpandedByInput()).eval()
    prepared = qready.prepare(model, (torch.randint(0, 32, (2, 8)),))
    [leaf] = prepared.prepare_result.leaves
    assert leaf.module == "embeddings" and "takes 1 positional argument" not in leaf.reason
    assert "a size read from the input goes into expand() of a tensor the trace holds as a value" in leaf.reason
    with torch.no_grad():  # left whole, it runs at any size
        for shape in ((2, 8), (3, 5), (1, 16)):
            ids = torch.randint(0, 32, shape)
            assert torch.equal(prepared(ids), model(ids))
    # torch is as it was: no attribute of torch.Tensor added or replaced, a 0-d tensor is no sequence
    assert dict(vars(torch.Tensor)) == before
    assert torch.equal(torch.tensor([torch.tensor(8.0), torch.tensor(2.0)]), torch.tensor([8.0, 2.0]))
