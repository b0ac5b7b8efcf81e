"""What `fix` cannot fix: one clear line each, and no file touched."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

import qready.fixing.apply as apply_module
from qready.example_inputs import Example
from qready.findings import Finding, Severity
from qready.fixing import LIBRARY, fix
from qready.fixing.plan import plan_fixes
from tests.fixing.conftest import build

IMAGE = Example((torch.randn(1, 3, 4, 4, generator=torch.Generator().manual_seed(0)),))


def _untouched(directory: Path, before: dict[str, bytes]) -> None:
    """Exactly the files that were there, with the same bytes: nothing half-written, no temporary left."""
    after = {p.name: p.read_bytes() for p in directory.iterdir() if p.is_file()}
    assert after == before


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in directory.iterdir() if p.is_file()}


@pytest.mark.parametrize(
    ("cls", "code", "line", "reason"),
    [
        ("InLambda", "QR003", 14, r"inside a lambda, which has no module to hold a new layer; move the call into forward"),
        ("ThroughPartial", "QR003", 27, r"called through functools\.partial \(self\.act\)"),
        ("ThroughGetattr", "QR003", 37, r"looked up with getattr\(\.\.\.\) at run time"),
        ("SharedWeights", "QR004", 60, r"'conv' holds weights: a second instance in source would have weights of its own"),
        ("Generated", "QR003", 8, r"code generated at run time \(<generated>\) has nothing to rewrite"),
        ("Ambiguous", "QR003", 102, r"^2 calls on that line could be the 1 that run on tensors; put the tensor op on a line of its own"),
    ],
)
def test_unfixable_findings_say_why_in_one_line(
    copy_model: Callable[[str], Path], workdir: Path, cls: str, code: str, line: int, reason: str
) -> None:
    copy_model("unfixable.py")
    before = _snapshot(workdir)
    result = fix(f"unfixable.py:{cls}", IMAGE)
    assert not result.changed and result.failure is None
    [item] = result.not_fixed
    assert (item.finding.code, item.finding.line) == (code, line)
    assert re.search(reason, item.reason), item.reason
    assert "prepare" in item.reason and "\n" not in item.line()
    _untouched(workdir, before)


def test_a_call_in_a_loop_is_explained_not_half_fixed(copy_model: Callable[[str], Path], workdir: Path) -> None:
    copy_model("unfixable.py")
    before = _snapshot(workdir)
    result = fix("unfixable.py:InLoop", IMAGE)
    lines = sorted(item.line() for item in result.not_fixed)
    assert lines == [
        (
            "unfixable.py:48  QR003  not fixed: it runs 3 times in one forward of the model from 1 call site(s) "
            "(a loop, or a method called more than once): one module there would be reused (QR004); "
            "`qready prepare` unrolls it"
        ),
        (
            "unfixable.py:49  QR004  not fixed: 'act' runs 3 times from 1 call site(s) (a call inside a loop): "
            "source cannot give each run its own module without unrolling the loop; `qready prepare` unrolls it"
        ),
    ]
    _untouched(workdir, before)


def test_non_tensor_io_is_explained_with_what_to_change(copy_model: Callable[[str], Path]) -> None:
    copy_model("unfixable.py")
    result = fix("unfixable.py:DictInputs", ({"image": torch.randn(1, 3, 4, 4)},))
    [item] = result.not_fixed
    assert item.reason == (
        "signatures are not rewritten automatically (input inputs[0] is dict with keys 'image'; output output is "
        "dict with keys 'out'): take each tensor as its own forward argument and return a tensor or a tuple of "
        "tensors; `qready prepare` flattens them in the graph"
    )


def test_a_read_only_file_is_left_alone(copy_model: Callable[[str], Path], workdir: Path) -> None:
    path = copy_model("reused_relu.py")
    path.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    before = _snapshot(workdir)
    result = fix("reused_relu.py:Stages", IMAGE)
    assert [item.reason for item in result.not_fixed] == ["reused_relu.py is read-only (or its directory is); make it writable to fix it"]
    assert not result.changed
    _untouched(workdir, before)
    assert stat.S_IMODE(path.stat().st_mode) == 0o444


def test_a_file_that_is_not_utf8_is_left_alone(workdir: Path) -> None:
    source = (Path(__file__).parent / "models" / "reused_relu.py").read_text()
    path = workdir / "latin.py"
    path.write_bytes(b"# -*- coding: latin-1 -*-\n# caf\xe9\n" + source.encode())
    before = _snapshot(workdir)
    result = fix("latin.py:Stages", IMAGE)
    assert [item.reason for item in result.not_fixed] == ["latin.py is not UTF-8 (byte 31); save it as UTF-8 to fix it"]
    _untouched(workdir, before)


def test_library_code_points_at_prepare() -> None:
    torchvision = pytest.importorskip("torchvision", reason="torchvision gives a real library file")
    library_file = torchvision.models.resnet.__file__
    finding = Finding("QR003", "functional-op", Severity.ERROR, "x", module="layer1.0", op="torch.Tensor.add_",
                      file=library_file, line=102)
    plan = plan_fixes([finding], torch.nn.Identity())
    assert [(item.finding, item.reason) for item in plan.not_fixed] == [(finding, LIBRARY)]
    assert LIBRARY == "in library code: use `qready prepare`"
    assert plan.files == {}


def test_a_rewrite_that_fails_verification_writes_nothing(
    copy_model: Callable[[str], Path], workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy_model("reused_relu.py")
    before = _snapshot(workdir)
    real_rewrite = apply_module.rewrite

    def wrong(edits):  # type: ignore[no-untyped-def]
        return real_rewrite(edits).replace("self.relu3 = nn.ReLU(inplace=True)", "self.relu3 = nn.Sigmoid()")

    monkeypatch.setattr(apply_module, "rewrite", wrong)
    result = fix("reused_relu.py:Stages", IMAGE)
    assert re.fullmatch(r"output 0 differs on the example input \(max \|diff\| 0\.\d+\) after the fix", result.failure or "")
    assert result.written == [] and result.diffs == {}
    _untouched(workdir, before)


def test_new_state_dict_keys_fail_verification(
    copy_model: Callable[[str], Path], workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy_model("reused_relu.py")
    before = _snapshot(workdir)
    real_rewrite = apply_module.rewrite
    monkeypatch.setattr(
        apply_module, "rewrite",
        lambda edits: real_rewrite(edits).replace("self.relu2 = nn.ReLU(inplace=True)", "self.relu2 = nn.PReLU()"),
    )
    result = fix("reused_relu.py:Stages", IMAGE)
    assert result.failure is not None
    assert result.failure.startswith("the original state_dict does not load strictly into the fixed model (")
    assert 'Missing key(s) in state_dict: "relu2.weight"' in result.failure
    _untouched(workdir, before)


def test_the_fixed_model_is_rebuilt_from_the_new_file(copy_model: Callable[[str], Path]) -> None:
    # what verification imports is the file as written: a later build sees the new attributes
    copy_model("reused_relu.py")
    assert fix("reused_relu.py:Stages", IMAGE).written == ["reused_relu.py"]
    fixed = build("reused_relu.py:Stages")
    assert [name for name, _ in fixed.named_children()] == ["conv1", "conv2", "conv3", "relu", "relu2", "relu3"]
    assert os.access("reused_relu.py", os.W_OK)


def test_arithmetic_on_sizes_is_told_apart_from_the_tensor_op(copy_model: Callable[[str], Path]) -> None:
    copy_model("unfixable.py")
    result = fix("unfixable.py:ScalarArithmetic", IMAGE)
    assert (result.failure, result.not_fixed) == (None, [])
    assert (
        "-        return self.conv(x) * (x.shape[2] * 0.5)\n+        return self.mul(self.conv(x), (x.shape[2] * 0.5))\n"
        in result.diffs["unfixable.py"]
    )


COUNTING = '''import torch
import torch.nn.functional as F
from torch import nn


class Counting(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)
        self.register_buffer("calls", torch.zeros(()))

    def forward(self, x):
        self.calls.add_(1)
        return F.relu(self.conv(x)) * self.calls
'''


def test_a_model_that_reads_what_it_wrote_into_its_buffers_is_verified_from_the_same_state(workdir: Path) -> None:
    """Both sides of the fix's check start each run from the buffers as they were: the counter the output
    reads is 1 on every run of the original and of the fixed model, and the user's model keeps its own."""
    (workdir / "counting.py").write_text(COUNTING)
    result = fix("counting.py:Counting", IMAGE)
    assert (result.failure, result.written) == (None, ["counting.py"]), result.failure
    assert "F.relu(" not in (workdir / "counting.py").read_text()
    fixed = build("counting.py:Counting")
    assert fixed.get_buffer("calls").item() == 0
