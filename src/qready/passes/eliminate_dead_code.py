"""Drop computations whose results nothing uses (what is left of a specialized branch)."""

from __future__ import annotations

import operator

import torch.fx as fx

from qready.passes.base import Pass, PassResult
from qready.randomness import draws_random

__all__ = ["EliminateDeadCode"]

_INPLACE_OPERATORS = frozenset(
    getattr(operator, name) for name in dir(operator) if name.startswith("i") and not name.startswith("is")
) | {operator.setitem}


class EliminateDeadCode(Pass):
    """Remove unused function and method calls; keep module calls and anything in-place.

    torch.fx's own dead-code elimination would drop an unused ``x.add_(y)``,
    whose effect is on ``x``: here an op that may mutate an input always stays,
    and so does an unused random draw (``torch.randn_like``): it advances the
    generator, and every later draw depends on it.
    """

    name = "eliminate-dead-code"

    def call(self, gm: fx.GraphModule) -> PassResult:
        removed = 0
        for node in reversed(list(gm.graph.nodes)):
            if node.users or node.op not in ("call_function", "call_method") or _may_mutate(node) or draws_random(node.target):
                continue
            gm.graph.erase_node(node)
            removed += 1
        return PassResult(gm, removed > 0)


def _may_mutate(node: fx.Node) -> bool:
    if node.kwargs.get("inplace") is True or node.kwargs.get("out") is not None:
        return True
    if node.op == "call_method":
        return str(node.target).endswith("_")
    target = node.target
    name = getattr(target, "__name__", "")
    return target in _INPLACE_OPERATORS or name.endswith("_") or getattr(target, "__module__", "") not in (
        "torch", "torch.nn.functional", "_operator", "operator", "builtins", "torch._C._nn", "torch._C._VariableFunctions",
    )
