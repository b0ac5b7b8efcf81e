"""Capture sees what eager sees: calling conventions, fallbacks, tensor checks, general shapes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import qready
from models.hf import tiny_bert
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


class OptionalScale(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 4)

    def forward(self, x, *, scale=None, mask, flip: bool = False):
        out = self.linear(x) * mask
        if scale is not None:
            out = out * scale
        return -out if flip else out


def test_an_argument_the_example_left_out_or_set_otherwise_is_refused_not_ignored(tmp_path) -> None:
    model = OptionalScale().eval()
    x, mask = torch.randn(2, 4), torch.ones(2, 4)
    prepared = qready.prepare(model, (x,), example_kwargs={"mask": mask})
    assert torch.equal(prepared.call_original(x, mask=mask), model(x, mask=mask))
    assert torch.equal(prepared.call_original(x, mask=mask, scale=None, flip=False), model(x, mask=mask))  # the defaults
    qready.save(prepared, tmp_path / "saved")
    loaded = qready.load(tmp_path / "saved")
    for candidate in (prepared, loaded):
        with pytest.raises(InputError, match="scale.*not passed when the model was prepared"):
            candidate.call_original(x, mask=mask, scale=torch.tensor(2.0))  # the graph was traced without it
        with pytest.raises(InputError, match="flip"):
            candidate.flatten_inputs(x, mask=mask, flip=True)
    flipped = qready.prepare(model, (x,), example_kwargs={"mask": mask, "flip": True})
    assert torch.equal(flipped.call_original(x, mask=mask, flip=True), -model(x, mask=mask))
    with pytest.raises(InputError, match="'flip' is False here but was True"):
        flipped.call_original(x, mask=mask, flip=False)  # a flag built into the graph


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


# -- an untraceable root keeps its module tree ---------------------------------------------------


class Block(nn.Module):
    """What a diffusers down block looks like to its parent: a plain flag, a container whose length
    the parent reads, a property and a method."""

    def __init__(self, cross: bool) -> None:
        super().__init__()
        self.has_cross_attention = cross
        self.resnets = nn.ModuleList([nn.Linear(8, 8), nn.Linear(8, 8)])

    @property
    def width(self) -> int:
        return self.resnets[0].in_features

    def scale(self) -> float:
        return 0.5 if self.has_cross_attention else 1.0

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        states = []
        for resnet in self.resnets:
            x = torch.relu(resnet(x)) * self.scale()
            states.append(x)
        if context is not None:
            x = x + context
        return x, tuple(states)


class UntraceableUNetLike(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.down_blocks = nn.ModuleList([Block(False), Block(True)])
        self.out = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        steps = t.expand(x[x > 0].shape[0])  # a size that depends on the data: the root can't be a graph
        kept = []
        for block in self.down_blocks:
            assert block.width == 8 and isinstance(block.resnets, nn.ModuleList)
            if block.has_cross_attention:
                x, states = block(x, context=context)
            else:
                x, states = block(x)
            kept += states[-len(block.resnets):]
        return self.out(x + sum(kept)) * steps.float().mean()


def test_an_untraceable_root_keeps_containers_attributes_properties_and_methods_of_its_children() -> None:
    model = UntraceableUNetLike().eval()
    example = (torch.randn(2, 8), torch.tensor([3]), torch.randn(2, 8))
    prepared = qready.prepare(model, example)
    result = prepared.prepare_result
    assert result.verified and result.leaves[0].module == ""
    block = prepared.down_blocks[1]
    assert type(block) is Block and type(prepared.down_blocks) is nn.ModuleList and len(block.resnets) == 2
    assert block.has_cross_attention and block.width == 8 and block.scale() == 0.5
    # the blocks' own functionals became modules, and the graph runs them
    assert {"down_blocks.0.relu", "down_blocks.1.relu", "down_blocks.1.add"} <= {c.module for c in result.converted}
    assert sorted(prepared.state_dict()) == sorted(model.state_dict())
    other = (torch.randn(3, 8), torch.tensor([5]), torch.randn(3, 8))
    assert torch.equal(prepared(*other), model(*other))


def test_diffusers_unet_prepares_bit_identical() -> None:
    diffusers = pytest.importorskip("diffusers", reason="the real case of an untraceable root with rich children")
    torch.manual_seed(0)
    model = diffusers.UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(16, 32),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=16, norm_num_groups=8, attention_head_dim=8,
    ).eval()
    example = (torch.randn(1, 4, 8, 8), torch.tensor([10]), torch.randn(1, 3, 16))
    prepared = qready.prepare(model, example)
    assert prepared.prepare_result.verified
    assert prepared.prepare_result.leaves == []  # the root traces: torch.is_tensor(timestep) holds on the stand-in
    assert torch.equal(prepared.call_original(*example).sample, model(*example).sample)


# -- inside the traced forward, a tensor is a tensor ---------------------------------------------


class TypeChecks(nn.Module):
    """Each check takes the other branch (and a wrong result) if the tracer's stand-in answers
    differently from the tensor it stands for."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if not torch.is_tensor(t):
            t = torch.tensor([t]) * 100
        x = x * 2 if isinstance(x, torch.Tensor) else x - 100
        if not torch.jit.isinstance(x, torch.Tensor):
            x = x - 100
        if callable(x):
            x = x + 100
        return torch.relu(self.linear(x)) * t


