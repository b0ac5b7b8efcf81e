"""From findings to edits: which expression becomes which module call, what ``__init__`` gains,
and, for each finding that source cannot fix, one line that says why.

A QR003 call site is found on the finding's line by what it calls, resolved the
way Python would (``F`` through the file's globals, ``self.act`` through the
module instance, ``x + y`` as ``operator.add``), and matched to the observed
op through the conversion table ``prepare`` uses. Constructor arguments come
from that table with the source's own literals; everything else stays a call
argument, written as the source wrote it.
"""

from __future__ import annotations

import ast
import builtins
import functools
import importlib
import inspect
import operator
import os
import re
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import libcst as cst
import torch
from libcst.metadata import MetadataWrapper, ParentNodeProvider, PositionProvider
from torch import nn

import qready.nn as qnn
from qready.conversions import lookup
from qready.findings import Finding
from qready.fixing.names import NameAllocator, context_name
from qready.nn.generic import TorchFunction
from qready.source import is_internal

__all__ = ["LIBRARY", "CallEdit", "FileEdits", "NotFixed", "Operand", "Plan", "plan_fixes"]

LIBRARY = "in library code: use `qready prepare`"
PREPARE = "`qready prepare` rewrites it in the graph instead"

_BINARY: dict[type[cst.BaseBinaryOp], Callable[..., Any]] = {
    cst.Add: operator.add, cst.Subtract: operator.sub, cst.Multiply: operator.mul,
    cst.Divide: operator.truediv, cst.FloorDivide: operator.floordiv, cst.Modulo: operator.mod,
    cst.Power: operator.pow, cst.MatrixMultiply: operator.matmul, cst.BitAnd: operator.and_,
    cst.BitOr: operator.or_, cst.BitXor: operator.xor,
}
_AUGMENTED: dict[type[cst.BaseAugOp], Callable[..., Any]] = {
    cst.AddAssign: operator.iadd, cst.SubtractAssign: operator.isub, cst.MultiplyAssign: operator.imul,
    cst.DivideAssign: operator.itruediv, cst.FloorDivideAssign: operator.ifloordiv,
    cst.ModuloAssign: operator.imod, cst.PowerAssign: operator.ipow, cst.BitAndAssign: operator.iand,
    cst.BitOrAssign: operator.ior, cst.BitXorAssign: operator.ixor,
}
_UNARY: dict[type[cst.BaseUnaryOp], Callable[..., Any]] = {cst.Minus: operator.neg, cst.BitInvert: operator.invert}
_COMPARISON: dict[type[cst.BaseCompOp], Callable[..., Any]] = {
    cst.GreaterThan: operator.gt, cst.GreaterThanEqual: operator.ge, cst.LessThan: operator.lt,
    cst.LessThanEqual: operator.le, cst.Equal: operator.eq, cst.NotEqual: operator.ne,
}
# An operand that is a Python number however the model runs: a size read from a shape, math.*.
_NUMBER = re.compile(
    r"[\w.]+\.(shape|ndim)(\[[^\[\]]+\])?|[\w.]+\.(size|dim|numel)\([^()]*\)|len\(.*\)|(math\.\w+|int|float)\(.*\)"
)
# Operator names that read badly as attributes.
_READABLE = {"truediv": "div", "and_": "bitwise_and", "or_": "bitwise_or", "xor": "bitwise_xor", "invert": "bitwise_not"}
_EXPRESSIONS = (cst.Call, cst.BinaryOperation, cst.UnaryOperation, cst.Comparison, cst.AugAssign)


@dataclass(frozen=True)
class NotFixed:
    """A finding that ``fix`` leaves alone, and why."""

    finding: Finding
    reason: str

    def line(self) -> str:
        return f"{self.finding.location}  {self.finding.code}  not fixed: {self.reason}"


@dataclass(frozen=True)
class Operand:
    """One argument of the new module call: a part of the original expression, or a literal."""

    slot: tuple[Any, ...] | None
    keyword: str | None = None
    code: str | None = None


@dataclass
class CallEdit:
    """Replace an expression (or an augmented assignment) by ``self.<name>(operands)``."""

    self_name: str
    name: str
    operands: list[Operand]


