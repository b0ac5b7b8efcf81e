"""What a pass is, what it reports, and the manager that runs them in order."""

from __future__ import annotations

import keyword
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.fx as fx

from qready.errors import InternalError, QreadyError, described

__all__ = ["Change", "Pass", "PassResult", "PassManager", "PassError", "add_module_in_scope"]


@dataclass(frozen=True)
class Change:
    """One rewrite: what was there, what is there now, and where the user wrote it."""

    kind: str  # "functional", "unrolled", "dispatched", "unconverted"
    op: str
    scope: str
    module: str
    module_type: str
    file: str | None
    line: int | None
    details: tuple[tuple[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "op": self.op,
            "scope": self.scope,
            "module": self.module,
            "module_type": self.module_type,
            "file": self.file,
            "line": self.line,
            **{k: v for k, v in self.details},
        }


@dataclass
class PassResult:
    graph_module: fx.GraphModule
    modified: bool
    changes: list[Change] = field(default_factory=list)


class PassError(InternalError):
    """A pass failed: a bug in qready (passes work on qready's own copy, after the trace
    succeeded). The message names the pass and the ones that ran before it."""


class Pass:
    """A rewrite of a GraphModule that qready owns (never the user's model).

    A pass sets ``name`` and implements ``call``, which changes the module in
    place (``prepare`` already works on its own copy) and returns what changed.
    ``requires`` and ``ensures`` are its pre- and post-conditions: each raises
    ``PassError`` when the graph is not what the pass expects or promises.
    Calling the pass runs ``requires``, ``call``, then, when it modified the
    graph, ``graph.lint()`` and ``recompile()``, then ``ensures``: the
    bookkeeping lives here once, not in each pass.
    """

    name: ClassVar[str] = "pass"

    def requires(self, gm: fx.GraphModule) -> None:
        """Raise ``PassError`` when ``gm`` is not a graph this pass can rewrite."""

    def call(self, gm: fx.GraphModule) -> PassResult:
        raise NotImplementedError

    def ensures(self, gm: fx.GraphModule) -> None:
        """Raise ``PassError`` when the rewritten ``gm`` breaks what this pass promises."""

    def __call__(self, gm: fx.GraphModule, *, recompile: bool = True) -> PassResult:
        self.requires(gm)
        result = self.call(gm)
        if result.modified:
            result.graph_module.graph.lint()
            if recompile:  # the manager recompiles once, after its last pass
                result.graph_module.recompile()
        self.ensures(result.graph_module)
        return result


class PassManager:
    """Runs passes in order; says which pass failed after which, and whether any modified the graph."""

    def __init__(self, passes: Sequence[Pass]) -> None:
        self.passes = list(passes)
        self.modified = False

    def __call__(self, gm: fx.GraphModule) -> tuple[fx.GraphModule, list[Change]]:
        changes: list[Change] = []
        done: list[str] = []
        for p in self.passes:
            try:
                result = p(gm, recompile=False)  # passes rewrite the graph; none runs the code
            except QreadyError:
                raise
            except Exception as error:  # a bug in a pass (or a broken condition): say which, after which
                after = f" after {', '.join(done)}" if done else ""
                if isinstance(error, PassError):
                    error.args = (f"pass {p.name}{after}: {error}",)
                    raise
                raise PassError(
                    f"pass {p.name} failed{after}: {described(error)}; this is a bug in qready, please report it "
                    "(rerun with --debug for the traceback)"
                ) from error
            gm = result.graph_module
            changes.extend(result.changes)
            self.modified = self.modified or result.modified
            done.append(p.name)
        if self.modified:
            gm.recompile()
        return gm, changes


def add_module_in_scope(gm: torch.nn.Module, scope: str, base: str, module: torch.nn.Module) -> str:
    """Register ``module`` under ``scope`` with a free name derived from ``base``; return its path."""
    owner: torch.nn.Module = gm
    for part in scope.split(".") if scope else ():
        child = owner._modules.get(part)
        if child is None:
            child = torch.nn.Module()
            owner.add_module(part, child)
        owner = child
    if keyword.iskeyword(base) or not (base.isidentifier() or base.isdigit()):
        base = f"{base}_"  # `and`, `or`... would not survive fx code generation
    name = base
    index = 0
    while hasattr(owner, name) or name in owner._modules:
        index += 1
        name = f"{base}_{index}"
    owner.add_module(name, module)
    return f"{scope}.{name}" if scope else name
