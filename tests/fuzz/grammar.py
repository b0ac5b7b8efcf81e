"""A grammar of small PyTorch models, drawn by hypothesis and written out as Python source.

Every tensor a generated forward computes has the shape ``(2, 4, 8)`` (batch,
channels or tokens, features), so any op or module of the grammar can follow
any other. A model is a root class and the classes it builds on:

- a *block* is a generated ``nn.Module`` with its own children and forward,
  taking and returning tensors, tuples, lists, dicts or keyword flags;
- a *gate* is a block whose forward branches on tensor data (``if h.sum() > 0``):
  ``prepare`` must leave it whole, as a leaf, and still be exact around it;
- a *plain* module has no submodules and computes with functionals
  (``x * 2 + 1``): not a leaf, its ops must become modules;
- a *helper* is a module-level function the source wraps with
  ``torch.fx.wrap``: ``prepare`` must trace into it.

Statements of a forward are drawn from :data:`STATEMENTS`: functionals and
operators from qready's conversion table in their positional and keyword
spellings, in-place ops, leaf modules (new or reused, also in loops), residual
branches, parameters and buffers read directly, weights tied through
``F.linear``, containers (``Sequential``, ``ModuleList``, ``ModuleDict``),
nested blocks, gates, plain modules, fx-wrapped helpers, einops calls, random
draws (verified under one seed), branches on shapes, config values and
``isinstance``/``torch.is_tensor``, and ``*args`` forwards. After construction
the root may share a leaf module or a weight across two parents.

Hypothesis shrinks towards the first entry of every list below, so each list
starts with its simplest choice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from hypothesis import strategies as st

__all__ = ["GeneratedModel", "INPUT_KINDS", "models"]

T = TypeVar("T")

# Root input conventions; the example is built by fuzz.loader.example_inputs.
INPUT_KINDS = ("tensor", "pair", "tuple", "list", "dict", "kwargs", "flag", "none", "varargs")

# Shape-preserving ops on one tensor ({0}), in the spellings users write.
UNARY = (
    "F.relu({0})",
    "torch.relu({0})",
    "{0}.relu()",
    "F.gelu({0})",
    "F.gelu({0}, approximate='tanh')",
    "torch.sigmoid({0})",
    "{0}.sigmoid()",
    "torch.tanh({0})",
    "F.silu({0})",
    "F.hardswish({0})",
    "F.leaky_relu({0}, 0.1)",
    "F.leaky_relu({0}, negative_slope=0.2)",
    "F.elu({0})",
    "torch.softmax({0}, 1)",
    "torch.softmax({0}, dim=-1)",
    "{0}.softmax(-1)",
    "{0}.softmax(dim=1)",
    "F.softmax({0}, dim=-1)",
    "F.log_softmax({0}, -1)",
    "torch.clamp({0}, -1.0, 1.0)",
    "{0}.clamp(min=0.0)",
    "{0}.clamp(max=0.5)",
    "torch.clamp({0}, min=-0.5, max=0.5)",
    "{0}.clip(-2, 2)",
    "-{0}",
    "{0}.abs()",
    "torch.abs({0})",
    "{0} * 2",
    "2 * {0}",
    "{0} / 2",
    "{0} - 1",
    "1 - {0}",
    "0.5 + {0}",
    "{0} ** 2",
    "{0}.pow(2)",
    "torch.exp(-{0}.abs())",
    "{0} - {0}.mean(-1, keepdim=True)",
    "{0} - torch.mean({0}, dim=1, keepdim=True)",
    "{0} * {0}.mean(dim=(1, 2), keepdim=True)",
    "{0}.sum(-1, keepdim=True) + {0}",
    "{0}.amax(-1, keepdim=True) - {0}",
    "F.layer_norm({0}, (8,))",
    "F.layer_norm({0}, [8], eps=1e-3)",
    "F.normalize({0}, dim=-1)",
    "{0}.masked_fill({0} > 0, 0.0)",
    "torch.masked_fill({0}, {0} < 0, 1.0)",
    "torch.where({0} > 0, {0}, {0} * 0.1)",
    "{0}.reshape(2, 32).tanh().view(2, 4, 8)",
    "{0}.reshape({0}.shape[0], -1).sigmoid().reshape({0}.shape)",
    "{0}.flatten(1).relu().unflatten(1, (4, 8))",
    "{0}.permute(0, 2, 1).contiguous().permute(0, 2, 1) + 1",
    "torch.cat([{0}, {0}], dim=-1)[..., ::2] * 3",
    "{0}.transpose(1, 2).softmax(-1).transpose(1, 2)",
    "F.pad({0}, (1, 1))[..., 1:-1] + 1",
    "F.pad({0}, [0, 2], value=1.0)[..., :8].sigmoid()",
    "F.interpolate({0}, scale_factor=2)[..., ::2] * 2",
    "F.avg_pool1d({0}, 3, 1, 1)",
    "F.max_pool1d({0}, kernel_size=3, stride=1, padding=1)",
    "{0}.var(-1, keepdim=True) + {0}",
    "{0} / ({0}.std(dim=-1, keepdim=True) + 1)",
    "torch.logsumexp({0}, -1, keepdim=True) - {0}",
    "torch.cumsum({0}, dim=-1)",
    "F.glu(torch.cat([{0}, {0}], -1), -1)",
    "torch.max({0}, -1, keepdim=True).values - {0}",
    "{0} - {0}.max(dim=1)[0].unsqueeze(1)",
    "{0} / {0}.norm(dim=-1, keepdim=True).clamp_min(1e-6)",
    "F.group_norm({0}, 2)",
    "F.rms_norm({0}, (8,))",
    "{0}.round(decimals=1)",
    "torch.sign({0}) * {0}",
    "F.dropout({0}, 0.1, training=False) + 1",
    "F.hardtanh({0}, -0.5, 0.5)",
    "F.softplus({0}, beta=2)",
    "rearrange(rearrange({0}, 'b c f -> b f c').relu(), 'b f c -> b c f')",
    "reduce({0}, 'b c f -> b c 1', 'mean') + {0}",
    "rearrange({0}, 'b c (g f) -> b (c g) f', g=2).softmax(-1).reshape(2, 4, 8)",
    "reduce({0}, 'b c f -> b 1 f', 'max') - {0}",
)

# Random draws: the prepared model must draw the same numbers in the same order (under one seed).
RANDOM = (
    "{0} + 0.1 * torch.randn_like({0})",
    "F.dropout({0}, 0.2, training=True)",
    "{0} * torch.rand({0}.shape[-1])",
    "{0} + torch.randn(2, 4, 8) * 0.01",
    "torch.bernoulli(torch.full_like({0}, 0.5)) * {0}",
)

# Shape-preserving ops on two tensors ({0}, {1}).
BINARY = (
    "{0} + {1}",
    "{0} - {1}",
    "{0} * {1}",
    "torch.add({0}, {1})",
    "torch.add({0}, {1}, alpha=2)",
    "{0}.add({1})",
    "{0}.mul({1})",
    "torch.mul({0}, {1})",
    "torch.maximum({0}, {1})",
    "torch.minimum({0}, {1})",
    "torch.cat([{0}, {1}], dim=-1)[..., ::2]",
    "torch.cat(({0}, {1}), 1)[:, 2:6]",
    "torch.stack([{0}, {1}]).sum(0)",
    "torch.stack(({0}, {1}), dim=-1).mean(-1)",
    "torch.where({0} > {1}, {0}, {1})",
    "{0}.masked_fill({1} > 0, 0.0)",
    "{0} / ({1}.abs() + 1)",
    "({0} @ {1}.transpose(-1, -2)).softmax(-1) @ {1}",
    "torch.matmul({0}.transpose(1, 2), {1}).mean(1, keepdim=True) + {0}",
    "F.scaled_dot_product_attention({0}, {1}, {1})",
    "torch.einsum('bij,bkj->bik', {0}, {1}).softmax(-1) @ {1}",
    "torch.bmm({0}, {1}.transpose(1, 2)) @ {0} / 8",
    "torch.min({0}, {1}) + torch.max({0}, other={1})",
    "{0}.where({1} > 0, {1})",
    "torch.baddbmm({0}, {0}, {1}.transpose(1, 2) @ {1}, beta=0.5, alpha=0.1)",
)

# In-place ops on a tensor the forward computed itself ({0}), never on an input.
INPLACE = (
    "{0}.add_({1})",
    "{0} += {1}",
    "{0}.mul_(0.5)",
    "{0} *= 2",
    "{0}.relu_()",
    "torch.relu_({0})",
    "F.relu({0}, inplace=True)",
    "{0}.clamp_(-1, 1)",
    "{0}.masked_fill_({0} > 1, 1.0)",
    "{0}.sub_({1}, alpha=0.5)",
    "{0}.sigmoid_()",
    "{0}[:, 0] = {1}[:, 1]",
)

# Leaf modules that map (2, 4, 8) to (2, 4, 8); with whether their output is a new tensor.
LEAF_MODULES = (
    ("nn.ReLU()", True),
    ("nn.Linear(8, 8)", True),
    ("nn.GELU()", True),
    ("nn.Tanh()", True),
    ("nn.Sigmoid()", True),
    ("nn.Softmax(dim=-1)", True),
    ("nn.Hardswish()", True),
    ("nn.SiLU()", True),
    ("nn.LeakyReLU(0.1)", True),
    ("nn.Linear(8, 8, bias=False)", True),
    ("nn.LayerNorm(8)", True),
    ("nn.Conv1d(4, 4, 3, padding=1)", True),
    ("nn.BatchNorm1d(4)", True),
    ("nn.GroupNorm(2, 4)", True),
    ("nn.AvgPool1d(3, stride=1, padding=1)", True),
    ("nn.MaxPool1d(3, 1, 1)", True),
    ("nn.Dropout(0.1)", False),  # eval mode: returns its input itself
    ("nn.Identity()", False),
)

# Leaf modules that return a tuple: how to call them and take the (2, 4, 8) tensor.
TUPLE_MODULES = (
    ("nn.MultiheadAttention(8, 2, batch_first=True)", "self.{m}({0}, {1}, {1})[0]"),
    ("nn.MultiheadAttention(8, 2, batch_first=True)", "self.{m}({0}, {0}, {0}, need_weights=False)[0]"),
    ("nn.LSTM(8, 8, batch_first=True)", "self.{m}({0})[0]"),
    ("nn.GRU(8, 8, batch_first=True)", "self.{m}({0})[0]"),
)

# Parameters and buffers a forward reads directly.
PARAMETER_OPS = (
    ("nn.Parameter(torch.randn(8, 8) / 8)", "{0} @ self.{p}"),
    ("nn.Parameter(torch.randn(8, 8) / 8)", "torch.matmul({0}, self.{p})"),
    ("nn.Parameter(torch.randn(8, 8) / 8)", "F.linear({0}, self.{p})"),
    ("nn.Parameter(1 + torch.randn(8) / 8)", "{0} * self.{p}"),
    ("nn.Parameter(torch.randn(8), requires_grad=False)", "{0} + self.{p}"),
    ("buffer", "{0} - self.{p}"),
    ("buffer", "self.{p} * {0}"),
    ("buffer:nonpersistent", "{0} + self.{p}"),
    ("nn.Parameter(torch.randn(4, 4, 3) / 4)", "F.conv1d({0}, self.{p}, padding=1)"),
    ("nn.Parameter(torch.randn(4) / 4)", "F.prelu({0}.transpose(0, 1).contiguous().transpose(0, 1), self.{p})"),
)

# Weights of an nn.Linear(8, 8) child read through F.linear: tied to the module.
TIED = (
    "F.linear({0}, self.{m}.weight)",
    "F.linear({0}, self.{m}.weight, self.{m}.bias)",
    "F.linear({0}, weight=self.{m}.weight)",
    "{0} @ self.{m}.weight.t()",
)

# Branches that torch.fx specializes: on shapes and on configuration values.
STATIC_CONDITIONS = (
    "{0}.shape[-1] == 8",
    "{0}.dim() == 3 and {0}.size(0) > 1",
    "{0}.ndim != 3",
    "len({0}) == 2",
    "self.{flag}",
    "isinstance({0}, torch.Tensor)",
    "torch.is_tensor({0})",
    "not isinstance({0}, (list, tuple))",
    "torch.jit.isinstance({0}, torch.Tensor) and callable(self.forward)",
)

# Branches on tensor data: the gate that holds one must stay a leaf.
DATA_CONDITIONS = (
    "h.sum() > 0",
    "h.mean().item() > 0",
    "bool((h > 0).any())",
    "float(h.max()) > 0.5",
    "int((h > 0).sum()) % 2 == 0",
)

# How a block takes its inputs: signature, first lines, the values they define, how it is called.
BLOCK_INPUTS = {
    "tensor": ("x", ["a = x"], ("a",), "self.{m}({0})"),
    "pair": ("x, y", ["a = x", "b = y"], ("a", "b"), "self.{m}({0}, {1})"),
    "tuple": ("xs", ["a, b = xs"], ("a", "b"), "self.{m}(({0}, {1}))"),
    "list": ("xs", ["a = xs[0]", "b = xs[1]"], ("a", "b"), "self.{m}([{0}, {1}])"),
    "dict": ("inputs", ["a = inputs['x']", "b = inputs['y']"], ("a", "b"), "self.{m}({{'x': {0}, 'y': {1}}})"),
    "flag": ("x, scale=1.0", ["a = x * scale"], ("a",), "self.{m}({0}, scale=0.5)"),
    "optional": ("x, other=None", ["a = x", "if other is not None:", "    a = a + other"], ("a",),
                 "self.{m}({0}, other={1})"),
    "varargs": ("*xs", ["a = xs[0]", "b = xs[1]"], ("a", "b"), "self.{m}({0}, {1})"),
    "tensor_or_tuple": ("x", ["a = x[0] if isinstance(x, (tuple, list)) else x"], ("a",), "self.{m}(({0},))"),
}

# How a block returns: the return statement over two values, and how a caller takes them apart.
BLOCK_OUTPUTS = {
    "tensor": ("return {0}", ["{r} = {call}"]),
    "tuple": ("return {0}, {1}", ["{r}, {s} = {call}"]),
    "tuple_index": ("return ({0}, {1})", ["{r} = {call}[0]"]),
    "list": ("return [{0}, {1}]", ["{r}, {s} = {call}"]),
    "dict": ("return {{'out': {0}, 'aux': {1}}}", ["{t} = {call}", "{r} = {t}['out']", "{s} = {t}['aux']"]),
}

ROOT_OUTPUTS = ("tensor", "tuple", "dict", "list", "nested", "with_none", "with_int", "namedtuple", "dataclass")

# What a forward may do next; the simplest first.
STATEMENTS = (
    "op", "binary", "module", "reuse", "loop", "residual", "inplace", "parameter", "tied",
    "tuple_module", "container", "block", "gate", "static_branch", "alias", "plain", "helper", "random",
)

MAX_DEPTH = 2


@dataclass(frozen=True)
class GeneratedModel:
    """Python source of a generated model, and how to call it."""

    source: str
    class_name: str
    input_kind: str
    uses_ids: bool
    seed: int
    exclude: int | None = None  # prepare(exclude=[the submodule at this index of named_modules()])
    tie_weights: bool = True

    def __str__(self) -> str:  # what hypothesis prints for a failing example
        options = f"exclude={self.exclude} tie_weights={self.tie_weights}"
        return f"# input_kind={self.input_kind} uses_ids={self.uses_ids} seed={self.seed} {options}\n{self.source}"


class _Draw:
    """The choices a model is made of, each one drawn by hypothesis."""

    def __init__(self, draw: Callable[[st.SearchStrategy[Any]], Any]) -> None:
        self._draw = draw

    def choice(self, options: Sequence[T]) -> T:
        return self._draw(st.sampled_from(options))

    def count(self, low: int, high: int) -> int:
        return self._draw(st.integers(low, high))

    def flag(self) -> bool:
        return self._draw(st.booleans())


@dataclass
class _Class:
    """One generated class: constructor lines and forward lines."""

    name: str
    signature: str
    init: list[str] = field(default_factory=list)
    body: list[str] = field(default_factory=list)

    def source(self) -> str:
        lines = [f"class {self.name}(nn.Module):", "    def __init__(self):", "        super().__init__()"]
        lines += [f"        {line}" for line in self.init]
        lines += [f"    def forward(self, {self.signature}):"]
        lines += [f"        {line}" for line in self.body]
        return "\n".join(lines) + "\n"


class _Writer:
    """Writes the classes of one model."""

    def __init__(self, draw: _Draw) -> None:
        self.draw = draw
        self.classes: list[_Class] = []
        # (path from the root, constructor) of leaf modules and nn.Linear(8, 8) children,
        # for sharing across parents once the root is built
        self.leaf_slots: list[tuple[str, str]] = []
        self.helpers: list[str] = []  # module-level functions wrapped with torch.fx.wrap

    def class_name(self, kind: str) -> str:
        return f"{kind}{len(self.classes)}"


class _Forward:
    """The forward of one class being written, and its constructor."""

    def __init__(self, writer: _Writer, cls: _Class, depth: int, path: str) -> None:
        self.writer = writer
        self.draw = writer.draw
        self.cls = cls
        self.depth = depth
        self.path = path  # where instances of this class sit in the root (first one), "" for the root
        self.values: list[str] = []
        self.fresh: set[str] = set()  # computed here, not aliased: in-place ops may write them
        self.callable: list[str] = []  # children mapping (2, 4, 8) to (2, 4, 8)
        self.linears: list[str] = []
        self.flags: list[str] = []
        self.names = 0

    # -- names ---------------------------------------------------------------------------
    def value(self, fresh: bool = True) -> str:
        name = f"v{self.names}"
        self.names += 1
        self.values.append(name)
        if fresh:
            self.fresh.add(name)
        return name

    def attribute(self, base: str) -> str:
        self.names += 1
        return f"{base}{self.names}"

    def emit(self, line: str) -> None:
        self.cls.body.append(line)

    def operand(self) -> str:
        return self.draw.choice(self.values)

    def child_path(self, attr: str) -> str:
        return f"{self.path}.{attr}" if self.path else attr

    # -- children ------------------------------------------------------------------------
    def leaf_child(self) -> tuple[str, bool]:
        ctor, fresh = self.draw.choice(LEAF_MODULES)
        attr = self.attribute(_short(ctor))
        self.cls.init.append(f"self.{attr} = {ctor}")
        self.callable.append(attr)
        if ctor.startswith("nn.Linear(8, 8)"):
            self.linears.append(attr)
        self.writer.leaf_slots.append((self.child_path(attr), ctor))
        return attr, fresh

    def some_child(self) -> str:
        """A child to call on one tensor: reused, a new leaf, or (not too deep) a new block."""
        if self.callable and self.draw.flag():
            return self.draw.choice(self.callable)
        if self.depth < MAX_DEPTH and self.draw.count(0, 3) == 0:
            return self.block(inputs="tensor", outputs="tensor")
        return self.leaf_child()[0]

    def block(self, inputs: str, outputs: str) -> str:
        attr = self.attribute("block")
        cls = write_block(self.writer, inputs, outputs, self.depth + 1, self.child_path(attr))
        self.cls.init.append(f"self.{attr} = {cls}()")
        if inputs == "tensor" and outputs == "tensor":
            self.callable.append(attr)
        return attr

    # -- statements ------------------------------------------------------------------------
    def statement(self) -> None:
        kind = self.draw.choice(STATEMENTS)
        getattr(self, f"_{kind}")()

    def _op(self) -> None:
        expr = self.draw.choice(UNARY).format(self.operand())
        self.emit(f"{self.value()} = {expr}")

    def _binary(self) -> None:
        expr = self.draw.choice(BINARY).format(self.operand(), self.operand())
        self.emit(f"{self.value()} = {expr}")

    def _module(self) -> None:
        attr, fresh = self.leaf_child()
        source = self.operand()
        self.emit(f"{self.value(fresh)} = self.{attr}({source})")

    def _reuse(self) -> None:
        attr = self.some_child()
        source = self.operand()
        # a reused Dropout/Identity hands back its input: treat every reused output as aliased
        self.emit(f"{self.value(fresh=False)} = self.{attr}({source})")

    def _loop(self) -> None:
        attr = self.some_child()
        source = self.operand()
        target = self.value(fresh=False)
        times = self.draw.count(2, 3)
        form = self.draw.choice(("chain", "residual", "indexed"))
        self.emit(f"{target} = {source}")
        self.emit(f"for i in range({times}):")
        if form == "chain":
            self.emit(f"    {target} = self.{attr}({target})")
        elif form == "residual":
            self.emit(f"    {target} = {target} + self.{attr}({target})")
        else:
            self.emit(f"    {target} = self.{attr}({target}) * (i + 1)")

    def _residual(self) -> None:
        attr = self.some_child()
        source = self.operand()
        self.emit(f"{self.value()} = {source} + self.{attr}({source})")

    def _inplace(self) -> None:
        targets = sorted(self.fresh)
        if not targets:
            self._op()
            return
        target = self.draw.choice(targets)
        self.emit(self.draw.choice(INPLACE).format(target, self.operand()))

    def _parameter(self) -> None:
        ctor, use = self.draw.choice(PARAMETER_OPS)
        attr = self.attribute("p")
        if ctor.startswith("buffer"):
            persistent = "" if ctor == "buffer" else ", persistent=False"
            self.cls.init.append(f"self.register_buffer({attr!r}, torch.randn(8){persistent})")
        else:
            self.cls.init.append(f"self.{attr} = {ctor}")
        expr = use.format(self.operand(), p=attr)
        self.emit(f"{self.value()} = {expr}")

    def _tied(self) -> None:
        if self.linears and self.draw.flag():
            attr = self.draw.choice(self.linears)
        else:
            attr = self.attribute("lin")
            self.cls.init.append(f"self.{attr} = nn.Linear(8, 8)")
            self.callable.append(attr)
            self.linears.append(attr)
            self.writer.leaf_slots.append((self.child_path(attr), "nn.Linear(8, 8)"))
            source = self.operand()
            self.emit(f"{self.value()} = self.{attr}({source})")
        forms = TIED if attr != "emb" else tuple(f for f in TIED if ".bias" not in f)  # nn.Embedding has no bias
        expr = self.draw.choice(forms).format(self.operand(), m=attr)
        self.emit(f"{self.value()} = {expr}")

    def _tuple_module(self) -> None:
        ctor, call = self.draw.choice(TUPLE_MODULES)
        attr = self.attribute(_short(ctor))
        self.cls.init.append(f"self.{attr} = {ctor}")
        expr = call.format(self.operand(), self.operand(), m=attr)
        self.emit(f"{self.value()} = {expr}")

    def _container(self) -> None:
        kind = self.draw.choice(("Sequential", "ModuleList", "ModuleDict", "nested"))
        attr = self.attribute(kind.lower())
        size = self.draw.count(1, 3)
        base = self.child_path(attr)
        paths = {
            "Sequential": [f"{base}.{i}" for i in range(size)],
            "ModuleList": [f"{base}.{i}" for i in range(size)],
            "ModuleDict": [f"{base}.k{i}" for i in range(size)],
            "nested": [f"{base}.0.{i}" for i in range(size)],
        }[kind]
        items = [self.container_item(path) for path in paths]
        share = size > 1 and self.draw.flag()  # one instance twice in the same container
        if share:
            self.cls.init.append(f"shared = {items[0]}")
            items = ["shared", *items[1:], "shared"]
        source = self.operand()
        target = self.value(fresh=False)
        if kind == "Sequential":
            self.cls.init.append(f"self.{attr} = nn.Sequential({', '.join(items)})")
            self.callable.append(attr)
            self.emit(f"{target} = self.{attr}({source})")
        elif kind == "nested":
            self.cls.init.append(
                f"self.{attr} = nn.Sequential(nn.Sequential({', '.join(items)}), nn.Sequential({items[0]}))"
            )
            self.callable.append(attr)
            self.emit(f"{target} = self.{attr}({source})")
        elif kind == "ModuleList":
            self.cls.init.append(f"self.{attr} = nn.ModuleList([{', '.join(items)}])")
            self.emit(f"{target} = {source}")
            if self.draw.flag():
                self.emit(f"for layer in self.{attr}:")
                self.emit(f"    {target} = layer({target})")
            else:
                self.emit(f"{target} = self.{attr}[{len(items) - 1}]({target})")
        else:
            keys = [f"k{i}" for i in range(len(items))]
            entries = ", ".join(f"{k!r}: {item}" for k, item in zip(keys, items))
            self.cls.init.append(f"self.{attr} = nn.ModuleDict({{{entries}}})")
            self.emit(f"{target} = {source}")
            if self.draw.flag():
                self.emit(f"for key, layer in self.{attr}.items():")
                self.emit(f"    {target} = layer({target})")
            else:
                self.emit(f"{target} = self.{attr}[{keys[-1]!r}]({target})")

    def container_item(self, path: str) -> str:
        """A module for a container: mostly a leaf, sometimes (not too deep) a block or a gate."""
        kind = self.draw.choice(("leaf", "leaf", "block", "gate"))
        if kind == "block" and self.depth < MAX_DEPTH:
            return f"{write_block(self.writer, 'tensor', 'tensor', self.depth + 1, path)}()"
        if kind == "gate":
            return f"{write_gate(self.writer)}()"
        ctor = self.draw.choice(LEAF_MODULES)[0]
        self.writer.leaf_slots.append((path, ctor))
        return ctor

    def _block(self) -> None:
        if self.depth >= MAX_DEPTH:
            self._module()
            return
        inputs = self.draw.choice(tuple(BLOCK_INPUTS))
        outputs = self.draw.choice(tuple(BLOCK_OUTPUTS))
        attr = self.block(inputs, outputs)
        call = BLOCK_INPUTS[inputs][3].format(self.operand(), self.operand(), m=attr)
        r, s = self.value(fresh=False), self.value(fresh=False)
        lines = BLOCK_OUTPUTS[outputs][1]
        if outputs in ("tensor", "tuple_index"):
            self.values.remove(s)
        temp = self.attribute("r")
        for line in lines:
            self.emit(line.format(r=r, s=s, t=temp, call=call))

    def _gate(self) -> None:
        attr = self.attribute("gate")
        cls = write_gate(self.writer)
        self.cls.init.append(f"self.{attr} = {cls}()")
        self.callable.append(attr)
        source = self.operand()
        self.emit(f"{self.value(fresh=False)} = self.{attr}({source})")

    def _static_branch(self) -> None:
        condition = self.draw.choice(STATIC_CONDITIONS)
        if "{flag}" in condition:
            flag = self.attribute("use")
            self.cls.init.append(f"self.{flag} = {self.draw.flag()}")
            condition = condition.format(flag=flag)
        else:
            condition = condition.format(self.operand())
        source = self.operand()
        target = self.value(fresh=False)
        self.emit(f"if {condition}:")
        self.emit(f"    {target} = {self.draw.choice(UNARY).format(source)}")
        self.emit("else:")
        self.emit(f"    {target} = self.{self.some_child()}({source})")

    def _plain(self) -> None:
        """A module of the user's own without submodules: its functionals are findings too."""
        attr = self.attribute("plain")
        cls = write_plain(self.writer)
        self.cls.init.append(f"self.{attr} = {cls}()")
        self.callable.append(attr)
        source = self.operand()
        self.emit(f"{self.value()} = self.{attr}({source})")

    def _helper(self) -> None:
        """A module-level function of the user's, wrapped with torch.fx.wrap."""
        name = f"helper{len(self.writer.helpers)}"
        body = self.draw.choice(BINARY).format("a", "b")
        self.writer.helpers.append(
            f"def {name}(a, b):\n    return {body}\n\n\ntorch.fx.wrap({name!r})\n"
        )
        first, second = self.operand(), self.operand()
        self.emit(f"{self.value()} = {name}({first}, {second})")

    def _random(self) -> None:
        expr = self.draw.choice(RANDOM).format(self.operand())
        self.emit(f"{self.value()} = {expr}")

    def _alias(self) -> None:
        """One child under two attribute names of the same parent."""
        if not self.callable:
            self._module()
            return
        original = self.draw.choice(self.callable)
        attr = self.attribute("alias")
        self.cls.init.append(f"self.{attr} = self.{original}")
        source = self.operand()
        self.emit(f"{self.value(fresh=False)} = self.{attr}({source})")