@dataclass
class FileEdits:
    """Everything that changes in one file, keyed by the original nodes of ``module``."""

    path: Path
    source: str
    module: cst.Module
    calls: dict[int, CallEdit] = field(default_factory=dict)
    renames: dict[int, str] = field(default_factory=dict)  # id(func Attribute) -> new attribute
    # id(statement) -> statements to add after it, each with the position of the call it serves:
    # they are written in the order the calls run (an inner call ends first)
    inserts: dict[int, list[tuple[tuple[int, int], str]]] = field(default_factory=dict)
    imports: list[str] = field(default_factory=list)
    new_inits: dict[int, str] = field(default_factory=dict)  # id(ClassDef) -> self name, for classes without __init__
    fixed: list[Finding] = field(default_factory=list)
    nodes: list[cst.CSTNode] = field(default_factory=list)  # keeps the ids above alive

    @property
    def changed(self) -> bool:
        return bool(self.calls or self.renames)


@dataclass
class Plan:
    files: dict[Path, FileEdits]
    not_fixed: list[NotFixed]
    ops_classes: list[type[nn.Module]]  # qready.nn classes an --ops-module must define

    @property
    def fixed(self) -> list[Finding]:
        return [f for edits in self.files.values() for f in edits.fixed]


class _Unfixable(Exception):
    """Why a finding cannot be fixed in source; the message is the reason."""


class _Slot:
    """A source argument that is not a literal: it stays an argument of the module call."""

    def __init__(self, slot: tuple[Any, ...]) -> None:
        self.slot = slot


@dataclass
class _Candidate:
    node: cst.CSTNode
    func: Callable[..., Any]
    args: list[tuple[tuple[Any, ...], cst.BaseExpression]]
    kwargs: dict[str, tuple[tuple[Any, ...], cst.BaseExpression]]


def plan_fixes(findings: Iterable[Finding], model: nn.Module, *, ops_module: str | None = None) -> Plan:
    """What to change in which file for each finding, and the reasons for the rest."""
    return _Planner(model, ops_module).plan(list(findings))


def user_file(file: str | None) -> bool:
    if file is None or file.startswith("<"):
        return False
    path = os.path.abspath(file)
    return not is_internal(path) and not any(part in path for part in ("site-packages", "dist-packages"))


