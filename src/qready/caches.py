"""Hugging Face KV caches as named tensors: ``cache.3.key``, ``cache.3.value``.

A decoder LLM takes and returns a cache object (``DynamicCache``,
``StaticCache``, ``EncoderDecoderCache``...). NPU toolchains and exporters want
tensors, so the structure walker takes a cache apart into one key and one value
tensor per layer, plus the layer's own small state, and builds the same kind of
cache again from them. Legacy caches (tuples of ``(key, value)`` tuples) are
plain tuples and need nothing here.

transformers is never imported by qready: a value can only be a cache if the
user's code already imported ``transformers.cache_utils``.
"""

from __future__ import annotations

import copy
import sys
from typing import Any

import torch

from qready.structure import (
    NodeType,
    Spec,
    node_type_of,
    rebuild_type,
    register_node_type,
    type_path,
)

__all__ = ["describe_cache", "is_cache", "own_copy", "require_allocated", "traced_differently"]

# A layer's tensors under the names people use for them.
_RENAMED = {"keys": "key", "values": "value"}
_ORIGINAL = {new: old for old, new in _RENAMED.items()}
_STREAM_ATTRIBUTES = frozenset({"prefetch_stream"})  # offloading's CUDA stream: not state


def _cache_utils() -> Any:
    return sys.modules.get("transformers.cache_utils")


def is_cache(value: Any) -> bool:
    module = _cache_utils()
    return module is not None and isinstance(value, module.Cache)


def _is_layer(value: Any) -> bool:
    module = _cache_utils()
    return module is not None and isinstance(value, module.CacheLayerMixin)


def _cache_children(cache: Any) -> tuple[list[str], list[Any], dict[str, Any]]:
    keys: list[str] = []
    children: list[Any] = []
    classes: dict[str, str | None] = {}
    for name, value in vars(cache).items():
        if name == "layers":
            keys += [str(i) for i in range(len(value))]
            children += list(value)
        elif isinstance(value, type):
            classes[name] = type_path(value)
        elif name not in _STREAM_ATTRIBUTES:
            keys.append(name)
            children.append(value)
    layers = len(cache.layers) if hasattr(cache, "layers") else None  # an EncoderDecoderCache holds caches
    return keys, children, {"type": type_path(type(cache)), "layers": layers, "classes": classes}


def _rebuild_cache(spec: Spec, items: list[Any]) -> Any:
    state = dict(zip(spec["keys"], items))
    layers = [state.pop(str(i)) for i in range(spec["layers"] or 0)]
    cls = rebuild_type(spec["type"])
    if cls is None:  # transformers is not importable here: the tensors, by name
        return {"layers": layers, **state}
    cache: Any = object.__new__(cls)  # the state is set below, as the forward left it
    if spec["layers"] is not None:
        cache.layers = layers
    for name, path in spec["classes"].items():
        setattr(cache, name, rebuild_type(path))
    for name, value in state.items():
        setattr(cache, name, value)
    if getattr(cache, "offloading", False):
        cache.offloading = False  # the stream was not kept; a rebuilt cache stays on its device
    return cache


def _layer_children(layer: Any) -> tuple[list[str], list[Any], dict[str, Any]]:
    state = vars(layer)
    return [_RENAMED.get(name, name) for name in state], list(state.values()), {"type": type_path(type(layer))}


def _rebuild_layer(spec: Spec, items: list[Any]) -> Any:
    state = {_ORIGINAL.get(key, key): item for key, item in zip(spec["keys"], items)}
    cls = rebuild_type(spec["type"])
    if cls is None:
        return state
    layer: Any = object.__new__(cls)
    vars(layer).update(state)
    return layer


register_node_type(NodeType("cache", is_cache, _cache_children, _rebuild_cache, stateful=True))
register_node_type(NodeType("cache_layer", _is_layer, _layer_children, _rebuild_layer, stateful=True))


def own_copy(value: Any) -> Any:
    """``value`` with each stateful object (a cache) inside it copied, so that a forward that
    updates it in place (``StaticCache``) or appends to it (``DynamicCache``) leaves the
    caller's object as it was. Other values are shared."""
    node_type = node_type_of(value)
    if node_type is not None and node_type.stateful:
        return copy.deepcopy(value)
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return type(value)(*(own_copy(v) for v in value))
    if type(value) in (tuple, list):
        return type(value)(own_copy(v) for v in value)
    if type(value) is dict:
        return {k: own_copy(v) for k, v in value.items()}
    return value


def describe_cache(cache: Any) -> str:
    """``DynamicCache(2 layers, 5 positions)``: what a cache holds, in a few words."""
    layers = getattr(cache, "layers", None)
    if layers is None:
        return type(cache).__name__
    keys = getattr(layers[0], "keys", None) if layers else None
    tokens = f", {keys.shape[-2]} positions" if isinstance(keys, torch.Tensor) and keys.dim() >= 2 else ""
    return f"{type(cache).__name__}({len(layers)} layers{tokens})"


def require_allocated(value: Any, where: str) -> None:
    """A cache whose layers allocate their tensors inside the forward (an empty ``StaticCache``)
    has no tensors to pass in yet: say how to allocate them first."""
    node_type = node_type_of(value)
    if node_type is not None and node_type.kind == "cache":
        for i, layer in enumerate(getattr(value, "layers", ())):
            if not getattr(layer, "is_initialized", True) and not type(layer).__name__.startswith("Dynamic"):
                from qready.errors import InputError

                raise InputError(
                    f"{where} is a {type(value).__name__} whose layer {i} is not allocated yet, so it has no tensors "
                    "to pass in; call its early_initialization(batch_size, num_heads, head_dim, dtype, device) first"
                )
        for child in vars(value).values():
            require_allocated(child, where)
    elif isinstance(value, (tuple, list)):
        for child in value:
            require_allocated(child, where)
    elif type(value) is dict:
        for key, child in value.items():
            require_allocated(child, f"{where}[{key!r}]" if where else repr(key))


def traced_differently(value: Any) -> str | None:
    """Why a model handed ``value`` computes differently when traced, where a cache in it says so.

    An empty ``StaticCache`` (a prefill into preallocated keys): transformers' eager forward
    then attends causally over the new tokens only, and a traced one (as prepare, torch.export
    and the ONNX exporter see it, where the cache length is an input) masks every preallocated
    position instead. The two agree to the last bit or two, not bit for bit."""
    node_type = node_type_of(value)
    if node_type is not None and node_type.kind == "cache":
        layers = getattr(value, "layers", None) or []
        lengths = [getattr(layer, "cumulative_length", None) for layer in layers]
        if layers and all(isinstance(n, torch.Tensor) and n.numel() == 1 and int(n) == 0 for n in lengths):
            return (
                f"the example fills an empty {type(value).__name__} (a prefill): transformers' eager forward then "
                "attends causally over the new tokens only, a traced one masks all preallocated positions, and the "
                "two round differently; prefill with a DynamicCache (or none) and prepare the decode steps with the "
                f"{type(value).__name__}, or keep this traced prefill with verify=False"
            )
        return None
    children = value.values() if type(value) is dict else value if isinstance(value, (tuple, list)) else ()
    return next((why for why in map(traced_differently, children) if why), None)
