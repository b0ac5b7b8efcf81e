"""Shapes a torch.nn leaf or a torch op already gave, not asked for again.

Tracing on meta tensors runs each node once to learn its output's shape and
dtype, and the meta kernels of the common ops are slow Python (``layer_norm``,
``linear``, ``gelu``, even ``relu``: hundreds of microseconds each). A model
repeats the same layer and the same op on the same shapes many times (twelve
encoder blocks), so the answer is kept per call signature: for a leaf, the
module's type, its plain configuration, the shapes of its weights and of its
inputs; for an op of torch's, the op and its arguments. A repeated call gets
new meta tensors of the remembered shapes, strides and dtypes.

Only torch.nn's own modules without hooks whose every attribute is a plain
value, and torch's own functions and tensor methods; on plain arguments (meta
tensors, numbers, tuples of them), in the same grad and autocast mode; with
outputs that hold a new tensor and alias nothing. Whatever else could make two
calls differ, or does more than return its output, is never remembered.
"""

from __future__ import annotations

import operator
from collections import OrderedDict
from typing import Any, NamedTuple

import torch
from torch.nn.modules import module as _module

__all__ = ["MetaCalls", "has_hooks"]

_UNCACHEABLE = object()


class _Op(NamedTuple):
    """An op's part of a key: a ``call_function`` target or a ``call_method`` name."""

    kind: str
    target: Any


_PLAIN = (bool, int, float, str, type(None), torch.dtype, torch.device, torch.memory_format, torch.layout)
_STATE = ("_parameters", "_buffers", "_modules")


class MetaCalls:
    """Meta outputs of torch.nn leaf calls, keyed by everything that decides their shapes."""

    def __init__(self) -> None:
        self._outputs: dict[Any, Any] = {}
        # each module's part of the key, with the attribute values it was made from: a layer is
        # called many times in one trace, and its attributes are the same objects every time
        self._modules: dict[int, tuple[torch.nn.Module, tuple[Any, ...], Any]] = {}
        self._views: set[Any] = set()  # ops that gave nothing to remember once (views, sizes): not keyed again

    def key(self, module: torch.nn.Module, args: tuple, kwargs: dict) -> Any:
        """The call's signature, or None when something in it is not plain enough to trust."""
        if has_hooks(module):
            return None
        module_key = self._module_key(module)
        if module_key is _UNCACHEABLE:
            return None
        inputs = _value_key((args, tuple(sorted(kwargs.items()))))
        if inputs is _UNCACHEABLE:
            return None
        return module_key, inputs, _modes()

    def op_key(self, kind: str, target: Any, args: tuple, kwargs: dict) -> Any:
        """The signature of a ``call_function`` of torch's or a ``call_method`` on a tensor, or None."""
        op = _Op(kind, target)
        if op in self._views or (kind == "call_function" and not _torch_function(target)):
            return None
        if kind == "call_method" and not (args and type(args[0]) is torch.Tensor):
            return None  # a method of a list or dict the forward holds
        inputs = _value_key((args, tuple(sorted(kwargs.items()))))
        if inputs is _UNCACHEABLE:
            return None
        return op, inputs, _modes()

    def get(self, key: Any) -> Any:
        """New meta tensors like the remembered output, or None."""
        shapes = self._outputs.get(key)
        return None if shapes is None else _rebuild(shapes)

    def remember(self, key: Any, output: Any, args: tuple, kwargs: dict, state: list[torch.Tensor]) -> None:
        # an output that is an input, a weight or a view of one shares its storage: not remembered
        taken = set()
        for tensor in [*_tensors(args), *_tensors(tuple(kwargs.values())), *state]:
            taken.add(id(tensor))
            if tensor._base is not None:
                taken.add(id(tensor._base))
        shapes = _output_shapes(output, taken)
        if shapes is not _UNCACHEABLE and _holds_tensor(shapes):
            self._outputs[key] = shapes
        elif isinstance(key[0], _Op):
            self._views.add(key[0])

    def _module_key(self, module: torch.nn.Module) -> Any:
        attributes = tuple(vars(module).values())
        known = self._modules.get(id(module))
        # the same attribute objects give the same key; an attribute set while tracing
        # (``self.conv.padding = ...``) makes a new one
        if (
            known is not None and known[0] is module and len(known[1]) == len(attributes)
            and all(map(operator.is_, known[1], attributes))
        ):
            return known[2]
        found = _module_key(module)
        self._modules[id(module)] = (module, attributes, found)
        return found


