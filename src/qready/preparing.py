"""How ``prepare`` turns a private copy of a model into a compliant one, and checks it.

Two ways, tried in order:

- the graph way: trace the whole model (``tracing``), run the passes, and get a
  ``PreparedModule``, a torch.fx GraphModule with a flat tensor signature;
- the children way, when the model's own forward cannot be traced: keep the
  model's class and forward, and prepare each child module on the inputs it
  received in an eager run, recursively. The root is then reported as a leaf.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import torch

from qready.dispatch import dispatch_call_sites
from qready.errors import QreadyError
from qready.example_inputs import Example
from qready.guard import preserved
from qready.ops import is_known_module, is_leaf_module
from qready.passes.base import Change, PassManager
from qready.passes.eliminate_dead_code import EliminateDeadCode
from qready.flatten_io import flat_signature, make_flat_forward
from qready.passes.functionals_to_modules import FunctionalsToModules
from qready.passes.infer_reshape_sizes import InferReshapeSizes
from qready.passes.unroll_reused_modules import UnrollReusedModules
from qready.prepared import PrepareResult, PreparedModule, keep_forward, reattach_dropped_state, run_graph_in_place, tied_aliases
from qready.structure import flatten, map_leaves
from qready.tracing import RootNotTraceable, TraceFailure, trace_with_leaves

__all__ = ["prepare_copy", "prepare_children"]


def prepare_copy(
    work: torch.nn.Module,
    example: Example,
    *,
    excluded: Sequence[str],
    tie_weights: bool,
    original: torch.nn.Module,
) -> torch.nn.Module:
    """Prepare ``work``, a module qready owns; ``original`` gives the flags and state-dict keys to keep."""
    try:
        return _prepare_graph(work, example, excluded=excluded, tie_weights=tie_weights, original=original)
    except RootNotTraceable as untraceable:
        return prepare_children(
            work, example, excluded=excluded, tie_weights=tie_weights, failure=untraceable.failure
        )


def _prepare_graph(
    work: torch.nn.Module,
    example: Example,
    *,
    excluded: Sequence[str],
    tie_weights: bool,
    original: torch.nn.Module,
) -> PreparedModule:
    timings: dict[str, float] = {}
    start = time.perf_counter()
    work.eval()
    signature = flat_signature(work, example)
    forward = make_flat_forward(work, signature, concrete_of=lambda proxy: proxy.tracer.values[proxy.node])
    with torch.no_grad():
        graph, tracer, failures = trace_with_leaves(work, forward, signature.input_values, set(excluded))
    prepared = PreparedModule(work, graph, class_name=type(original).__name__)
    del tracer.values
    timings["trace"] = time.perf_counter() - start

    start = time.perf_counter()
    passes = PassManager([
        InferReshapeSizes(), EliminateDeadCode(), UnrollReusedModules(tie_weights), FunctionalsToModules(),
    ])
    prepared, changes = passes(prepared)  # type: ignore[assignment]  # the passes return the GraphModule subclass they were given
    failures = failures + _copies_of_leaves(changes, failures)
    excluded = [*excluded, *_copies_of_excluded(changes, excluded)]
    held = [*work.named_parameters(remove_duplicate=False), *work.named_buffers(remove_duplicate=False)]
    reattach_dropped_state(prepared, work, [name for name, _ in held])  # non-persistent buffers too
    prepared.hide_tied_copies(tied_aliases(prepared, set(original.state_dict())))
    _copy_training_flags(original, prepared)
    owners = {leaf.module: prepared.get_submodule(leaf.module) for leaf in failures}
    if owners:
        changes += dispatch_call_sites(owners, lambda: prepared(*signature.input_values))
    timings["passes"] = time.perf_counter() - start

    prepared.prepare_result = PrepareResult(
        model=type(original).__name__,
        changes=changes,
        leaves=failures,
        excluded=list(excluded),
        inputs_flattened=signature.inputs_flattened,
        outputs_flattened=signature.outputs_flattened,
        input_names=signature.input_names,
        output_names=signature.output_names,
        specialized=tracer.specialized,
        timings=timings,
        fixed_sizes=list(dict.fromkeys(tracer.fixed_sizes)),
    )
    prepared.input_spec = signature.input_spec
    prepared.output_spec = signature.output_spec
    prepared.outputs_flattened = signature.outputs_flattened
    prepared.input_names = signature.input_names
    prepared.output_names = signature.output_names
    return prepared


def prepare_children(
    work: torch.nn.Module,
    example: Example,
    *,
    excluded: Sequence[str],
    tie_weights: bool,
    failure: TraceFailure,
) -> torch.nn.Module:
    """Keep ``work``'s own forward; prepare each outermost submodule it calls, on the inputs it gets.

    A prepared submodule keeps its calling convention (structured arguments and
    outputs are flattened and rebuilt around its graph), so the untraceable
    forward calls it as before.
    """
    start = time.perf_counter()
    calls = _submodule_calls(work, example)
    changes: list[Change] = []
    leaves: list[TraceFailure] = [failure]
    specialized: list[tuple[str | None, int | None, Any]] = []
    for path in _outermost(calls):
        child = work.get_submodule(path)
        if path in excluded or is_known_module(child):
            continue  # a custom module without children is prepared too, as the graph path traces through it
        inner_excluded = [p[len(path) + 1:] for p in excluded if p.startswith(path + ".")]
        if not _same_signature(calls[path]):
            leaves.append(TraceFailure(path, "called with differently shaped inputs by a forward that cannot be traced", None, None))
            continue
        try:
            prepared = prepare_copy(child, calls[path][0], excluded=inner_excluded, tie_weights=tie_weights, original=child)
        except QreadyError as error:
            # Not preparable whole (an argument qready cannot flatten, such as torchvision's ImageList):
            # the child keeps its forward too, and what it calls is prepared, the same way down.
            prepared = prepare_children(
                child, calls[path][0], excluded=inner_excluded, tie_weights=tie_weights,
                failure=TraceFailure("", str(error), None, None),
            )
        result: PrepareResult = prepared.prepare_result  # type: ignore[assignment]  # nn.Module.__getattr__ types prepare's result attributes as Tensor | Module
        if prepared.saveable:
            run_graph_in_place(child, prepared)  # type: ignore[arg-type]  # the passes return the GraphModule subclass they were given
        else:
            child.__class__ = type(child).__bases__[0]  # a child stays of its own class
            del child.prepare_result
        changes += [_within(path, change) for change in result.changes]
        leaves += [replace(leaf, module=_join(path, leaf.module)) for leaf in result.leaves]
        specialized += result.specialized
    owners = {"": work}
    for leaf in leaves[1:]:
        module = work.get_submodule(leaf.module)
        if "forward" not in vars(module) and not is_leaf_module(module):  # not dispatched or run by a graph yet
            owners[leaf.module] = module
    changes += dispatch_call_sites(owners, lambda: example.call(work))
    return keep_forward(work, PrepareResult(
        model=type(work).__name__,
        changes=changes,
        leaves=leaves,
        excluded=list(excluded),
        inputs_flattened=False,
        outputs_flattened=False,
        input_names=[],
        output_names=[],
        specialized=specialized,
        timings={"children": time.perf_counter() - start},
    ))


def _submodule_calls(module: torch.nn.Module, example: Example) -> dict[str, list[Example]]:
    """The arguments each submodule receives in one eager forward (cloned: later in-place ops
    must not change what the submodule saw)."""
    calls: dict[str, list[Example]] = {}
    handles = []
    for path, sub in module.named_modules():
        if not path:
            continue

        def record(_: torch.nn.Module, args: tuple, kwargs: dict, path: str = path) -> None:
            calls.setdefault(path, []).append(Example(_clone(args), _clone(kwargs)))

        handles.append(sub.register_forward_pre_hook(record, with_kwargs=True))
    try:
        with preserved(module), torch.no_grad():
            example.call(module)
    finally:
        for handle in handles:
            handle.remove()
    return calls


def _outermost(calls: dict[str, list[Example]]) -> list[str]:
    """Called submodules with no called ancestor: the untraceable forward's own callees."""
    called = set(calls)
    return [
        path for path in calls
        if not any(".".join(path.split(".")[:i]) in called for i in range(1, path.count(".") + 1))
    ]


