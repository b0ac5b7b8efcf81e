"""The public operations: orchestration only; rule and pass logic live elsewhere."""

from __future__ import annotations

import copy
import time
from collections.abc import Iterable, Mapping
from typing import Any

import torch

from qready.errors import InputError, ModelError, VerificationError
from qready.example_inputs import Example, as_example, fresh_like
from qready.findings import Coverage, Report
from qready.observe import forward_failure, preserved
from qready.passes.base import PassManager
from qready.passes.eliminate_dead_code import EliminateDeadCode
from qready.passes.flatten_io import FlatSignature, flat_signature, make_flat_forward
from qready.passes.functionals_to_modules import FunctionalsToModules
from qready.passes.unroll_reused_modules import UnrollReusedModules
from qready.prepared import PrepareResult, PreparedModule, tied_aliases
from qready.structure import flatten
from qready.tracing import trace_with_leaves
from qready.verify import compare_exact, first_difference
from qready.rules import CheckContext, select_rules
from qready.rules.qr001_onnx_export import EXPORTERS

__all__ = ["check", "prepare"]

_OBSERVED = ("QR003", "QR004", "QR005")


def check(
    model: torch.nn.Module,
    example_inputs: tuple[Any, ...] | Mapping[str, Any],
    *,
    example_kwargs: Mapping[str, Any] | None = None,
    select: Iterable[str] | None = None,
    ignore: Iterable[str] | None = None,
    onnx_exporter: str | None = None,
) -> Report:
    """Run ``model`` on ``example_inputs`` and report where it breaks the five guidelines.

    ``example_inputs`` is a tuple of positional arguments or a mapping of
    keyword arguments (``example_kwargs`` adds keywords to a tuple). The model
    runs in eval mode under ``torch.no_grad()``; its flags, parameters and hooks
    are as before afterwards, also when its forward raises.
    """
    if not isinstance(model, torch.nn.Module):
        raise InputError(f"model is a {type(model).__name__}, not a torch.nn.Module; pass the model instance")
    if onnx_exporter is not None and onnx_exporter not in EXPORTERS:
        raise InputError(f"unknown ONNX exporter {onnx_exporter!r}; choose one of {', '.join(EXPORTERS)}")
    rules = select_rules(select, ignore)
    example = as_example(example_inputs, example_kwargs)
    ctx = CheckContext(model, example, onnx_exporter=onnx_exporter)
    findings = []
    timings: dict[str, float] = {}
    with preserved(model):
        if any(rule.code in _OBSERVED for rule in rules):
            start = time.perf_counter()
            observation = ctx.observation  # the forward runs once, before any rule: its errors are the user's
            timings["observe"] = time.perf_counter() - start
        else:
            observation = None
        for rule in rules:
            start = time.perf_counter()
            findings.extend(rule().check(ctx))
            timings[rule.code] = time.perf_counter() - start
    coverage = Coverage(observation.covered_ops, observation.total_ops) if observation else None
    findings.sort(key=lambda f: (f.code, f.file or "", f.line or 0, f.module, f.op))
    return Report(
        model=type(model).__name__,
        findings=tuple(findings),
        coverage=coverage,
        rules_run=tuple(rule.code for rule in rules),
        timings=timings,
    )


