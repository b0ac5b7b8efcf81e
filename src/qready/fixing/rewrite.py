"""Apply a file's edits to its concrete syntax tree: everything not edited stays byte for byte."""

from __future__ import annotations

import difflib
from typing import Any

import libcst as cst

from qready.fixing.plan import CallEdit, FileEdits

__all__ = ["rewrite", "unified_diff"]


def rewrite(edits: FileEdits) -> str:
    """The new text of ``edits.path``."""
    return edits.module.visit(_Rewriter(edits)).code


def unified_diff(old: str, new: str, name: str) -> str:
    lines = difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True), fromfile=f"a/{name}", tofile=f"b/{name}"
    )
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)


class _Rewriter(cst.CSTTransformer):
    def __init__(self, edits: FileEdits) -> None:
        super().__init__()
        self.edits = edits

    def on_leave(self, original_node: Any, updated_node: Any) -> Any:
        key = id(original_node)
        if key in self.edits.calls:
            return self._call(updated_node, self.edits.calls[key])
        if key in self.edits.renames:
            return updated_node.with_changes(attr=cst.Name(self.edits.renames[key]))
        if isinstance(original_node, cst.IndentedBlock):
            return self._insert(original_node, updated_node)
        if isinstance(original_node, cst.ClassDef) and id(original_node) in self.edits.new_inits:
            return self._new_init(original_node, updated_node)
        if isinstance(original_node, cst.Module):
            return self._imports(updated_node)
        return updated_node

    def _call(self, updated: Any, edit: CallEdit) -> Any:
        func = cst.parse_expression(f"{edit.self_name}.{edit.name}")
        reused = _reused_arguments(updated, edit)
        if reused is not None:  # the call's own arguments, with their comments and line breaks
            return updated.with_changes(func=func, args=reused)
        parts = []
        for operand in edit.operands:
            if operand.slot is None:
                code = operand.code or ""
            else:
                code = self.edits.module.code_for_node(_part(updated, operand.slot))
            parts.append(f"{operand.keyword}={code}" if operand.keyword else code)
        call = cst.parse_expression(f"{edit.self_name}.{edit.name}({', '.join(parts)})")
        if isinstance(updated, cst.AugAssign):  # x += y  ->  x = self.add(x, y), in place as before
            return cst.Assign(targets=[cst.AssignTarget(updated.target)], value=call)
        return call

    def _insert(self, original: cst.IndentedBlock, updated: cst.IndentedBlock) -> cst.IndentedBlock:
        if not any(id(s) in self.edits.inserts for s in original.body):
            return updated
        body: list[Any] = []
        for before, after in zip(original.body, updated.body):
            body.append(after)
            added = sorted(self.edits.inserts.get(id(before), ()), key=lambda item: item[0])
            body.extend(cst.parse_statement(code + "\n") for _, code in added)
        return updated.with_changes(body=body)

    def _new_init(self, original: cst.ClassDef, updated: cst.ClassDef) -> cst.ClassDef:
        """``def __init__(self, *args, **kwargs): super().__init__(*args, **kwargs)`` and the new modules,
        first in the class body (after its docstring)."""
        me = self.edits.new_inits[id(original)]
        added = sorted(self.edits.inserts.get(id(original), ()), key=lambda item: item[0])
        code = f"def __init__({me}, *args, **kwargs):\n    super().__init__(*args, **kwargs)\n"
        code += "".join(f"    {statement}\n" for _, statement in added)
        init = cst.parse_statement(code)
        body = list(updated.body.body)
        at = 1 if body and _is_docstring(body[0]) else 0
        if at < len(body) and not body[at].leading_lines:  # type: ignore[attr-defined]
            body[at] = body[at].with_changes(leading_lines=[cst.EmptyLine(indent=False)])
        body.insert(at, init)
        return updated.with_changes(body=updated.body.with_changes(body=body))

    def _imports(self, module: cst.Module) -> cst.Module:
        present = {module.code_for_node(s).strip() for s in module.body}
        missing = [line for line in self.edits.imports if line not in present]
        if not missing:
            return module
        at = 0
        for index, statement in enumerate(module.body):
            if isinstance(statement, (cst.ClassDef, cst.FunctionDef)):
                break
            if isinstance(statement, cst.SimpleStatementLine) and all(
                isinstance(s, (cst.Import, cst.ImportFrom)) for s in statement.body
            ):
                at = index + 1
            elif index == 0 and _is_docstring(statement):
                at = 1
        body = list(module.body)
        body[at:at] = [cst.parse_statement(line + "\n") for line in missing]
        return module.with_changes(body=body)


def _part(node: Any, slot: tuple[Any, ...]) -> cst.CSTNode:
    kind = slot[0]
    if kind == "arg":
        return node.args[slot[1]].value
    if kind == "receiver":
        return node.func.value
    if kind == "comparator":
        return node.comparisons[0].comparator
    return getattr(node, kind)  # left, right, expression, target, value


def _reused_arguments(updated: Any, edit: CallEdit) -> list[cst.Arg] | None:
    """When the module takes some of a call's own arguments, in order and spelled the same way."""
    if not isinstance(updated, cst.Call) or not edit.operands:
        return None
    indices = []
    for operand in edit.operands:
        if operand.slot is None or operand.slot[0] != "arg":
            return None
        arg = updated.args[operand.slot[1]]
        if (arg.keyword.value if arg.keyword else None) != operand.keyword:
            return None
        indices.append(operand.slot[1])
    if indices != sorted(indices):
        return None
    kept = [updated.args[i] for i in indices]
    last = updated.args[-1]
    kept[-1] = kept[-1].with_changes(comma=last.comma, whitespace_after_arg=last.whitespace_after_arg)
    return kept


def _is_docstring(statement: cst.CSTNode) -> bool:
    return (
        isinstance(statement, cst.SimpleStatementLine)
        and len(statement.body) == 1
        and isinstance(statement.body[0], cst.Expr)
        and isinstance(statement.body[0].value, (cst.SimpleString, cst.ConcatenatedString))
    )
