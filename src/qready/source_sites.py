"""A leaf's call sites read from its source, for the branches the example did not take.

``qready.dispatch`` gives each call site met in one eager run its own module.
A site in a branch the example did not take would keep running where no
module wraps it, while the report says nothing remains. Here the source of a
leaf's ``forward`` (and of the methods and the user's own functions it calls)
is parsed, and every call that names a value-changing torch op is found with
its line: ``F.relu(x)``, ``torch.cat(...)``, ``x.sigmoid()``, ``a + b``,
``-x``. Each becomes a site the dispatch mode routes through a module of its
own, whichever input reaches it. A call whose target cannot be told from the
source (``self.act(x)`` where ``act`` is a function held by the module is
resolved from the module; ``fn(x)`` with ``fn`` a local name is not) is
reported with its line, as a finding ``prepare`` left behind.
"""

from __future__ import annotations

import ast
import builtins
import functools
import inspect
import operator
import textwrap
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from qready.ops import changes_values
from qready.source import is_internal

__all__ = ["SourceSite", "UnresolvedCall", "source_sites"]

_MAX_DEPTH = 4  # forward -> method -> helper -> helper: deeper calls are another module's business


@dataclass(frozen=True)
class SourceSite:
    """A value-changing torch call written in a leaf's code."""

    module_name: str  # the Python module's __name__ the function is written in
    qualname: str  # the function's qualified name
    offset: int  # line, counted from the function's first line (as qready.dispatch keys sites)
    func: Callable[..., Any]  # the callable a torch function mode sees there
    file: str
    line: int


@dataclass(frozen=True)
class UnresolvedCall:
    """A call in a leaf's code whose target cannot be told from the source."""

    text: str
    file: str
    line: int


def source_sites(owner: torch.nn.Module) -> tuple[list[SourceSite], list[UnresolvedCall]]:
    """Every value-changing torch call in ``owner``'s forward and the code it calls, and the calls
    that cannot be resolved. Code qready cannot read (no source, a library) yields nothing."""
    sites: list[SourceSite] = []
    unresolved: list[UnresolvedCall] = []
    seen: set[Any] = set()
    _walk(type(owner).forward, owner, 0, seen, sites, unresolved, method=True)
    return sites, unresolved


def _walk(
    function: Any, owner: torch.nn.Module, depth: int, seen: set[Any],
    sites: list[SourceSite], unresolved: list[UnresolvedCall], *, method: bool = False,
) -> None:
    if isinstance(function, types.MethodType):
        function, method = function.__func__, function.__self__ is owner
    function = inspect.unwrap(function)
    code = getattr(function, "__code__", None)
    if code is None or code in seen or depth > _MAX_DEPTH or is_internal(code.co_filename) or _is_library(code.co_filename):
        return
    seen.add(code)
    tree = _parsed(function)
    if tree is None:
        return
    source_lines, first_line = tree
    arguments = code.co_varnames[: code.co_argcount]
    namespace = _Namespace(function, owner, arguments[0] if method and arguments else None)
    module_name = function.__globals__.get("__name__", "")
    qualname = getattr(code, "co_qualname", code.co_name)
    bindings = _bindings(source_lines)
    local_names = set(bindings)

    def site(func: Callable[..., Any], node: ast.AST) -> None:
        line = first_line + node.lineno - 1  # type: ignore[attr-defined]  # every expression node has a line
        sites.append(SourceSite(module_name, qualname, line - code.co_firstlineno, func, code.co_filename, line))

    for node in _own_nodes(source_lines):
        if isinstance(node, ast.Call):
            target = namespace.resolve(node.func, local_names)
            if target is _LOCAL:
                target = _local_value(node.func, bindings, namespace, local_names)
            if target is _LOCAL:
                line = first_line + node.lineno - 1
                unresolved.append(UnresolvedCall(ast.unparse(node.func), code.co_filename, line))
            elif isinstance(target, _Method):
                func = getattr(torch.Tensor, target.name, None)
                if func is not None and callable(func) and changes_values(func):
                    site(func, node)
            elif _is_torch_op(target):
                site(target, node)
            elif isinstance(target, (types.FunctionType, types.MethodType)):
                _walk(target, owner, depth + 1, seen, sites, unresolved)
        elif _constant(node):  # -1e9, 2 ** 8: Python computes those on numbers, never on a tensor
            continue
        elif isinstance(node, (ast.BinOp, ast.AugAssign)):
            reflected = isinstance(node, ast.BinOp) and isinstance(node.left, ast.Constant)
            func = _operators().get((type(node.op), isinstance(node, ast.AugAssign), reflected))
            if func is not None:
                site(func, node)
        elif isinstance(node, ast.Compare) and len(node.ops) == 1:  # x > 0; a chain a < b < c is Python's
            reflected = isinstance(node.left, ast.Constant)
            func = _operators().get((type(node.ops[0]), False, reflected))
            if func is not None:
                site(func, node)
        elif isinstance(node, ast.UnaryOp):
            func = _operators().get((type(node.op), False, False))
            if func is not None:
                site(func, node)


