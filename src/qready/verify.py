"""Equivalence, bit for bit: the prepared model against the original, then checked again.

Built on ``rules.run_rules`` (not on ``api``), so ``api`` -> ``preparing`` ->
``verify`` -> ``rules`` run one way, without a cycle. ``OutputDiff`` lives with
the ``PrepareResult`` that holds it (``prepared``) and is re-exported here.
"""

from __future__ import annotations

from typing import Any

import torch

from qready.caches import own_copy, traced_differently
from qready.errors import VerificationError
from qready.example_inputs import Example, as_example
from qready.guard import preserved
from qready.prepared import OutputDiff, Prepared, result_of
from qready.rules import run_rules, select_rules
from qready.structure import flatten, leaf_names
from qready.suppression import configured_rules, suppressed

__all__ = ["OutputDiff", "compare_exact", "first_difference", "verify_prepared", "call_prepared"]

_RECHECKED = ("QR003", "QR004")  # what prepare promises to fix


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
    # own copies of caches: a static cache is written in place, and the example is the user's
    return prepared.call_original(*own_copy(example.args), **own_copy(example.kwargs))


def verify_prepared(
    prepared: Prepared,
    example: Example,
    fresh: Example,
    references: tuple[Any, Any],
    original: torch.nn.Module | None = None,
) -> None:
    """Bit-for-bit on the example, a fresh input and (given the ``original``) inputs with another
    batch size and sequence length, then no QR003/QR004 outside the leaves.

    Raises VerificationError naming the first differing output and its max abs difference. An
    input of another size that the original runs on and the prepared model rejects, or computes
    differently where the trace fixed a size, is noted in ``shape_bound``.
    """
    from qready.sizes import other_sizes

    result = result_of(prepared)
    runs = [("example", example, references[0]), ("fresh", fresh, references[1])]
    if original is not None:
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
    args, kwargs = prepared.arguments_for(*own_copy(example.args), **own_copy(example.kwargs))
    rules = select_rules(*configured_rules(_RECHECKED, None))
    recheck = suppressed(run_rules(prepared, as_example(args, kwargs), rules).findings)
    allowed = [leaf.module for leaf in result.leaves] + result.excluded
    for finding in recheck:
        # a module reused inside a leaf may also be registered elsewhere: any of its names counts
        names = [finding.module, *(finding.detail("paths") or [])]
        inside_leaf = any(p == "" or n == p or n.startswith(p + ".") for p in allowed for n in names)
        (result.residual if inside_leaf else result.unexpected).append(finding)
    differing = first_difference(result.diffs)
    result.verified = differing is None and not result.unexpected
    if differing is not None:
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
