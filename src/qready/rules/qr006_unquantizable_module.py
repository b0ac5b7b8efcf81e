"""QR006 unquantizable-module."""

from __future__ import annotations

import torch
from torch import nn

from qready.findings import Finding
from qready.rules.base import CheckContext, Rule, RuleExample, image_input
from qready.targets.base import Target

__all__ = ["UnquantizableModule"]


class UnquantizableModule(Rule):
    """A module the target toolkit cannot wrap runs in the forward.

    Module-level quantization toolkits quantize the module classes they have a
    quantized definition for. AIMET's ``QuantizationSimModel`` refuses to build
    on a model holding a module without children whose class it does not know
    (a custom gate, a ``torch.nn`` class it has no definition for, such as
    ``nn.RMSNorm``): the simulation never starts, or, with unknown modules
    ignored, the module's ops run with no quantizer at all. This rule runs only
    under a toolkit target (``--target aimet``), which asks the installed
    toolkit which classes it knows; the ``generic`` target has no such list.

    Fix by hand: register a quantized definition of the class with the toolkit
    (AIMET: ``@QuantizationMixin.implements(MyGate)``), or write the module's
    forward as calls of modules the toolkit knows (``nn.Sigmoid()``,
    ``qready.nn.Mul()``).

    Prepare: ``qready prepare`` traces through every module that is not a
    torch.nn built-in or a qready module and gives each op inside it a module
    of its own, so a custom module disappears into modules the toolkit knows;
    a torch.nn built-in the toolkit lacks stays and is still reported.
    """

    code = "QR006"
    name = "unquantizable-module"
    fix = "let qready prepare decompose it into modules the toolkit knows"
    observes = True
    summary = "module the target toolkit has no quantized definition for"
    before = "class MyGate(nn.Module):\n    def forward(self, x):\n        return x * torch.sigmoid(x)"
    after = (
        "class MyGate(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
        "        self.sigmoid = nn.Sigmoid()\n        self.mul = qready.nn.Mul()\n\n"
        "    def forward(self, x):\n        return self.mul(x, self.sigmoid(x))"
    )

    @classmethod
    def applies_to(cls, target: Target) -> bool:
        return target.name != "generic"

    def check(self, ctx: CheckContext) -> list[Finding]:
        obs = ctx.observation
        findings = []
        seen: set[int] = set()
        for call in obs.module_calls:  # modules that ran, in call order, each once
            if call.module_id in seen:
                continue
            seen.add(call.module_id)
            module = obs.modules[call.module_id]
            if not ctx.target.refuses(module):
                continue
            cls = type(module)
            findings.append(
                self.finding(
                    f"{ctx.target.refusal(module)} ('{call.path}'), so no quantizer wraps it; "
                    f"{ctx.target.refusal_fix(module)}",
                    module=call.path,
                    op=f"{cls.__module__}.{cls.__qualname__}",
                    file=call.file,
                    line=call.line,
                    fix=ctx.target.refusal_fix(module),
                    details={"target": ctx.target.name},
                )
            )
        return findings

    @classmethod
    def examples(cls) -> list[RuleExample]:
        return [
            RuleExample(
                "custom gate", _GatedConv, image_input, True,
                (("gate", f"{__name__}._SigmoidGate"),), target="aimet",
            ),
            RuleExample("torch.nn modules only", _ConvRelu, image_input, False, target="aimet"),
            RuleExample(
                "multi-head attention is wrapped whole", _Attention, lambda: (torch.randn(1, 4, 8),), False,
                target="aimet",
            ),
        ]


class _SigmoidGate(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(x)


class _GatedConv(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.gate = _SigmoidGate()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gate(self.conv(x))


class _ConvRelu(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv(x))


class _Attention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(8, 2, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attention(x, x, x, need_weights=False)[0]
