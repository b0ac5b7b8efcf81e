"""Let ``reshape``/``view`` infer the one size the forward computes from other sizes.

``B, RC, H, W = x.shape; x.reshape(B, 2, RC // 2, H, W)`` keeps ``RC // 2`` as
arithmetic on sizes in the graph, so that the prepared model takes other
shapes. A toolkit that reads the model through ``torch.jit.trace`` (AIMET's
ModelValidator and connected graph) records that arithmetic as an
``aten::floor_divide`` outside any module, an op with no quantizer. Where the
computed size is the only one in the shape, ``-1`` says the same thing: torch
infers it as the number of elements over the product of the others, which is
exactly the computed value whenever the original call was valid. The
arithmetic then has no user left and dead-code elimination drops it.

One difference remains, and it is torch's: when another size of the shape is
0 (an empty batch), ``-1`` is ambiguous and torch refuses it.
"""

from __future__ import annotations

import operator
from typing import Any

import torch
import torch.fx as fx

from qready.passes.base import Pass, PassResult

__all__ = ["InferReshapeSizes"]

_RESHAPE_METHODS = frozenset({"reshape", "view"})
_RESHAPE_FUNCTIONS = frozenset({torch.reshape, torch.Tensor.reshape, torch.Tensor.view})


class InferReshapeSizes(Pass):
    """In a reshape whose shape holds exactly one size computed from others, write ``-1`` for it."""

    name = "infer-reshape-sizes"

    def call(self, gm: fx.GraphModule) -> PassResult:
        rewritten = 0
        for node in gm.graph.nodes:
            if not _is_reshape(node) or len(node.args) < 2:
                continue
            packed = isinstance(node.args[1], (tuple, list))
            sizes = list(node.args[1] if packed else node.args[1:])
            computed = [i for i, size in enumerate(sizes) if _computed(size)]
            if len(computed) != 1 or any(size == -1 for size in sizes):
                continue
            sizes[computed[0]] = -1
            node.args = (node.args[0], tuple(sizes)) if packed else (node.args[0], *sizes)
            rewritten += 1
        return PassResult(gm, rewritten > 0)  # the same computation: nothing to report


def _is_reshape(node: fx.Node) -> bool:
    if node.op == "call_method":
        return node.target in _RESHAPE_METHODS
    return node.op == "call_function" and node.target in _RESHAPE_FUNCTIONS


def _computed(size: Any) -> bool:
    """A size the graph computes by arithmetic (not a constant, not a size read straight off a tensor).

    Only an ``int`` the trace saw: ``x.size()[:-1] + (heads, dim)`` is the same ``operator.add``
    on tuples, a whole shape that ``-1`` would flatten."""
    if not isinstance(size, fx.Node) or not size.meta.get("qready_int", False):
        return False
    if size.op == "call_method" and size.target == "size":
        return False
    if size.op == "call_function" and size.target is operator.getitem:
        source = size.args[0]
        if isinstance(source, fx.Node) and (
            (source.op == "call_function" and source.target is getattr and source.args[1:] == ("shape",))
            or (source.op == "call_method" and source.target == "size" and len(source.args) == 1)
        ):
            return False
    return size.op == "call_function" and size.target in _SIZE_ARITHMETIC


_SIZE_ARITHMETIC = frozenset({operator.floordiv, operator.mul, operator.add, operator.sub})
