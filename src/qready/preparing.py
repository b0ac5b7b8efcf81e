"""How ``prepare`` turns a private copy of a model into a compliant one, and checks it.

``prepare_model`` is the whole of it once the arguments are checked: the
outputs to reproduce, a private copy adapted for the target, the copy
prepared, then verified. Two ways of preparing, tried in order:

- the graph way: trace the whole model (``tracing``), run the passes, and get a
  ``PreparedModule``, a torch.fx GraphModule with a flat tensor signature;
- the children way, when the model's own forward cannot be traced: keep the
  model's class and forward, and prepare each child module on the inputs it
  received in an eager run, recursively. The root is then reported as a leaf.

When the graph way specialized a Python branch on tensor data to the example
and verification on another input fails, the model is prepared again the
children way (``prepare_model`` retries; the branch is the root's reason).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import torch

from qready.copying import copy_parameters, deepcopy_module
from qready.dispatch import DispatchCallSites
from qready.errors import ModelError, QreadyError, VerificationError
from qready.example_inputs import Example, fresh_like
from qready.guard import (
    blame_forward, call_preserved, nested_too_deep, preserved, require_tensor_output, too_deep,
)
from qready.ops import is_leaf_module
from qready.passes.base import Change, PassManager
from qready.passes.eliminate_dead_code import EliminateDeadCode
from qready.flatten_io import flat_signature, make_flat_forward
from qready.passes.functionals_to_modules import FunctionalsToModules
from qready.passes.infer_reshape_sizes import InferReshapeSizes
from qready.passes.unroll_reused_modules import UnrollReusedModules
from qready.randomness import same_draws
from qready.sizes import other_sizes
from qready.prepared import (
    KeptForward, Prepared, PrepareResult, PreparedModule, keep_forward, reattach_dropped_state, result_of,
    run_graph_in_place, tied_aliases,
)
from qready.structure import flatten, map_leaves
from qready.targets.adapt import adapt_for_target, finish_for_target
from qready.targets.base import Target
from qready.tracing import RootNotTraceable, TraceFailure, trace_with_leaves
from qready.verify import verify_prepared
from qready.walks import modules_of, named_state, set_eval, tensors_of

__all__ = ["prepare_model", "prepare_copy", "prepare_children"]


def prepare_model(
    model: torch.nn.Module,
    example: Example,
    *,
    target: Target,
    excluded: Sequence[str],
    tie_weights: bool,
    verify: bool,
    share_weights: bool,
    recheck: list[str] | None = None,
    declared_leaves: Sequence[str] = (),
) -> Prepared:
    """``qready.prepare`` after its arguments were checked: never changes ``model``. ``recheck``:
    the rules to check the result with again (``verify.recheck_prepared``)."""
    start = time.perf_counter()
    with preserved(model, buffers=verify), torch.no_grad():  # unverified, qready runs only its own copy
        fresh: Example | None = None  # drawn for verification; a rewrite for the target draws its own
        originals = None
        if verify:
            fresh = fresh_like(example, seed=1)
            try:
                # each run from the buffers as they are, given back after it: the prepared model's runs start
                # from them too (a forward that reads what it wrote, a counter, computes the same on both),
                # and the copy below reads them as they were
                originals = (call_preserved(model, example), call_preserved(model, fresh))
            except Exception as error:  # the user's forward: theirs to fix
                raise blame_forward(model, example, error) from error
            require_tensor_output(model, originals[0])
        work = private_copy(model, share_weights)
        references, decomposed = adapt_for_target(target, model, work, example, fresh, originals)
        # what the prepared model must reproduce at other sizes too: the rewritten copy, when the target
        # needed a rewrite that is not bit-identical (its measured difference is in the changes)
        reference_model = private_copy(work, share_weights=True) if decomposed else model
    # the original's runs at other sizes now, next to its other runs: the memory their activations
    # took is free again for these, before the trace and the prepared model take some of it
    sized = other_sizes(reference_model, example) if references is not None else None
    copied = time.perf_counter() - start

    def finish(prepared: Prepared) -> None:
        result = result_of(prepared)
        result.changes[:0] = decomposed
        result.target = target.name
        result.declared_leaves = list(declared_leaves)
        finish_for_target(target, prepared, model, example, decomposed)

    prepared = prepare_copy(work, example, excluded=excluded, tie_weights=tie_weights, original=model)
    result_of(prepared).timings["reference"] = copied
    finish(prepared)
    if references is None or fresh is None:  # not verified
        return _with_flags_of(model, prepared)
    start = time.perf_counter()
    try:
        verify_prepared(prepared, example, fresh, references, original=reference_model, recheck=recheck, sized=sized)
    except VerificationError:
        specialized = result_of(prepared).specialized
        if not specialized:
            raise
        # A branch on tensor data, specialized to the example, does not hold on another input:
        # keep the model's own forward and prepare what it calls instead.
        file, line, _ = specialized[0]
        with preserved(model), torch.no_grad():
            work = private_copy(model, share_weights)
            adapt_for_target(target, model, work, example, fresh, originals)
        failure = TraceFailure("", "a Python branch on tensor data that differs between inputs", file, line)
        prepared = prepare_children(work, example, excluded=excluded, tie_weights=tie_weights, failure=failure)
        finish(prepared)
        verify_prepared(prepared, example, fresh, references, original=reference_model, recheck=recheck, sized=sized)
    result_of(prepared).timings["verify"] = time.perf_counter() - start
    return _with_flags_of(model, prepared)


def private_copy(model: torch.nn.Module, share_weights: bool) -> torch.nn.Module:
    """A deep copy of ``model`` that qready owns; with ``share_weights``, around the very same parameters.

    Buffers are copied either way: a forward that writes into its own buffers (a call counter, a cache kept
    as a buffer) does so in the prepared model's graph on every call, and in a module left whole, and
    those writes must reach the copy, never the original."""
    parameters = tensors_of(model)[0]
    memo: dict[int, Any] = {}
    if share_weights:  # a new module tree around the very same parameters
        memo = {id(t): t for t in parameters}
    try:
        if not share_weights:
            copy_parameters(parameters, memo)
        return deepcopy_module(model, memo)
    except RecursionError as error:
        if not nested_too_deep(model):
            raise
        raise ModelError(too_deep(model)) from error
    except Exception as error:  # an attribute of the user's model that refuses to be copied
        raise ModelError(
            f"cannot copy {type(model).__name__} to prepare it ({type(error).__name__}: {error}); "
            "make its attributes deep-copyable"
        ) from error


def _with_flags_of(model: torch.nn.Module, prepared: Prepared) -> Prepared:
    """A model that kept its forward was copied while in eval mode: it gets the original's flags,
    as the graph way's ``PreparedModule`` already has them."""
    if isinstance(prepared, KeptForward):
        _copy_training_flags(model, prepared)
    return prepared