class _Planner:
    def __init__(self, model: nn.Module, ops_module: str | None) -> None:
        self.model = model
        self.ops_module = Path(ops_module).resolve() if ops_module else None
        self.sources: dict[Path, _Source | _Unfixable] = {}
        self.allocators: dict[int, NameAllocator] = {}
        self.planned: set[int] = set()
        self.ops_classes: list[type[nn.Module]] = []
        self.runs: Counter[tuple[Any, ...]] = Counter()

    def plan(self, findings: list[Finding]) -> Plan:
        # how often each instance runs ops of one kind from one line (x.add and x.__radd__ are both Add)
        for finding in findings:
            if finding.code == "QR003":
                self.runs[(finding.file, finding.line, finding.module, _module_kind(finding.op))] += finding.count
        not_fixed: list[NotFixed] = []
        groups: dict[tuple[Any, ...], list[Finding]] = defaultdict(list)
        for finding in findings:
            if not user_file(finding.file):
                reason = LIBRARY if finding.file and not finding.file.startswith("<") else (
                    f"code generated at run time ({finding.file or 'no source file'}) has nothing to rewrite; {PREPARE}"
                )
                not_fixed.append(NotFixed(finding, reason))
            elif finding.code == "QR003":
                groups[("QR003", finding.file, finding.line, finding.op)].append(finding)
            elif finding.code == "QR004":
                sites = tuple(finding.detail("call_sites", ()) or ())
                groups[("QR004", sites, finding.module.rpartition(".")[2])].append(finding)
            elif finding.code == "QR005":
                not_fixed.append(NotFixed(finding, _signature_advice(finding)))
            else:
                not_fixed.append(NotFixed(finding, f"{finding.code} is not fixed in source: {finding.fix or 'see qready explain ' + finding.code}"))
        for key, group in groups.items():
            try:
                if key[0] == "QR003":
                    self._functional(group)
                else:
                    self._reused(group)
            except _Unfixable as why:
                not_fixed.extend(NotFixed(f, str(why)) for f in group)
        files = {path: s.edits for path, s in self.sources.items() if isinstance(s, _Source) and s.edits.changed}
        return Plan(files, not_fixed, self.ops_classes)

    # --- QR003 -------------------------------------------------------------------

    def _functional(self, group: list[Finding]) -> None:
        first = group[0]
        source = self._source(first.file)
        observed = _resolve(first.op)
        conversion = lookup(observed) if observed is not None else None
        if conversion is None:
            raise _Unfixable(f"qready has no module for {first.op}; move the call into a leaf module by hand, or use `qready prepare`")
        instance = self._instance(first.module)
        matched, indirect = [], []
        for node in source.by_line.get(first.line or 0, []):
            candidate = source.candidate(node, instance)
            if isinstance(candidate, str):
                indirect.append(candidate)
            elif candidate is not None and not source.on_numbers(candidate):
                found = lookup(candidate.func)
                if found is not None and found.module == conversion.module:
                    matched.append(candidate)
        if not matched:
            if indirect:
                raise _Unfixable(indirect[0])
            raise _Unfixable(f"no call of {first.op} is written on that line (it comes from code qready cannot follow); {PREPARE}")
        count = max(self.runs[(f.file, f.line, f.module, conversion.module)] for f in group)
        if count > len(matched):
            raise _Unfixable(
                f"it runs {count} times in one forward of {repr(first.module) if first.module else 'the model'} from {len(matched)} call "
                f"site(s) (a loop, or a method called more than once): one module there would be reused (QR004); "
                "`qready prepare` unrolls it"
            )
        if count < len(matched):  # some of them work on Python numbers, and source does not say which
            raise _Unfixable(
                f"{len(matched)} calls on that line could be the {count} that run on tensors; put the tensor "
                f"op on a line of its own, or {PREPARE}"
            )
        staged = [self._call_edit(source, candidate, instance) for candidate in matched if id(candidate.node) not in self.planned]
        for node, init_statement, statement, edit, imports in staged:
            self.planned.add(id(node))
            source.edits.calls[id(node)] = edit
            source.edits.inserts.setdefault(id(init_statement), []).append((source.end(node), statement))
            source.edits.nodes.extend([node, init_statement])
            for line in imports:
                if line not in source.edits.imports:
                    source.edits.imports.append(line)
        source.edits.fixed.extend(group)

    def _call_edit(self, source: _Source, candidate: _Candidate, instance: nn.Module | None) -> tuple[Any, ...]:
        function, cls = source.scope(candidate.node)
        self_name = _self_name(function)
        init_statement = source.super_init(cls, self_name)
        values: list[Any] = []
        literals: dict[tuple[type, str], str] = {}
        for slot, node in candidate.args:
            values.append(source.value(node, slot, literals))
        keywords = {name: source.value(node, slot, literals) for name, (slot, node) in candidate.kwargs.items()}
        conversion = lookup(candidate.func)
        assert conversion is not None  # matched by its conversion
        module, new_args, new_kwargs = conversion.build(values, keywords)
        if isinstance(module, TorchFunction):
            raise _Unfixable(
                "an argument the module needs as a fixed setting is computed at run time in the source; "
                f"write the module in __init__ by hand, or {PREPARE}"
            )
        class_ref, imports = self._class_reference(source, type(module))
        constructor = f"{class_ref}({_constructor_arguments(module, literals)})"
        operands = _operands(new_args, new_kwargs, literals)
        base = conversion.name[1:] if candidate.func in _AUGMENTED.values() else conversion.name
        base = _READABLE.get(base, base)
        allocator = self._allocator(source, cls, instance)
        name = allocator.op_name(base, source.context(candidate.node))
        statement = f"{self_name}.{name} = {constructor}"
        return candidate.node, init_statement, statement, CallEdit(self_name, name, operands), imports

    def _class_reference(self, source: _Source, cls: type[nn.Module]) -> tuple[str, list[str]]:
        if cls.__module__.startswith("torch.nn") and getattr(nn, cls.__name__, None) is cls:
            for name, value in source.globals.items():
                if value is nn:
                    return f"{name}.{cls.__name__}", []
            for name, value in source.globals.items():
                if value is torch:
                    return f"{name}.nn.{cls.__name__}", []
            return f"torch.nn.{cls.__name__}", ["import torch"]
        if getattr(qnn, cls.__name__, None) is not cls:
            raise _Unfixable(f"{cls.__qualname__} cannot be named from the source; {PREPARE}")
        if self.ops_module is not None:
            if self.ops_module.parent != source.path.parent:
                raise _Unfixable(f"--ops-module {str(self.ops_module)!r} is not in the directory of {source.path.name}; put it next to the model")
            stem = self.ops_module.stem
            if cls not in self.ops_classes:
                self.ops_classes.append(cls)
            package = (source.path.parent / "__init__.py").is_file()
            return f"{stem}.{cls.__name__}", [f"from . import {stem}" if package else f"import {stem}"]
        for name, value in source.globals.items():
            if value is qnn:
                return f"{name}.{cls.__name__}", []
        return f"qready.nn.{cls.__name__}", ["import qready.nn"]

    # --- QR004 -------------------------------------------------------------------

    def _reused(self, group: list[Finding]) -> None:
        first = group[0]
        if any(f.detail("holds_parameters") for f in group):
            raise _Unfixable(
                f"{first.module!r} holds weights: a second instance in source would have weights of its own "
                "(a different model, and a state_dict with new keys); `qready prepare` unrolls it with tied weights"
            )
        for finding in group:
            paths = finding.detail("paths", ()) or ()
            if len(paths) > 1:
                raise _Unfixable(
                    f"one instance is registered as {', '.join(repr(p) for p in paths)}: source cannot split it "
                    "without changing what each parent holds; `qready prepare` unrolls it"
                )
        attribute = first.module.rpartition(".")[2]
        sites: list[tuple[str, int]] = []
        for site in first.detail("call_sites", ()) or ():
            site_file, _, site_line = str(site).rpartition(":")
            sites.append((site_file, int(site_line)))
        files = {file for file, _ in sites}
        if len(files) != 1:
            raise _Unfixable(f"{first.module!r} is called from several files; {PREPARE}")
        source = self._source(files.pop())
        calls = []
        for _, line in sites:
            for node in source.by_line.get(line, []):
                if isinstance(node, cst.Call) and _is_self_attribute(node.func, attribute):
                    calls.append(node)
        count = max(f.count for f in group)
        if not calls:
            raise _Unfixable(f"no call of self.{attribute}(...) is written at its call sites; {PREPARE}")
        if count != len(calls):
            raise _Unfixable(
                f"{first.module!r} runs {count} times from {len(calls)} call site(s) (a call inside a loop): source "
                "cannot give each run its own module without unrolling the loop; `qready prepare` unrolls it"
            )
        scopes = {id(source.scope(call)[1]): source.scope(call) for call in calls}
        if len(scopes) != 1:
            raise _Unfixable(f"{first.module!r} is called from more than one class; {PREPARE}")
        function, cls = next(iter(scopes.values()))
        self_name = _self_name(function)
        if not all(_is_self_attribute(call.func, attribute, self_name) for call in calls):
            raise _Unfixable(f"self.{attribute} is not called through the method's own self; {PREPARE}")
        assignment = source.assignment(cls, attribute)
        constructor = source.module.code_for_node(assignment.body[0].value)  # type: ignore[attr-defined]  # libcst node types narrowed by the matcher above
        allocator = self._allocator(source, cls, self._instance(first.module.rpartition(".")[0]))
        statements = []
        for call in calls[1:]:
            name = allocator.copy_name(attribute)
            source.edits.renames[id(call.func)] = name
            source.edits.nodes.append(call.func)
            statements.append((source.end(call), f"{self_name}.{name} = {constructor}"))
        source.edits.inserts.setdefault(id(assignment), []).extend(statements)
        source.edits.nodes.append(assignment)
        source.edits.fixed.extend(group)

    # --- shared ------------------------------------------------------------------

    def _source(self, file: str | None) -> _Source:
        assert file is not None
        path = Path(file).resolve()
        if path not in self.sources:
            try:
                self.sources[path] = _Source(path)
            except _Unfixable as why:
                self.sources[path] = why
        loaded = self.sources[path]
        if isinstance(loaded, _Unfixable):
            raise loaded
        return loaded

    def _instance(self, path: str) -> nn.Module | None:
        try:
            return self.model.get_submodule(path) if path else self.model
        except AttributeError:
            return None

    def _allocator(self, source: _Source, cls: cst.ClassDef, instance: nn.Module | None) -> NameAllocator:
        allocator = self.allocators.get(id(cls))
        if allocator is None:
            taken = source.self_attributes | {
                s.name.value for s in cls.body.body if isinstance(s, cst.FunctionDef)
            }
            if instance is not None:
                taken |= set(dir(instance))
            allocator = self.allocators[id(cls)] = NameAllocator(taken)
            source.edits.nodes.append(cls)
        return allocator


