"""Walks over a module tree that give in one pass what torch's ``named_*`` generators give in several.

torch's ``named_parameters()``, ``parameters()`` and ``modules()`` each walk the tree through a
chain of nested generators, one per level (0.15 ms each on resnet50), and ``eval()`` sets every
flag through ``Module.__setattr__`` (0.6 ms), even where nothing changes; one prepare asked for
them a dozen times. Here the tree is walked once per question, by plain loops, in torch's order
(parents before children, children in their order), every module and tensor as often as
torch's ``remove_duplicate=False`` lists it. A tree deeper than Python's recursion limit raises
RecursionError, as torch's own walks do.
"""

from __future__ import annotations

import sys

import torch

__all__ = ["Named", "named_state", "tensors_of", "modules_of", "modules_by_path", "set_eval"]

Named = list[tuple[str, torch.Tensor]]


def named_state(module: torch.nn.Module) -> tuple[Named, Named]:
    """``(named_parameters, named_buffers)`` of ``module``, both with ``remove_duplicate=False``."""
    parameters: Named = []
    buffers: Named = []
    for prefix, owner in _named_walk(module):
        for name, p in owner._parameters.items():
            if p is not None:
                parameters.append((prefix + name, p))
        for name, b in owner._buffers.items():
            if b is not None:
                buffers.append((prefix + name, b))
    return parameters, buffers


def tensors_of(module: torch.nn.Module) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """``(parameters, buffers)`` of the tree, without their names (a tensor held twice is listed twice)."""
    owners = modules_of(module)
    return (
        [p for owner in owners for p in owner._parameters.values() if p is not None],
        [b for owner in owners for b in owner._buffers.values() if b is not None],
    )


def modules_of(module: torch.nn.Module) -> list[torch.nn.Module]:
    """Every module of the tree, ``module`` first: ``modules()`` with ``remove_duplicate=False``."""
    order: list[torch.nn.Module] = []
    stack: list[tuple[torch.nn.Module, int]] = [(module, 0)]
    limit = sys.getrecursionlimit()
    while stack:
        owner, depth = stack.pop()
        if depth > limit:
            raise RecursionError(f"module tree of {type(module).__name__} deeper than {limit} levels")
        order.append(owner)
        stack.extend((child, depth + 1) for child in reversed(owner._modules.values()) if child is not None)
    return order


def modules_by_path(module: torch.nn.Module) -> dict[str, torch.nn.Module]:
    """Every module of the tree by its path (``""`` for ``module``), as ``named_modules(remove_duplicate=False)``."""
    return {prefix[:-1]: owner for prefix, owner in _named_walk(module)}


def set_eval(module: torch.nn.Module) -> None:
    """``module.eval()``, skipped where every module is in eval mode already (then it changes nothing)."""
    if any(owner.training for owner in modules_of(module)):
        module.eval()


def _named_walk(module: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
    """(path + ".", module) for the whole tree, ``("", module)`` first."""
    order: list[tuple[str, torch.nn.Module]] = []
    stack: list[tuple[str, torch.nn.Module, int]] = [("", module, 0)]
    limit = sys.getrecursionlimit()
    while stack:
        prefix, owner, depth = stack.pop()
        if depth > limit:
            raise RecursionError(f"module tree of {type(module).__name__} deeper than {limit} levels")
        order.append((prefix, owner))
        stack.extend(
            (f"{prefix}{name}.", child, depth + 1) for name, child in reversed(owner._modules.items()) if child is not None
        )
    return order
