"""qready.prepare: the rewrite, its names, tying, leaves, and bit-exact verification."""

from __future__ import annotations

import pytest
import torch
from optional import torchvision
from torch import nn

import qready
from invariants import assert_unchanged, snapshot
from models import seed, tricky
from models.hf import tiny_bert
from qready.api import prepare
from qready.prepared import GraphForward

QR = ("QR003", "QR004")


def outputs_equal(a, b) -> bool:
    a = a if isinstance(a, tuple) else (a,)
    b = b if isinstance(b, tuple) else (b,)
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))


def call_modules(prepared: torch.fx.GraphModule) -> list[str]:
    return [str(n.target) for n in prepared.graph.nodes if n.op == "call_module"]


def test_functional_relu_becomes_a_relu_module() -> None:
    model, x = seed.FunctionalRelu().eval(), seed.image()
    prepared = prepare(model, (x,))
    assert call_modules(prepared) == ["conv", "relu"]
    assert type(prepared.relu) is nn.ReLU
    assert not any(n.op == "call_function" for n in prepared.graph.nodes)
    assert torch.equal(prepared(x), model(x))
    assert qready.check(prepared, (x,), select=QR).findings == ()


def test_reused_relu_becomes_two_modules_next_to_the_original() -> None:
    model = seed.ReusedRelu().eval()
    x, x2 = seed.image(), seed.image()
    prepared = prepare(model, (x, x2))
    assert call_modules(prepared) == ["conv1", "relu", "conv2", "relu_1"]
    assert prepared.relu is not prepared.relu_1
    [change] = prepared.prepare_result.unrolled
    assert (change.op, change.module) == ("relu", "relu_1")
    assert outputs_equal(prepared(x, x2), model(x, x2))
    assert qready.check(prepared, (x, x2), select=QR).findings == ()


def test_dict_io_becomes_named_tensors_and_the_dict_can_be_rebuilt() -> None:
    model = seed.DictIO().eval()
    (inputs,) = seed.dict_inputs()
    prepared = prepare(model, (inputs,))
    result = prepared.prepare_result
    assert result.input_names == ["image_rgb", "image_bw"] and result.output_names == ["rgb", "bw"]
    assert result.inputs_flattened and result.outputs_flattened
    placeholders = [n.target for n in prepared.graph.nodes if n.op == "placeholder"]
    assert placeholders == ["image_rgb", "image_bw"]
    flat = prepared(inputs["image_rgb"], inputs["image_bw"])
    assert isinstance(flat, tuple) and len(flat) == 2
    rebuilt = prepared.unflatten_outputs(flat)
    expected = model(inputs)
    assert rebuilt.keys() == expected.keys() and all(torch.equal(rebuilt[k], expected[k]) for k in expected)
    assert prepared.flatten_inputs(inputs) == (inputs["image_rgb"], inputs["image_bw"])
    assert qready.check(prepared, (inputs["image_rgb"], inputs["image_bw"]), select=("QR005",)).findings == ()


def test_positional_arguments_are_kept_and_matching_is_by_callable() -> None:
    model, x = tricky.PositionalArguments().eval(), torch.randn(2, 8)
    prepared = prepare(model, (x,))
    converted = {c.op: c for c in prepared.prepare_result.converted}
    assert {"torch.Tensor.softmax", "torch.softmax", "torch.Tensor.masked_fill", "torch.nn.functional.hardswish"} <= set(converted)
    assert type(prepared.get_submodule(converted["torch.Tensor.softmax"].module)) is nn.Softmax
    assert prepared.get_submodule(converted["torch.Tensor.softmax"].module).dim == -1
    assert prepared.get_submodule(converted["torch.softmax"].module).dim == 1
    assert type(prepared.get_submodule(converted["torch.nn.functional.hardswish"].module)) is nn.Hardswish
    # the user's own `pad` is not torch's: it is neither converted nor called (it was traced through)
    assert "torch.nn.functional.pad" not in converted
    assert outputs_equal(prepared(x), model(x))