class _Source:
    """One user file: its syntax tree with positions and parents, and its module's globals."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if not os.access(path, os.W_OK) or not path.stat().st_mode & 0o222 or not os.access(path.parent, os.W_OK):
            raise _Unfixable(f"{path.name} is read-only (or its directory is); make it writable to fix it")
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as error:
            raise _Unfixable(f"{path.name} is not UTF-8 (byte {error.start}); save it as UTF-8 to fix it") from error
        except OSError as error:
            raise _Unfixable(f"cannot read {path.name} ({error.strerror})") from error
        try:
            wrapper = MetadataWrapper(cst.parse_module(text), unsafe_skip_copy=True)
        except cst.ParserSyntaxError as error:
            raise _Unfixable(f"libcst cannot parse {path.name} ({str(error).splitlines()[0]})") from error
        self.module = wrapper.module
        self.positions = wrapper.resolve(PositionProvider)
        self.parents = wrapper.resolve(ParentNodeProvider)
        self.by_line: dict[int, list[cst.CSTNode]] = defaultdict(list)
        self.self_attributes: set[str] = set()
        for node, position in sorted(self.positions.items(), key=lambda item: (item[1].start.line, item[1].start.column)):
            if isinstance(node, _EXPRESSIONS):
                self.by_line[position.start.line].append(node)
            elif isinstance(node, cst.Attribute) and isinstance(node.value, cst.Name) and node.value.value == "self":
                self.self_attributes.add(node.attr.value)
        self.globals = _module_globals(path)
        self.edits = FileEdits(path, text, self.module)

    # Where a node sits.

    def end(self, node: cst.CSTNode) -> tuple[int, int]:
        position = self.positions[node].end
        return position.line, position.column

    def scope(self, node: cst.CSTNode) -> tuple[cst.FunctionDef, cst.ClassDef]:
        current: cst.CSTNode | None = node
        while True:
            current = self.parents.get(current)  # type: ignore[arg-type]  # parents maps nodes to nodes; the walk stops at None
            if current is None:
                raise _Unfixable(f"it is not inside a method of an nn.Module class; {PREPARE}")
            if isinstance(current, cst.Lambda):
                raise _Unfixable(f"it is inside a lambda, which has no module to hold a new layer; move the call into forward, or {PREPARE}")
            if isinstance(current, cst.FunctionDef):
                break
        block = self.parents.get(current)
        cls = self.parents.get(block) if block is not None else None
        if not isinstance(cls, cst.ClassDef):
            raise _Unfixable(f"it is in function {current.name.value}(), not a method of the module's class; {PREPARE}")
        return current, cls

    def super_init(self, cls: cst.ClassDef, self_name: str) -> cst.CSTNode:
        """The ``super().__init__(...)`` statement of the class's own ``__init__``; the class itself when
        it has none (one that passes every argument on is then written for it)."""
        init = next((s for s in cls.body.body if isinstance(s, cst.FunctionDef) and s.name.value == "__init__"), None)
        if init is None:
            self.edits.new_inits[id(cls)] = self_name
            return cls
        for statement in init.body.body:
            if isinstance(statement, cst.SimpleStatementLine) and any(_is_init_call(s) for s in statement.body):
                return statement
        raise _Unfixable(f"{cls.name.value}.__init__ has no super().__init__() call at its top level to add the module after")

    def assignment(self, cls: cst.ClassDef, attribute: str) -> cst.SimpleStatementLine:
        """The one ``self.<attribute> = SomeModule(...)`` statement in the class's ``__init__``."""
        found: list[cst.SimpleStatementLine] = []

        class Finder(cst.CSTVisitor):
            def visit_SimpleStatementLine(self, node: cst.SimpleStatementLine) -> None:
                for small in node.body:
                    if (
                        isinstance(small, cst.Assign)
                        and len(small.targets) == 1
                        and _is_self_attribute(small.targets[0].target, attribute)
                    ):
                        found.append(node)

        init = next((s for s in cls.body.body if isinstance(s, cst.FunctionDef) and s.name.value == "__init__"), None)
        if init is not None:
            init.visit(Finder())
        if len(found) != 1:
            raise _Unfixable(
                f"self.{attribute} is not assigned exactly once in {cls.name.value}.__init__, so qready cannot tell "
                f"how to build a second one; {PREPARE}"
            )
        value = found[0].body[0].value  # type: ignore[attr-defined]  # libcst node types narrowed by the matcher above
        if not isinstance(value, cst.Call) or len(found[0].body) != 1:
            raise _Unfixable(
                f"self.{attribute} is not built by a call in __init__ ({self.module.code_for_node(value)}), so a "
                f"second instance cannot be written; {PREPARE}"
            )
        return found[0]

    def context(self, node: cst.CSTNode) -> str | None:
        """A name the code gives the value: the variable it is assigned to, or a named operand."""
        parent = self.parents.get(node)
        assigned = None
        if isinstance(parent, cst.Assign) and len(parent.targets) == 1 and isinstance(parent.targets[0].target, cst.Name):
            assigned = parent.targets[0].target.value
        if isinstance(node, cst.AugAssign) and isinstance(node.target, cst.Name):
            assigned = node.target.value
        operand = None
        right = node.right if isinstance(node, cst.BinaryOperation) else node.value if isinstance(node, cst.AugAssign) else None
        if isinstance(right, cst.Name):
            operand = right.value
        elif isinstance(right, cst.Attribute) and isinstance(right.value, cst.Name) and right.value.value == "self":
            operand = right.attr.value
        return context_name(assigned, operand)

    # What a node calls.

    def candidate(self, node: cst.CSTNode, instance: nn.Module | None) -> _Candidate | str | None:
        """The call a node makes, a reason it cannot be followed (a str), or None (not a call of interest)."""
        if isinstance(node, cst.BinaryOperation) and type(node.operator) in _BINARY:
            return _Candidate(node, _BINARY[type(node.operator)], [(("left",), node.left), (("right",), node.right)], {})
        if isinstance(node, cst.AugAssign) and type(node.operator) in _AUGMENTED:
            if not isinstance(node.target, cst.Name):
                return f"the augmented assignment to {self.module.code_for_node(node.target)} cannot be rewritten as a call; {PREPARE}"
            return _Candidate(node, _AUGMENTED[type(node.operator)], [(("target",), node.target), (("value",), node.value)], {})
        if isinstance(node, cst.UnaryOperation) and type(node.operator) in _UNARY:
            if _is_literal_code(self.module.code_for_node(node)):
                return None
            return _Candidate(node, _UNARY[type(node.operator)], [(("expression",), node.expression)], {})
        if isinstance(node, cst.Comparison) and len(node.comparisons) == 1 and type(node.comparisons[0].operator) in _COMPARISON:
            target = node.comparisons[0]
            return _Candidate(node, _COMPARISON[type(target.operator)], [(("left",), node.left), (("comparator",), target.comparator)], {})
        if isinstance(node, cst.Call):
            return self._call(node, instance)
        return None

    def on_numbers(self, candidate: _Candidate) -> bool:
        """An operator whose operands are plainly Python numbers (``h * w`` of ``x.shape``, literals)."""
        if not isinstance(candidate.node, (cst.BinaryOperation, cst.UnaryOperation, cst.Comparison)):
            return False
        codes = [self.module.code_for_node(node) for _, node in candidate.args]
        return all(_is_literal_code(code) or _NUMBER.fullmatch(code.strip().strip("()").strip()) for code in codes)

    def _call(self, node: cst.Call, instance: nn.Module | None) -> _Candidate | str | None:
        callee = self._callee(node, instance)
        if not isinstance(callee, tuple):
            return callee
        func, receiver = callee
        args: list[tuple[tuple[Any, ...], cst.BaseExpression]] = []
        if receiver:
            args.append((("receiver",), node.func.value))  # type: ignore[attr-defined]  # libcst node types narrowed by the matcher above
        kwargs: dict[str, tuple[tuple[Any, ...], cst.BaseExpression]] = {}
        for index, arg in enumerate(node.args):
            if arg.star:
                return f"the call unpacks arguments with {arg.star}, so its arguments are only known at run time; {PREPARE}"
            if arg.keyword is not None:
                kwargs[arg.keyword.value] = (("arg", index), arg.value)
            else:
                args.append((("arg", index), arg.value))
        return _Candidate(node, func, args, kwargs)

    def _callee(self, node: cst.Call, instance: nn.Module | None) -> tuple[Callable[..., Any], bool] | str | None:
        chain: list[str] = []
        expr: cst.BaseExpression = node.func
        while isinstance(expr, cst.Attribute):
            chain.insert(0, expr.attr.value)
            expr = expr.value
        if isinstance(expr, cst.Call) and isinstance(expr.func, cst.Name) and expr.func.value == "getattr" and not chain:
            return f"the function is looked up with getattr(...) at run time, so the source does not say which op it is; {PREPARE}"
        if not isinstance(expr, cst.Name):
            return _tensor_method(chain[-1]) if len(chain) == 1 else None  # (x @ y).softmax(-1)
        function = self._enclosing_function(node)
        local_names = _local_names(function) if function is not None else set()
        self_name = _self_name(function) if function is not None else None
        root = expr.value
        if root == self_name:
            obj: Any = instance
        elif root in local_names:
            if chain:
                return _tensor_method(chain[-1]) if len(chain) == 1 else None
            return f"it is called through the local variable {root!r}, so the source does not say which op it is; {PREPARE}"
        elif root in self.globals:
            obj = self.globals[root]
        elif hasattr(builtins, root):
            obj = getattr(builtins, root)
        else:
            return None
        for index, attribute in enumerate(chain):
            if isinstance(obj, torch.Tensor):
                return _tensor_method(attribute) if index == len(chain) - 1 else None
            obj = getattr(obj, attribute, None)
            if obj is None:
                return None
        if isinstance(obj, functools.partial):
            return f"it is called through functools.partial ({self.module.code_for_node(node.func)}), which a module constructor cannot take apart; {PREPARE}"
        if isinstance(obj, nn.Module) or not callable(obj):
            return None
        return obj, False

    def _enclosing_function(self, node: cst.CSTNode) -> cst.FunctionDef | None:
        current: cst.CSTNode | None = node
        while current is not None and not isinstance(current, cst.FunctionDef):
            current = self.parents.get(current)
        return current

    def value(self, node: cst.BaseExpression, slot: tuple[Any, ...], literals: dict[tuple[type, str], str]) -> Any:
        """The literal a source argument spells (remembering its spelling), or a ``_Slot``."""
        code = self.module.code_for_node(node).strip()
        try:
            value = ast.literal_eval(code)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            value = _dotted_constant(code, self.globals)
            if value is None:
                return _Slot(slot)
        literals.setdefault((type(value), repr(value)), code)
        return value


