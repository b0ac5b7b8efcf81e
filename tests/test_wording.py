"""Messages read as English, name ops by their public names, and say the same in check and prepare;
the README's example output is what the tool prints."""

from __future__ import annotations

import io
import operator
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import qready
from qready.cli import main
from qready.ops import op_name
from qready.wording import a, shorten

ROOT = Path(__file__).resolve().parent.parent


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    return main(list(argv), stdout=out, stderr=err), out.getvalue(), err.getvalue()


def test_readme_example_output_is_what_check_prints(monkeypatch: pytest.MonkeyPatch) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```\n\$ (qready check [^\n]+)\n(.*?)```", readme, re.DOTALL)
    assert block is not None, "the README shows a qready check command and its output"
    command, shown = block.group(1), block.group(2)
    monkeypatch.chdir(ROOT)
    _, out, _ = run(*command.split()[1:])
    assert out == shown


@pytest.mark.parametrize("func, name", [
    (F.max_pool2d, "torch.nn.functional.max_pool2d"),  # a boolean_dispatch.<locals>.fn underneath
    (torch.einsum, "torch.einsum"),  # defined in torch.functional
    (operator.add, "torch.Tensor.add"),  # `x + y` in a graph: what check calls it
    (operator.truediv, "torch.Tensor.div"),
    (operator.getitem, "torch.Tensor.__getitem__"),
    (operator.lshift, "operator.lshift"),  # lshift on float tensors raises: keeps its own name
])
def test_ops_have_their_public_names(func: object, name: str) -> None:
    assert op_name(func) == name  # type: ignore[arg-type]


class _Ops(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = F.max_pool2d(self.conv(x), 2)
        z = torch.einsum("bchw,bchw->bc", y, y)
        return z + 1, y * 2


def test_check_and_prepare_name_each_op_the_same_way() -> None:
    x = torch.randn(1, 3, 8, 8)
    found = {(f.line, f.op) for f in qready.check(_Ops(), (x,), select=["QR003"]).findings}
    converted = {(c.line, c.op) for c in qready.prepare(_Ops(), (x,)).prepare_result.converted}
    assert found == converted
    assert {op for _, op in found} == {"torch.nn.functional.max_pool2d", "torch.einsum", "torch.Tensor.add", "torch.Tensor.mul"}


def test_articles_and_shortening() -> None:
    assert [a("int"), a("Tensor"), a("OrderedDict"), a("dict")] == ["an int", "a Tensor", "an OrderedDict", "a dict"]
    long = ("Encountering a dict at the output of the tracer might cause the trace to be incorrect. "
            "Consider using a constant container instead (e.g. for `list`, use a `tuple` instead).")
    assert shorten(long, 100) == "Encountering a dict at the output of the tracer might cause the trace to be incorrect."
    cut = shorten("word " * 30 + "(e.g. for `list`, use a `tuple`)", 160)
    assert cut.endswith("word ...") and "`" not in cut


def test_messages_say_the_side_once_and_inputs_errors_name_inputs(tmp_path: Path) -> None:
    code, out, _ = run("check", f"{ROOT / 'examples' / 'every_rule.py'}:EveryRule", "--input", "1x3x16x16", "--select", "QR005")
    assert code == 1 and "output is dict with keys 'logits'" in out and "output output" not in out
    code, _, err = run("check", f"{ROOT / 'examples' / 'every_rule.py'}:EveryRule", "--inputs", "nowhere/inputs.py:make")
    assert code == 2 and "in --inputs 'nowhere/inputs.py:make'" in err and "SPEC" not in err
    code, _, err = run("check", f"{ROOT / 'examples' / 'every_rule.py'}:EveryRule", "--inputs", "no_colon")
    assert code == 2 and err.startswith("qready: error: --inputs 'no_colon' is not of the form")
