"""Nested inputs and outputs as a flat list of tensors plus a spec to rebuild them.

The spec is plain JSON-able data, so a saved prepared model can rebuild its
original output structure (dicts, lists, dataclasses, ``ModelOutput``) in a
fresh process.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import keyword
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from qready.user_code import own_name_for

__all__ = [
    "NodeType",
    "flatten",
    "leaf_names",
    "map_leaves",
    "node_type_of",
    "rebuild_type",
    "register_node_type",
    "type_path",
    "node_type_named",
    "unflatten",
]

Spec = dict[str, Any]


@dataclass(frozen=True)
class NodeType:
    """A kind of object the walker takes apart into named children and puts back together.

    ``children(obj)`` returns the children's keys, the children, and JSON-able extra fields
    for the spec; ``rebuild(spec, items)`` makes the object again from the rebuilt children.
    ``stateful`` objects change when a forward runs with them (a KV cache grows): each
    call of a model gets its own copy.
    """

    kind: str
    matches: Callable[[Any], bool]
    children: Callable[[Any], tuple[list[str], list[Any], dict[str, Any]]]
    rebuild: Callable[[Spec, list[Any]], Any]
    stateful: bool = False


# Kinds register themselves when their module is imported: qready.caches is, by
# example_inputs, while ``import qready`` runs, so the walker knows caches before any call.
_NODE_TYPES: dict[str, NodeType] = {}


def register_node_type(node_type: NodeType) -> None:
    _NODE_TYPES[node_type.kind] = node_type


def node_type_named(kind: str) -> NodeType | None:
    """The registered kind a spec names (``spec["kind"]``), if it is one."""
    return _NODE_TYPES.get(kind)


def node_type_of(value: Any) -> NodeType | None:
    for node_type in _NODE_TYPES.values():
        if node_type.matches(value):
            return node_type
    return None


def flatten(value: Any, is_leaf: Callable[[Any], bool] | None = None, expand: Callable[[Any], Any] | None = None) -> tuple[list[Any], Spec]:
    """Tensors (or whatever ``is_leaf`` accepts) in order, and the spec to put them back.

    ``expand`` may turn an opaque leaf into a container (used while tracing, where
    a proxy's concrete value says it is a tuple).
    """
    is_leaf = is_leaf or (lambda v: isinstance(v, torch.Tensor))
    leaves: list[Any] = []

    def walk(v: Any) -> Spec:
        if expand is not None:
            expanded = expand(v)
            if expanded is not v:
                return walk(expanded)
        if is_leaf(v):
            leaves.append(v)
            return {"kind": "leaf"}
        node_type = node_type_of(v)
        if node_type is not None:
            keys, children, extra = node_type.children(v)
            return {"kind": node_type.kind, **extra, "keys": keys, "items": [walk(child) for child in children]}
        if isinstance(v, tuple) and hasattr(v, "_fields"):
            return {"kind": "namedtuple", "type": type_path(type(v)), "keys": list(v._fields),
                    "items": [walk(item) for item in v]}
        if isinstance(v, (tuple, list)):
            return {"kind": type(v).__name__, "items": [walk(item) for item in v]}
        if isinstance(v, Mapping):
            return {"kind": "dict", "type": type_path(type(v)), "keys": list(v.keys()),
                    "items": [walk(item) for item in v.values()]}
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            names = [f.name for f in dataclasses.fields(v)]
            return {"kind": "dataclass", "type": type_path(type(v)), "keys": names,
                    "items": [walk(getattr(v, n)) for n in names]}
        if v is None or isinstance(v, (bool, int, float, str)):
            return {"kind": "const", "value": v}
        if isinstance(v, torch.dtype):
            return {"kind": "dtype", "value": str(v).removeprefix("torch.")}
        if isinstance(v, torch.device):
            return {"kind": "device", "value": str(v)}
        raise TypeError(f"cannot flatten a value of type {type(v).__qualname__}")

    spec = walk(value)
    return leaves, spec


def map_leaves(value: Any, fn: Callable[[Any], Any], is_leaf: Callable[[Any], bool] | None = None) -> Any:
    """``value`` rebuilt with ``fn`` applied to each tensor (or whatever ``is_leaf`` accepts).

    The same containers ``flatten`` knows, each rebuilt as its own type: registered kinds
    (caches), namedtuples, tuples and lists, mappings (``OrderedDict``, ``ModelOutput``),
    dataclasses. Anything else is returned as it is, never refused: this walker serves values
    qready only passes along (clones of a submodule's arguments, stand-ins in a report).
    """
    is_leaf = is_leaf or (lambda v: isinstance(v, torch.Tensor))

    def walk(v: Any) -> Any:
        if is_leaf(v):
            return fn(v)
        node_type = node_type_of(v)
        if node_type is not None:
            keys, children, extra = node_type.children(v)
            return node_type.rebuild({"kind": node_type.kind, **extra, "keys": keys}, [walk(c) for c in children])
        if isinstance(v, tuple) and hasattr(v, "_fields"):
            return type(v)(*(walk(item) for item in v))
        if type(v) in (tuple, list):
            return type(v)(walk(item) for item in v)
        if type(v) is dict:
            return {k: walk(item) for k, item in v.items()}
        if isinstance(v, Mapping):
            try:
                rebuilt = copy.copy(v)  # keeps the mapping's class and attributes
                for k, item in v.items():
                    rebuilt[k] = walk(item)  # type: ignore[index]  # a mutable mapping: copied from one
            except TypeError:  # read-only or uncopyable: the items in a plain dict
                return {k: walk(item) for k, item in v.items()}
            return rebuilt
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            fields = {f.name: walk(getattr(v, f.name)) for f in dataclasses.fields(v)}
            record = copy.copy(v)
            for name, item in fields.items():
                object.__setattr__(record, name, item)  # frozen ones too
            return record
        if isinstance(v, (tuple, list)):
            return type(v)(walk(item) for item in v)
        return v

    return walk(value)


def unflatten(spec: Spec, leaves: list[Any] | tuple[Any, ...]) -> Any:
    it = iter(leaves)

    def build(s: Spec) -> Any:
        kind = s["kind"]
        if kind == "leaf":
            return next(it)
        if kind == "const":
            return s["value"]
        if kind == "dtype":
            return getattr(torch, s["value"])
        if kind == "device":
            return torch.device(s["value"])
        items = [build(item) for item in s["items"]]
        if kind in _NODE_TYPES:
            return _NODE_TYPES[kind].rebuild(s, items)
        if kind == "tuple":
            return tuple(items)
        if kind == "list":
            return items
        if kind == "namedtuple":
            cls = rebuild_type(s["type"])
            return cls(*items) if cls is not None else dict(zip(s["keys"], items))
        if kind in ("dict", "dataclass"):
            mapping = dict(zip(s["keys"], items))
            cls = rebuild_type(s["type"])
            if cls is None:
                return mapping
            try:
                return cls(**mapping) if kind == "dataclass" or cls is not dict else mapping
            except TypeError:
                return mapping
        raise ValueError(f"unknown spec kind {kind!r}")

    return build(spec)


def leaf_names(spec: Spec, prefix: str) -> list[str]:
    """Readable, unique Python identifiers for each leaf.

    The last key of each leaf's path when those are unique and not positions
    (``image_rgb``, ``logits``), else the whole path (``output_0``).
    """
    paths: list[list[str]] = []

    def walk(s: Spec, path: list[str]) -> None:
        if s["kind"] == "leaf":
            paths.append(path)
        elif "items" in s:
            keys = s.get("keys") or [str(i) for i in range(len(s["items"]))]
            for key, item in zip(keys, s["items"]):
                walk(item, [*path, str(key)])

    walk(spec, [prefix] if prefix else [])
    last = [p[-1] if p else prefix for p in paths]
    if len(set(last)) == len(last) and not any(part.isdigit() for part in last):
        return [_identifier(n) for n in last]
    return _unique([_identifier("_".join(p) or prefix) for p in paths])


def rebuild_type(path: str | None) -> type | None:
    """The class at ``module:qualname`` if it can be imported, else None. A class of a file
    qready imported by path comes from the user's own import of that file when there is one."""
    if not path:
        return None
    module_name, _, qualname = path.partition(":")
    if module_name == "builtins" and qualname == "dict":
        return dict
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    for owner in (own_name_for(module_name), module):
        obj: Any = owner
        for part in qualname.split(".") if owner is not None else ():
            obj = getattr(obj, part, None)
        if owner is not None and isinstance(obj, type):
            return obj
    return None


def type_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _identifier(name: str) -> str:
    name = re.sub(r"\W+", "_", name).strip("_") or "input"
    if name[0].isdigit():
        name = f"_{name}"
    return f"{name}_" if keyword.iskeyword(name) else name


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        if name in seen:
            seen[name] += 1
            name = f"{name}_{seen[name]}"
        else:
            seen[name] = 0
        out.append(name)
    return out