def _modes() -> tuple[Any, ...]:
    """The global state an op's output dtype and its grad flag depend on."""
    return (
        torch.is_grad_enabled(), torch.get_default_dtype(),
        torch.is_autocast_enabled("cpu"), torch.is_autocast_enabled("cuda"),
    )


_OPERATORS = frozenset(value for value in vars(operator).values() if callable(value))


def _torch_function(target: Any) -> bool:
    """One of torch's functions (``torch.add``, ``F.gelu``) or Python's operators, not a user's function."""
    try:
        if target in _OPERATORS:
            return True
    except TypeError:  # not hashable
        return False
    module = getattr(target, "__module__", None)
    return isinstance(module, str) and (module == "torch" or module.startswith(("torch.nn.functional", "torch.functional", "torch._C")))


def _holds_tensor(shapes: Any) -> bool:
    """A remembered output with a tensor in it: one of only ``None`` may be an op run for what it does."""
    if shapes[0] == "tensor":
        return True
    return shapes[0] == "tuple" and any(_holds_tensor(s) for s in shapes[1])


def has_hooks(module: torch.nn.Module) -> bool:
    """Whether a forward hook of its own or a global one runs around ``module``: it may change what it returns."""
    return bool(
        module._forward_hooks or module._forward_pre_hooks
        or _module._global_forward_hooks or _module._global_forward_pre_hooks
    )


def _module_key(module: torch.nn.Module) -> Any:
    if not type(module).__module__.startswith("torch.nn."):
        return _UNCACHEABLE
    parts: list[Any] = [type(module)]
    for name, value in vars(module).items():
        if name in _STATE:
            continue
        if type(value) in (dict, OrderedDict):
            if value:  # a hook (forward, pre-forward, state dict...): it may do anything
                return _UNCACHEABLE
            continue
        if type(value) in (set, frozenset):
            value = tuple(sorted(value))
        plain = _value_key(value)
        if plain is _UNCACHEABLE:
            return _UNCACHEABLE
        parts.append((name, plain))
    for kind in ("_parameters", "_buffers"):
        for name, tensor in vars(module)[kind].items():
            described = ("none",) if tensor is None else _tensor_key(tensor)
            if described is _UNCACHEABLE:
                return _UNCACHEABLE
            parts.append((kind, name, type(tensor), described))
    for name, child in vars(module)["_modules"].items():
        child_key = _UNCACHEABLE if child is None else _module_key(child)
        if child_key is _UNCACHEABLE:
            return _UNCACHEABLE
        parts.append((name, child_key))
    return tuple(parts)


def _tensor_key(tensor: torch.Tensor) -> Any:
    if type(tensor) not in (torch.Tensor, torch.nn.Parameter) or tensor.layout is not torch.strided:
        return _UNCACHEABLE
    return (
        tuple(tensor.shape), tensor.stride(), tensor.storage_offset(), tensor.dtype, tensor.device.type,
        tensor.requires_grad,
    )


def _value_key(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        if not value.is_meta:
            return _UNCACHEABLE
        return ("tensor", _tensor_key(value))
    if type(value) in (tuple, list):
        parts = tuple(_value_key(v) for v in value)
        return _UNCACHEABLE if any(p is _UNCACHEABLE for p in parts) else (type(value), parts)
    if type(value) in _PLAIN:
        return (type(value), value)  # True and 1 are equal, and are not the same argument
    return _UNCACHEABLE


def _tensors(values: tuple) -> list[torch.Tensor]:
    found: list[torch.Tensor] = []
    for value in values:
        if isinstance(value, torch.Tensor):
            found.append(value)
        elif type(value) in (tuple, list):
            found.extend(_tensors(tuple(value)))
    return found


def _output_shapes(output: Any, taken: set[int]) -> Any:
    if isinstance(output, torch.Tensor):
        if (
            type(output) is not torch.Tensor or not output.is_meta or id(output) in taken or id(output._base) in taken
            or output.layout is not torch.strided or output.storage_offset() != 0
        ):
            return _UNCACHEABLE
        return ("tensor", tuple(output.shape), output.stride(), output.dtype)
    if type(output) is tuple:
        parts = tuple(_output_shapes(o, taken) for o in output)
        return _UNCACHEABLE if any(p is _UNCACHEABLE for p in parts) else ("tuple", parts)
    if output is None:
        return ("none",)
    return _UNCACHEABLE


def _rebuild(shapes: Any) -> Any:
    kind = shapes[0]
    if kind == "tensor":
        _, size, stride, dtype = shapes
        return torch.empty_strided(size, stride, dtype=dtype, device="meta")
    if kind == "tuple":
        return tuple(_rebuild(s) for s in shapes[1])
    return None