def _clone(value: Any) -> Any:
    """Every tensor inside ``value`` cloned, in dataclasses and caches too (the one walker)."""
    return map_leaves(value, lambda t: t.detach().clone())


def _same_signature(calls: list[Example]) -> bool:
    """All calls share shapes, dtypes and non-tensor values: a graph traced on one serves all."""
    def describe(example: Example) -> Any:
        return repr(flatten((example.args, example.kwargs), is_leaf=_is_tensor)[1]) + repr(
            [(tuple(t.shape), t.dtype) for t in flatten((example.args, example.kwargs), is_leaf=_is_tensor)[0]]
        )

    try:
        first = describe(calls[0])
        return all(describe(c) == first for c in calls[1:])
    except TypeError:  # arguments qready cannot describe: don't assume they match
        return len(calls) == 1


def _is_tensor(value: Any) -> bool:
    return isinstance(value, torch.Tensor)


def _within(name: str, change: Change) -> Change:
    return replace(change, scope=_join(name, change.scope), module=_join(name, change.module))


def _join(prefix: str, path: str) -> str:
    return f"{prefix}.{path}" if path else prefix


def _copies_of_leaves(changes: list[Change], leaves: list[TraceFailure]) -> list[TraceFailure]:
    """An unrolled copy of a module left whole is a leaf too, for the same reason as the original."""
    whole = {leaf.module: leaf for leaf in leaves}
    return [replace(whole[c.op], module=c.module) for c in changes if c.kind == "unrolled" and c.op in whole]


def _copies_of_excluded(changes: list[Change], excluded: Sequence[str]) -> list[str]:
    """An unrolled copy of an excluded module is excluded too: kept whole, as the user asked."""
    return [c.module for c in changes if c.kind == "unrolled" and c.op in excluded]


def _copy_training_flags(model: torch.nn.Module, prepared: torch.nn.Module) -> None:
    flags = {name: m.training for name, m in model.named_modules()}
    for name, module in prepared.named_modules():
        module.training = flags.get(name, model.training)