def _module_kind(op: str) -> str | None:
    func = _resolve(op)
    conversion = lookup(func) if func is not None else None
    return conversion.module if conversion is not None else None


def _signature_advice(finding: Finding) -> str:
    """QR005: what to change by hand, from what the check saw at the boundary."""
    values = finding.detail("values", ()) or ()
    seen = "; ".join(f"{v['side']} {v['path']} is {v['description']}" for v in values) or finding.message
    if all(v.get("kind") == "scalar" for v in values) and values:
        return f"signatures are not rewritten automatically ({seen}): {finding.fix}"
    advice = []
    if any(v["side"] == "input" for v in values):
        advice.append("take each tensor as its own forward argument")
    if any(v["side"] == "output" for v in values):
        advice.append("return a tensor or a tuple of tensors")
    todo = " and ".join(advice) or finding.fix
    return f"signatures are not rewritten automatically ({seen}): {todo}; `qready prepare` flattens them in the graph"


def _module_globals(path: Path) -> dict[str, Any]:
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        if file and os.path.realpath(file) == os.path.realpath(path):
            return vars(module)
    return {}


def _tensor_method(name: str) -> tuple[Callable[..., Any], bool] | None:
    method = getattr(torch.Tensor, name, None)
    return (method, True) if method is not None and lookup(method) is not None else None


