"""One instrumented eager forward: every op call, module call and module I/O.

A ``TorchFunctionMode`` sees each torch function, tensor method and operator at
the outermost level (``F.relu``, not the ``torch.relu`` inside it); per-module
hooks keep a stack of the module calls in flight. Together they say which
module's forward each op ran in and which user line made each call. Because
nothing is traced or compiled, this works on any model that runs.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from qready.dataflow import OpCall, ValueFlow
from qready.example_inputs import Example
from qready.guard import blame_forward, require_tensor_output
from qready.namespaces import model_namespaces, script_functions_in_python
from qready.ops import has_tensor, is_leaf_module, is_value_changing, op_name
from qready.source import call_through, user_location
from qready.structure import map_leaves

__all__ = [
    "Observation", "OpSite", "ModuleCall", "IOIssue", "observe",
]


@dataclass
class OpSite:
    """Every call of one op from one source line inside one non-leaf module."""

    op: str
    module: str
    file: str | None
    line: int | None
    func: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    count: int = 0
    feeds_values: bool = True  # False: every result only decided a Python branch or was a boolean mask


@dataclass
class ModuleCall:
    """One call of a registered module."""

    index: int
    module_id: int
    path: str
    parent: int | None
    file: str | None
    line: int | None


@dataclass(frozen=True)
class IOIssue:
    """A non-tensor value crossing a module boundary."""

    module: str
    module_type: str
    side: str  # "input" or "output"
    value_path: str
    kind: str  # "dict", "list", "None", "str", "scalar", ...
    description: str

    @property
    def is_scalar(self) -> bool:
        return self.kind == "scalar"


@dataclass
class Observation:
    """What one forward did."""

    output: Any
    op_sites: list[OpSite]
    covered_ops: int
    total_ops: int
    module_calls: list[ModuleCall]
    io_issues: list[IOIssue]
    paths: dict[int, list[str]]
    modules: dict[int, torch.nn.Module] = field(repr=False)


class _Recorder(TorchFunctionMode):
    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[ModuleCall, bool]] = []  # (call, is_leaf)
        self.sites: dict[tuple[Any, ...], OpSite] = {}
        self.covered = 0
        self.total = 0
        self.flow = ValueFlow()
        self.site_calls: dict[int, list[OpCall]] = {}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        site = None
        if self.stack and is_value_changing(func, args, kwargs):
            self.total += 1
            call, leaf = self.stack[-1]
            if leaf:
                self.covered += 1
            else:
                site = self._record_site(func, call.path, args, kwargs)
        result = call_through(func, args, kwargs)
        if self.stack:
            op_call = self.flow.op(args, kwargs, result, in_leaf=self.stack[-1][1])
            if site is not None and op_call is not None:
                self.site_calls.setdefault(id(site), []).append(op_call)
        return result

    def _record_site(self, func: Callable[..., Any], path: str, args: tuple, kwargs: dict) -> OpSite:
        file, line = user_location(skip=3)
        key = (path, file, line, func)
        site = self.sites.get(key)
        if site is None:
            site = self.sites[key] = OpSite(
                op_name(func), path, file, line, func, _shallow(args), _shallow(kwargs)
            )
        site.count += 1
        return site

    def resolve_flow(self, output: Any) -> None:
        """Which sites feed values, once the forward is done (see qready.dataflow)."""
        self.flow.read_by_module(output)
        self.flow.resolve()
        for site in self.sites.values():
            site.feeds_values = any(c.feeds_values for c in self.site_calls.get(id(site), ())) or id(site) not in self.site_calls
            if not site.feeds_values:  # not a quantization point: not counted in the coverage either
                self.total -= site.count


def _shallow(value: Any) -> Any:
    """Keep literal arguments (to suggest ``nn.Softmax(dim=-1)``), drop tensor storage."""
    return map_leaves(value, lambda t: _TensorStub(tuple(t.shape), t.dtype))


@dataclass(frozen=True)
class _TensorStub:
    shape: tuple[int, ...]
    dtype: torch.dtype


def observe(
    model: torch.nn.Module, example: Example, *, is_leaf: Callable[[torch.nn.Module], bool] = is_leaf_module
) -> Observation:
    """Run ``model`` once on ``example`` and record what happened; ``is_leaf`` says where a
    quantizer wraps a module whole (a target's leaf set; the guidelines' by default)."""
    paths: dict[int, list[str]] = {}
    modules: dict[int, torch.nn.Module] = {}
    for path, module in model.named_modules(remove_duplicate=False):
        paths.setdefault(id(module), []).append(path)
        modules[id(module)] = module
    leaf = {key: is_leaf(m) for key, m in modules.items()}
    recorder = _Recorder()
    calls: list[ModuleCall] = []
    io_issues: dict[tuple[str, str, str], IOIssue] = {}
    # a call in progress: the exception being handled around it (a fallback call made in an ``except``
    # block runs inside one) and the input issues it noted, to take back if its forward raises
    entered: dict[int, tuple[BaseException | None, list[tuple[str, str, str]]]] = {}
    failed: dict[int, int | None] = {}  # a call whose forward raised (the caller caught it) -> its parent

    def pre_hook(module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        key = id(module)
        file, line = user_location(skip=2)
        parent = recorder.stack[-1][0].index if recorder.stack else None
        call = ModuleCall(len(calls), key, paths[key][0], parent, file, line)
        calls.append(call)
        recorder.stack.append((call, leaf[key]))
        if leaf[key]:  # a leaf's inputs are what its quantizers see
            recorder.flow.read_by_module((args, kwargs))
        noted = []
        for value_path, value in _enumerate_inputs(args, kwargs):
            noted += _note_io(io_issues, call.path, module, "input", value_path, value)
        entered[call.index] = (sys.exc_info()[1], noted)

    def post_hook(module: torch.nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
        if recorder.stack and recorder.stack[-1][0].module_id == id(module):
            call = recorder.stack.pop()[0]
            handled, noted = entered.pop(call.index, (None, []))  # (none if the pre-hook itself raised)
            raised = sys.exc_info()[1]
            if raised is not None and raised is not handled:  # torch calls this hook as the forward raises
                failed[call.index] = call.parent  # no call happened: the caller's ``except`` goes on without it
                for issue in noted:
                    io_issues.pop(issue, None)
                return
        _note_io(io_issues, paths[id(module)][0], module, "output", "output", output)

    with ExitStack() as stack:
        for module in modules.values():
            stack.enter_context(_hooks(module, pre_hook, post_hook))
        stack.enter_context(torch.no_grad())
        stack.enter_context(script_functions_in_python(model_namespaces(model)))  # their ops seen too
        stack.enter_context(recorder)
        try:
            output = example.call(model)
        except Exception as error:  # the user's to fix, unless qready's own hooks raised it
            raise blame_forward(model, example, error) from error
    require_tensor_output(model, output)
    recorder.resolve_flow(output)
    if failed:
        calls = _without_failed(calls, failed)

    return Observation(
        output=output,
        op_sites=list(recorder.sites.values()),
        covered_ops=recorder.covered,
        total_ops=recorder.total,
        module_calls=calls,
        io_issues=list(io_issues.values()),
        paths=paths,
        modules=modules,
    )


@contextmanager
def _hooks(module: torch.nn.Module, pre_hook: Callable, post_hook: Callable) -> Iterator[None]:
    pre = module.register_forward_pre_hook(pre_hook, with_kwargs=True, prepend=True)
    post = module.register_forward_hook(post_hook, with_kwargs=True, always_call=True)
    try:
        yield
    finally:
        pre.remove()
        post.remove()


def _enumerate_inputs(args: tuple, kwargs: dict) -> Iterator[tuple[str, Any]]:
    for i, value in enumerate(args):
        yield f"inputs[{i}]", value
    for name, value in kwargs.items():
        yield f"inputs[{name!r}]", value


def _without_failed(calls: list[ModuleCall], failed: dict[int, int | None]) -> list[ModuleCall]:
    """``calls`` without those whose forward raised; a call made inside one belongs to its caller's caller."""

    def caller(index: int | None) -> int | None:
        while index in failed:
            index = failed[index]
        return index

    return [dataclasses.replace(call, parent=caller(call.parent)) for call in calls if call.index not in failed]


