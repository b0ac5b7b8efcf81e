"""`# qready: ignore[...]` and `[tool.qready]`, honoured by check and by fix."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from qready.api import check
from qready.errors import InputError
from qready.example_inputs import Example
from qready.fixing import fix
from tests.fixing.conftest import build

IMAGE = Example((torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(0)),))


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def _located(report) -> list[tuple[str, int | None]]:  # type: ignore[no-untyped-def]
    return sorted({(f.code, f.line) for f in report.findings})


def test_inline_comment_silences_one_rule_on_one_line_for_check_and_fix(copy_model: Callable[[str], Path]) -> None:
    path = copy_model("resnet_block.py")
    _edit(path, "        return F.relu(out)\n", "        return F.relu(out)  # qready: ignore[QR003]\n")
    assert _located(check(build("resnet_block.py:ResNet"), IMAGE, select=["QR003"])) == [
        ("QR003", 18), ("QR003", 20), ("QR003", 33)
    ]
    result = fix("resnet_block.py:ResNet", IMAGE)
    assert result.not_fixed == [] and result.failure is None
    text = path.read_text()
    assert "        return F.relu(out)  # qready: ignore[QR003]\n" in text  # left as it was
    assert "self.relu_1" not in text and "out = self.add_identity(out, identity)" in text


def test_a_comment_naming_another_rule_does_not_silence(copy_model: Callable[[str], Path]) -> None:
    path = copy_model("resnet_block.py")
    _edit(path, "        return F.relu(out)\n", "        return F.relu(out)  # qready: ignore[QR004]\n")
    assert ("QR003", 21) in _located(check(build("resnet_block.py:ResNet"), IMAGE, select=["QR003"]))


def test_a_bare_comment_silences_every_rule_and_a_call_site_silences_qr004(copy_model: Callable[[str], Path]) -> None:
    path = copy_model("reused_relu.py")
    _edit(path, "        x = self.relu(self.conv2(x))\n", "        x = self.relu(self.conv2(x))  # qready: ignore\n")
    assert check(build("reused_relu.py:Stages"), IMAGE, select=["QR004"]).findings == ()
    result = fix("reused_relu.py:Stages", IMAGE)
    assert not result.changed and result.not_fixed == []


def test_pyproject_select_ignore_exclude_and_per_file_ignores(copy_model: Callable[[str], Path], workdir: Path) -> None:
    copy_model("resnet_block.py")
    copy_model("reused_relu.py")
    config = workdir / "pyproject.toml"
    model = build("resnet_block.py:ResNet")

    config.write_text('[tool.qready]\nselect = ["QR003", "QR004"]\n')
    assert check(model, IMAGE).rules_run == ("QR003", "QR004")
    assert check(model, IMAGE, select=["QR005"]).rules_run == ("QR005",)  # given rules win

    config.write_text('[tool.qready]\nselect = ["QR003", "QR004"]\nignore = ["QR004"]\n')
    assert check(model, IMAGE).rules_run == ("QR003",)

    config.write_text('[tool.qready]\nselect = ["QR003"]\nexclude = ["resnet_*.py"]\n')
    assert check(model, IMAGE).findings == ()

    config.write_text('[tool.qready]\nselect = ["QR003", "QR004"]\n[tool.qready.per-file-ignores]\n"reused_relu.py" = ["reused-module"]\n')
    assert check(build("reused_relu.py:Stages"), IMAGE).findings == ()
    assert len(check(model, IMAGE).findings) == 7  # another file: nothing ignored
    assert not fix("reused_relu.py:Stages", IMAGE).changed


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[tool.qready]\nignore = \"QR001\"\n", r"ignore must be a list of strings"),
        ("[tool.qready]\nfix = true\n", r"unknown key 'fix'"),
        ("[tool.qready\n", r"cannot read .*pyproject.toml"),
        ("[tool.qready.per-file-ignores]\n\"a.py\" = [\"QR999\"]\n", r"unknown rule 'QR999'"),
    ],
)
def test_a_bad_config_is_one_line_that_names_the_file(workdir: Path, text: str, message: str) -> None:
    (workdir / "pyproject.toml").write_text(text)
    with pytest.raises(Exception, match=message) as raised:
        check(torch.nn.Sequential(torch.nn.Conv2d(3, 3, 1)), IMAGE)
    assert isinstance(raised.value, InputError) or "unknown rule" in str(raised.value)
    assert "\n" not in str(raised.value)


def test_fix_follows_the_configured_rules_and_prefixes(copy_model: Callable[[str], Path], workdir: Path) -> None:
    path = copy_model("reused_relu.py")
    before = path.read_bytes()
    (workdir / "pyproject.toml").write_text('[tool.qready]\nignore = ["reused-module"]\n')
    assert not fix("reused_relu.py:Stages", IMAGE).changed  # QR004 ignored by the project
    assert path.read_bytes() == before
    assert fix("reused_relu.py:Stages", IMAGE, select=["QR00"], ignore=[], write=False).changed  # given rules win
