"""A flat signature of tensors in, tensors or tuples out, for any model.

The prepared model's forward takes one named tensor per tensor leaf of the
example inputs (``image_rgb``, ``image_bw``); non-tensor arguments (flags,
``None``) are specialized to the example's values. Outputs keep their shape
when they already are a tensor or tuple of tensors, otherwise they become a
flat tuple that ``unflatten_outputs`` turns back into the original structure.
"""

from __future__ import annotations

import functools
import inspect
import types
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.fx as fx

from qready.caches import require_allocated
from qready.errors import InputError
from qready.example_inputs import Example
from qready.structure import flatten, leaf_names, node_type_named, unflatten

__all__ = ["FlatSignature", "bind_inputs", "check_same_structure", "flat_signature", "make_flat_forward"]


@dataclass
class FlatSignature:
    input_spec: dict[str, Any]
    input_names: list[str]
    input_values: list[torch.Tensor]
    inputs_flattened: bool = False
    output_spec: dict[str, Any] | None = None
    outputs_flattened: bool = False
    output_names: list[str] = field(default_factory=list)
    keywords: frozenset[str] = frozenset()  # arguments the example passed by keyword


def flat_signature(model: torch.nn.Module, example: Example) -> FlatSignature:
    signature = inspect.signature(model.forward)
    try:
        bound = signature.bind(*example.args, **example.kwargs)
    except TypeError as error:
        raise InputError(
            f"example inputs {example.describe()} don't match {type(model).__name__}.forward{signature}: {error}"
        ) from error
    arguments = dict(bound.arguments)
    for name, value in arguments.items():
        require_allocated(value, f"argument {name!r}")
    try:
        leaves, spec = flatten(arguments)
    except TypeError as error:
        raise InputError(
            f"{type(model).__name__}.forward takes a value qready cannot pass as tensors ({error}); "
            "prepare the submodules that take tensors, or exclude this one"
        ) from error
    # how the forward binds its arguments, as plain data: it is saved with the model
    spec["parameters"] = [
        [p.name, p.kind.name, p.default is not inspect.Parameter.empty, *_plain_default(p)]
        for p in signature.parameters.values()
    ]
    plain = not example.kwargs and all(isinstance(a, torch.Tensor) for a in example.args)
    return FlatSignature(
        spec, leaf_names(spec, ""), leaves, inputs_flattened=not plain, keywords=frozenset(example.kwargs)
    )