def _dotted_constant(code: str, namespace: dict[str, Any]) -> Any:
    """``torch.float32`` and the like: constants spelled as names."""
    parts = code.split(".")
    if not all(p.isidentifier() for p in parts) or parts[0] not in namespace:
        return None
    obj: Any = namespace[parts[0]]
    for part in parts[1:]:
        obj = getattr(obj, part, None)
    return obj if isinstance(obj, (torch.dtype, torch.memory_format)) else None


def _is_literal_code(code: str) -> bool:
    try:
        ast.literal_eval(code.strip())
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return False
    return True


def _resolve(path: str) -> Callable[..., Any] | None:
    """``torch.Tensor.add`` -> the callable (by importing the longest module prefix)."""
    parts = path.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for part in parts[cut:]:
            obj = getattr(obj, part, None)
            if obj is None:
                return None
        return obj
    return None


def _self_name(function: cst.FunctionDef) -> str:
    params = function.params.params
    if not params:
        raise _Unfixable(f"{function.name.value}() has no self parameter; {PREPARE}")
    return params[0].name.value


def _is_self_attribute(node: cst.CSTNode, attribute: str, self_name: str = "self") -> bool:
    return (
        isinstance(node, cst.Attribute)
        and node.attr.value == attribute
        and isinstance(node.value, cst.Name)
        and node.value.value == self_name
    )


