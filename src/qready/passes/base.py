"""What a pass is, what it reports, and the manager that runs them in order."""

from __future__ import annotations

import keyword
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

import torch
import torch.fx as fx

from qready.errors import InternalError, QreadyError, described

__all__ = ["Change", "Pass", "PassResult", "PassManager", "PassError", "add_module_in_scope", "check_graph"]

M = TypeVar("M", bound=torch.nn.Module)


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
    graph_module: torch.nn.Module  # the module the pass was given, rewritten in place
    modified: bool
    changes: list[Change] = field(default_factory=list)


class PassError(InternalError):
    """A pass failed: a bug in qready (passes work on qready's own copy, after the trace
    succeeded). The message names the pass and the ones that ran before it."""


class Pass(Generic[M]):
    """A rewrite of a module that qready owns (never the user's model): an fx
    ``GraphModule`` for the graph passes, any module for a step such as call-site
    dispatch.

    A pass sets ``name`` and implements ``call``, which changes the module in
    place (``prepare`` already works on its own copy) and returns what changed.
    ``requires`` and ``ensures`` are its pre- and post-conditions: each raises
    ``PassError`` when the module is not what the pass expects or promises.
    Calling the pass runs ``requires``, ``call``, then, when it modified a
    graph, ``check_graph`` (fx's lint) and ``recompile()`` (in a ``PassManager``, once
    after its graph passes), then ``ensures``: the bookkeeping lives here
    once, not in each pass. A step that changes modules
    but never the graph says so with ``rewrites_graph = False``.
    """

    name: ClassVar[str] = "pass"
    rewrites_graph: ClassVar[bool] = True

    def requires(self, gm: M) -> None:
        """Raise ``PassError`` when ``gm`` is not a module this pass can rewrite."""

    def call(self, gm: M) -> PassResult:
        raise NotImplementedError

    def ensures(self, gm: M) -> None:
        """Raise ``PassError`` when the rewritten ``gm`` breaks what this pass promises."""

    def __call__(self, gm: M, *, recompile: bool = True) -> PassResult:
        """``recompile=False``: a manager checks and regenerates the code once for all of its graph passes."""
        self.requires(gm)
        result = self.call(gm)
        if result.graph_module is not gm:
            raise PassError("returned another module than it was given; a pass rewrites its module in place")
        if result.modified and self.rewrites_graph and isinstance(gm, fx.GraphModule) and recompile:
            _lint(gm, [self.name])
            gm.recompile()
        self.ensures(gm)
        return result


class PassManager:
    """Runs passes in order on one module; says which pass failed after which, whether any
    modified it, and returns the module (rewritten in place) with every pass's changes in order."""

    def __init__(self, passes: Sequence[Pass[Any]]) -> None:
        self.passes = list(passes)
        self.modified = False
        self.changes: list[Change] = []  # so far, in order: a later pass may read what earlier ones did

    def __call__(self, gm: M, *, stale: bool = False) -> tuple[M, list[Change]]:
        """``stale``: ``gm``'s code was never generated from its graph (it is, once, when needed)."""
        done: list[str] = []
        # a graph pass rewrote the graph (or nobody compiled it yet) and its code is not regenerated yet
        stale = stale and isinstance(gm, fx.GraphModule)
        unchecked: list[str] = []  # graph passes whose rewrite no lint() has checked yet
        for p in self.passes:
            if stale and not p.rewrites_graph and isinstance(gm, fx.GraphModule):  # a step on the module
                _lint(gm, unchecked)
                gm.recompile()  # (it may run it) sees current code
                stale = False
            try:
                result = p(gm, recompile=False)  # graph passes rewrite the graph; none runs the code
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
            self.changes.extend(result.changes)
            self.modified = self.modified or result.modified
            rewrote = result.modified and p.rewrites_graph and isinstance(gm, fx.GraphModule)
            stale = stale or rewrote
            unchecked += [p.name] if rewrote else []
            done.append(p.name)
        if stale and isinstance(gm, fx.GraphModule):
            _lint(gm, unchecked)
            gm.recompile()
        return gm, list(self.changes)


def _lint(gm: fx.GraphModule, passes: list[str]) -> None:
    """One ``check_graph`` for the graph passes that ran since the last: a malformed graph names them."""
    if not passes:
        return
    try:
        check_graph(gm)
    except Exception as error:  # a graph qready's passes built: qready's bug
        raise PassError(f"the graph is malformed after pass {', '.join(passes)}: {described(error)}") from error
    passes.clear()


_OPCODES = frozenset({"placeholder", "call_method", "call_module", "call_function", "get_attr", "output", "root"})


def check_graph(gm: fx.GraphModule) -> None:
    """What ``graph.lint()`` checks, raising ValueError at the first fault: every node of this graph, with a
    known opcode and a name of its own, uses only nodes defined before it, and calls what it names (a
    callable, a module of ``gm``, an attribute that exists). fx's own lint formats a message for every
    argument of every node on the way, faults or not: a millisecond of each prepare of a resnet."""
    graph = gm.graph
    defined: set[fx.Node] = set()
    names: set[str] = set()
    for node in graph.nodes:
        if node.op not in _OPCODES or node.graph is not graph or node.name in names:
            raise ValueError(f"node {node.name} ({node.op}) is not a node of its own in this graph")
        for used in node.all_input_nodes:
            if used not in defined:
                raise ValueError(f"node {node.name} uses {used.name}, which is not defined before it in this graph")
        defined.add(node)
        names.add(node.name)
        target = node.target
        if node.op == "call_function":
            if not callable(target):
                raise ValueError(f"node {node.name} calls {target!r}, which is not callable")
        elif not isinstance(target, str):
            raise ValueError(f"node {node.name} ({node.op}) has the target {target!r} where a name belongs")
        elif node.op == "call_module" and _submodule_at(gm, target) is None:
            raise ValueError(f"node {node.name} calls {target}, which is not a module of the graph's module")
        elif node.op == "get_attr" and _attribute(gm, target) is None:
            raise ValueError(f"node {node.name} reads {target}, which the graph's module does not have")


def _submodule_at(gm: torch.nn.Module, path: str) -> torch.nn.Module | None:
    """The submodule registered at the dotted ``path`` of ``gm``, or None."""
    owner = gm
    for part in path.split("."):
        child = owner._modules.get(part)
        if child is None:
            return None
        owner = child
    return owner


def _attribute(gm: torch.nn.Module, path: str) -> Any:
    """The attribute at the dotted ``path`` of ``gm``, or None."""
    owner_path, _, name = path.rpartition(".")
    owner: Any = _submodule_at(gm, owner_path) if owner_path else gm
    if owner is None:  # a path through attributes that are not modules: each step asked in turn
        owner = gm
        for atom in owner_path.split("."):
            owner = getattr(owner, atom, None)
    return getattr(owner, name, None)


def _taken(owner: torch.nn.Module, name: str) -> bool:
    """``hasattr(owner, name)``, without the AttributeError a free name costs (most names asked for are free)."""
    if type(owner).__getattr__ is not torch.nn.Module.__getattr__:  # attributes of its own making: ask it
        return hasattr(owner, name)
    return (
        name in owner.__dict__ or name in owner._modules or name in owner._parameters or name in owner._buffers
        or hasattr(type(owner), name)
    )


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
    while _taken(owner, name):
        index += 1
        name = f"{base}_{index}"
    owner.add_module(name, module)
    return f"{scope}.{name}" if scope else name
