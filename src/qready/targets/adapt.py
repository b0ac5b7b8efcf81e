"""What a target changes in ``check`` and ``prepare``: the rules that run, the rewrites it needs."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from qready.errors import InputError, VerificationError
from qready.example_inputs import Example, fresh_like, tensor_leaves
from qready.passes.base import Change
from qready.passes.decompose_attention import (
    DecomposedMultiheadAttention,
    decompose_attention,
    keep_packed_keys,
    packed_keys,
)
from qready.flatten_io import flat_signature
from qready.prepared import KeptForward, flat_io, list_as_tuple, result_of
from qready.rules.base import Rule
from qready.passes.unfuse_transformers import unfuse_transformers
from qready.targets.base import Target

__all__ = ["DECOMPOSITION_TOLERANCE", "adapt_for_target", "finish_for_target", "rules_for_target"]

#: How far the decomposed attention may be from the fused kernel, relative to the output's largest magnitude:
#: float32 reordering is ~1e-7; anything near this bound is a bug in the decomposition, not rounding.
DECOMPOSITION_TOLERANCE = 1e-4


def rules_for_target(rules: list[type[Rule]], target: Target, *, explicit: Iterable[str] | None) -> list[type[Rule]]:
    """The selected rules that run under ``target``; a rule asked for by name that cannot run is an error."""
    kept = [rule for rule in rules if rule.applies_to(target)]
    if explicit:
        named = {key.strip().lower() for key in explicit}  # by code or name: a prefix (QR00) asks for none in particular
        for rule in rules:
            if rule not in kept and named & {rule.code.lower(), rule.name}:
                raise InputError(f"{rule.code} ({rule.name}) needs a toolkit target; pass --target aimet (target='aimet')")
    return kept


def adapt_for_target(
    target: Target,
    model: torch.nn.Module,
    work: torch.nn.Module,
    example: Example,
    fresh: Example | None,
    references: tuple[Any, Any] | None,
) -> tuple[tuple[Any, Any] | None, list[Change]]:
    """Rewrite ``work`` (qready's copy of ``model``) for what ``target`` needs, in place.

    Returns the outputs that the prepared model must then reproduce bit for bit
    (those of the rewritten ``work``; ``references`` when nothing changed), and
    one ``Change`` per rewrite with the difference from ``model`` it makes,
    measured on the example and on the fresh input. Runs under ``no_grad``.
    """
    changes: list[Change] = []
    # every target: the graph prepare records is the unfused path of torch.nn's transformer modules
    unfused = unfuse_transformers(work)
    if unfused:
        references, changes = _rewritten(
            model, work, example, fresh, references, unfused, "unfused",
            reason="its fused eval kernel is one call no quantizer can sit in; the unfused path runs as modules",
            what="unfusing torch.nn's transformer modules", advice="please report it",
        )
    if not target.exports_onnx:
        return references, changes
    paths = decompose_attention(work)
    if not paths:
        return references, changes
    cls = DecomposedMultiheadAttention
    references, decomposed = _rewritten(
        model, work, example, fresh, references,
        {path: ("torch.nn.MultiheadAttention", f"{cls.__module__}.{cls.__qualname__}") for path in paths}, "decomposed",
        reason=f"its fused eval kernel has no ONNX export, which {target.name} needs",
        what="decomposing nn.MultiheadAttention", advice=f"prepare without target={target.name!r}",
    )
    return references, changes + decomposed


def _rewritten(
    model: torch.nn.Module,
    work: torch.nn.Module,
    example: Example,
    fresh: Example | None,
    references: tuple[Any, Any] | None,
    rewrites: dict[str, tuple[str, str]],
    kind: str,
    *,
    reason: str,
    what: str,
    advice: str,
) -> tuple[tuple[Any, Any] | None, list[Change]]:
    """``work`` after a rewrite that is not bit-identical (``rewrites``: path -> (op, module type)): its
    outputs, checked to be close to ``model``'s, and one change per path with the difference measured."""
    if fresh is None:  # prepare without verification drew none
        fresh = fresh_like(example, seed=1)
    originals = references if references is not None else (example.call(model), fresh.call(model))
    rewritten = (example.call(work), fresh.call(work))
    difference, scale = _max_difference(originals, rewritten)
    if difference > DECOMPOSITION_TOLERANCE * max(scale, 1.0):
        raise VerificationError(
            f"{what} at {', '.join(rewrites)} changed the outputs by {difference:.3g} "
            f"(largest output magnitude {scale:.3g}); this is a qready bug: {advice}"
        )
    changes = [
        Change(
            kind=kind,
            op=op,
            scope=path.rpartition(".")[0],
            module=path,
            module_type=module_type,
            file=None,
            line=None,
            details=(("reason", reason), ("max_abs_diff", difference)),
        )
        for path, (op, module_type) in rewrites.items()
    ]
    return (rewritten if references is not None else None), changes


def finish_for_target(
    target: Target, prepared: torch.nn.Module, original: torch.nn.Module, example: Example, changes: list[Change]
) -> None:
    """What ``target`` needs of the prepared model, after ``prepare`` built it and before it is verified.

    The model answers to the original's state-dict keys where a target's rewrite split a tensor
    (attention's packed projection), so a checkpoint of the original loads into it; and a model whose
    own forward stayed Python takes and returns flat tensors when the toolkit takes nothing else, its
    submodules that return lists returning tuples (``_lists_as_tuples``).
    """
    paths = [change.module for change in changes if change.kind == "decomposed"]
    if paths:
        keep_packed_keys(prepared, packed_keys(paths, original.state_dict().keys()))
    if target.flat_io and isinstance(prepared, KeptForward):
        try:
            signature = flat_signature(original, example)  # the class's forward: prepared.forward dispatches
        except InputError:  # arguments no flat signature holds: the toolkit will say what it refuses
            return
        with torch.no_grad():
            output, tupled = _lists_as_tuples(target, prepared, example)
        flat_io(prepared, signature.input_spec, output)
        result = result_of(prepared)
        result.changes += tupled
        result.inputs_flattened = result.outputs_flattened = True
        result.input_names = signature.input_names
        result.output_names = [f"output_{i}" for i in range(len(tensor_leaves(output)))]


def _lists_as_tuples(target: Target, prepared: torch.nn.Module, example: Example) -> tuple[Any, list[Change]]:
    """Run ``prepared`` on the example; a submodule the toolkit walks into (no leaf of it) that returned a
    list returns it as a tuple from now on (``list_as_tuple``: a one-element list does not survive AIMET's
    export). Returns the model's output and one change per such module; when the model's own code does
    not take the tuples (it appends to the list), nothing changes and the list stays a residual QR005."""
    leaves = [path for path, module in prepared.named_modules() if path and target.is_leaf(module)]
    walked = {
        module: path for path, module in prepared.named_modules()
        if path and not target.is_leaf(module) and not any(path.startswith(leaf + ".") for leaf in leaves)
    }
    lists: dict[str, torch.nn.Module] = {}

    def record(module: torch.nn.Module, args: tuple[Any, ...], output: Any) -> None:
        if isinstance(output, list) and module in walked:
            lists[walked[module]] = module

    with torch.nn.modules.module.register_module_forward_hook(record):
        output = example.call(prepared)
    if not lists:
        return output, []
    handles = [module.register_forward_hook(list_as_tuple) for module in lists.values()]
    try:
        tupled_output = example.call(prepared)
        same = len(tensor_leaves(tupled_output)) == len(tensor_leaves(output)) and (
            _max_difference((output, output), (tupled_output, tupled_output))[0] == 0
        )
    except Exception:  # noqa: BLE001 - the model's own code: whatever a tuple makes it raise, keep the lists
        same = False
    if not same:
        for handle in handles:
            handle.remove()
        return output, []
    reason = (
        f"{target.name} passes a module's outputs on as tensors, tuples and dicts; its export returns "
        "a list of one tensor as the bare tensor"
    )
    changes = [
        Change(
            kind="tupled",
            op="list output",
            scope=path.rpartition(".")[0],
            module=path,
            module_type=f"{type(module).__module__}.{type(module).__qualname__}",
            file=None,
            line=None,
            details=(("reason", reason),),
        )
        for path, module in sorted(lists.items())
    ]
    return tupled_output, changes


def _max_difference(expected: tuple[Any, Any], got: tuple[Any, Any]) -> tuple[float, float]:
    difference = scale = 0.0
    for a, b in zip(tensor_leaves(list(expected)), tensor_leaves(list(got))):
        if a.is_floating_point():
            difference = max(difference, (a - b).abs().max().item() if a.numel() else 0.0)
            scale = max(scale, a.abs().max().item() if a.numel() else 0.0)
        elif not torch.equal(a, b):
            difference = float("inf")
    return difference, scale