def _note_io(
    issues: dict[tuple[str, str, str], IOIssue],
    path: str,
    module: torch.nn.Module,
    side: str,
    value_path: str,
    value: Any,
) -> list[tuple[str, str, str]]:
    """Note each non-tensor value of ``value``; returns the keys of the issues it added."""
    added = []
    for where, kind, description in _non_tensor_values(value_path, value):
        key = (path, side, where)
        if key not in issues:
            issues[key] = IOIssue(path, type(module).__qualname__, side, where, kind, description)
            added.append(key)
    return added


def _non_tensor_values(where: str, value: Any) -> Iterator[tuple[str, str, str]]:
    """Yield (path, kind, description) for each value that is not a tensor or tuple of tensors."""
    if isinstance(value, torch.Tensor):
        return
    if _numbers(value):  # sizes, a padding: as constant as a number, and said as one value
        yield where, "scalar", f"{type(value).__name__} of {len(value)} {_element_kind(value)} {value!r}"
        return
    if isinstance(value, tuple) and not _is_record(value):
        for i, item in enumerate(value):
            yield from _non_tensor_values(f"{where}[{i}]", item)
        return
    if value is None:
        yield where, "None", "None"
    elif isinstance(value, (bool, int, float)):
        yield where, "scalar", f"Python {type(value).__name__} {value!r}"
    elif isinstance(value, str):
        yield where, "str", f"str {value!r}"
    elif isinstance(value, Mapping):
        keys = ", ".join(repr(k) for k in list(value.keys())[:6])
        more = ", ..." if len(value) > 6 else ""
        yield where, "dict", f"{type(value).__name__} with keys {keys}{more}"
    elif isinstance(value, list):
        yield where, "list", f"list of {len(value)} {_element_kind(value)}"
    elif dataclasses.is_dataclass(value) or _is_record(value):
        yield where, "record", f"{type(value).__name__} (a structured record)"
    else:
        yield where, "object", type(value).__qualname__


def _numbers(value: Any) -> bool:
    """A plain list or tuple of Python numbers (a padding, a kernel size)."""
    return type(value) in (list, tuple) and bool(value) and all(type(v) in (bool, int, float) for v in value)


def _is_record(value: Any) -> bool:
    # torch.return_types (torch.max(x, dim)) are structseqs of tensors: tuples for every exporter.
    return isinstance(value, tuple) and hasattr(value, "_fields") and not has_tensor(tuple(value))


def _element_kind(values: list) -> str:
    kinds = {type(v).__name__ for v in values}
    return "x".join(sorted(kinds)) if len(kinds) == 1 else "mixed items"