def prepare(
    model: torch.nn.Module,
    example_inputs: tuple[Any, ...] | Mapping[str, Any],
    *,
    example_kwargs: Mapping[str, Any] | None = None,
    exclude: Iterable[str] = (),
    tie_weights: bool = True,
    verify: bool = True,
) -> PreparedModule:
    """A new model that follows the guidelines and computes exactly what ``model`` computes.

    Functionals become modules in their owner's scope, reused modules get one
    instance per call (sharing their ``Parameter`` objects unless
    ``tie_weights=False``), non-tensor inputs and outputs become flat tensors.
    Submodules that torch.fx cannot trace, and those in ``exclude``, stay whole
    as leaves. With ``verify`` (the default) the result is compared with the
    original on the example and on a fresh input, bit for bit, and checked
    again; a difference raises ``VerificationError``. The original model is
    never changed. ``result.prepare_result`` says what changed and what remains.
    """
    if not isinstance(model, torch.nn.Module):
        raise InputError(f"model is a {type(model).__name__}, not a torch.nn.Module; pass the model instance")
    example = as_example(example_inputs, example_kwargs)
    excluded = sorted(set(exclude))
    known = {name for name, _ in model.named_modules(remove_duplicate=False)}
    for path in excluded:
        if path not in known:
            raise InputError(f"--exclude {path!r} is not a submodule of {type(model).__name__}; see model.named_modules()")
    timings: dict[str, float] = {}
    start = time.perf_counter()
    with preserved(model), torch.no_grad():
        fresh = fresh_like(example, seed=1)
        reference = fresh_reference = None
        if verify:
            try:
                reference = example.call(model)
                fresh_reference = fresh.call(model)
            except Exception as error:  # the user's forward: theirs to fix
                raise ModelError(forward_failure(model, example, error)) from error
        work = _private_copy(model)
    timings["reference"] = time.perf_counter() - start

    start = time.perf_counter()
    work.eval()
    signature = flat_signature(work, example)
    forward = make_flat_forward(work, signature, concrete_of=lambda proxy: proxy.tracer.values[proxy.node])
    with torch.no_grad():
        graph, tracer, failures = trace_with_leaves(work, forward, signature.input_values, set(excluded))
    prepared = PreparedModule(work, graph, class_name=type(model).__name__)
    del tracer.values
    timings["trace"] = time.perf_counter() - start

    start = time.perf_counter()
    prepared, changes = PassManager([EliminateDeadCode(), UnrollReusedModules(tie_weights), FunctionalsToModules()])(prepared)
    _keep_state_dict_keys(prepared, work)
    prepared.hide_tied_copies(tied_aliases(prepared, set(model.state_dict())))
    _copy_training_flags(model, prepared)
    timings["passes"] = time.perf_counter() - start

    result = PrepareResult(
        model=type(model).__name__,
        changes=changes,
        leaves=failures,
        excluded=excluded,
        inputs_flattened=signature.inputs_flattened,
        outputs_flattened=signature.outputs_flattened,
        input_names=signature.input_names,
        output_names=signature.output_names,
        specialized=tracer.specialized,
        timings=timings,
    )
    prepared.prepare_result = result
    prepared.input_spec = signature.input_spec
    prepared.output_spec = signature.output_spec
    prepared.outputs_flattened = signature.outputs_flattened
    prepared.input_names = signature.input_names
    prepared.output_names = signature.output_names
    if verify:
        start = time.perf_counter()
        _verify(prepared, signature, reference, fresh, fresh_reference)
        timings["verify"] = time.perf_counter() - start
    return prepared


def _private_copy(model: torch.nn.Module) -> torch.nn.Module:
    try:
        return copy.deepcopy(model)
    except Exception as error:  # an attribute of the user's model that refuses to be copied
        raise ModelError(
            f"cannot copy {type(model).__name__} to prepare it ({type(error).__name__}: {error}); "
            "make its attributes deep-copyable"
        ) from error


def _keep_state_dict_keys(prepared: torch.nn.Module, work: torch.nn.Module) -> None:
    """Parameters and buffers the forward never touched still belong in the state dict."""
    present = set(prepared.state_dict(keep_vars=True))
    for name, tensor in work.state_dict(keep_vars=True).items():
        if name in present:
            continue
        owner_path, _, attr = name.rpartition(".")
        owner = prepared
        source = work
        for part in owner_path.split(".") if owner_path else ():
            source = source._modules[part]  # type: ignore[assignment]
            child = owner._modules.get(part)
            if child is None:
                child = torch.nn.Module()
                owner.add_module(part, child)
            owner = child
        if attr in source._parameters:
            owner.register_parameter(attr, source._parameters[attr])
        else:
            owner.register_buffer(attr, tensor, persistent=True)


def _copy_training_flags(model: torch.nn.Module, prepared: torch.nn.Module) -> None:
    flags = {name: m.training for name, m in model.named_modules()}
    for name, module in prepared.named_modules():
        module.training = flags.get(name, model.training)


def _verify(
    prepared: PreparedModule,
    signature: FlatSignature,
    reference: Any,
    fresh: Example,
    fresh_reference: Any,
) -> None:
    result = prepared.prepare_result
    names = signature.output_names
    runs = [("example", signature.input_values, reference), ("fresh", None, fresh_reference)]
    with preserved(prepared), torch.no_grad():
        for run, inputs, expected in runs:
            flat_inputs = inputs if inputs is not None else list(prepared.flatten_inputs(*fresh.args, **fresh.kwargs))
            got = prepared(*flat_inputs)
            expected_leaves, _ = flatten(expected)
            got_leaves, _ = flatten(got)
            result.diffs.extend(compare_exact(run, names, expected_leaves, got_leaves))
    allowed = [leaf.module for leaf in result.leaves] + result.excluded
    recheck = check(prepared, tuple(signature.input_values), select=("QR003", "QR004"))
    for finding in recheck.findings:
        inside_leaf = any(finding.module == p or finding.module.startswith(p + ".") for p in allowed)
        (result.residual if inside_leaf else result.unexpected).append(finding)
    differing = first_difference(result.diffs)
    result.verified = differing is None and not result.unexpected
    if differing is not None:
        raise VerificationError(
            f"prepared {result.model} differs from the original on the {differing.run} input: output "
            f"{differing.name!r} max abs diff {differing.max_abs_diff:.3g}; please report this with the model",
            prepared,
        )
    if result.unexpected:
        first = result.unexpected[0]
        raise VerificationError(
            f"prepared {result.model} still has {len(result.unexpected)} {first.code} finding(s) outside the "
            f"submodules left as leaves, first: {first.message}; please report this with the model",
            prepared,
        )
