"""Which torch calls change values, and which only move or describe data.

A quantizer sits on values that a computation produces. Calls that only
rearrange, select or describe a tensor (``view``, ``permute``, ``x[0]``,
``x.shape``) produce nothing new to quantize, so they are never findings and are
left alone by ``prepare``. Everything else that takes a tensor is value-changing.
"""

from __future__ import annotations

import builtins
import functools
import operator
from collections.abc import Callable
from typing import Any

import torch

from qready.structure import iter_leaves

__all__ = [
    "changes_values", "is_value_changing", "op_name", "has_tensor", "is_leaf_module", "CONTAINERS",
]

# Names of torch.*, torch.Tensor.* and torch.nn.functional.* callables that only
# move, select, cast or describe data; matched below by the callables they name.
_DATA_MOVEMENT_NAMES = """
    view view_as reshape reshape_as permute transpose transpose_ swapaxes swapdims t t_ adjoint
    flatten unflatten ravel squeeze squeeze_ unsqueeze unsqueeze_ contiguous expand expand_as
    repeat tile repeat_interleave broadcast_to broadcast_tensors movedim moveaxis narrow select
    index_select gather take take_along_dim masked_select nonzero split split_with_sizes chunk
    unbind tensor_split hsplit vsplit dsplit roll flip fliplr flipud rot90 diagonal
    unfold pixel_shuffle pixel_unshuffle channel_shuffle native_channel_shuffle
    getitem setitem getattr __getitem__ __setitem__ __len__ __iter__ __contains__ __bool__ __index__ __int__ __float__
    __format__ __repr__ __hash__ __reduce_ex__ __deepcopy__ __array__
    size dim ndimension numel nelement stride storage_offset is_contiguous is_floating_point
    is_complex is_nonzero element_size data_ptr get_device item tolist numpy untyped_storage
    to cpu cuda type type_as float double half bfloat16 int long short bool byte char
    clone detach detach_ requires_grad_ retain_grad contiguous pin_memory share_memory_
    new_zeros new_ones new_empty new_full new_tensor zeros_like ones_like empty_like full_like
    rand_like randn_like randint_like copy_ zero_ fill_ set_ resize_ as_strided
    identity is_same_size result_type can_cast promote_types
    topk sort argsort argmax argmin unique unique_consecutive
""".split()

# Functions that build new tensors from Python values: constants, not ops on activations.
_FACTORY_NAMES = (
    "tensor as_tensor from_numpy zeros ones empty full arange linspace logspace eye rand randn "
    "randint randperm normal scalar_tensor".split()
)

# Callables outside torch that select by value rather than compute new values, by qualified
# name (no import of torchvision here): the custom operator and the Python functions around it.
_DATA_MOVEMENT_ELSEWHERE = frozenset(
    {"torchvision::nms", "torchvision.ops.boxes.nms", "torchvision.ops.boxes.batched_nms"}
)

# torch.nn containers only call their children; they are never leaves.
CONTAINERS: tuple[type[torch.nn.Module], ...] = (
    torch.nn.Sequential,
    torch.nn.ModuleList,
    torch.nn.ModuleDict,
)


def _named_callables(names: list[str]) -> frozenset[Any]:
    """The callables these names denote in torch's namespaces, operator and builtins: matched by
    identity, so a user's own function called ``view`` or ``pad`` is never taken for torch's."""
    namespaces = (torch, torch.Tensor, torch._C.TensorBase, torch.nn.functional, operator, builtins)
    found = set()
    for name in names:
        for namespace in namespaces:
            value = getattr(namespace, name, None)
            if callable(value) and not isinstance(value, type):
                found.add(value)
    return frozenset(found)


def _attribute_accessors() -> frozenset[Any]:
    """Reading or writing a tensor attribute (``x.shape``, ``x.T``, ``x.grad = ...``): what a
    torch function mode sees is the descriptor's ``__get__`` or ``__set__``."""
    found = set()
    for cls in (torch._C.TensorBase, torch.Tensor):
        for value in vars(cls).values():
            for accessor in ("__get__", "__set__"):
                method = getattr(value, accessor, None) if not callable(value) or isinstance(value, property) else None
                if method is not None:
                    found.add(method)
    return frozenset(found)


_NOT_VALUE_CHANGING = _named_callables(_DATA_MOVEMENT_NAMES) | _named_callables(_FACTORY_NAMES) | _attribute_accessors()


def _base_name(func: Callable[..., Any]) -> str:
    return getattr(func, "__name__", "") or ""


def changes_values(func: Callable[..., Any]) -> bool:
    """False for ops that only move, select, cast or describe data, or build constants."""
    try:
        if func in _NOT_VALUE_CHANGING:
            return False
    except TypeError:  # an unhashable callable is nobody's data movement
        pass
    module = getattr(func, "__module__", None)
    if module == "torch.nn.init":
        return False
    return _qualified_name(func) not in _DATA_MOVEMENT_ELSEWHERE


def _qualified_name(func: Any) -> str:
    if isinstance(func, (torch._ops.OpOverloadPacket, torch._ops.OpOverload)):
        packet: Any = getattr(func, "overloadpacket", func)
        return str(packet._qualified_op_name)
    return f"{getattr(func, '__module__', None)}.{getattr(func, '__qualname__', None)}"


