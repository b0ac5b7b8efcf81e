"""qready.walks gives what torch's named_* generators give, in the same order, every name kept."""

from __future__ import annotations

import pytest
import torch

from qready.walks import modules_by_path, modules_of, named_state, set_eval, tensors_of


def _awkward() -> torch.nn.Module:
    """Shared modules and tensors, None slots, a non-persistent buffer, a buffer-only module, nesting."""
    shared = torch.nn.Linear(3, 3)
    inner = torch.nn.Sequential(shared, torch.nn.BatchNorm1d(3), torch.nn.ReLU())
    root = torch.nn.Module()
    root.inner = inner
    root.again = shared  # one module at two paths
    root.register_parameter("scale", torch.nn.Parameter(torch.ones(1)))
    root.register_parameter("missing", None)
    root.register_buffer("steps", torch.zeros(1), persistent=False)
    root.register_buffer("nothing", None)
    root.empty = torch.nn.Module()
    root.empty.tied = shared.weight  # one tensor at two names, in a module without children
    return root


@pytest.mark.parametrize("build", [_awkward, lambda: torch.nn.Sequential(*[torch.nn.Sequential(torch.nn.Conv2d(2, 2, 1)) for _ in range(3)])])
def test_every_walk_matches_torchs_own_with_duplicates_kept(build) -> None:
    model = build()
    parameters, buffers = named_state(model)
    assert [(n, id(t)) for n, t in parameters] == [(n, id(t)) for n, t in model.named_parameters(remove_duplicate=False)]
    assert [(n, id(t)) for n, t in buffers] == [(n, id(t)) for n, t in model.named_buffers(remove_duplicate=False)]
    unnamed_parameters, unnamed_buffers = tensors_of(model)
    assert [id(t) for t in unnamed_parameters] == [id(t) for _, t in parameters]
    assert [id(t) for t in unnamed_buffers] == [id(t) for _, t in buffers]
    assert list(modules_by_path(model).items()) == list(model.named_modules(remove_duplicate=False))
    assert modules_of(model) == [m for _, m in model.named_modules(remove_duplicate=False)]


def test_a_shared_module_is_listed_at_each_of_its_paths() -> None:
    names = [n for n, _ in named_state(_awkward())[0]]
    assert names.count("inner.0.weight") == 1 and names.count("again.weight") == 1
    assert "missing" not in names and "nothing" not in [n for n, _ in named_state(_awkward())[1]]


def test_a_tree_deeper_than_the_recursion_limit_raises_recursion_error_as_torchs_walks_do() -> None:
    module = torch.nn.Module()
    module.child = module  # holds itself: torch's remove_duplicate=False walks never end either
    with pytest.raises(RecursionError):
        modules_of(module)
    with pytest.raises(RecursionError):
        named_state(module)


class _CountingTrain(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Dropout(0.5)
        self.calls = 0

    def train(self, mode: bool = True) -> _CountingTrain:
        self.calls += 1
        return super().train(mode)


def test_set_eval_runs_the_models_own_eval_only_when_some_flag_would_change() -> None:
    model = _CountingTrain()
    model.layer.train()
    model.training = False
    set_eval(model)  # one submodule in training mode: the model's own train(False) runs
    assert model.calls == 1 and not model.layer.training and not model.training
    set_eval(model)  # all in eval already: nothing to change, nothing run
    assert model.calls == 1