def _is_init_call(small: cst.BaseSmallStatement) -> bool:
    """``super().__init__(...)``, ``super(Cls, self).__init__(...)`` or ``Base.__init__(self, ...)``."""
    if not isinstance(small, cst.Expr) or not isinstance(small.value, cst.Call):
        return False
    func = small.value.func
    return isinstance(func, cst.Attribute) and func.attr.value == "__init__"


def _local_names(function: cst.FunctionDef) -> set[str]:
    names = {p.name.value for p in [*function.params.params, *function.params.kwonly_params, *function.params.posonly_params]}
    for star in (function.params.star_arg, function.params.star_kwarg):
        if isinstance(star, cst.Param):
            names.add(star.name.value)

    class Targets(cst.CSTVisitor):
        def _add(self, target: cst.BaseExpression) -> None:
            if isinstance(target, cst.Name):
                names.add(target.value)
            elif isinstance(target, (cst.Tuple, cst.List)):
                for element in target.elements:
                    self._add(element.value)
            elif isinstance(target, cst.StarredElement):
                self._add(target.value)

        def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
            self._add(node.target)

        def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
            self._add(node.target)

        def visit_AugAssign(self, node: cst.AugAssign) -> None:
            self._add(node.target)

        def visit_For(self, node: cst.For) -> None:
            self._add(node.target)

        def visit_CompFor(self, node: cst.CompFor) -> None:
            self._add(node.target)

        def visit_AsName(self, node: cst.AsName) -> None:
            self._add(node.name)

        def visit_NamedExpr(self, node: cst.NamedExpr) -> None:
            self._add(node.target)

    function.body.visit(Targets())
    return names