def test_tied_embedding_and_looped_block_keep_one_set_of_weights() -> None:
    model = tricky.TiedEmbedding().eval()
    ids = torch.randint(0, 20, (2, 5))
    prepared = prepare(model, (ids,))
    assert call_modules(prepared)[:7] == ["emb", "block.0", "block.1", "block.0_1", "block.1_1", "block.0_2", "block.1_2"]
    assert prepared.get_submodule("block.0_1").weight is prepared.get_submodule("block.0").weight
    assert prepared.get_submodule("block.0_2").bias is prepared.get_submodule("block.0").bias
    linear = next(c for c in prepared.prepare_result.converted if c.op == "torch.nn.functional.linear")
    linear_node = next(n for n in prepared.graph.nodes if n.target == linear.module)
    weight_arg = linear_node.args[1]
    assert weight_arg.op == "get_attr" and weight_arg.target == "emb.weight"
    state = prepared.state_dict()
    assert sorted(state) == sorted(model.state_dict())  # the copies add no keys and no storage
    assert prepared.prepare_result.unrolled[0].details == (("call", 2), ("weights_tied", True))
    assert outputs_equal(prepared(ids), model(ids))
    # loading the original's state dict updates the copies too: they are the same tensors
    new_state = {k: torch.randn_like(v) if v.is_floating_point() else v for k, v in model.state_dict().items()}
    prepared.load_state_dict(new_state)
    assert torch.equal(prepared.get_submodule("block.0_2").weight, new_state["block.0.weight"])


def test_tie_weights_false_gives_copies_their_own_tensors() -> None:
    model = tricky.TiedEmbedding().eval()
    ids = torch.randint(0, 20, (2, 5))
    prepared = prepare(model, (ids,), tie_weights=False)
    assert prepared.get_submodule("block.0_1").weight is not prepared.get_submodule("block.0").weight
    assert torch.equal(prepared.get_submodule("block.0_1").weight, prepared.get_submodule("block.0").weight)
    assert outputs_equal(prepared(ids), model(ids))


def test_untraceable_submodule_is_left_as_a_leaf_with_the_line_that_stopped_tracing() -> None:
    model, x = tricky.GatedNet().eval(), torch.randn(2, 8)
    prepared = prepare(model, (x,))
    result = prepared.prepare_result
    [leaf] = result.leaves
    assert leaf.module == "gate"
    assert leaf.file.endswith("tests/models/tricky.py") and "data" in leaf.reason
    assert "gate" in call_modules(prepared)
    # everything around the leaf was converted
    assert {c.op for c in result.converted} >= {"torch.nn.functional.relu", "torch.Tensor.add", "torch.sigmoid"}
    # inside the leaf, each call site met runs through a module of its own, chosen at run time
    dispatched = {(c.op, c.module) for c in result.dispatched}
    assert {op for op, _ in dispatched} >= {"torch.Tensor.sum", "torch.Tensor.gt"}
    assert all(module.startswith("gate.") for _, module in dispatched)
    assert all(c.file.endswith("tests/models/tricky.py") for c in result.dispatched)
    assert result.residual == [] and result.unexpected == []
    assert outputs_equal(prepared(x), model(x))
    assert outputs_equal(prepared(-x), model(-x))  # the other branch: not dispatched, still exact


def test_exclude_keeps_a_submodule_whole() -> None:
    model = seed.ReusedRelu().eval()
    x, x2 = seed.image(), seed.image()
    prepared = prepare(model, (x, x2), exclude=["conv1"])
    assert prepared.prepare_result.excluded == ["conv1"]
    with pytest.raises(qready.InputError, match="'nope' is not a submodule of ReusedRelu"):
        prepare(model, (x, x2), exclude=["nope"])