def _short(ctor: str) -> str:
    return ctor.removeprefix("nn.").split("(")[0].lower()


def write_block(writer: _Writer, inputs: str, outputs: str, depth: int, path: str) -> str:
    name = writer.class_name("Block")
    signature, head, values, _ = BLOCK_INPUTS[inputs]
    cls = _Class(name, signature)
    writer.classes.append(cls)
    forward = _Forward(writer, cls, depth, path)
    cls.body.extend(head)
    forward.values.extend(values)
    for _ in range(writer.draw.count(1, 4)):
        forward.statement()
    first = forward.values[-1]
    second = forward.draw.choice(forward.values)
    cls.body.append(BLOCK_OUTPUTS[outputs][0].format(first, second))
    return name


def write_plain(writer: _Writer) -> str:
    """A module without submodules whose forward computes with functionals (``x * 2 + 1``)."""
    name = writer.class_name("Plain")
    cls = _Class(name, "x")
    writer.classes.append(cls)
    draw = writer.draw
    if draw.flag():
        cls.init.append("self.scale = nn.Parameter(torch.ones(8))")
        cls.body.append("x = x * self.scale")
    for _ in range(draw.count(1, 2)):
        cls.body.append(f"x = {draw.choice(UNARY).format('x')}")
    cls.body.append("return x")
    return name


