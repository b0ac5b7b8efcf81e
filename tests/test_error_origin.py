"""Errors keep their owner: qready's own bugs are internal errors, never blamed on the user's
model, inputs or save; the user's mistakes stay the user's."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import qready
from qready.cli import main
from qready.errors import InternalError, QreadyError
from qready.passes.functionals_to_modules import FunctionalsToModules

from models import seed, tricky

ROOT = Path(__file__).resolve().parents[1]


def _bug_in(module: str, error: str = "KeyError(\"qready's own bookkeeping\")") -> Callable[..., None]:
    """A function that raises as a bug written in ``module`` of qready's package would."""
    filename = str(Path(qready.__file__).parent / module)
    namespace: dict[str, Any] = {}
    exec(compile(f"def bug(*args, **kwargs):\n    raise {error}\n", filename, "exec"), namespace)
    return namespace["bug"]


@pytest.mark.filterwarnings("error::UserWarning")  # and no hook of qready's fails on the way (torch would warn)
def test_a_bug_in_the_instrumented_forward_is_an_internal_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("qready.observe._note_io", _bug_in("observe.py"))
    with pytest.raises(InternalError, match=r"qready failed while running the forward of FunctionalRelu: KeyError.*bug in qready") as caught:
        qready.check(seed.FunctionalRelu().eval(), (torch.randn(1, 3, 8, 8),))
    assert not isinstance(caught.value, QreadyError)
    assert "example inputs" not in str(caught.value)


def test_the_cli_shows_qreadys_bug_as_internal_with_a_debug_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("qready.observe._note_io", _bug_in("observe.py"))
    monkeypatch.chdir(ROOT)
    err = io.StringIO()
    code = main(["check", "tests/models/seed.py:FunctionalRelu", "--input", "1x3x8x8"], stdout=io.StringIO(), stderr=err)
    assert code == 2
    assert err.getvalue().startswith("qready: internal error: InternalError: qready failed while running the forward")
    assert "--debug" in err.getvalue() and "fit the model" not in err.getvalue()


def test_the_users_forward_failing_is_still_the_users() -> None:
    with pytest.raises(qready.ModelError, match=r"forward of Linear raised RuntimeError: mat1 and mat2 .* fit the model"):
        qready.check(nn.Linear(4, 4), (torch.randn(1, 5),))


def test_a_bug_in_the_tracer_is_not_a_leaf_with_the_tracers_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("qready.tracing._static_shape", _bug_in("tracing.py", "AttributeError('no attribute meta')"))

    class ReadsShape(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = nn.Sequential(nn.Linear(4, 4))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.inner(x).reshape(x.shape[0], -1)

    with pytest.raises(InternalError, match=r"qready's tracer failed on ReadsShape: AttributeError.*bug in qready"):
        qready.prepare(ReadsShape().eval(), (torch.randn(2, 4),))


def test_a_data_dependent_branch_is_still_a_leaf() -> None:
    prepared = qready.prepare(tricky.GatedNet().eval(), (torch.randn(2, 8),))
    [leaf] = prepared.prepare_result.leaves
    assert leaf.module == "gate" and "data" in leaf.reason


def test_a_crash_inside_a_pass_is_an_internal_error_naming_the_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(FunctionalsToModules, "__call__", _bug_in("passes/functionals_to_modules.py"))
    with pytest.raises(InternalError, match=r"pass functionals-to-modules failed after .*KeyError.*bug in qready") as caught:
        qready.prepare(seed.FunctionalRelu().eval(), (torch.randn(1, 3, 8, 8),))
    assert not isinstance(caught.value, QreadyError)


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    prepared = qready.prepare(seed.FunctionalRelu().eval(), (torch.randn(1, 3, 8, 8),))
    return qready.save(prepared, tmp_path_factory.mktemp("origin") / "saved")


def test_a_mangled_manifest_entry_is_a_damaged_save(saved: Path, tmp_path: Path) -> None:
    import shutil

    copy = Path(shutil.copytree(saved, tmp_path / "copy"))
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["modules"][0]["path"] = 5
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(qready.LoadError, match=r"modules\[0\] has no string 'path'\); the save is damaged"):
        qready.load(copy)


def test_the_users_class_failing_on_rebuild_is_named_not_called_damage(saved: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def users_code(*args: object) -> None:  # raised in the user's file: theirs
        raise ValueError("the user's class changed")

    monkeypatch.setattr("qready.serialize._attach_tensor_attributes", users_code)
    with pytest.raises(qready.LoadError, match=r"raised ValueError: the user's class changed at tests/test_error_origin.py:\d+; the classes it names"):
        qready.load(saved)


def test_a_bug_while_rebuilding_an_intact_save_is_not_called_damage(saved: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("qready.serialize._attach_tensor_attributes", _bug_in("serialize.py"))
    with pytest.raises(InternalError, match=r"failed inside qready: KeyError.*bug in qready") as caught:
        qready.load(saved)
    assert "damaged" not in str(caught.value)