def prepare_copy(
    work: torch.nn.Module,
    example: Example,
    *,
    excluded: Sequence[str],
    tie_weights: bool,
    original: torch.nn.Module,
) -> Prepared:
    """Prepare ``work``, a module qready owns; ``original`` gives the flags and state-dict keys to keep."""
    # the trace runs the forward's random draws too: from qready's own random state, never the user's
    with same_draws(example.args, example.kwargs):
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
    set_eval(work)
    signature = flat_signature(work, example)
    forward = make_flat_forward(work, signature, concrete_of=lambda proxy: proxy.tracer.values[proxy.node])
    with torch.no_grad():
        graph, tracer, failures = trace_with_leaves(work, forward, signature.input_values, set(excluded))
    prepared = PreparedModule(work, graph, class_name=type(original).__name__, compiled=False)
    del tracer.values
    timings["trace"] = time.perf_counter() - start

    start = time.perf_counter()
    # the modules left whole, and their unrolled copies (from the changes so far), run their own
    # Python: their call sites get modules of their own in the last step
    passes = PassManager([
        InferReshapeSizes(), EliminateDeadCode(), UnrollReusedModules(tie_weights), FunctionalsToModules(),
        DispatchCallSites(
            lambda gm: {leaf.module: gm.get_submodule(leaf.module) for leaf in [*failures, *_copies_of_leaves(passes.changes, failures)]},
            lambda gm: gm(*signature.input_values),
        ),
    ])
    prepared, changes = passes(prepared, stale=True)  # the passes' manager generates the code once
    failures = failures + _copies_of_leaves(changes, failures)
    excluded = [*excluded, *_copies_of_excluded(changes, excluded)]
    parameters, buffers = named_state(work)
    state = reattach_dropped_state(prepared, work, [name for name, _ in [*parameters, *buffers]])  # non-persistent ones too
    prepared.hide_tied_copies(tied_aliases(prepared, lambda: set(original.state_dict()), state))
    _copy_training_flags(original, prepared)
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
) -> KeptForward:
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
        if path in excluded or is_leaf_module(child):
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
        result = result_of(prepared)
        if isinstance(prepared, PreparedModule):  # the graph way: its graph runs inside the child
            run_graph_in_place(child, prepared)
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
    _, dispatched = PassManager([DispatchCallSites(lambda _: owners, lambda module: example.call(module))])(work)
    changes += dispatched
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
    if not any(m.training for m in modules_of(model)):  # the usual case: every module in eval mode
        for module in modules_of(prepared):
            if module.training:  # a module qready added (an unrolled copy, a converted functional)
                module.training = False
        return
    flags = {name: m.training for name, m in model.named_modules()}
    for name, module in prepared.named_modules():
        flag = flags.get(name, model.training)
        if module.training is not flag:  # Module.__setattr__ costs microseconds; most flags agree already
            module.training = flag