class EinopsAttention(nn.Module):
    """monai SwinUNETR's pattern: einops around a projection reused for two inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        import einops

        q = einops.rearrange(self.proj(x), "b (h d) -> b h d", h=2)
        k = einops.rearrange(self.proj(y), "b (h d) -> b h d", h=2)
        return einops.reduce(q * k, "b h d -> b d", "sum")


class WithEinops(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attention = EinopsAttention()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attention(x, x.flip(0))


def test_isinstance_is_tensor_jit_isinstance_and_callable_answer_as_in_eager() -> None:
    model = TypeChecks().eval()
    example = (torch.randn(2, 8), torch.tensor([3.0]))
    prepared = qready.prepare(model, example)
    assert prepared.prepare_result.verified and prepared.prepare_result.leaves == []
    ops = [str(n.target) for n in prepared.graph.nodes]
    assert "mul" in ops and not any("sub" in op for op in ops)
    other = (torch.randn(2, 8), torch.tensor([-1.0]))
    assert torch.equal(prepared(*other), model(*other))


def test_a_module_calling_einops_is_traced_through_and_its_reuse_unrolled() -> None:
    pytest.importorskip("einops", reason="the einops calls are the case")
    model = WithEinops().eval()
    x = torch.randn(2, 8)
    assert {f.code for f in qready.check(model, (x,), select=["QR004"]).findings} == {"QR004"}
    prepared = qready.prepare(model, (x,))
    result = prepared.prepare_result
    assert result.verified and result.leaves == [] and [c.module for c in result.unrolled] == ["attention.proj_1"]
    assert qready.check(prepared, (x,), select=["QR003", "QR004"]).findings == ()
    assert torch.equal(prepared(x), model(x))


# -- shapes stay as general as the source ----------------------------------------------------------


class MeanOverLength(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x).sum(1) / x.shape[1]


class HeadsView(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.qkv = nn.Linear(16, 48)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = (t.view(B, T, 2, C // 2).transpose(1, 2) for t in self.qkv(x).split(C, dim=2))
        attention = torch.softmax(q @ k.transpose(-2, -1) / (C // 2) ** 0.5, dim=-1)
        return (attention @ v).transpose(1, 2).reshape(B, T, C)


class LoopOverLength(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = x[:, 0]
        for i in range(1, x.shape[1]):  # unrolled: the length is fixed to the example's
            total = total * 0.5 + x[:, i]
        return total


def test_a_size_read_from_the_input_stays_symbolic_and_is_right_at_other_sizes() -> None:
    model = MeanOverLength().eval()
    prepared = qready.prepare(model, (torch.randn(2, 12, 8),))
    longer = torch.randn(2, 20, 8)
    assert torch.equal(prepared(longer), model(longer))  # once divided by the constant 12: off by 0.37


class ScalesBySizes(nn.Module):
    """RAFT's correlation scale: a tensor made from a size read from the input (``torch.tensor(C)``)."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        y = self.proj(x) / torch.sqrt(torch.tensor(C, dtype=x.dtype))
        return y * torch.as_tensor(T, dtype=x.dtype) + torch.scalar_tensor(B)


def test_a_tensor_made_from_a_size_is_part_of_the_graph_and_right_at_other_sizes() -> None:
    """``torch.tensor`` of a traced size is recorded like the other factories: no module left whole over
    it (torch's constructor asks a proxy for array interfaces it cannot give), and the prepared model
    makes the tensor from the size it is given."""
    model = ScalesBySizes().eval()
    prepared = qready.prepare(model, (torch.randn(2, 5, 8),))
    result = prepared.prepare_result
    assert result.ok and result.leaves == [] and result.fixed_sizes == []
    targets = {getattr(n.target, "__name__", n.target) for n in prepared.graph.nodes if n.op == "call_function"}
    assert {"tensor", "as_tensor", "scalar_tensor"} <= targets
    for shape in [(1, 5, 8), (3, 9, 8)]:
        x = torch.randn(shape)
        assert torch.equal(prepared(x), model(x))


