"""The public operations: orchestration only; rule and pass logic live elsewhere."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar, cast

import torch

from qready.errors import InputError, ModelError
from qready.example_inputs import as_example
from qready.findings import Report
from qready.meta import check_without_weights, has_meta_weights, prepare_without_weights
from qready.guard import nested_too_deep, require_runnable, too_deep
from qready.leaves import declared_leaf_paths, with_declared_leaves
from qready.prepared import Prepared
from qready.preparing import prepare_model
from qready.rules import run_rules, select_rules
from qready.exporters import EXPORTERS
from qready.suppression import configured_rules, suppressed
from qready.targets import Target, get_target
from qready.verify import verify_prepared
from qready.targets.adapt import rules_for_target
from qready.wording import a

__all__ = ["check", "prepare"]

T = TypeVar("T")


def _nesting_errors(operation: Callable[..., T]) -> Callable[..., T]:
    """A RecursionError anywhere in qready's work on a deeply nested model becomes one line that
    says what to do (a forward, a copy, a trace or a walk over submodules may hit it first)."""

    @functools.wraps(operation)
    def run(model: torch.nn.Module, *args: Any, **kwargs: Any) -> T:
        try:
            return operation(model, *args, **kwargs)
        except RecursionError as error:
            if not isinstance(model, torch.nn.Module) or not nested_too_deep(model):
                raise  # not the nesting: a bug, reported as one
            raise ModelError(too_deep(model)) from error

    return run


@_nesting_errors
def check(
    model: torch.nn.Module,
    example_inputs: tuple[Any, ...] | Mapping[str, Any],
    *,
    example_kwargs: Mapping[str, Any] | None = None,
    select: Iterable[str] | None = None,
    ignore: Iterable[str] | None = None,
    onnx_exporter: str | None = None,
    progress: Callable[[str], None] | None = None,
    target: str | Target | None = None,
    leaves: Iterable[str | type] = (),
) -> Report:
    """Run ``model`` on ``example_inputs`` and report where it breaks the five guidelines.

    ``example_inputs`` is a tuple of positional arguments or a mapping of
    keyword arguments (``example_kwargs`` adds keywords to a tuple). The model
    runs in eval mode under ``torch.no_grad()``; its flags, parameters and hooks
    are as before afterwards, also when its forward raises. ``progress`` is
    called with ``"forward"`` and then each rule's code as the work starts.
    ``target`` names the quantization toolkit (``"aimet"``): its own leaf set
    decides coverage, and its rules (QR006) run; ``None`` is ``"generic"``.
    ``leaves`` declares modules (paths or classes) that the toolkit wraps whole.
    """
    if not isinstance(model, torch.nn.Module):
        raise InputError(f"model is {a(type(model).__name__)}, not a torch.nn.Module; pass the model instance")
    if onnx_exporter is not None and onnx_exporter not in EXPORTERS:
        raise InputError(f"unknown ONNX exporter {onnx_exporter!r}; choose one of {', '.join(EXPORTERS)}")
    require_runnable(model)
    chosen_target = with_declared_leaves(get_target(target), model, declared_leaf_paths(model, leaves))
    select, ignore = configured_rules(select, ignore)  # [tool.qready] when not given
    rules = rules_for_target(select_rules(select, ignore), chosen_target, explicit=select)
    example = as_example(example_inputs, example_kwargs)
    if has_meta_weights(model):  # no weights: the rules that need none, on shapes (see qready.meta)
        return check_without_weights(
            lambda codes, model=model, example=example: check(  # the model, or its depth-reduced twin
                model, example, select=codes, onnx_exporter=onnx_exporter, progress=progress, target=target,
                leaves=leaves,
            ),
            model, example, [rule.code for rule in rules],
        )
    run = run_rules(model, example, rules, onnx_exporter=onnx_exporter, target=chosen_target, progress=progress)
    return Report(
        model=type(model).__name__,
        findings=tuple(suppressed(run.findings)),  # `# qready: ignore[...]`, exclude, per-file-ignores
        coverage=run.coverage,
        rules_run=tuple(rule.code for rule in rules),
        timings=run.timings,
        target=chosen_target.name,
    )


@_nesting_errors
def prepare(
    model: torch.nn.Module,
    example_inputs: tuple[Any, ...] | Mapping[str, Any],
    *,
    example_kwargs: Mapping[str, Any] | None = None,
    exclude: Iterable[str] = (),
    tie_weights: bool = True,
    verify: bool = True,
    share_weights: bool = False,
    target: str | Target | None = None,
    recheck: str | Iterable[str] | None = None,
    leaves: Iterable[str | type] = (),
) -> Prepared:
    """A new model that follows the guidelines and computes exactly what ``model`` computes.

    Functionals become modules in their owner's scope, reused modules get one
    instance per call (sharing their ``Parameter`` objects unless
    ``tie_weights=False``), non-tensor inputs and outputs become flat tensors.
    Submodules that torch.fx cannot trace, and those in ``exclude``, stay whole
    as leaves, and so do the modules ``leaves`` declares (paths or classes a toolkit
    wraps whole, as in ``check``); when the model's own forward cannot be traced, its children are
    prepared one by one inside a copy of it. With ``verify`` (the default) the
    result is compared with the original on the example and on a fresh input,
    bit for bit, and checked again: with QR003 to QR005 of the rules ``check``
    runs (the project's ``[tool.qready]`` selection), with QR001 and QR002 too
    (they run the exporters, seconds each) for ``recheck="all"``, or with the
    rules ``recheck`` names; a difference raises ``VerificationError``, and what
    the check still finds is counted by rule in ``prepare_result``.
    The original model is never changed. ``result.prepare_result`` says what
    changed and what remains.

    The prepared model owns copies of the weights, so that toolkits that fold
    batch norms or train in place can't reach back into ``model``.
    ``share_weights=True`` skips that copy (faster, no second set of weights
    in memory): the two models then hold the very same parameters (buffers,
    which a forward may write into, are the prepared model's own).

    ``target="aimet"`` (a toolkit that exports ONNX) also decomposes what that
    export cannot take (``nn.MultiheadAttention``'s fused eval kernel) into
    modules; that step is not bit-identical, and its measured difference from
    the original is in ``prepare_result.changes`` (kind ``"decomposed"``).
    Verification then compares with the decomposed model, bit for bit.
    """
    if not isinstance(model, torch.nn.Module):
        raise InputError(f"model is {a(type(model).__name__)}, not a torch.nn.Module; pass the model instance")
    require_runnable(model)
    chosen_target = get_target(target)
    example = as_example(example_inputs, example_kwargs)
    declared = declared_leaf_paths(model, leaves)
    excluded = sorted({*exclude, *declared})
    known = {name for name, _ in model.named_modules(remove_duplicate=False)} if excluded else set()
    for path in excluded:
        if path not in known:
            raise InputError(f"--exclude {path!r} is not a submodule of {type(model).__name__}; see model.named_modules()")
    if has_meta_weights(model):  # no weights: the structure is prepared around the same meta tensors
        prepared = prepare_without_weights(
            lambda **options: prepare(model, example, exclude=excluded, tie_weights=tie_weights, target=target, **options),
            model, example, verify=verify_prepared if verify else None,
        )
        return cast(Prepared, prepared)  # what the callback returns: this very function's result
    return prepare_model(
        model, example, target=chosen_target, excluded=excluded, tie_weights=tie_weights, verify=verify,
        share_weights=share_weights, recheck=[recheck] if isinstance(recheck, str) else (None if recheck is None else list(recheck)),
        declared_leaves=declared,
    )