def test_module_under_two_parents_is_unrolled_with_shared_weights() -> None:
    model, x = tricky.SharedChild().eval(), seed.image()
    prepared = prepare(model, (x,))
    [change] = prepared.prepare_result.unrolled
    assert change.module == "a.0_1"
    assert prepared.get_submodule("a.0_1").weight is prepared.get_submodule("a.0").weight
    assert torch.equal(prepared(x), model(x))


def test_prepare_leaves_the_original_model_unchanged() -> None:
    model = torchvision.models.resnet18()
    model.layer3.eval()
    model.layer2.register_forward_pre_hook(lambda m, i: None)
    before = snapshot(model)
    prepared = prepare(model, (torch.randn(1, 3, 32, 32),))
    assert_unchanged(model, before)
    assert {n: m.training for n, m in prepared.named_modules() if n in dict(model.named_modules())} == {
        n: m.training for n, m in model.named_modules() if n in dict(prepared.named_modules())
    }
    assert all(p is not q for p, q in zip(prepared.parameters(), model.parameters()))


def test_verification_failure_names_the_output_and_difference(monkeypatch) -> None:
    from qready.passes import functionals_to_modules

    original = functionals_to_modules.conversion_for

    class Wrong(nn.Module):
        def forward(self, x):
            return torch.relu(x) + 1e-3

    class WrongConversion:
        name, module = "relu", "Wrong"

        def build(self, args, kwargs):
            return Wrong(), (args[0],), {}

    monkeypatch.setattr(functionals_to_modules, "conversion_for", lambda f: WrongConversion() if f is torch.nn.functional.relu else original(f))
    with pytest.raises(qready.VerificationError, match=r"differs from the original on the example input: output 'output' max abs diff 0.001") as info:
        prepare(seed.FunctionalRelu().eval(), (seed.image(),))
    assert info.value.prepared is not None
    assert info.value.prepared.prepare_result.verified is False


@pytest.mark.slow
@pytest.mark.parametrize("name, size", [
    ("resnet18", 64), ("mobilenet_v3_large", 64), ("convnext_tiny", 32), ("efficientnet_b0", 64), ("vit_b_16", 224),
])
def test_torchvision_models_prepare_bit_identical_and_clean(name: str, size: int) -> None:
    model = torchvision.models.get_model(name, weights=None).eval()
    x = torch.randn(1, 3, size, size)
    prepared = prepare(model, (x,))
    result = prepared.prepare_result
    assert result.verified and result.ok, result.summary()
    assert result.leaves == [] and result.unconverted == []
    # nn.MultiheadAttention's own need_weights flag and (output, None): torch's class, as in the original
    assert all(f.code == "QR005" and f in result.inherited for f in result.residual)
    assert all(d.equal for d in result.diffs) and {d.run for d in result.diffs} == {"example", "fresh", "batch+1"}
    assert sorted(prepared.state_dict()) == sorted(model.state_dict())
    x2 = torch.randn(1, 3, size, size)
    assert torch.equal(prepared(x2), model(x2))


def test_tiny_bert_prepares_with_keyword_inputs_and_model_output() -> None:
    model, inputs = tiny_bert()
    model.eval()
    prepared = prepare(model, inputs)
    result = prepared.prepare_result
    assert result.ok and result.verified, result.summary()
    assert result.input_names == ["input_ids", "attention_mask"]
    assert result.output_names == ["last_hidden_state", "pooler_output"]
    out = prepared.unflatten_outputs(prepared(inputs["input_ids"], inputs["attention_mask"]))
    expected = model(**inputs)
    assert type(out) is type(expected)
    assert torch.equal(out.last_hidden_state, expected.last_hidden_state)
    assert torch.equal(out.pooler_output, expected.pooler_output)
    assert qready.check(prepared, (inputs["input_ids"], inputs["attention_mask"]), select=QR).findings == ()