def write_gate(writer: _Writer) -> str:
    """A block that branches on tensor data, with functionals and a reused module inside."""
    name = writer.class_name("Gate")
    cls = _Class(name, "x")
    writer.classes.append(cls)
    draw = writer.draw
    cls.init += ["self.lin = nn.Linear(8, 8)", "self.act = nn.ReLU()"]
    cls.body.append("h = self.lin(x)")
    if draw.flag():
        cls.body += [
            f"if {draw.choice(DATA_CONDITIONS)}:",
            f"    return {draw.choice(UNARY).format('self.act(h)')} * 2",
            "return self.act(self.act(h) - 1)",
        ]
    else:
        cls.body += [
            "for _ in range(int(h.tanh().abs().mean().nan_to_num() * 3) + 1):",
            f"    h = self.act(h) + {draw.choice(UNARY).format('h')}",
            "return h",
        ]
    return name


@st.composite
def models(draw: Callable[[st.SearchStrategy[Any]], Any]) -> GeneratedModel:
    """A random model of the grammar, as Python source with a root class ``Model``."""
    choices = _Draw(draw)
    writer = _Writer(choices)
    input_kind = choices.choice(INPUT_KINDS)
    uses_ids = choices.flag()
    signature = {
        "tensor": "x", "pair": "x, y", "tuple": "xs", "list": "xs", "dict": "inputs", "kwargs": "x, y",
        "flag": "x, y, scale", "none": "x, y, mask", "varargs": "*inputs",
    }[input_kind]
    if uses_ids and input_kind != "varargs":
        signature += ", ids" if input_kind != "kwargs" else ", ids=None"
    root = _Class("Model", signature)
    forward = _Forward(writer, root, depth=0, path="")
    head = {
        "tensor": [], "pair": [], "kwargs": [], "tuple": ["x, y = xs"], "list": ["x = xs[0]", "y = xs[1]"],
        "dict": ["x = inputs['image']", "y = inputs['mask']"], "flag": ["x = x * scale"],
        "none": ["if mask is not None:", "    x = x * mask"],
        "varargs": ["x, y = inputs[0], inputs[1]"] + (["ids = inputs[2]"] if uses_ids else []),
    }[input_kind]
    root.body.extend(head)
    forward.values.append("x")
    if input_kind != "tensor":
        forward.values.append("y")
    if uses_ids:
        root.init.append("self.emb = nn.Embedding(8, 8)")
        root.body.append("e = self.emb(ids)")
        forward.values.append("e")
        forward.linears.append("emb")  # F.linear(h, self.emb.weight): a tied language-model head
    for _ in range(choices.count(1, 6)):
        forward.statement()
    root.init.extend(_sharing(choices, writer.leaf_slots))
    root.body.append(_root_return(choices, forward))
    classes = [*writer.classes, root]
    source = "\n\n".join([*writer.helpers, *(c.source() for c in classes)])
    header = (
        '"""A model generated by tests/fuzz: every value is a (2, 4, 8) tensor."""\n\n'
        "import collections\nimport dataclasses\n\n"
        "import torch\nimport torch.fx\nimport torch.nn.functional as F\nfrom einops import rearrange, reduce\nfrom torch import nn\n\n"
        'Pair = collections.namedtuple("Pair", ["first", "second"])\n\n\n'
        "@dataclasses.dataclass\nclass Result:\n    out: torch.Tensor\n    aux: torch.Tensor\n\n\n"
    )
    seed = choices.count(0, 2**16)
    exclude = draw(st.none() | st.integers(0, 40))
    untie = choices.flag()
    return GeneratedModel(header + source, "Model", input_kind, uses_ids, seed, exclude, tie_weights=not untie)