def _constant(node: ast.AST) -> bool:
    """An expression of literals alone (``-1e9``, ``2 ** 8``)."""
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.UnaryOp):
        return _constant(node.operand)
    if isinstance(node, ast.BinOp):
        return _constant(node.left) and _constant(node.right)
    return False


def _is_library(filename: str) -> bool:
    return any(part in filename for part in ("site-packages", "dist-packages"))


def _is_torch_op(target: Any) -> bool:
    if target is None or isinstance(target, (type, torch.nn.Module)) or not callable(target):
        return False
    module = getattr(target, "__module__", None) or ""
    packet = isinstance(target, (torch._ops.OpOverloadPacket, torch._ops.OpOverload))
    return (packet or module.startswith("torch") or module == "" or target in _TORCH_BUILTINS) and changes_values(target)


_TORCH_BUILTINS = frozenset(v for v in vars(torch).values() if isinstance(v, types.BuiltinFunctionType))


def _parsed(function: Any) -> tuple[ast.AST, int] | None:
    try:
        lines, first_line = inspect.getsourcelines(function)
        return ast.parse(textwrap.dedent("".join(lines))), first_line
    except (OSError, TypeError, SyntaxError, IndentationError):  # no source on disk, or not Python we can read
        return None


def _own_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """The nodes of the (one) function in ``tree``, not those of functions or classes nested in it:
    their code has a qualified name of its own."""
    function = next((n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))), None)
    if function is None:
        return
    todo: list[ast.AST] = list(function.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        yield node
        todo.extend(ast.iter_child_nodes(node))


def _bindings(tree: ast.AST) -> dict[str, list[ast.AST | None]]:
    """Names bound inside the function, each with what it is bound to: the assigned expression, the
    iterable of a loop (``for layer in self.layers``), or None (an argument, anything else)."""
    bound: dict[str, list[ast.AST | None]] = {}
    described: set[int] = set()  # target names whose binding is noted with its value
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            bound.setdefault(node.targets[0].id, []).append(node.value)
            described.add(id(node.targets[0]))
        elif isinstance(node, ast.For) and isinstance(node.target, ast.Name):
            bound.setdefault(node.target.id, []).append(ast.Subscript(node.iter, ast.Constant(0), ast.Load()))
            described.add(id(node.target))
    for node in ast.walk(tree):
        if id(node) in described:
            continue
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            bound.setdefault(node.id, []).append(None)
        elif isinstance(node, ast.arg):
            bound.setdefault(node.arg, []).append(None)
    return bound


def _local_value(
    func: ast.AST, bindings: dict[str, list[ast.AST | None]], namespace: _Namespace, local_names: set[str],
) -> Any:
    """What a call through a local name calls, when every binding of the name says the same: a
    module (``layer = self.blocks[i]``), a function (``act = F.gelu``); else ``_LOCAL``."""
    if not isinstance(func, ast.Name):
        return _LOCAL
    values = []
    for expression in bindings.get(func.id, [None]):
        if expression is None:
            return _LOCAL
        if isinstance(expression, ast.Subscript):  # an element of a container: the module list's first
            container = namespace.resolve(expression.value, local_names - {func.id})
            if isinstance(container, torch.nn.Module):
                values.append(torch.nn.Module)  # calling one of its children: a module call
                continue
            return _LOCAL
        value = namespace.resolve(expression, local_names - {func.id})
        if isinstance(value, torch.nn.Module):
            value = torch.nn.Module
        values.append(value)
    if not values or any(v is None or v is _LOCAL or isinstance(v, _Method) for v in values):
        return _LOCAL
    return values[0] if all(v is values[0] for v in values) else _LOCAL


_LOCAL = object()  # a call through a name only known at run time


@dataclass(frozen=True)
class _Method:
    """``value.name(...)`` on a value only known at run time: a tensor method, if torch has one."""

    name: str


class _Namespace:
    """What a name in a function's source refers to: its globals, builtins, and ``self``."""

    def __init__(self, function: Any, owner: torch.nn.Module, self_name: str | None) -> None:
        self.self_name = self_name
        self.globals = function.__globals__
        self.closure = {
            name: cell.cell_contents
            for name, cell in zip(function.__code__.co_freevars, function.__closure__ or ())
            if _has_contents(cell)
        }
        self.owner = owner

    def resolve(self, node: ast.AST, local_names: set[str]) -> Any:
        if isinstance(node, ast.Name):
            if node.id == self.self_name:
                return self.owner
            if node.id in local_names:
                return _LOCAL
            for scope in (self.closure, self.globals, vars(builtins)):
                if node.id in scope:
                    return scope[node.id]
            return None
        if isinstance(node, ast.Attribute):
            if isinstance(node.value, ast.Name) and node.value.id in local_names and node.value.id != self.self_name:
                return _Method(node.attr)
            base = self.resolve(node.value, local_names)
            if base is None or base is _LOCAL or isinstance(base, _Method):
                return _Method(node.attr)  # ``self.conv(x).relu()``, ``x.sum(1).sigmoid()``
            if isinstance(base, torch.nn.Module):
                value = base._modules.get(node.attr) if node.attr in base._modules else _instance_attribute(base, node.attr)
                return value
            try:
                return getattr(base, node.attr)
            except Exception:  # a property that fails outside a forward: nothing to resolve
                return None
        if isinstance(node, ast.Call):
            return _Method("")  # ``f(x)(y)``, ``super().forward(x)``: its result, a value
        return None


def _instance_attribute(module: torch.nn.Module, name: str) -> Any:
    """``self.name`` as Python finds it, without running properties (they may need a forward)."""
    if name in vars(module):
        return vars(module)[name]
    for cls in type(module).__mro__:
        if name in vars(cls):
            value = vars(cls)[name]
            if isinstance(value, property):
                return None
            if isinstance(value, (types.FunctionType, staticmethod, classmethod)):
                return getattr(module, name)
            return value
    return None


def _has_contents(cell: Any) -> bool:
    try:
        cell.cell_contents
    except ValueError:  # an empty cell: the name is not bound yet
        return False
    return True


@functools.cache
def _operators() -> dict[tuple[type, bool, bool], Callable[..., Any]]:
    """What a torch function mode sees for each Python operator on tensors, asked of torch:
    (ast operator, augmented, constant on the left) -> the callable."""
    binary = {
        ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
        ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow, ast.MatMult: operator.matmul,
        ast.BitAnd: operator.and_, ast.BitOr: operator.or_, ast.BitXor: operator.xor,
        ast.Gt: operator.gt, ast.Lt: operator.lt, ast.GtE: operator.ge, ast.LtE: operator.le,
        ast.Eq: operator.eq, ast.NotEq: operator.ne,
    }
    in_place: dict[type, Callable[[Any, Any], Any]] = {
        ast.Add: operator.iadd, ast.Sub: operator.isub, ast.Mult: operator.imul, ast.Div: operator.itruediv,
        ast.FloorDiv: operator.ifloordiv, ast.Mod: operator.imod, ast.Pow: operator.ipow, ast.MatMult: operator.imatmul,
        ast.BitAnd: operator.iand, ast.BitOr: operator.ior, ast.BitXor: operator.ixor,
    }
    unary: dict[type, Callable[[Any], Any]] = {ast.USub: operator.neg, ast.Invert: operator.invert}
    found: dict[tuple[type, bool, bool], Callable[..., Any]] = {}
    for sample in (torch.ones(2, 2), torch.ones(2, 2, dtype=torch.bool)):
        for op, func in binary.items():
            for key, run in (
                ((op, False, False), lambda f=func: f(sample, sample)),
                ((op, False, True), lambda f=func: f(2, sample)),
                ((op, True, False), lambda f=in_place.get(op): f(sample.clone(), sample) if f else None),
            ):
                seen = _first_seen(run)
                if seen is not None:
                    found.setdefault(key, seen)
        for unary_op, negate in unary.items():
            seen = _first_seen(functools.partial(negate, sample))
            if seen is not None:
                found.setdefault((unary_op, False, False), seen)
    return {key: func for key, func in found.items() if changes_values(func)}


def _first_seen(run: Callable[[], Any]) -> Callable[..., Any] | None:
    seen: list[Callable[..., Any]] = []

    class Recorder(TorchFunctionMode):
        def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            seen.append(func)
            return func(*args, **(kwargs or {}))

    try:
        with Recorder():
            run()
    except Exception:  # noqa: BLE001 - an operator this dtype does not support
        return None
    return next((f for f in seen if f is not torch.Tensor.clone), None)
