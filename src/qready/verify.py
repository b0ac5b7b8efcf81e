"""Equivalence, bit for bit: the prepared model against the original, then checked again.

Built on ``rules.run_rules`` (not on ``api``), so ``api`` -> ``preparing`` ->
``verify`` -> ``rules`` run one way, without a cycle. ``OutputDiff`` lives with
the ``PrepareResult`` that holds it (``prepared``) and is re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from qready.caches import own_copy, traced_differently
from qready.errors import VerificationError
from qready.example_inputs import Example, as_example
from qready.findings import Finding
from qready.guard import call_preserved, preserved
from qready.prepared import OutputDiff, Prepared, result_of
from qready.randomness import require_deterministic, same_draws
from qready.rules import run_rules, select_rules
from qready.structure import flatten, leaf_names
from qready.suppression import configured_rules, suppressed

__all__ = ["OutputDiff", "compare_exact", "first_difference", "verify_prepared", "call_prepared", "recheck_prepared"]

_PROMISED = ("QR003", "QR004")  # what prepare removes outside the leaves: one left there is prepare's bug
_EXPORTERS = ("QR001", "QR002")  # run the real exporters: on the original too, where the prepared model fails them
NOT_RECHECKED = "--recheck all runs them"  # the exporters, seconds each


def compare_exact(run: str, names: list[str], expected: list[Any], got: list[Any]) -> list[OutputDiff]:
    """Compare outputs with ``torch.equal``; keep the max difference of those that differ."""
    if len(expected) != len(got):
        return [OutputDiff(run, f"{len(got)} outputs instead of {len(expected)}", False, float("inf"))]
    diffs = []
    for name, want, have in zip(names, expected, got):
        if not isinstance(want, torch.Tensor) or not isinstance(have, torch.Tensor):
            equal = type(want) is type(have) and want == have
            diffs.append(OutputDiff(run, name, bool(equal), 0.0 if equal else float("inf")))
            continue
        if want.shape != have.shape or want.dtype != have.dtype:
            diffs.append(OutputDiff(run, name, False, float("inf")))
            continue
        equal = torch.equal(want, have) or _equal_with_nans(want, have)
        diff = 0.0 if equal else _max_abs_diff(want, have)
        diffs.append(OutputDiff(run, name, equal, diff))
    return diffs


def first_difference(diffs: list[OutputDiff]) -> OutputDiff | None:
    return next((d for d in diffs if not d.equal), None)


def _equal_with_nans(a: torch.Tensor, b: torch.Tensor) -> bool:
    if not (a.is_floating_point() or a.is_complex()):
        return False
    nan_a, nan_b = torch.isnan(a), torch.isnan(b)
    return bool(torch.equal(nan_a, nan_b) and torch.equal(a[~nan_a], b[~nan_b]))


def _max_abs_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    if a.numel() == 0:
        return 0.0
    if a.dtype == torch.bool:
        return float((a != b).any())
    return float((a.double() - b.double()).abs().max())


def call_prepared(prepared: Prepared, example: Example) -> Any:
    """Run a prepared model on the original model's arguments."""
    # own copies of caches: a static cache is written in place, and the example is the user's;
    # random draws start where the original's did (Example.call)
    with same_draws(example.args, example.kwargs):
        return prepared.call_original(*own_copy(example.args), **own_copy(example.kwargs))


def verify_prepared(
    prepared: Prepared,
    example: Example,
    fresh: Example,
    references: tuple[Any, Any],
    original: torch.nn.Module | None = None,
    recheck: Sequence[str] | None = None,
    sized: list[tuple[str, Example, Any]] | None = None,
) -> None:
    """Bit-for-bit on the example, a fresh input and (given the ``original``) inputs with another
    batch size and sequence length, then checked again (see ``recheck_prepared``): no QR003/QR004
    outside the leaves. ``sized``: the original's runs at the other sizes (``sizes.other_sizes``),
    when the caller ran them already.

    Raises VerificationError naming the first differing output and its max abs difference. An
    input of another size that the original runs on and the prepared model rejects, or computes
    differently where the trace fixed a size, is noted in ``shape_bound``.
    """
    from qready.sizes import other_sizes

    result = result_of(prepared)
    runs = [("example", example, references[0]), ("fresh", fresh, references[1])]
    if sized is not None:
        runs += sized
    elif original is not None:
        runs += other_sizes(original, example)
    for run, inputs, expected in runs:
        with preserved(prepared), torch.no_grad():
            try:
                got = call_prepared(prepared, inputs)
            except Exception as error:
                if run in ("example", "fresh"):
                    raise
                text = " ".join(f"{type(error).__name__}: {error}".split())[:200]
                result.shape_bound.append(f"the original runs on the {run} input, the prepared model fails: {text}")
                continue
        expected_leaves, spec = flatten(expected)
        got_leaves, _ = flatten(got)
        names = result.output_names or leaf_names(spec, "output")
        diffs = compare_exact(run, names, expected_leaves, got_leaves)
        differing = first_difference(diffs)
        if differing is not None and run not in ("example", "fresh") and result.fixed_sizes:
            file, line = result.fixed_sizes[0]
            result.shape_bound.append(
                f"output {differing.name!r} differs on the {run} input (max abs diff {differing.max_abs_diff:.3g}): "
                f"a size read from a tensor is fixed to the example's at {file}:{line}"
            )
            continue
        result.diffs.extend(diffs)
    differing = first_difference(result.diffs)
    if differing is None:  # a model that computes something else is not worth checking again
        recheck_prepared(prepared, example, original, recheck)
    result.verified = differing is None and not result.unexpected
    if differing is not None:
        if original is not None:  # a forward that differs from itself is the model's, not qready's
            require_deterministic(original, _difference_between_runs(original, example))
        raise VerificationError(
            f"prepared {result.model} differs from the original on the {differing.run} input: output "
            f"{differing.name!r} max abs diff {differing.max_abs_diff:.3g}; "
            f"{traced_differently((example.args, example.kwargs)) or 'please report this with the model'}",
            prepared,
        )
    if result.unexpected:
        first = result.unexpected[0]
        raise VerificationError(
            f"prepared {result.model} still has {len(result.unexpected)} {first.code} finding(s) outside the "
            f"submodules left as leaves, first: {first.message}; please report this with the model",
            prepared,
        )