def bind_inputs(input_spec: dict[str, Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The original forward's arguments by parameter name, bound the way Python binds them
    (``*args``, ``**kwargs``, keyword-only, defaults), in the order the example gave them."""
    described = input_spec.get("parameters")
    if described is None:  # saved before the signature was recorded: positions, then keywords
        arguments = dict(zip(input_spec["keys"], args))
        arguments.update(kwargs)
    else:
        placeholder = object()
        signature = inspect.Signature([
            inspect.Parameter(name, getattr(inspect.Parameter, kind), default=placeholder if has_default else inspect.Parameter.empty)
            for name, kind, has_default, *_ in described
        ])
        try:
            arguments = dict(signature.bind(*args, **kwargs).arguments)
        except TypeError as error:
            raise InputError(f"inputs don't match the original forward{signature}: {error}") from error
    missing = [key for key in input_spec["keys"] if key not in arguments]
    if missing:
        raise InputError(
            f"the prepared model was traced with argument(s) {', '.join(missing)}; pass them as the example did"
        )
    defaults = {entry[0]: entry[3] for entry in described or () if len(entry) > 3}
    extra = [
        key for key, value in arguments.items()
        if key not in input_spec["keys"] and not (key in defaults and _same_constant(value, defaults[key]))
    ]
    if extra:
        raise InputError(
            f"argument(s) {', '.join(extra)} were not passed when the model was prepared, so the prepared model "
            "has their default built in and cannot take them; prepare it again with an example that passes them"
        )
    return {key: arguments[key] for key in input_spec["keys"]}


def check_same_structure(recorded: dict[str, Any], given: dict[str, Any]) -> None:
    """Raise ``InputError`` where the arguments ``given`` differ from the example the model was
    prepared with in anything but tensor values: a non-tensor argument (a flag, a size, ``None``)
    is built into the prepared graph, so another value would be silently ignored."""
    for name, was, now in zip(recorded["keys"], recorded["items"], given["items"]):
        difference = _difference(was, now, name)
        if difference is not None:
            raise InputError(
                f"{difference} when the model was prepared; the prepared model has that built in and would ignore "
                "the new value: prepare it again with an example like these inputs"
            )


def _difference(was: dict[str, Any], now: dict[str, Any], path: str) -> str | None:
    if was["kind"] != now["kind"]:
        return f"{path!r} is {_described(now)} here but was {_described(was)}"
    if was["kind"] in ("const", "dtype", "device"):
        return None if _same_constant(now["value"], was["value"]) else f"{path!r} is {now['value']!r} here but was {was['value']!r}"
    node_type = node_type_named(was["kind"])
    if node_type is not None and node_type.stateful:
        return None  # a cache's counters move on every step; its tensors are checked by count
    if was.get("keys") != now.get("keys") or len(was.get("items", ())) != len(now.get("items", ())):
        return f"{path!r} is structured differently here ({_described(now)}) than it was ({_described(was)})"
    keys = was.get("keys") or range(len(was.get("items", ())))
    for key, inner_was, inner_now in zip(keys, was.get("items", ()), now.get("items", ())):
        difference = _difference(inner_was, inner_now, f"{path}.{key}")
        if difference is not None:
            return difference
    return None


def _described(spec: dict[str, Any]) -> str:
    if spec["kind"] == "leaf":
        return "a tensor"
    if spec["kind"] in ("const", "dtype", "device"):
        return repr(spec["value"])
    count = len(spec.get("items", ()))
    return f"a {spec['kind']} of {count} item{'s' if count != 1 else ''}"


def _same_constant(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _plain_default(parameter: inspect.Parameter) -> list[Any]:
    """The default as plain data the manifest can hold, in a list; empty when it has none or another kind."""
    value = parameter.default
    if value is None or type(value) in (bool, int, float, str):
        return [value]
    return []


def make_flat_forward(
    model: torch.nn.Module,
    sig: FlatSignature,
    concrete_of: Callable[[Any], Any],
) -> Callable[..., Any]:
    """A ``forward(self, <names>)`` that rebuilds the arguments, runs the model's own forward and
    returns plain tensors. ``concrete_of`` gives a traced value's example value (to split tuples a
    leaf module returned)."""
    original = type(model).forward
    signature = inspect.signature(original)
    self_name = next(iter(signature.parameters))  # usually "self", but any name is legal

    def run(self: torch.nn.Module, leaves: tuple[Any, ...]) -> Any:
        arguments = unflatten(sig.input_spec, list(leaves))
        bound = inspect.BoundArguments(signature, OrderedDict([(self_name, self), *arguments.items()]))
        args, kwargs = _as_called(bound, sig.keywords)
        output = original(*args, **kwargs)
        try:
            out_leaves, out_spec = flatten(output, is_leaf=_is_value_leaf, expand=lambda v: _expand(v, concrete_of))
        except TypeError as error:  # torchvision's ImageList: the module's own forward is kept instead
            raise InputError(
                f"{type(model).__name__}.forward returns a value qready cannot pass as tensors ({error}); "
                "prepare the submodules that return tensors, or exclude this one"
            ) from error
        sig.output_spec = out_spec
        sig.output_names = leaf_names(out_spec, "output")
        structured = unflatten(out_spec, out_leaves)
        if _plain_spec(out_spec):
            sig.outputs_flattened = False
            return structured
        sig.outputs_flattened = True
        return tuple(out_leaves)

    params = ", ".join(sig.input_names)
    source = f"def forward(self, {params}):\n    return run(self, ({params}{',' if len(sig.input_names) == 1 else ''}))\n"
    namespace: dict[str, Any] = {"run": run}
    exec(_compiled(source, f"<qready flat forward of {type(model).__name__}>"), namespace)  # noqa: S102
    return namespace["forward"]


@functools.lru_cache(maxsize=256)
def _compiled(source: str, filename: str) -> types.CodeType:
    """The code of a flat forward: one compile per signature, not per prepare."""
    return compile(source, filename, "exec")


def _as_called(bound: inspect.BoundArguments, keywords: frozenset[str]) -> tuple[list[Any], dict[str, Any]]:
    """The arguments passed the way the example passed them: by position or by keyword.

    ``bound.args`` would turn keywords into positions; decorators that look an
    argument up by name in ``**kwargs`` (Hugging Face's config defaults) then
    add it a second time.
    """
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for name, value in bound.arguments.items():
        kind = bound.signature.parameters[name].kind
        if kind is inspect.Parameter.VAR_POSITIONAL:
            args.extend(value)
        elif kind is inspect.Parameter.VAR_KEYWORD:
            kwargs.update(value)
        elif name in keywords or kind is inspect.Parameter.KEYWORD_ONLY:
            kwargs[name] = value
        else:
            args.append(value)
    return args, kwargs


def _is_value_leaf(value: Any) -> bool:
    return isinstance(value, (torch.Tensor, fx.Proxy))


def _expand(value: Any, concrete_of: Callable[[Any], Any]) -> Any:
    if not isinstance(value, fx.Proxy):
        return value
    concrete = concrete_of(value)
    if isinstance(concrete, tuple) and not hasattr(concrete, "_fields"):
        return tuple(value[i] for i in range(len(concrete)))  # type: ignore[index]  # fx.Proxy supports [] at run time
    if isinstance(concrete, list):
        return [value[i] for i in range(len(concrete))]  # type: ignore[index]  # fx.Proxy supports [] at run time
    return value


def _plain_spec(spec: dict[str, Any]) -> bool:
    if spec["kind"] == "leaf":
        return True
    return spec["kind"] == "tuple" and all(_plain_spec(item) for item in spec["items"])
