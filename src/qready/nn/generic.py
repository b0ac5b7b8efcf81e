"""``TorchFunction``: wrap any torch callable that has an importable dotted path.

The module stores the path (``'torch.nn.functional.hardswish'``), never the
function object, so it pickles, deep-copies and serializes as a string. Only
callables under :data:`TRUSTED_ROOTS` are accepted: a saved model names a
function to call, and loading one must not import arbitrary code.
"""

from __future__ import annotations

import functools
import importlib
import operator
import types
from collections.abc import Callable
from typing import Any

import torch

from qready.nn._base import OpModule

__all__ = ["TRUSTED_ROOTS", "TorchFunction", "dotted_path", "resolve_dotted_path", "with_constants"]

#: Top-level packages whose callables a ``TorchFunction`` may name.
TRUSTED_ROOTS: tuple[str, ...] = ("torch", "torchvision", "operator", "math")

# Where torch's public callables live, best spelling first: ``F.conv2d is
# torch.conv2d`` is found as ``torch.nn.functional.conv2d``.
_NAMESPACES: tuple[str, ...] = (
    "torch.nn.functional",
    "torch",
    "torch.Tensor",
    "torch.special",
    "torch.linalg",
    "torch.fft",
    "operator",
    "math",
)


class TorchFunction(OpModule):
    """Call the torch function named by ``path`` with the forward's arguments.

    The generic fallback for ops without a dedicated module:
    ``TorchFunction('torch.nn.functional.hardswish')(x)`` is
    ``F.hardswish(x)``. Arguments that are plain constants of the call (a
    ``dim``, a Python number) are held in ``constants`` as ``(position or
    keyword, value)`` pairs and put back where they were, so that the forward
    takes tensors alone; nothing about the call changes.
    """

    __constants__ = ("path", "constants")

    def __init__(self, path: str, constants: tuple[tuple[int | str, Any], ...] = ()) -> None:
        super().__init__()
        resolve_dotted_path(path)  # fail on construction, not on the first forward
        self.path = path
        self.constants = tuple(constants)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if self.constants:
            args, kwargs = with_constants(self.constants, args, kwargs)
        return resolve_dotted_path(self.path)(*args, **kwargs)

    def extra_repr(self) -> str:
        return repr(self.path) + (f", constants={self.constants!r}" if self.constants else "")


def with_constants(
    constants: tuple[tuple[int | str, Any], ...], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The full call: ``constants`` put back at their positions (ascending) and keywords."""
    full = list(args)
    kwargs = dict(kwargs)
    for where, value in sorted((c for c in constants if isinstance(c[0], int)), key=lambda c: c[0]):
        full.insert(where, value)
    for where, value in constants:
        if isinstance(where, str):
            kwargs[where] = value
    return tuple(full), kwargs


@functools.lru_cache(maxsize=None)
def resolve_dotted_path(path: str) -> Callable[..., Any]:
    """The callable named by ``path`` (``'torch.Tensor.add'``); cached.

    Raises ValueError when ``path`` is outside :data:`TRUSTED_ROOTS`, does not
    exist, or names something that is not callable.
    """
    parts = path.split(".")
    if parts[0] not in TRUSTED_ROOTS or not all(part.isidentifier() for part in parts):
        raise ValueError(
            f"cannot resolve {path!r}: only dotted paths under {', '.join(TRUSTED_ROOTS)} "
            "may be called by a TorchFunction"
        )
    for split in range(len(parts), 0, -1):
        try:
            target: Any = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        try:
            for attribute in parts[split:]:
                target = getattr(target, attribute)
        except AttributeError:
            break
        if callable(target):
            return target
        break
    raise ValueError(f"cannot resolve {path!r}: no callable of that name")


def dotted_path(func: Callable[..., Any]) -> str:
    """The path under which ``func`` itself can be imported again (``'torch.relu'``).

    Raises ValueError, naming ``func``, when no such path exists: lambdas,
    local functions, bound methods, callables outside :data:`TRUSTED_ROOTS`.
    """
    entry = _public_callables().get(id(func))
    if entry is not None and entry[0] is func:
        return entry[1]
    module = getattr(func, "__module__", None)
    qualname = getattr(func, "__qualname__", None)
    if isinstance(module, str) and isinstance(qualname, str) and "<" not in qualname:
        path = f"{module}.{qualname}"
        try:
            if resolve_dotted_path(path) is func:
                return path
        except ValueError:
            pass  # reported below with the callable's own name
    raise ValueError(
        f"cannot wrap {_describe(func)} in a TorchFunction: it has no importable dotted path "
        f"under {', '.join(TRUSTED_ROOTS)}; move the call into a small nn.Module of its own"
    )


@functools.cache
def _public_callables() -> dict[int, tuple[object, str]]:
    """id -> (object, path) for every callable in :data:`_NAMESPACES`."""
    index: dict[int, tuple[object, str]] = {}
    for namespace_path in _NAMESPACES:
        namespace = _import_namespace(namespace_path)
        if isinstance(namespace, type):
            # Tensor methods live on torch._C.TensorBase too; getattr sees both.
            names = dir(namespace)
            members = [(name, getattr(namespace, name, None)) for name in names]
        else:
            members = list(vars(namespace).items())
        # Public spellings first: ``torch.Tensor.neg`` rather than ``__neg__``.
        members.sort(key=lambda item: item[0].startswith("_"))
        for name, member in members:
            if callable(member) and not isinstance(member, (type, types.ModuleType)):
                index.setdefault(id(member), (member, f"{namespace_path}.{name}"))
    return index


def _import_namespace(path: str) -> Any:
    if path == "torch.Tensor":
        return torch.Tensor
    if path == "operator":
        return operator
    return importlib.import_module(path)


def _describe(func: object) -> str:
    name = getattr(func, "__qualname__", None) or getattr(func, "__name__", None)
    module = getattr(func, "__module__", None)
    if name and module:
        return f"{module}.{name}"
    return repr(func)