class GridFromSizes(nn.Module):
    """RAFT's ``coords_grid``: a grid built from the input's sizes, stacked from meshgrid's tuple."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, _, H, W = x.shape
        coords = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
        grid = torch.stack(coords[::-1], dim=0).float()
        return x + grid[None].repeat(B, 1, 1, 1)


def test_an_op_given_a_sequence_of_tensors_from_the_graph_becomes_a_module() -> None:
    """``torch.stack(coords[::-1])`` takes one node whose value is a tuple of tensors: it is converted like
    a stack of a list of nodes, so the re-check finds no call outside a module."""
    model = GridFromSizes().eval()
    prepared = qready.prepare(model, (torch.randn(2, 2, 5, 7),))
    result = prepared.prepare_result
    assert result.ok and result.leaves == []
    modules = {type(m).__name__ for m in prepared.modules()}
    assert {"Stack", "TorchFunction"} <= modules, modules
    assert not any(n.op == "call_function" and n.target is torch.stack for n in prepared.graph.nodes)
    report = qready.check(prepared, (torch.randn(2, 2, 5, 7),), select=["QR003"])
    assert report.findings == ()
    for shape in [(1, 2, 3, 4), (3, 2, 6, 9)]:
        x = torch.randn(shape)
        assert torch.equal(prepared(x), model(x))


def test_unpacked_shapes_give_views_that_run_at_any_batch_and_length() -> None:
    model = HeadsView().eval()
    prepared = qready.prepare(model, (torch.randn(2, 12, 16),))
    assert "batch+1" in {d.run for d in prepared.prepare_result.diffs}
    for shape in [(1, 12, 16), (3, 5, 16)]:
        x = torch.randn(shape)
        assert torch.equal(prepared(x), model(x))


def test_a_size_used_as_a_python_number_is_reported_with_its_line() -> None:
    model = LoopOverLength().eval()
    tokens = torch.randint(0, 9, (2, 6, 3))
    prepared = qready.prepare(model, (tokens,))
    result = prepared.prepare_result
    [(file, line)] = result.fixed_sizes
    assert file.endswith("test_capture.py") and "range(1, x.shape[1])" in open(file).read().splitlines()[line - 1]
    assert result.shape_bound and "length+1" in result.shape_bound[0] and not result.ok
    assert "runs only at the example's sizes" in result.summary()


def test_tiny_bert_and_vit_prepared_at_batch_1_run_at_batch_2_and_another_length() -> None:
    torchvision = pytest.importorskip("torchvision", reason="torchvision's ViT is the case")
    torch.manual_seed(0)
    bert, inputs = tiny_bert()
    bert.eval()
    prepared = qready.prepare(bert, inputs)
    assert {"batch+1", "length+1"} <= {d.run for d in prepared.prepare_result.diffs}
    for shape in [(2, 8), (1, 12)]:
        ids, mask = torch.randint(0, 64, shape), torch.ones(shape, dtype=torch.long)
        got = prepared.call_original(input_ids=ids, attention_mask=mask).last_hidden_state
        assert torch.equal(got, bert(input_ids=ids, attention_mask=mask).last_hidden_state)
    vit = torchvision.models.VisionTransformer(
        image_size=32, patch_size=16, num_layers=1, num_heads=2, hidden_dim=16, mlp_dim=32
    ).eval()
    prepared = qready.prepare(vit, (torch.randn(1, 3, 32, 32),))
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(prepared(x), vit(x))


# -- in-place updates seen through an alias ---------------------------------------------------------


class AliasThenAddInPlace(nn.Module):
    """The fuzz soak's failure (seed 20261130): ``v11 = self.identity(v6)`` then ``v6 += v4``."""

    def __init__(self) -> None:
        super().__init__()
        self.identity = nn.Identity()
        self.linear = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.linear(x)
        alias = self.identity(h)
        h += y
        h *= 2
        return alias - 1, h


def test_an_in_place_operator_stays_in_place_so_aliases_see_it() -> None:
    model = AliasThenAddInPlace().eval()
    x, y = torch.randn(2, 8), torch.randn(2, 8)
    prepared = qready.prepare(model, (x, y))
    assert {type(m).__name__: m.inplace for m in prepared.modules() if hasattr(m, "inplace")} == {"Add": True, "Mul": True, "Sub": False}
    assert _equal(prepared(x, y), model(x, y))


class _Boxed:
    """A custom object a model passes between its submodules (torchvision's ImageList is one)."""

    def __init__(self, tensor: torch.Tensor) -> None:
        self.tensor = tensor


class _TakesBoxed(torch.nn.Module):
    def forward(self, boxed: _Boxed) -> torch.Tensor:
        if boxed.tensor.sum() > 0:  # a branch on data: left whole, called with the object
            return torch.relu(boxed.tensor)
        return boxed.tensor


class _PassesBoxed(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.head = _TakesBoxed()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(_Boxed(x * 2))


def test_a_custom_object_passed_to_a_submodule_is_named_in_the_users_terms() -> None:
    prepared = qready.prepare(_PassesBoxed(), (torch.randn(2, 3),))
    reasons = [leaf.reason for leaf in prepared.prepare_result.leaves]
    assert reasons and all("NotImplementedError" not in r for r in reasons), reasons
    assert any("passes a _Boxed to a call the graph records" in r for r in reasons), reasons