def test_untraceable_root_keeps_its_forward_and_prepares_what_it_calls() -> None:
    model = tricky.UntraceableRoot().eval()
    x = torch.rand(3, 8) + 1  # min > 0 here; a fresh normal draw takes the other branch
    prepared = prepare(model, (x,))
    result = prepared.prepare_result
    assert isinstance(prepared, tricky.UntraceableRoot) and prepared is not model
    assert isinstance(prepared, qready.Prepared) and not prepared.saveable
    [root] = result.leaves
    assert root.module == "" and root.file.endswith("tests/models/tricky.py") and "branch on tensor data" in root.reason
    assert sorted(c.module for c in result.converted) == ["blocks.0.add", "blocks.0.relu", "blocks.1.add", "blocks.1.relu"]
    # the prepared blocks keep their class and run their graph, taking and returning what the root's forward expects
    assert type(prepared.blocks[0]) is tricky.DictBlock and isinstance(vars(prepared.blocks[0])["forward"], GraphForward)
    assert prepared.blocks[0](x)["out"].shape == (3, 8)
    # the root's own calls on the example's path run through modules of their own
    assert sorted(c.op for c in result.dispatched) == ["torch.Tensor.gt", "torch.Tensor.min", "torch.Tensor.mul", "torch.sigmoid"]
    # the blocks keep the dict output the root's own forward reads: the original's finding, listed
    assert [(f.code, f.module) for f in result.residual] == [("QR005", "blocks.0"), ("QR005", "blocks.1")]
    assert result.inherited == result.residual and result.ok
    assert sorted(prepared.state_dict()) == sorted(model.state_dict())
    for inputs in (x, torch.randn(3, 8)):
        assert torch.equal(prepared(inputs), model(inputs))


def test_dispatch_inside_a_leaf_survives_save_and_load(tmp_path) -> None:
    model, x = tricky.GatedNet().eval(), torch.randn(2, 8)
    prepared = prepare(model, (x,))
    qready.save(prepared, tmp_path / "gated")
    loaded = qready.load(tmp_path / "gated").eval()
    assert torch.equal(loaded(x), model(x)) and torch.equal(loaded(-x), model(-x))
    report = qready.check(loaded, (x,), select=QR)
    assert report.findings == () and report.coverage.ratio == 1.0


def test_copies_of_a_prepared_model_run_their_own_weights() -> None:
    import copy

    for model, x in ((tricky.GatedNet().eval(), torch.randn(2, 8)), (tricky.UntraceableRoot().eval(), torch.rand(3, 8) + 1)):
        prepared = prepare(model, (x,))
        twin = copy.deepcopy(prepared)
        assert torch.equal(twin(x), prepared(x))
        with torch.no_grad():
            for p in twin.parameters():
                p.mul_(2)
        assert not torch.equal(twin(x), prepared(x))  # the copy's dispatched and convention-keeping forwards follow it
        assert torch.equal(prepared(x), model(x))


def test_share_weights_builds_a_new_tree_around_the_same_tensors() -> None:
    model, x = seed.ReusedRelu().eval(), seed.image()
    before = snapshot(model)
    shared = prepare(model, (x, x), share_weights=True)
    assert shared.conv1.weight is model.conv1.weight and shared.conv1 is not model.conv1
    assert prepare(model, (x, x)).conv1.weight is not model.conv1.weight  # the default copies
    assert outputs_equal(shared(x, x), model(x, x))
    assert_unchanged(model, before)


def test_a_forward_writing_its_own_buffer_never_writes_the_originals() -> None:
    """Buffers are values while tracing, so the trace runs ``self.calls.add_(1)`` for real, even on meta
    stand-ins: prepare's copy holds its own buffers, with the weights shared or not."""

    class CountsItsCalls(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("calls", torch.zeros(()))
            self.linear = torch.nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.calls.add_(1)
            return torch.relu(self.linear(x))

    for share in (True, False):
        model = CountsItsCalls().eval()
        x = torch.randn(3, 4)
        prepared = prepare(model, (x,), verify=False, share_weights=share)
        assert model.calls.item() == 0, "prepare never runs the original's writes"
        assert (prepared.linear.weight is model.linear.weight) == share
        assert prepared.calls is not model.calls
        assert torch.equal(prepared(x), model(x))
