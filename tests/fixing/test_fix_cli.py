"""`qready fix` and `qready check --fix/--diff` from the command line."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import torch

from qready.cli import main
from tests.fixing.conftest import build
from tests.fixing.test_fix_models import RESNET_DIFF, REUSED_DIFF


def _run(*argv: str) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=stdout, stderr=stderr)
    return code, stdout.getvalue(), stderr.getvalue()


def test_diff_prints_and_writes_nothing_then_fix_writes_then_nothing_is_left(copy_model: Callable[[str], Path]) -> None:
    path = copy_model("reused_relu.py")
    before = path.read_bytes()
    assert _run("fix", "reused_relu.py:Stages", "--input", "1x3x8x8", "--diff") == (1, REUSED_DIFF, "")
    assert _run("check", "reused_relu.py:Stages", "--input", "1x3x8x8", "--diff") == (1, REUSED_DIFF, "")
    assert path.read_bytes() == before
    assert _run("check", "reused_relu.py:Stages", "--input", "1x3x8x8", "--fix") == (
        0, "fixed 1 finding(s) in reused_relu.py\n", ""
    )
    assert _run("fix", "reused_relu.py:Stages", "--input", "1x3x8x8") == (0, "nothing to fix\n", "")
    assert _run("fix", "reused_relu.py:Stages", "--input", "1x3x8x8", "--diff") == (0, "", "")
    assert _run("check", "reused_relu.py:Stages", "--input", "1x3x8x8", "--select", "QR003,QR004")[0] == 0


def test_what_is_not_fixed_is_listed_and_exits_1(copy_model: Callable[[str], Path]) -> None:
    copy_model("unfixable.py")
    code, out, err = _run("fix", "unfixable.py:SharedWeights", "--input", "1x3x4x4")
    assert (code, err) == (1, "")
    assert out.startswith("unfixable.py:60  QR004  not fixed: 'conv' holds weights")
    for command in (("fix",), ("check", "--fix")):  # --diff or not, the same errors give the same exit code
        code, out, err = _run(*command, "unfixable.py:SharedWeights", "--input", "1x3x4x4", "--diff")
        assert (code, err) == (1, "") and "QR004  not fixed" in out


def test_an_ops_module_it_did_not_write_is_never_overwritten(copy_model: Callable[[str], Path], workdir: Path) -> None:
    copy_model("resnet_block.py")
    (workdir / "ops.py").write_text("# mine\n")
    code, out, err = _run("fix", "resnet_block.py:ResNet", "--input", "1x3x8x8", "--ops-module", "ops.py")
    assert (code, out) == (2, "")
    assert err == f"qready: error: --ops-module {str(workdir / 'ops.py')!r} exists and was not written by qready; choose another path\n"
    assert (workdir / "ops.py").read_text() == "# mine\n"


def test_ops_module_lets_the_fixed_model_run_without_qready(copy_model: Callable[[str], Path], workdir: Path) -> None:
    path = copy_model("resnet_block.py")
    original = build("resnet_block.py:ResNet")
    x = torch.randn(2, 3, 8, 8)
    code, out, _ = _run("fix", "resnet_block.py:ResNet", "--input", "2x3x8x8", "--ops-module", "resnet_ops.py")
    assert (code, out) == (0, "fixed 7 finding(s) in resnet_block.py, resnet_ops.py\n")
    text = path.read_text()
    assert "qready" not in text and "import resnet_ops\n" in text
    assert "        self.add_identity = resnet_ops.Add()\n" in text
    assert RESNET_DIFF.count("qready.nn.") == text.count("resnet_ops.")
    torch.save({"state": original.state_dict(), "x": x, "y": original(x).detach()}, workdir / "ref.pt")
    script = (
        "import sys, torch\n"
        "sys.modules['qready'] = None  # any import of qready now fails\n"
        "sys.path.insert(0, '.')\n"
        "import resnet_block\n"
        "ref = torch.load('ref.pt')\n"
        "model = resnet_block.ResNet().eval()\n"
        "model.load_state_dict(ref['state'], strict=True)\n"
        "assert torch.equal(model(ref['x']), ref['y'])\n"
        "print(type(model.layer1[0].add_identity).__module__)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=workdir, check=False)
    assert (done.returncode, done.stdout, done.stderr) == (0, "resnet_ops\n", "")
    assert _run("fix", "resnet_block.py:ResNet", "--input", "2x3x8x8", "--ops-module", "resnet_ops.py") == (
        0, "nothing to fix\n", ""
    )
