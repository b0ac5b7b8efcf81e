"""QR005 non-tensor-io."""

from __future__ import annotations

import inspect

import torch
from torch import nn

from qready.findings import Finding, Severity
from qready.observe import IOIssue
from qready.rules.base import CheckContext, Rule, RuleExample, image_input
from qready.source import display_path

__all__ = ["NonTensorIO"]


class NonTensorIO(Rule):
    """A model or submodule takes or returns something other than tensors and tuples of tensors.

    Exporters and quantization toolkits connect modules by tensors: a dict, a
    list, a dataclass or ``ModelOutput``, ``None`` or a string at a module
    boundary cannot be given an encoding, breaks ONNX and TorchScript input and
    output signatures, and hides which tensor a quantizer belongs to. Python
    numbers passed as arguments, alone or as a list or tuple of them (a size,
    a padding), are baked in as constants: a warning, not an error.

    Fix by hand: take each tensor as its own argument (``forward(self,
    image_rgb, image_bw)``) and return a tuple of tensors.

    Prepare: ``qready prepare`` gives the prepared model a flat signature of
    tensors (names kept) and can rebuild the original output structure;
    inside the traced graph, submodule boundaries carry only tensors, and
    numbers where the source computes them from the input's size (a padding
    of ``x.shape[-1] // 8``: a warning on the module that takes it).
    """

    code = "QR005"
    name = "non-tensor-io"
    fix = "take and return tensors or tuples of tensors"
    observes = True
    prepare_fixes = True
    summary = "non-tensor value at a model or submodule input or output"
    before = (
        "def forward(self, inputs):\n    x = self.conv1(inputs['image_rgb'])\n"
        "    return {'rgb': self.relu1(x)}"
    )
    after = "def forward(self, image_rgb):\n    x = self.conv1(image_rgb)\n    return self.relu1(x)"

    def check(self, ctx: CheckContext) -> list[Finding]:
        by_module: dict[str, list[IOIssue]] = {}
        for issue in ctx.observation.io_issues:
            by_module.setdefault(issue.module, []).append(issue)
        findings = []
        for path, issues in by_module.items():
            module = _module_at(ctx.model, path)
            file, line = _forward_location(module)
            owner = f"'{path}' ({issues[0].module_type})" if path else f"model {issues[0].module_type}"
            # "output is dict ...", "inputs[0] is None", "input scale is float 0.5": the side is said once
            parts = [
                f"{i.value_path if i.value_path.startswith(i.side) else f'{i.side} {i.value_path}'} is {i.description}"
                for i in issues
            ]
            only_scalars = all(i.is_scalar for i in issues)
            findings.append(
                self.finding(
                    f"{owner}: " + "; ".join(parts),
                    severity=Severity.WARNING if only_scalars else Severity.ERROR,
                    module=path,
                    op=issues[0].module_type,
                    file=file,
                    line=line,
                    count=len(issues),
                    fix=_fix([i for i in issues if not i.is_scalar] or issues),
                    details={
                        "values": [
                            {"side": i.side, "path": i.value_path, "kind": i.kind, "description": i.description}
                            for i in issues
                        ]
                    },
                )
            )
        return findings

    @classmethod
    def examples(cls) -> list[RuleExample]:
        return [
            RuleExample("dict in, dict out", _DictModel, _dict_inputs, True, (("", None),)),
            RuleExample("list out of a submodule", _ListChildModel, image_input, True, (("split", None),)),
            RuleExample("tensors and tuples", _TupleModel, image_input, False),
        ]


def _fix(issues: list[IOIssue]) -> str:
    """What to do about the values of one module: only what applies to them."""
    if all(i.is_scalar for i in issues):
        return "fine if the value is a constant; pass a tensor if it varies between calls"
    kinds = {(i.side, i.kind == "None") for i in issues if not i.is_scalar}
    steps = []
    if ("input", False) in kinds:
        steps.append("take each tensor as its own forward argument")
    if ("input", True) in kinds:
        steps.append("drop optional None arguments")
    if ("output", False) in kinds or ("output", True) in kinds:
        steps.append("return a tensor or a tuple of tensors")
    return "; ".join(steps)


def _module_at(model: nn.Module, path: str) -> nn.Module:
    return model.get_submodule(path) if path else model


def _forward_location(module: nn.Module) -> tuple[str | None, int | None]:
    """Where the module's forward is defined: the line a fix changes."""
    forward = inspect.unwrap(type(module).forward)
    try:
        file = inspect.getsourcefile(forward)
        _, line = inspect.getsourcelines(forward)
    except (OSError, TypeError):
        return None, None
    return (display_path(file) if file else None), line


class _DictModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 1)
        self.conv2 = nn.Conv2d(1, 4, 1)

    def forward(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"rgb": self.conv1(inputs["image_rgb"]), "bw": self.conv2(inputs["image_bw"])}


class _Split(nn.Module):
    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return list(x.chunk(2, dim=1))


class _ListChildModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)
        self.split = _Split()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = self.split(self.conv(x))
        return a, b


class _TupleModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor]]:
        y = self.conv(x)
        return y, (y,)



def _dict_inputs() -> tuple[dict[str, torch.Tensor]]:
    return ({"image_rgb": torch.randn(1, 3, 8, 8), "image_bw": torch.randn(1, 1, 8, 8)},)
