"""Each meta shortcut gives what torch's own meta kernel gives: shape, strides, dtype, aliasing."""

from __future__ import annotations

import operator
import os
import random

import pytest
import torch
import torch.nn.functional as F

from qready.meta_shortcuts import kernel_output, module_output, op_output, row_major


def meta(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.empty(shape, dtype=dtype, device="meta")


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


@pytest.mark.parametrize("op", [operator.add, operator.mul, torch.sub, operator.truediv])
def test_arithmetic_on_like_tensors_is_the_kernel(op) -> None:  # type: ignore[no-untyped-def]
    a, b = meta(2, 3, 4), meta(2, 3, 4)
    same(op_output(op, (a, b), {}), op(a, b))


def test_arithmetic_has_rules_for_convnext_and_attention() -> None:
    """A per-channel scale times a permuted block output (convnext), a scaled score, a mask added."""
    scale, block = meta(96, 1, 1), meta(1, 56, 56, 96).permute(0, 3, 1, 2)
    scores, mask = meta(2, 4, 7, 7), meta(2, 1, 1, 7)
    for op, args in ((operator.mul, (scale, block)), (operator.mul, (scores, 0.125)), (operator.add, (scores, mask)),
                     (operator.sub, (1.0, mask)), (operator.truediv, (scores.transpose(-1, -2), 8))):
        same(op_output(op, args, {}), op(*args))


def _operand(rng: random.Random, shape: list[int], dtype: torch.dtype) -> torch.Tensor:
    """A tensor of ``shape`` in a random layout: row-major, permuted, strided by slicing, expanded,
    channels-last, or any strides at all (overlapping ones included)."""
    kind = rng.randrange(6)
    if kind == 0 or not shape:
        return meta(*shape, dtype=dtype)
    if kind == 1:
        order = list(range(len(shape)))
        rng.shuffle(order)
        return meta(*(shape[d] for d in order), dtype=dtype).permute(*(order.index(d) for d in range(len(shape))))
    if kind == 2:
        steps = [rng.choice([1, 2]) for _ in shape]
        whole = meta(*(size * step for size, step in zip(shape, steps)), dtype=dtype)
        return whole[tuple(slice(0, size * step, step) for size, step in zip(shape, steps))]
    if kind == 3:
        return meta(*(1 if rng.random() < 0.5 else size for size in shape), dtype=dtype).expand(shape)
    if kind == 4 and len(shape) == 4:
        return meta(*shape, dtype=dtype).to(memory_format=torch.channels_last)
    strides = [rng.choice([0, 1, 2, 3, 5, 7, 12]) for _ in shape]
    return torch.empty_strided(shape, strides, dtype=dtype, device="meta")


SEEDS = [0, 1, 2, *([int(os.environ["QREADY_SEED"])] if os.environ.get("QREADY_SEED") else [])]


@pytest.mark.parametrize("seed", SEEDS)
def test_arithmetic_is_the_kernel_on_random_layouts(seed: int) -> None:
    """Broadcast operands of up to six dimensions in every layout, numbers among them: wherever a rule
    answers, it answers what the kernel does; where the kernel refuses, no rule answers. (A fresh seed:
    ``QREADY_SEED=<n> pytest tests/test_meta_shortcuts.py -k random_layouts``.)"""
    rng = random.Random(seed)
    answered = 0
    for _ in range(3000):
        shape = [rng.choice([1, 1, 2, 3, 4, 5]) for _ in range(rng.randrange(7))]
        op = rng.choice([operator.add, operator.sub, operator.mul, operator.truediv, torch.add, torch.sub, torch.mul, torch.div])
        dtype = rng.choice([torch.float32] * 6 + [torch.float64, torch.float16, torch.bfloat16, torch.int64])
        args = [
            rng.choice([2, 0.5, -3, True]) if rng.random() < 0.15
            else _operand(
                rng, [1 if rng.random() < 0.3 else size for size in shape[rng.randrange(len(shape) + 1):]],
                dtype if rng.random() < 0.9 else torch.float16,
            )
            for _ in range(2)
        ]
        shortcut = op_output(op, tuple(args), {})
        try:
            kernel = op(*args)
        except (RuntimeError, TypeError):
            assert shortcut is None, (op, args)
            continue
        if shortcut is not None:
            answered += 1
            same(shortcut, kernel)
    assert answered > 1000, "the rule answers a third of these at least (the rest: half precision, integers, sizes torch refuses)"


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
    assert op_output(operator.add, (meta(2, 3), meta(3, dtype=torch.float16)), {}) is None, "two dtypes"
    assert op_output(operator.add, (meta(2, 3), meta(2, 3, dtype=torch.int64)), {}) is None, "integers promote"
    assert op_output(operator.add, (meta(2, 3, dtype=torch.float16),) * 2, {}) is None, "half: computed in float32"
    assert op_output(operator.mul, (meta(2, 3), True), {}) is None, "a bool is not a number here"
    assert op_output(operator.mul, (meta(2, 3), 2**64), {}) is None, "a number torch refuses"
    assert op_output(operator.truediv, (2.0, meta(2, 3)), {}) is None, "torch computes it as a reciprocal"
    assert op_output(torch.add, (meta(2, 3), meta(2, 3)), {"alpha": 2}) is None, "a keyword: torch answers"
    assert op_output(operator.add, (meta(2, 3), meta(4)), {}) is None, "sizes that do not broadcast"
    assert op_output(operator.add, (meta(0, 3), meta(3)), {}) is None, "an empty output"
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


IMAGES = [  # row-major, channels-last, both at once (sizes of 1), a batch of one, unbatched, other strides
    lambda: meta(2, 3, 9, 8),
    lambda: meta(2, 3, 9, 8).to(memory_format=torch.channels_last),
    lambda: meta(1, 6, 7, 7).to(memory_format=torch.channels_last),
    lambda: meta(2, 1, 9, 8).to(memory_format=torch.channels_last),
    lambda: meta(2, 3, 1, 1).to(memory_format=torch.channels_last),
    lambda: meta(3, 9, 8),
    lambda: meta(3, 9, 8).transpose(1, 2),
    lambda: meta(2, 3, 8, 9).transpose(2, 3),
    lambda: meta(2, 6, 9, 8)[:, ::2],
]


@pytest.mark.parametrize("image", range(len(IMAGES)))
@pytest.mark.parametrize("layer", [
    torch.nn.MaxPool2d(3, 2, 1), torch.nn.MaxPool2d(2), torch.nn.MaxPool2d(3, 2, ceil_mode=True),
    torch.nn.MaxPool2d((3, 2), (2, 1), (1, 0), dilation=(1, 2), ceil_mode=True), torch.nn.MaxPool2d(3, 3, 1, ceil_mode=True),
    torch.nn.MaxPool2d(3, 2, 2), torch.nn.MaxPool2d(12), torch.nn.MaxPool2d(2, return_indices=True),
    torch.nn.AdaptiveAvgPool2d(1), torch.nn.AdaptiveAvgPool2d((2, None)),
])
def test_pooling_is_the_kernel_in_image_layouts(image: int, layer: torch.nn.Module) -> None:
    """resnet's stem pooling, convnext's channels-last head; where torch refuses (a padding over half the
    kernel, a window larger than the image) or returns indices, no rule answers."""
    x = IMAGES[image]()
    shortcut = module_output(layer, (x,), {})
    try:
        with torch.no_grad():
            kernel = layer(x)
    except RuntimeError:
        assert shortcut is None
        return
    if shortcut is None:  # left to torch: indices asked for, or strides neither exactly row-major nor channels-last
        channels_last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
        assert getattr(layer, "return_indices", False) or (x.stride() != row_major(x.shape) and not channels_last)
        return
    same(shortcut, kernel)


def test_pooling_has_rules_for_resnet_and_convnext() -> None:
    stem, head = meta(1, 64, 112, 112), meta(1, 768, 7, 7).to(memory_format=torch.channels_last)
    same(module_output(torch.nn.MaxPool2d(3, 2, 1), (stem,), {}), F.max_pool2d(stem, 3, 2, 1))
    same(module_output(torch.nn.AdaptiveAvgPool2d(1), (head,), {}), F.adaptive_avg_pool2d(head, 1))