def _sharing(draw: _Draw, slots: list[tuple[str, str]]) -> list[str]:
    """Lines for the root's constructor: a leaf module or a Linear weight shared across two parents."""
    lines: list[str] = []
    nested = [(path, ctor) for path, ctor in slots if "." in path]
    if len(slots) < 2 or not nested or not draw.flag():
        return lines
    target, target_ctor = draw.choice(nested)
    linear = target_ctor.startswith("nn.Linear(8, 8")
    # a Linear slot may be read as `self.lin.weight`: only another Linear can take its place
    sources = [s for s in slots if s[0] != target and (not linear or s[1].startswith("nn.Linear(8, 8"))]
    if not sources:
        return lines
    source, _ = draw.choice(sources)
    owner, _, name = target.rpartition(".")
    if linear and draw.flag():
        lines.append(f"self.get_submodule({target!r}).weight = self.get_submodule({source!r}).weight")
    else:
        lines.append(f"setattr(self.get_submodule({owner!r}), {name!r}, self.get_submodule({source!r}))")
    return lines


def _root_return(draw: _Draw, forward: _Forward) -> str:
    last = forward.values[-1]
    other = draw.choice(forward.values)
    kind = draw.choice(ROOT_OUTPUTS)
    if kind == "tensor":
        return f"return {last}"
    if kind == "tuple":
        return f"return {last}, {other}"
    if kind == "dict":
        return f"return {{'out': {last}, 'aux': {other}}}"
    if kind == "list":
        return f"return [{last}, {other}]"
    if kind == "nested":
        return f"return {{'pair': ({last}, {other}), 'last': {last}}}"
    if kind == "with_none":
        return f"return {last}, None"
    if kind == "with_int":
        return f"return {{'out': {last}, 'count': 2}}"
    if kind == "namedtuple":
        return f"return Pair({last}, {other})"
    return f"return Result(out={last}, aux={other})"
