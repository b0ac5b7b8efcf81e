"""Bugs the fuzzer and the bad-input tests found, each as the smallest model that showed it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import qready
from fuzz import assert_same_outputs


def round_trip(prepared: qready.PreparedModule, directory: Path) -> qready.PreparedModule:
    qready.save(prepared, directory / "saved")
    return qready.load(directory / "saved")


class DataGate(nn.Module):
    """Branches on data: prepare leaves it whole."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.lin(x)
        if h.sum() > 0:
            return F.relu(h) * 2
        return h - 1


class GateTwice(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.gate = DataGate()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gate(self.gate(x))


def test_unrolled_copy_of_a_leaf_is_reported_as_a_leaf_too() -> None:
    # was: VerificationError, "QR003 finding(s) outside the submodules left as leaves" in 'gate_1'
    model, x = GateTwice().eval(), torch.randn(2, 8)
    prepared = qready.prepare(model, (x,))
    result = prepared.prepare_result
    assert [leaf.module for leaf in result.leaves] == ["gate", "gate_1"]
    assert result.leaves[1].reason == result.leaves[0].reason
    assert result.verified and not result.unexpected and not result.residual
    assert {c.scope for c in result.dispatched} == {"gate", "gate_1"}  # the copy's own call sites, too
    assert torch.equal(prepared(x), model(x))


class Functional(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x) + 1


class ExcludedTwice(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block = Functional()
        self.lin = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(self.lin(self.block(x)))


def test_unrolled_copy_of_an_excluded_module_stays_excluded() -> None:
    model, x = ExcludedTwice().eval(), torch.randn(2, 8)
    prepared = qready.prepare(model, (x,), exclude=["block"])
    result = prepared.prepare_result
    assert result.excluded == ["block", "block_1"] and result.leaves == []
    assert not result.dispatched  # kept whole, as the user asked, in both copies
    assert result.verified and not result.unexpected


class Recurrent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(8, 8, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.lstm(x)[0])


def test_lstm_saves_and_loads(tmp_path: Path) -> None:
    # was: SaveError "attribute '_flat_weights' is a Parameter"; the attribute now names the module's own tensors
    model, x = Recurrent().eval(), torch.randn(2, 4, 8)
    loaded = round_trip(qready.prepare(model, (x,)), tmp_path)
    lstm = loaded.get_submodule("lstm")
    assert all(w is getattr(lstm, name) for w, name in zip(lstm._flat_weights, lstm._flat_weights_names))
    assert [ref() for ref in lstm._flat_weight_refs] == lstm._flat_weights
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


class UnusedParameters(nn.Module):
    """Only layers[1] runs; layers[0] and the root buffer `unused` are never read."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(8, 8), nn.ReLU()])
        self.register_buffer("unused", torch.randn(8))
        self.register_buffer("scratch", torch.randn(8), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers[1](x - self.scratch)


def test_tensors_the_forward_never_reads_survive_save_and_load(tmp_path: Path) -> None:
    # was: qready.load raised AttributeError "Module has no attribute `0`", and dropped `unused`
    model, x = UnusedParameters().eval(), torch.randn(2, 8)
    prepared = qready.prepare(model, (x,))
    loaded = round_trip(prepared, tmp_path)
    assert sorted(loaded.state_dict()) == sorted(model.state_dict()) == ["layers.0.bias", "layers.0.weight", "unused"]
    assert torch.equal(loaded.get_buffer("unused"), model.unused)
    assert "scratch" not in loaded.state_dict()  # still non-persistent, also on the root
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


class WritesIntoSlice(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.lin(x)
        h[:, 0] = x[:, 1]
        return h


def test_slice_assignment_survives_save_and_load(tmp_path: Path) -> None:
    # was: LoadError "'Proxy' object does not support item assignment" reading model.py back
    model, x = WritesIntoSlice().eval(), torch.randn(2, 4, 8)
    loaded = round_trip(qready.prepare(model, (x,)), tmp_path)
    with torch.no_grad():
        assert_same_outputs(model(x), loaded(x))


def test_a_manifest_without_checksums_is_rejected(tmp_path: Path) -> None:
    # was: a manifest whose "sha256" entry was deleted loaded unchecked files
    model, x = WritesIntoSlice().eval(), torch.randn(2, 4, 8)
    qready.save(qready.prepare(model, (x,)), tmp_path / "saved")
    manifest_path = tmp_path / "saved" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    del manifest["sha256"]
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(qready.LoadError, match=r"manifest.json in '.*saved' has no checksum for model.py; the save is damaged"):
        qready.load(tmp_path / "saved")


def test_a_manifest_that_is_not_an_object_or_lacks_entries_is_a_load_error(tmp_path: Path) -> None:
    # was: AttributeError ('list' object has no attribute 'get') and KeyError escaping qready.load
    model, x = WritesIntoSlice().eval(), torch.randn(2, 4, 8)
    qready.save(qready.prepare(model, (x,)), tmp_path / "saved")
    manifest_path = tmp_path / "saved" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest_path.write_text("[]")
    with pytest.raises(qready.LoadError, match="is not a qready manifest"):
        qready.load(tmp_path / "saved")
    del manifest["modules"]
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(qready.LoadError, match=r"does not describe a loadable model \(entry 'modules' is missing or not a list\); the save is damaged"):
        qready.load(tmp_path / "saved")


class SlicesABuffer(nn.Module):
    """Like BERT's embeddings: a non-persistent buffer sliced by the input's length."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("positions", torch.arange(16).unsqueeze(0), persistent=False)
        self.register_buffer("unused", torch.ones(3), persistent=False)
        self.emb = nn.Embedding(16, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.emb(self.positions[:, : x.shape[1]])


def test_constants_the_trace_captures_stay_out_of_the_state_dict() -> None:
    # was: `_tensor_constant0` in the prepared state dict (load_state_dict of the original's failed),
    # and the non-persistent buffers `positions` and `unused` missing from the prepared model
    model, x = SlicesABuffer().eval(), torch.randn(2, 5, 8)
    prepared = qready.prepare(model, (x,))
    assert sorted(prepared.state_dict()) == sorted(model.state_dict()) == ["emb.weight"]
    prepared.load_state_dict(model.state_dict(), strict=True)
    assert torch.equal(prepared.get_buffer("positions"), model.positions)
    assert torch.equal(prepared.get_buffer("unused"), model.unused)
    assert torch.equal(prepared(x), model(x))


class BranchesOnData(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.lin(x)
        if h.sum() > 0:
            return h * 2
        return h


def test_exporter_logs_in_findings_carry_no_times_or_process_ids() -> None:
    # was: two checks of one model gave different JSON: "W1128 00:04:16.714000 23757 ..." log lines
    model, x = BranchesOnData().eval(), torch.randn(2, 8)
    first, second = (qready.check(model, (x,), select=["QR001"]) for _ in range(2))
    assert first.findings and [f.to_dict() for f in first.findings] == [f.to_dict() for f in second.findings]
    log = first.findings[0].detail("log") or ""
    assert not re.search(r"(?m)^[IWEF]\d{4} \d\d:\d\d:\d\d", log)


class Offset(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.randn(8), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.p


class SharedInsideExcluded(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        shared = Offset()
        self.seq = nn.Sequential(shared, shared)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.seq(x)


def test_tracing_on_stand_ins_puts_back_the_tensors_of_a_module_shared_inside_a_leaf() -> None:
    # was: TypeError "cannot assign 'torch.meta.FloatTensor' object to parameter 'p'": torch.func.functional_call
    # left the meta stand-in in the shared module's parameters
    model, x = SharedInsideExcluded().eval(), torch.randn(2, 8)
    prepared = qready.prepare(model, (x,), exclude=["seq"])
    assert isinstance(prepared.get_parameter("seq.0.p"), nn.Parameter) and not prepared.get_parameter("seq.0.p").is_meta
    assert prepared.prepare_result.verified and torch.equal(prepared(x), model(x))


def test_a_module_that_also_runs_inside_a_leaf_gets_its_own_instance_outside() -> None:
    # was: VerificationError "module 'hardswish6' runs 5 times ... (also registered as '....batchnorm1d4')":
    # the graph's call and the leaf's calls shared one instance
    class Gate(nn.Module):
        def __init__(self, act: nn.Module) -> None:
            super().__init__()
            self.lin = nn.Linear(8, 8)
            self.act = act

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.act(self.lin(x))
            return self.act(h) if h.sum() > 0 else h

    class Model(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.act = nn.ReLU()
            self.gate = Gate(self.act)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.act(self.gate(x)) + 1

    model, x = Model().eval(), torch.randn(2, 8)
    prepared = qready.prepare(model, (x,))
    result = prepared.prepare_result
    assert [leaf.module for leaf in result.leaves] == ["gate"]
    [change] = result.unrolled
    assert (change.op, change.module) == ("act", "act_1")
    calls = [str(n.target) for n in prepared.graph.nodes if n.op == "call_module"]
    assert "act_1" in calls and "act" not in calls  # the leaf keeps `act`, the graph calls its own copy
    assert result.verified and not result.unexpected
    assert torch.equal(prepared(x), model(x))


class GateInTwoContainers(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        gate = DataGate()
        self.inner = nn.Sequential(gate, nn.ReLU())
        self.outer = nn.Sequential(gate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.outer(self.inner(x))


@pytest.mark.parametrize("tie_weights", [True, False])
def test_a_copy_is_never_added_inside_a_module_the_graph_calls(tie_weights: bool) -> None:
    # was: VerificationError "differs from the original": the copy of `inner.0` went into the excluded
    # Sequential `inner`, which then ran it as one more layer
    model, x = GateInTwoContainers().eval(), torch.randn(2, 8)
    prepared = qready.prepare(model, (x,), exclude=["inner"], tie_weights=tie_weights)
    assert [name for name, _ in prepared.get_submodule("inner").named_children()] == ["0", "1"]
    [change] = prepared.prepare_result.unrolled
    assert (change.op, change.module) == ("inner.0", "inner_0")
    assert prepared.prepare_result.verified and torch.equal(prepared(x), model(x))


class NormUnderTwoNames(nn.Module):
    """A leaf whose BatchNorm is registered under two names."""

    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(4)
        self.again = self.norm
        self.register_buffer("mask", torch.ones(4), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.again(self.norm(x)) * self.mask[:, None] if x.sum() > 0 else self.norm(x)


class HoldsNormUnderTwoNames(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block = NormUnderTwoNames()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.block(x))


def test_a_module_under_two_names_loads_as_one_module(tmp_path: Path) -> None:
    # was: qready.load built two BatchNorms; the second, with no training flag saved for it,
    # ran in training mode: outputs differed (max abs diff 3.9)
    model, x = HoldsNormUnderTwoNames().eval(), torch.randn(2, 4, 8).abs()
    prepared = qready.prepare(model, (x,))
    loaded = round_trip(prepared, tmp_path)
    block = loaded.get_submodule("block")
    assert block.again is block.norm and not block.again.training
    assert "block.mask" not in loaded.state_dict()
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


class MaxValues(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(8, 8)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        e = self.emb(ids)
        return torch.max(e, -1, keepdim=True).values - e


def test_a_named_tuple_result_keeps_its_fields_while_tracing() -> None:
    # was: RecursionError: the tracer turned torch.return_types.max into a plain tuple, so `.values` failed
    model, ids = MaxValues().eval(), torch.randint(0, 8, (2, 4))
    prepared = qready.prepare(model, (ids,))
    assert prepared.prepare_result.verified and torch.equal(prepared(ids), model(ids))


class DrawsAndDiscards(nn.Module):
    """A draw whose result is unused still moves the generator; ``torch.rand(8)`` takes no tensor."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        unused = torch.randn_like(x)  # noqa: F841 - the point: nothing reads it
        return F.dropout(self.lin(x), 0.5, training=True) + torch.rand(8)


def test_random_draws_stay_in_the_graph_in_their_order(tmp_path: Path) -> None:
    # was: VerificationError "differs from the original ... max abs diff 2.9; please report this": dead-code
    # elimination dropped the unused randn_like, and fx ran torch.rand(8) once and kept it as a constant
    model, x = DrawsAndDiscards().eval(), torch.randn(2, 4, 8)
    prepared = qready.prepare(model, (x,))
    assert prepared.prepare_result.verified
    assert {torch.randn_like, torch.rand} <= {n.target for n in prepared.graph.nodes}
    loaded = round_trip(prepared, tmp_path)
    outputs = []
    for runner in (model, prepared, loaded):
        torch.manual_seed(3)
        outputs.append(runner(x))
    assert torch.equal(outputs[0], outputs[1]) and torch.equal(outputs[0], outputs[2])
    torch.manual_seed(3)
    assert not torch.equal(prepared(x), prepared(x))  # new numbers on every call, not one constant
