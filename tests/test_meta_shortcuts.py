"""Each meta shortcut gives what torch's own meta kernel gives: shape, strides, dtype, aliasing."""

from __future__ import annotations

import operator

import pytest
import torch
import torch.nn.functional as F

from qready.meta_shortcuts import kernel_output, module_output, op_output


def meta(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.empty(*shape, dtype=dtype, device="meta")


# contiguous, permuted (channels-last), transposed, sliced, size-1 dimensions with odd strides, 1-d, empty
LAYOUTS = [
    lambda c: meta(2, 5, c),
    lambda c: meta(1, 7, 7, c),
    lambda c: meta(1, c, 7, 7).permute(0, 2, 3, 1),
    lambda c: meta(c, 5).t(),
    lambda c: meta(3, 4, c)[:, 1],
    lambda c: meta(c),
    lambda c: meta(1, 1, c),
    lambda c: meta(1, c, 1, 1).permute(0, 2, 3, 1),
    lambda c: torch.empty_strided((2, 3, c), (1, 2, 6), device="meta"),
    lambda c: meta(0, 3, c),
]


def same(shortcut: torch.Tensor | None, kernel: torch.Tensor) -> None:
    assert shortcut is not None
    assert (shortcut.shape, shortcut.stride(), shortcut.dtype, shortcut.device) == (
        kernel.shape, kernel.stride(), kernel.dtype, kernel.device
    )


@pytest.mark.parametrize("layout", range(len(LAYOUTS)))
@pytest.mark.parametrize("bias", [True, False])
def test_linear_is_the_kernel(layout: int, bias: bool) -> None:
    x = LAYOUTS[layout](6)
    layer = torch.nn.Linear(6, 4, bias=bias)
    with torch.no_grad():
        kernel = F.linear(x, layer.weight.to("meta"), None if layer.bias is None else layer.bias.to("meta"))
        same(module_output(layer, (x,), {}), kernel)
        same(op_output(F.linear, (x, layer.weight), {"bias": layer.bias}), kernel)


@pytest.mark.parametrize("layout", range(len(LAYOUTS)))
@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_is_the_kernel(layout: int, affine: bool) -> None:
    x = LAYOUTS[layout](6)
    norm = torch.nn.LayerNorm(6, elementwise_affine=affine)
    with torch.no_grad():
        kernel = F.layer_norm(x, (6,), *(None if p is None else p.to("meta") for p in (norm.weight, norm.bias)))
        same(module_output(norm, (x,), {}), kernel)
        same(op_output(F.layer_norm, (x, [6], norm.weight, norm.bias, 1e-6), {}), kernel)


@pytest.mark.parametrize("layout", range(len(LAYOUTS)))
@pytest.mark.parametrize("layer", [
    torch.nn.ReLU(), torch.nn.ReLU(inplace=True), torch.nn.GELU(), torch.nn.Identity(), torch.nn.SiLU(inplace=True),
    torch.nn.Hardswish(), torch.nn.Dropout(0.1).eval(), torch.nn.Dropout(0.1).train(), torch.nn.Dropout(0.0).train(),
])
def test_shape_preserving_layers_are_the_kernel(layout: int, layer: torch.nn.Module) -> None:
    x = LAYOUTS[layout](6)
    with torch.no_grad():
        kernel = layer(x)
        shortcut = module_output(layer, (x,), {})
    same(shortcut, kernel)
    assert (shortcut is x) == (kernel is x), "the input itself where the layer hands it back, a new tensor elsewhere"


@pytest.mark.parametrize("layout", range(len(LAYOUTS)))
def test_batch_norm_is_the_kernel_on_channels(layout: int) -> None:
    x = LAYOUTS[layout](6).movedim(-1, 1) if LAYOUTS[layout](6).dim() > 1 else LAYOUTS[layout](6)
    if x.dim() < 2:
        pytest.skip("batch norm takes a batch of channels: a 1-d input is not one")
    norm = torch.nn.BatchNorm1d(6) if x.dim() in (2, 3) else torch.nn.BatchNorm2d(6)
    norm.eval()
    with torch.no_grad():
        kernel = torch.func.functional_call(norm, {k: v.to("meta") for k, v in norm.state_dict().items()}, (x,))
        same(module_output(norm, (x,), {}), kernel)


@pytest.mark.parametrize("op", [operator.add, operator.mul, torch.sub])
def test_arithmetic_on_like_tensors_is_the_kernel(op) -> None:  # type: ignore[no-untyped-def]
    a, b = meta(2, 3, 4), meta(2, 3, 4)
    same(op_output(op, (a, b), {}), op(a, b))


def test_in_place_arithmetic_returns_its_operand() -> None:
    a, b = meta(2, 3), meta(2, 3)
    assert op_output(operator.iadd, (a, b), {}) is a


@pytest.mark.parametrize("layout", range(len(LAYOUTS)))
@pytest.mark.parametrize("op", [operator.iadd, operator.imul, operator.isub])
def test_in_place_arithmetic_in_any_layout_is_the_kernel(layout: int, op) -> None:  # type: ignore[no-untyped-def]
    a = LAYOUTS[layout](6)
    for b in (LAYOUTS[layout](6), meta(*a.shape)):  # the same layout, and row-major
        shortcut = op_output(op, (a, b), {})
        kernel = op(a, b)
        assert kernel is a and shortcut is a, "in place: the written-to tensor itself, strides and all"


def test_no_in_place_rule_where_torch_refuses_to_write() -> None:
    expanded = meta(1, 3).expand(4, 3)  # four rows that are one row in memory
    assert op_output(operator.iadd, (expanded, meta(4, 3)), {}) is None
    with pytest.raises(RuntimeError):
        operator.iadd(torch.zeros(1, 3).expand(4, 3), torch.ones(4, 3))
    assert op_output(operator.iadd, (meta(4, 3), meta(3)), {}) is None, "broadcasting: torch answers"
    assert op_output(operator.iadd, (meta(4, 3, dtype=torch.float16), meta(4, 3)), {}) is None, "two dtypes"


@pytest.mark.parametrize("layout", range(len(LAYOUTS)))
def test_convolution_runs_its_own_kernel_on_stand_ins(layout: int) -> None:
    x = LAYOUTS[layout](6)
    if x.dim() != 4:
        pytest.skip("Conv2d takes 4-d inputs only")
    conv = torch.nn.Conv2d(7, 5, 3, padding=1)
    x = x.movedim(-1, 1)[:, :7] if x.shape[-1] >= 7 else meta(1, 7, 5, 5)
    with torch.no_grad():
        kernel = torch.func.functional_call(conv, {k: v.to("meta") for k, v in conv.state_dict().items()}, (x,))
        same(kernel_output(conv, (x,), {}, lambda t: t.to("meta")), kernel)


@pytest.mark.parametrize("layout", range(len(LAYOUTS)))
@pytest.mark.parametrize("layer", [
    torch.nn.AdaptiveAvgPool2d(1), torch.nn.AdaptiveAvgPool2d((3, None)), torch.nn.AdaptiveAvgPool2d((2, 4)),
    torch.nn.AdaptiveAvgPool1d(1), torch.nn.AdaptiveAvgPool1d(3), torch.nn.AdaptiveAvgPool3d((1, None, 2)),
])
def test_adaptive_average_pooling_is_the_kernel(layout: int, layer: torch.nn.Module) -> None:
    x = LAYOUTS[layout](6)
    try:
        with torch.no_grad():
            kernel = layer(x)
    except (RuntimeError, ValueError, IndexError):  # a rank or an empty size torch refuses: no rule may answer it either
        assert module_output(layer, (x,), {}) is None
        return
    shortcut = module_output(layer, (x,), {})
    if shortcut is None:  # a layout left to torch (channels-last): only row-major inputs have a rule
        assert x.stride() != torch.empty(x.shape, device="meta").stride()
        return
    same(shortcut, kernel)


def test_adaptive_average_pooling_has_a_rule_for_the_usual_classifier_head() -> None:
    """resnet's and convnext's ``avgpool``: the shortcut answers, the kernel agrees."""
    x = meta(2, 2048, 7, 7)
    with torch.no_grad():
        same(module_output(torch.nn.AdaptiveAvgPool2d((1, 1)), (x,), {}), F.adaptive_avg_pool2d(x, (1, 1)))
        same(module_output(torch.nn.AdaptiveAvgPool1d(5), (meta(3, 8),), {}), F.adaptive_avg_pool1d(meta(3, 8), 5))


def test_no_rule_where_the_answer_could_differ() -> None:
    x = meta(2, 6)
    hooked = torch.nn.Linear(6, 4)
    hooked.register_forward_hook(lambda module, args, out: out.sum())
    assert module_output(hooked, (x,), {}) is None, "a hook may change the output"
    assert module_output(torch.nn.Linear(6, 4), (meta(2, 6, dtype=torch.float16),), {}) is None, "another dtype"
    assert module_output(torch.nn.Linear(6, 4), (meta(2, 5),), {}) is None, "a size the kernel refuses"
    assert module_output(torch.nn.LayerNorm(6), (meta(2, 5),), {}) is None, "a size the kernel refuses"
    with torch.enable_grad():
        assert module_output(torch.nn.Linear(6, 4), (x,), {}) is None, "grad mode: the output would require grad"
    assert op_output(operator.add, (meta(2, 3), meta(3)), {}) is None, "broadcasting"
    assert op_output(operator.add, (meta(3, 2).t(), meta(2, 3)), {}) is None, "strides the output may follow"
    assert op_output(F.gelu, (x,), {}) is None, "no rule: torch answers"


@pytest.mark.parametrize("config", [
    dict(kind=torch.nn.Conv2d, cin=4, cout=6, k=3, stride=1, padding=1, dilation=1, groups=1, size=(9, 7)),
    dict(kind=torch.nn.Conv2d, cin=4, cout=8, k=3, stride=2, padding=0, dilation=1, groups=2, size=(9, 8)),
    dict(kind=torch.nn.Conv2d, cin=6, cout=6, k=(3, 5), stride=(1, 2), padding=(2, 1), dilation=(2, 1), groups=6, size=(11, 10)),
    dict(kind=torch.nn.Conv2d, cin=4, cout=6, k=1, stride=1, padding=0, dilation=1, groups=1, size=(1, 1)),
    dict(kind=torch.nn.Conv1d, cin=3, cout=5, k=4, stride=3, padding=2, dilation=1, groups=1, size=(17,)),
    dict(kind=torch.nn.Conv3d, cin=2, cout=4, k=3, stride=2, padding=1, dilation=1, groups=1, size=(5, 6, 7)),
])
@pytest.mark.parametrize("bias", [True, False])
def test_convolution_is_the_kernel(config: dict, bias: bool) -> None:
    conv = config["kind"](
        config["cin"], config["cout"], config["k"], stride=config["stride"], padding=config["padding"],
        dilation=config["dilation"], groups=config["groups"], bias=bias,
    )
    x = meta(2, config["cin"], *config["size"])
    with torch.no_grad():
        kernel = torch.func.functional_call(conv, {k: v.to("meta") for k, v in conv.state_dict().items()}, (x,))
        same(module_output(conv, (x,), {}), kernel)
        functional = {torch.nn.Conv1d: F.conv1d, torch.nn.Conv2d: F.conv2d, torch.nn.Conv3d: F.conv3d}[config["kind"]]
        same(op_output(functional, (x, conv.weight, conv.bias, conv.stride, conv.padding, conv.dilation, conv.groups), {}), kernel)


def test_convolution_leaves_to_the_kernel_what_the_rule_does_not_cover() -> None:
    conv = torch.nn.Conv2d(4, 6, 3)
    with torch.no_grad():
        assert module_output(conv, (meta(1, 4, 8, 8).to(memory_format=torch.channels_last),), {}) is None, "layout"
        assert module_output(torch.nn.Conv2d(4, 6, 3, padding="same"), (meta(1, 4, 8, 8),), {}) is None, "same"
        assert module_output(torch.nn.Conv2d(4, 6, 3, padding_mode="reflect"), (meta(1, 4, 8, 8),), {}) is None
        assert module_output(conv, (meta(1, 5, 8, 8),), {}) is None, "channels the kernel refuses"
        assert module_output(conv, (meta(1, 4, 2, 2),), {}) is None, "an input smaller than the kernel"
        assert module_output(conv, (meta(4, 8, 8),), {}) is None, "unbatched"