def is_value_changing(func: Callable[..., Any], args: tuple, kwargs: dict | None) -> bool:
    """True for a call that computes new values from at least one tensor."""
    return changes_values(func) and (has_tensor(args) or has_tensor(kwargs))


def has_tensor(value: Any) -> bool:
    """A tensor anywhere inside ``value``, through every container the structure walker knows."""
    return any(True for _ in iter_leaves(value))




def op_name(func: Callable[..., Any]) -> str:
    """A stable, qualified, human-readable name: ``torch.nn.functional.relu``,
    ``torch.Tensor.add``, ``torch.softmax``, ``operator.add``."""
    name = _base_name(func)
    module = getattr(func, "__module__", None)
    qualname = getattr(func, "__qualname__", name)
    if isinstance(func, (torch._ops.OpOverloadPacket, torch._ops.OpOverload)):
        return "torch.ops." + str(func).replace("::", ".")  # torch.ops.torchvision.nms
    if func in _OPERATOR_FUNCS:  # `x + y` in a graph: named as check names it, torch.Tensor.add
        return _operator_on_tensors(func) or f"operator.{name}"
    if "<locals>" in qualname or module == "torch.functional":  # F.max_pool2d, torch.einsum: their public name
        public = _public_names().get(id(func))
        if public is not None:
            return public
    if qualname.startswith(("TensorBase.", "Tensor.")):
        return f"torch.Tensor.{name}"
    if qualname.startswith("_VariableFunctionsClass.") or module in (None, "torch._C._VariableFunctions"):
        return f"torch.{name}"
    if module == "torch._C._nn":
        return f"torch.nn.functional.{name}"
    if module == "torch._C._linalg":
        return f"torch.linalg.{name.removeprefix('linalg_')}"
    if module == "torch._C._special":
        return f"torch.special.{name.removeprefix('special_')}"
    return f"{module}.{qualname}" if module else name


@functools.cache
def _operator_on_tensors(func: Callable[..., Any]) -> str | None:
    """The torch function an operator runs on tensors (``operator.truediv`` -> ``torch.Tensor.div``),
    as the instrumented forward of ``check`` sees it: asked of torch, not listed by hand."""
    seen: list[Callable[..., Any]] = []

    class Recorder(torch.overrides.TorchFunctionMode):
        def __torch_function__(self, f: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            seen.append(f)
            return f(*args, **(kwargs or {}))

    for sample in (torch.ones(2), torch.ones(2, dtype=torch.bool)):
        seen.clear()
        try:
            with Recorder():
                func(sample) if func in (operator.neg, operator.pos, operator.invert, operator.abs) else func(sample, sample)
        except Exception:  # noqa: BLE001 - an operator tensors do not support: keep its own name
            continue
        if seen:
            return op_name(seen[0])
    return None


@functools.cache
def _public_names() -> dict[int, str]:
    """Where torch exposes callables defined under other names (``boolean_dispatch.<locals>.fn``)."""
    import torch.nn.functional as F

    names: dict[int, str] = {}
    for prefix, namespace in (("torch.nn.functional", F), ("torch", torch)):
        for attr, value in vars(namespace).items():
            if callable(value) and not attr.startswith("_") and id(value) not in names:
                names[id(value)] = f"{prefix}.{attr}"
    return names


_OPERATOR_FUNCS = frozenset(
    getattr(operator, name) for name in dir(operator) if not name.startswith("_")
)


# torch.nn modules with children that quantizers still wrap as one unit (AIMET has quantized
# definitions of multi-head attention and of the recurrent layers, children and all).
_WHOLE_WITH_CHILDREN: tuple[type[torch.nn.Module], ...] = (
    torch.nn.MultiheadAttention,
    torch.nn.RNNBase,
    torch.nn.RNNCellBase,
)

_BUILT_IN_PACKAGES = ("torch.nn.", "torch.ao.")


def is_leaf_module(module: torch.nn.Module) -> bool:
    """Where a module-level quantizer wraps a module whole, as one unit.

    The torch.nn and torch.ao built-ins without children (``nn.Conv2d``,
    ``nn.LayerNorm``), multi-head attention and the recurrent layers, and
    qready's own ``qready.nn`` modules (also as ``qready fix`` copies them). Nothing else: a user's module, with
    children or without, has no quantized definition in any toolkit, so each op
    in its forward needs a module of its own; ``nn.TransformerEncoderLayer`` and
    the other torch.nn modules with children are walked into like a user's.
    Modules a user declares leaves (``leaves=``, ``--leaf``) are added by the
    caller (``qready.leaves``).
    """
    if isinstance(module, CONTAINERS) or isinstance(module, torch.fx.GraphModule):
        return False
    if isinstance(module, _WHOLE_WITH_CHILDREN):
        return True
    package = type(module).__module__
    if package.startswith("qready.nn.") or getattr(type(module), "qready_op_module", False):
        return True  # qready's op modules, also as `qready fix --ops-module` copies them into the user's code
    return package.startswith(_BUILT_IN_PACKAGES) and next(iter(module.children()), None) is None
