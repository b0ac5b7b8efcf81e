"""Modules the user declares leaves: wrapped whole by their quantizer, as they say.

qready's own leaf set (``qready.ops.is_leaf_module``) holds what every
module-wrapping toolkit can wrap: torch.nn built-ins without children,
multi-head attention, the recurrent layers and ``qready.nn``. A user who has
registered a quantized version of one of their own modules with their toolkit
declares it with ``leaves=`` (``--leaf``): by path (``backbone.stem``) or by
class name (``LayerNorm2d``, or its qualified name), every instance of it.
``check`` then counts the ops inside it as covered, and ``prepare`` keeps it
whole, as it keeps an excluded module.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

import torch

from qready.errors import InputError
from qready.targets.base import Target

__all__ = ["declared_leaf_paths", "with_declared_leaves"]


def declared_leaf_paths(model: torch.nn.Module, leaves: Iterable[str | type]) -> list[str]:
    """Every path in ``model`` that ``leaves`` names: a submodule's path, or a module class (by the
    class, its name or its qualified name). A name that matches nothing is the user's error."""
    leaves = list(leaves)
    modules = list(model.named_modules(remove_duplicate=False)) if leaves else []
    paths: list[str] = []
    for leaf in leaves:
        if isinstance(leaf, type):
            found = [path for path, module in modules if isinstance(module, leaf)]
        else:
            found = [path for path, _ in modules if path == leaf] or [
                path for path, module in modules if leaf in _class_names(type(module))
            ]
        if not found or found == [""]:
            what = leaf.__qualname__ if isinstance(leaf, type) else leaf
            raise InputError(
                f"--leaf {what!r} is neither a submodule path nor a module class of {type(model).__name__} "
                "(the model itself cannot be a leaf); see model.named_modules()"
            )
        paths += [path for path in found if path and path not in paths]
    return paths


def _class_names(cls: type) -> tuple[str, ...]:
    return cls.__name__, cls.__qualname__, f"{cls.__module__}.{cls.__qualname__}"


def with_declared_leaves(target: Target, model: torch.nn.Module, paths: list[str]) -> Target:
    """``target``, with the modules at ``paths`` in ``model`` wrapped whole as well."""
    if not paths:
        return target
    declared = frozenset(id(model.get_submodule(path)) for path in paths)
    declaring = _declaring_class(type(target))  # type: ignore[arg-type]  # classes hash by identity
    copy: Any = declaring.__new__(declaring)
    copy.__dict__.update(vars(target))
    copy.declared_leaves = declared
    return copy  # a subclass of the target's own class


@functools.cache
def _declaring_class(cls: type[Target]) -> type[Target]:
    """``cls`` whose ``is_leaf`` also answers yes for the declared modules (a subclass: the target
    stays an instance of its own class for every other question)."""

    def is_leaf(self: Any, module: torch.nn.Module) -> bool:
        return id(module) in self.declared_leaves or cls.is_leaf(self, module)

    def refuses(self: Any, module: torch.nn.Module) -> bool:
        return id(module) not in self.declared_leaves and cls.refuses(self, module)

    return type(cls.__name__, (cls,), {"is_leaf": is_leaf, "refuses": refuses, "__module__": cls.__module__})
