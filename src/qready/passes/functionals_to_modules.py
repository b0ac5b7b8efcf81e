"""Replace each value-changing function, method or operator call by a module call."""

from __future__ import annotations

from typing import Any

import torch
import torch.fx as fx

from qready.conversions import conversion_for, lookup
from qready.ops import changes_values, op_name
from qready.passes.base import Change, Pass, PassError, PassResult, add_module_in_scope

__all__ = ["FunctionalsToModules", "node_callable"]


class FunctionalsToModules(Pass):
    """``F.relu(x)`` in ``layer1.0`` becomes ``layer1.0.relu(x)``: a new ``nn.ReLU``.

    Ops are matched by the callable the node calls, never by the node's name;
    every positional and keyword argument is kept. A value-changing call that
    has no module form is kept and reported as unconverted.
    """

    name = "functionals-to-modules"

    def call(self, gm: fx.GraphModule) -> PassResult:
        changes = []
        for node in list(gm.graph.nodes):
            func = node_callable(node)
            if func is None or not _changes_values(node, func):
                continue
            scope = node.meta.get("qready_scope", "")
            file, line = node.meta.get("qready_location", (None, None))
            try:
                conversion = conversion_for(func)
            except ValueError as error:
                changes.append(Change("unconverted", op_name(func), scope, "", "", file, line, (("reason", str(error)),)))
                continue
            module, args, kwargs = conversion.build(tuple(node.args), dict(node.kwargs))
            path = add_module_in_scope(gm, scope, conversion.name, module)
            with gm.graph.inserting_before(node):
                # the module was just added at ``path``: no need for call_module's lookup of it
                replacement = gm.graph.create_node("call_module", path, tuple(args), dict(kwargs))
            replacement.meta = dict(node.meta)
            node.replace_all_uses_with(replacement)
            gm.graph.erase_node(node)
            changes.append(
                Change("functional", op_name(func), scope, path, f"{type(module).__module__}.{type(module).__qualname__}", file, line)
            )
        return PassResult(gm, bool(changes), changes)

    def ensures(self, gm: fx.GraphModule) -> None:
        """No value-changing call whose callable the table converts is left in the graph."""
        left = sorted({
            op_name(func) for node in gm.graph.nodes
            if (func := node_callable(node)) is not None and _changes_values(node, func) and lookup(func) is not None
        })
        if left:
            raise PassError(f"calls left unconverted although the table converts them: {', '.join(left)}")


def node_callable(node: fx.Node) -> Any:
    """The function a call node runs: its target, or the Tensor method it names."""
    if node.op == "call_function":
        return node.target
    if node.op == "call_method":
        return getattr(torch.Tensor, str(node.target), None)
    return None


def _changes_values(node: fx.Node, func: Any) -> bool:
    if not changes_values(func):
        return False
    tensor_inputs = []
    fx.node.map_arg(
        (node.args, node.kwargs),
        lambda arg: tensor_inputs.append(arg.meta.get("qready_tensor", False) or arg.meta.get("qready_tensors", False)),
    )
    return any(tensor_inputs)