def recheck_prepared(
    prepared: Prepared,
    example: Example,
    original: torch.nn.Module | None,
    recheck: Sequence[str] | None = None,
) -> None:
    """Check the prepared model again and file each finding.

    ``recheck`` names the rules (codes, names or ``"all"``); by default, the rules ``check``
    runs (the project's ``[tool.qready]`` selection) except QR001 and QR002, which take
    seconds each and are named in ``skipped``; ``"all"`` is the whole selection.

    A QR003 or QR004 finding outside the submodules left as leaves is ``unexpected``: prepare
    removes those, so one left is prepare's bug. Every other finding is ``residual``, counted by
    rule in the summary. Where the prepared model has findings of a rule other than those two,
    the original is checked with that rule too, and a finding the original has as well (an
    exporter failing on both, a ``torch.nn`` leaf's own non-tensor argument) is ``inherited``.
    Rules that could not run (the exporters on a model without weights) are named in ``skipped``.
    """
    from qready.meta import has_meta_weights
    from qready.targets.generic import GenericTarget

    result = result_of(prepared)
    configured = [rule for rule in select_rules(*configured_rules(None, None)) if rule.applies_to(GenericTarget())]
    if recheck is None or [key.lower() for key in recheck] == ["all"]:
        rules = configured
        if recheck is None:  # the exporters take seconds each: run when asked, else said to be skipped
            result.skipped += [(rule.code, NOT_RECHECKED) for rule in rules if rule.code in _EXPORTERS]
            rules = [rule for rule in rules if rule.code not in _EXPORTERS]
    else:
        rules = [rule for rule in select_rules(recheck, None) if rule.applies_to(GenericTarget())]
    if has_meta_weights(prepared):  # the exporters need values; a model on the meta device has none
        result.skipped += [(rule.code, "the model has no weights (meta device)") for rule in rules if rule.code in _EXPORTERS]
        rules = [rule for rule in rules if rule.code not in _EXPORTERS]
    result.rechecked = [rule.code for rule in rules]
    args, kwargs = prepared.arguments_for(*own_copy(example.args), **own_copy(example.kwargs))
    from qready.leaves import with_declared_leaves
    from qready.targets import get_target

    declared = [path for path in result.declared_leaves if _has_submodule(prepared, path)]
    target = with_declared_leaves(get_target(None), prepared, declared)  # what the toolkit wraps whole
    findings = suppressed(run_rules(prepared, as_example(args, kwargs), rules, target=target).findings)
    others = sorted({f.code for f in findings if f.code not in _PROMISED})
    if others and original is not None:
        again = suppressed(run_rules(original, example, [rule for rule in rules if rule.code in others]).findings)
        result.inherited = [f for f in findings if f.code not in _PROMISED and _also_in(f, again)]
    allowed = [leaf.module for leaf in result.leaves] + result.excluded
    for finding in findings:
        if finding.code not in _PROMISED:
            result.residual.append(finding)
            continue
        # a module reused inside a leaf may also be registered elsewhere: any of its names counts
        names = [finding.module, *(finding.detail("paths") or [])]
        inside_leaf = any(p == "" or n == p or n.startswith(p + ".") for p in allowed for n in names)
        (result.residual if inside_leaf else result.unexpected).append(finding)


def _also_in(finding: Finding, original: list[Finding]) -> bool:
    """Whether the original model has ``finding`` too: an exporter failing at all, or the same
    finding at the same module (for values at a module boundary, QR005: some of the same values, when
    prepare changed others, such as a list output a toolkit target returns as a tuple)."""
    if finding.code in _EXPORTERS:
        return any(f.code == finding.code for f in original)
    values = _values(finding)
    return any(
        (f.code, f.module) == (finding.code, finding.module)
        and (f.message == finding.message or (bool(values) and values <= _values(f)))
        for f in original
    )


def _values(finding: Finding) -> set[tuple[Any, ...]]:
    """The non-tensor values a QR005 finding names, as (side, path, kind, description)."""
    return {
        (v.get("side"), v.get("path"), v.get("kind"), v.get("description"))
        for v in finding.detail("values") or () if isinstance(v, dict)
    }

def _has_submodule(model: torch.nn.Module, path: str) -> bool:
    try:
        model.get_submodule(path)
    except AttributeError:
        return False
    return True


def _difference_between_runs(model: torch.nn.Module, example: Example) -> float:
    """The largest difference between two runs of ``model`` on ``example`` (both from one random state,
    and from the same buffers: a forward that counts its calls computes the same from the same count)."""
    with torch.no_grad():
        first, second = flatten(call_preserved(model, example))[0], flatten(call_preserved(model, example))[0]
    diffs = compare_exact("again", [""] * len(first), first, second)
    return max((d.max_abs_diff for d in diffs if not d.equal), default=0.0)
