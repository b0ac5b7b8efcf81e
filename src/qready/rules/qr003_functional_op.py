"""QR003 functional-op."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from qready.conversions import lookup
from qready.findings import Finding
from qready.rules.base import CheckContext, Rule, RuleExample, image_input

__all__ = ["FunctionalOp"]


class FunctionalOp(Rule):
    """A value-changing functional call runs outside any module a quantizer wraps whole.

    Module-level quantization simulators put quantizers around modules. A call
    such as ``F.relu(x)``, ``x + y`` or ``torch.cat(...)`` made directly in the
    forward of a block (a module with children of its own) has no module around
    it, so its output is never quantized in simulation while the target
    hardware will quantize it: accuracy measured in simulation is then wrong.
    Calls inside a leaf module are fine: the quantizer wraps the leaf whole. A
    leaf is a torch.nn built-in without submodules (``nn.Conv2d``),
    ``nn.MultiheadAttention`` and the recurrent layers, a ``qready.nn`` module,
    or a module declared a leaf (``--leaf``). A user's module without
    submodules (``x * 2 + 1``) is not one: no toolkit has a quantized version of
    it, so its calls are findings too, and so are the functional activations
    inside ``nn.TransformerEncoderLayer``.
    Pure data movement (``view``, ``permute``, indexing, ``.shape``) is never a
    finding.

    Fix by hand: create one module per call site in ``__init__`` (``nn.ReLU()``,
    ``nn.Softmax(dim=-1)``, or qready's ``qready.nn.Add()``) and call it in
    ``forward``.

    Prepare: ``qready prepare`` replaces each such call by a new module instance
    in the owner's scope (``layer1.0.add``), matched by the function itself,
    keeping every argument.
    """

    code = "QR003"
    name = "functional-op"
    fix = "call a module instance registered in __init__ instead of the function"
    observes = True
    prepare_fixes = True
    summary = "value-changing functional call outside any leaf module"
    before = "def forward(self, x):\n    return F.relu(self.conv(x))"
    after = (
        "def __init__(self):\n    ...\n    self.relu = nn.ReLU()\n\n"
        "def forward(self, x):\n    return self.relu(self.conv(x))"
    )

    def check(self, ctx: CheckContext) -> list[Finding]:
        findings = []
        for site in ctx.observation.op_sites:
            if not site.feeds_values:  # only a Python branch or a boolean mask: never quantized
                continue
            conversion = lookup(site.func)
            if conversion is not None:
                replacement = conversion.hint(site.args, site.kwargs)
                fix = f"use {replacement}"
            else:
                replacement = ""
                fix = "move the call into a small leaf nn.Module of its own"
            owner = f"'{site.module}'" if site.module else "the root model"
            times = f" ({site.count} calls)" if site.count > 1 else ""
            findings.append(
                self.finding(
                    f"{site.op} called in the forward of {owner}{times}; "
                    "no module wraps it, so no quantizer can be placed on its output",
                    module=site.module,
                    op=site.op,
                    file=site.file,
                    line=site.line,
                    count=site.count,
                    fix=fix,
                    details={"replacement": replacement},
                )
            )
        return findings

    @classmethod
    def examples(cls) -> list[RuleExample]:
        return [
            RuleExample(
                "functional relu in a block", _FunctionalRelu, image_input, True,
                (("", "torch.nn.functional.relu"),),
                message="no module wraps it", prepare_fixes=True,
            ),
            RuleExample(
                "residual add", _ResidualAdd, image_input, True, (("", "torch.Tensor.add"),),
                message="torch.Tensor.add called in the forward", prepare_fixes=True,
            ),
            RuleExample("relu as a module", _ModuleRelu, image_input, False),
            RuleExample("functional call inside a leaf", _LeafWithFunctional, image_input, False),
            RuleExample(
                "a user's module without submodules", _NoSubmodules, image_input, True,
                (("", "torch.nn.functional.relu"), ("", "torch.Tensor.mul")),
                prepare_fixes=True,
            ),
            RuleExample("a Python branch on a value and a boolean mask", _BranchAndMask, _ids_and_padding, False),
            RuleExample(
                "a value that feeds both a branch and the output", _BranchOnUsedValue, image_input, True,
                (("", "torch.Tensor.abs"),),
                prepare_fixes=True,
            ),
        ]


class _FunctionalRelu(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv(x))


class _ResidualAdd(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) + x


class _ModuleRelu(_FunctionalRelu):
    def __init__(self) -> None:
        super().__init__()
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv(x)).view(-1)


class _LeafWithFunctional(nn.Module):
    """``nn.MultiheadAttention`` calls ``F.linear`` and softmax inside: a quantizer wraps it whole."""

    def __init__(self) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(3, 1, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = x.flatten(2).transpose(1, 2)
        return self.attention(tokens, tokens, tokens, need_weights=False)[0]


class _NoSubmodules(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x) * 2


class _BranchAndMask(nn.Module):
    """Neither the comparison deciding the ``if`` nor ``~pad_mask`` is ever quantized."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(10, 4)
        self.norm = nn.LayerNorm(4)

    def forward(self, ids: torch.Tensor, pad_mask: torch.Tensor) -> torch.Tensor:
        emb = self.emb(ids)
        if emb.abs().max() > 1.0:
            emb = self.norm(emb)
        return emb[~pad_mask]


class _BranchOnUsedValue(nn.Module):
    """``abs`` decides the branch *and* is returned: a quantization point after all."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x).abs()
        if y.max() > 100.0:
            return self.conv(y)
        return y


def _ids_and_padding() -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.tensor([[1, 2, 3, 0]])
    return ids, ids == 0
