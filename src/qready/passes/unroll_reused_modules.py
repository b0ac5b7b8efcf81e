"""Give every extra call of a module its own instance, weights still tied."""

from __future__ import annotations

from collections import Counter

import torch
import torch.fx as fx

from qready.copying import deepcopy_module
from qready.passes.base import Change, Pass, PassError, PassResult, add_module_in_scope
from qready.walks import modules_by_path, tensors_of

__all__ = ["UnrollReusedModules", "copy_sharing_state"]


class UnrollReusedModules(Pass):
    """``layer1.0.relu`` called twice becomes ``layer1.0.relu`` and ``layer1.0.relu_1``.

    With ``tie_weights`` the copy holds the very same ``Parameter`` and buffer
    objects as the original, so the state dict and training still see one
    tensor; without it the copy gets its own clones.
    """

    name = "unroll-reused-modules"

    def __init__(self, tie_weights: bool = True) -> None:
        self.tie_weights = tie_weights

    def call(self, gm: fx.GraphModule) -> PassResult:
        calls = Counter(n.target for n in gm.graph.nodes if n.op == "call_module")
        tree = modules_by_path(gm)  # one walk, not a get_submodule per target
        called = {target: tree[target] if target in tree else gm.get_submodule(target) for target in calls}
        # an instance that also runs inside a called module (a leaf that holds it) is reused
        # by every call the graph makes of it: those get copies, the leaf keeps the original
        inside_leaves = {
            id(inner) for module in called.values() if module._modules for inner in module.modules() if inner is not module
        }
        seen: Counter[str] = Counter()
        changes = []
        for node in gm.graph.nodes:
            if node.op != "call_module":
                continue
            original = called[node.target]
            also_in_leaf = id(original) in inside_leaves
            if calls[node.target] < 2 and not also_in_leaf:
                continue
            seen[node.target] += 1
            if seen[node.target] == 1 and not also_in_leaf:
                continue  # the first call keeps the original instance
            scope, _, base = str(node.target).rpartition(".")
            while _inside(scope, calls):
                # never inside a module the graph calls (a Sequential would run the copy too): `inner.0` -> `inner_0`
                scope, _, part = scope.rpartition(".")
                base = f"{part}_{base}"
            duplicate = copy_sharing_state(original) if self.tie_weights else deepcopy_module(original, {})
            path = add_module_in_scope(gm, scope, base, duplicate)
            parameters, buffers = tensors_of(original)
            shared = bool(parameters or buffers)
            file, line = node.meta.get("qready_location", (None, None))
            changes.append(
                Change(
                    "unrolled",
                    op=str(node.target),
                    scope=scope,
                    module=path,
                    module_type=type(original).__qualname__,
                    file=file,
                    line=line,
                    details=(("call", seen[node.target]), ("weights_tied", shared and self.tie_weights)),
                )
            )
            node.target = path
        return PassResult(gm, bool(changes), changes)

    def ensures(self, gm: fx.GraphModule) -> None:
        """Each module the graph calls is called once: one quantizer, one value range."""
        calls = Counter(str(n.target) for n in gm.graph.nodes if n.op == "call_module")
        reused = sorted(target for target, count in calls.items() if count > 1)
        if reused:
            raise PassError(f"modules still called more than once: {', '.join(reused)}")


def _inside(scope: str, calls: Counter[str]) -> bool:
    """Whether ``scope`` is a called module or lies inside one."""
    parts = scope.split(".") if scope else []
    return any(".".join(parts[:i]) in calls for i in range(1, len(parts) + 1))


def copy_sharing_state(module: torch.nn.Module) -> torch.nn.Module:
    """A deep copy of ``module`` whose parameters and buffers are the original objects."""
    memo: dict[int, object] = {}
    parameters, buffers = tensors_of(module)
    for tensor in parameters + buffers:
        memo[id(tensor)] = tensor
    return deepcopy_module(module, memo)