def _operands(
    new_args: tuple[Any, ...], new_kwargs: dict[str, Any], literals: dict[tuple[type, str], str]
) -> list[Operand]:
    """The module call's arguments: parts of the original expression, or literals as the source spells them."""

    def operand(value: Any, keyword: str | None) -> Operand:
        if isinstance(value, _Slot):
            return Operand(value.slot, keyword)
        return Operand(None, keyword, literals.get((type(value), repr(value))) or _literal_code(value))

    return [operand(v, None) for v in new_args] + [operand(v, k) for k, v in new_kwargs.items()]


def _literal_code(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        inner = ", ".join(_literal_code(v) for v in value)
        return f"({inner},)" if isinstance(value, tuple) and len(value) == 1 else (f"({inner})" if isinstance(value, tuple) else f"[{inner}]")
    return repr(value)


def _constructor_arguments(module: nn.Module, literals: dict[tuple[type, str], str]) -> str:
    """``dim=-1`` for ``nn.Softmax(dim=-1)``: the settings that differ from the defaults, in the
    source's own spelling; checked by building the module again from them."""
    signature = inspect.signature(type(module).__init__)
    parts: list[str] = []
    values: dict[str, Any] = {}
    positional = True
    for parameter in list(signature.parameters.values())[1:]:
        if parameter.kind not in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY):
            continue
        if not hasattr(module, parameter.name):
            raise _Unfixable(f"{type(module).__name__} keeps no attribute {parameter.name!r}; {PREPARE}")
        value = getattr(module, parameter.name)
        values[parameter.name] = value
        if parameter.default is not parameter.empty and type(value) is type(parameter.default) and value == parameter.default:
            positional = False
            continue
        code = literals.get((type(value), repr(value))) or _literal_code(value)
        if positional and parameter.default is parameter.empty and parameter.kind is parameter.POSITIONAL_OR_KEYWORD:
            parts.append(code)
        else:
            positional = False
            parts.append(f"{parameter.name}={code}")
    rebuilt = type(module)(**values)
    if repr(rebuilt) != repr(module) or _settings(rebuilt) != _settings(module):
        raise _Unfixable(f"{type(module).__name__} cannot be rebuilt from its constructor arguments; {PREPARE}")
    return ", ".join(parts)


def _settings(module: nn.Module) -> dict[str, Any]:
    return {k: v for k, v in vars(module).items() if not k.startswith("_") and k != "training"}
