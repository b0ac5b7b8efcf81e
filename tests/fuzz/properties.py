"""What must hold for every generated model, shared by the CI test and the soak benchmark."""

from __future__ import annotations

import copy
import dataclasses
import math
from pathlib import Path
from typing import Any

import torch

import qready
from fuzz.grammar import GeneratedModel
from fuzz.loader import build, call, example_inputs, generated_module
from invariants import assert_unchanged, snapshot

__all__ = ["check_prepare", "assert_same_outputs", "inside", "within"]

QR = ("QR003", "QR004")


def inside(module: str, scopes: list[str]) -> bool:
    return any(module == scope or module.startswith(scope + ".") for scope in scopes)


def within(finding: qready.Finding, scopes: list[str]) -> bool:
    """Inside a leaf under one of its names (a module reused inside a leaf may be registered elsewhere too)."""
    return any(inside(name, scopes) for name in [finding.module, *(finding.detail("paths") or [])])


def check_prepare(generated: GeneratedModel, directory: Path, *, round_trip: bool = True) -> qready.PreparedModule:
    """Prepare the model and assert every property; return the prepared model."""
    with generated_module(generated, directory) as module:
        model = build(generated, module)
        example = example_inputs(generated, seed=generated.seed)
        before = snapshot(model)
        submodules = [name for name, _ in model.named_modules() if name]
        exclude = [submodules[generated.exclude % len(submodules)]] if generated.exclude is not None and submodules else []
        prepared = qready.prepare(model, example, exclude=exclude, tie_weights=generated.tie_weights)
        assert_unchanged(model, before)
        result = prepared.prepare_result
        assert result is not None and result.verified, result.summary()
        # other batch sizes: bit-identical, or the sizes the source fixes (``if len(x) == 2``) reported
        assert {"example", "fresh"} <= {d.run for d in result.diffs} and all(d.equal for d in result.diffs)
        assert not result.shape_bound or result.fixed_sizes, result.shape_bound

        # bit-identical on a third input that prepare never saw
        third = example_inputs(generated, seed=generated.seed + 7919)
        args, kwargs = (third, {}) if isinstance(third, tuple) else ((), third)
        flat = prepared.flatten_inputs(*args, **kwargs)
        with torch.no_grad():  # a forward that draws random numbers draws the same ones from one seed
            torch.manual_seed(generated.seed)
            expected = call(model, third)
            torch.manual_seed(generated.seed)
            got = prepared.unflatten_outputs(prepared(*flat))
        assert_same_outputs(expected, got)
        if generated.tie_weights:  # untied copies add their own keys, by design
            assert sorted(prepared.state_dict()) == sorted(model.state_dict())
        else:
            assert set(model.state_dict()) <= set(prepared.state_dict())
        assert_unchanged(model, before)

        # QR003/QR004 only inside the submodules left whole
        allowed = [leaf.module for leaf in result.leaves] + list(result.excluded)
        assert not result.unexpected, [f.message for f in result.unexpected]
        promised = [f for f in result.residual if f.code in QR]  # QR005 and the exporters are counted, not promised
        assert all(within(f, allowed) for f in promised), [f.module for f in promised]
        recheck = qready.check(prepared, flat, select=QR)
        assert all(within(f, allowed) for f in recheck.findings), [f.message for f in recheck.findings if not within(f, allowed)]

        # a submodule that branches on data, and runs, is left whole under at least one of its names
        for name in _gates_that_run(model, example):
            assert inside(name, allowed), (name, allowed)

        if round_trip:
            saved = Path(directory) / f"saved_{id(prepared)}"
            qready.save(prepared, saved)
            loaded = qready.load(saved)
            with torch.no_grad():
                torch.manual_seed(generated.seed)
                assert_same_outputs(expected, loaded.unflatten_outputs(loaded(*flat)))
            assert sorted(loaded.state_dict()) == sorted(prepared.state_dict())
        return prepared


def _gates_that_run(model: torch.nn.Module, example: tuple[Any, ...] | dict[str, Any]) -> list[str]:
    """The first name of each generated gate that the forward calls (found on a copy: no hooks on the model)."""
    twin = copy.deepcopy(model)
    ran: list[str] = []
    names = {id(m): n for n, m in reversed(list(twin.named_modules(remove_duplicate=False)))}
    for module in twin.modules():
        if type(module).__name__.startswith("Gate"):
            module.register_forward_pre_hook(lambda m, args: ran.append(names[id(m)]))
    with torch.no_grad():
        call(twin, example)
    return sorted(set(ran))


def assert_same_outputs(expected: Any, got: Any, where: str = "output") -> None:
    """Same structure, and every tensor equal bit for bit (NaNs where the original has them)."""
    if isinstance(expected, torch.Tensor):
        assert isinstance(got, torch.Tensor), f"{where}: {type(got).__name__} instead of a tensor"
        assert got.shape == expected.shape and got.dtype == expected.dtype, f"{where}: {got.shape} {got.dtype}"
        same = torch.equal(got, expected)
        if not same and expected.is_floating_point():
            nans = torch.isnan(expected)
            same = torch.equal(nans, torch.isnan(got)) and torch.equal(got[~nans], expected[~nans])
        if not same:
            diff = (got.double() - expected.double()).abs().max().item()
            raise AssertionError(f"{where}: max abs diff {diff if not math.isnan(diff) else 'nan'}")
        return
    assert type(got) is type(expected), f"{where}: {type(got).__name__} instead of {type(expected).__name__}"
    if dataclasses.is_dataclass(expected):
        for f in dataclasses.fields(expected):
            assert_same_outputs(getattr(expected, f.name), getattr(got, f.name), f"{where}.{f.name}")
    elif isinstance(expected, dict):
        assert list(got) == list(expected), f"{where}: keys {list(got)} instead of {list(expected)}"
        for key in expected:
            assert_same_outputs(expected[key], got[key], f"{where}[{key!r}]")
    elif isinstance(expected, (tuple, list)):
        assert len(got) == len(expected), f"{where}: {len(got)} items instead of {len(expected)}"
        for i, (e, g) in enumerate(zip(expected, got)):
            assert_same_outputs(e, g, f"{where}[{i}]")
    else:
        assert got == expected, f"{where}: {got!r} instead of {expected!r}"
