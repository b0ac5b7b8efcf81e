"""QR004 reused-module."""

from __future__ import annotations

from collections import defaultdict

import torch
from torch import nn

from qready.findings import Finding
from qready.observe import ModuleCall
from qready.rules.base import CheckContext, Rule, RuleExample, image_input

__all__ = ["ReusedModule", "reused_calls"]


class ReusedModule(Rule):
    """A module instance runs more than once in one forward pass.

    A quantization simulator gives each module one set of quantizers with one
    set of statistics. A module called twice (the same ``self.relu`` on two
    branches, a block applied in a loop, an instance registered under two
    parents) sees two different value ranges through one quantizer, so both
    calls are quantized with a compromise range, and per-call encodings cannot
    be exported.

    Fix by hand: define one instance per call (``self.relu2 = nn.ReLU()``).
    Where the module holds weights that must stay shared, keep one owner of the
    ``Parameter`` and let the copies refer to it.

    Prepare: ``qready prepare`` gives every extra call its own instance named
    next to the original (``layer1.0.relu_1``); copies of modules with weights
    share the very same ``Parameter`` objects, so tying survives.
    """

    code = "QR004"
    name = "reused-module"
    observes = True
    summary = "module instance called more than once in one forward"
    before = "x = self.relu(self.conv1(x))\nx = self.relu(self.conv2(x))"
    after = "x = self.relu(self.conv1(x))\nx = self.relu2(self.conv2(x))  # self.relu2 = nn.ReLU(), as qready fix writes it"

    def check(self, ctx: CheckContext) -> list[Finding]:
        obs = ctx.observation
        findings = []
        for module_id, calls in reused_calls(obs.module_calls).items():
            module = obs.modules[module_id]
            paths = obs.paths[module_id]
            shared = any(True for _ in module.parameters()) or any(True for _ in module.buffers())
            sites = sorted({(c.file, c.line) for c in calls}, key=lambda s: (s[0] or "", s[1] or 0))
            first_reuse = calls[1]
            kind = "holds parameters (weight sharing)" if shared else "is stateless"
            also = f" (also registered as {', '.join(repr(p) for p in paths[1:])})" if len(paths) > 1 else ""
            findings.append(
                self.finding(
                    f"module '{paths[0]}' ({type(module).__name__}) runs {len(calls)} times in one "
                    f"forward{also}; it {kind}",
                    module=paths[0],
                    op=f"{type(module).__module__}.{type(module).__qualname__}",
                    file=first_reuse.file,
                    line=first_reuse.line,
                    count=len(calls),
                    fix="define one instance per call"
                    + ("; keep the weights shared by reusing the same Parameter" if shared else ""),
                    details={
                        "call_sites": [f"{f}:{line}" for f, line in sites],
                        "paths": paths,
                        "holds_parameters": shared,
                    },
                )
            )
        return findings

    @classmethod
    def examples(cls) -> list[RuleExample]:
        return [
            RuleExample(
                "relu on two branches", _TwoBranchRelu, image_input, True, (("relu", "torch.nn.modules.activation.ReLU"),),
                message="runs 2 times in one forward", prepare_fixes=True,
            ),
            RuleExample("block in a loop", _LoopedBlock, image_input, True, (("block", None),), prepare_fixes=True),
            RuleExample("one instance, two parents", _SharedChild, image_input, True, (("a.act", None),), prepare_fixes=True),
            RuleExample("one module per call", _OnePerCall, image_input, False),
        ]


def reused_calls(calls: list[ModuleCall]) -> dict[int, list[ModuleCall]]:
    """Modules that are themselves reused, with all their calls.

    A child called once per call of a reused parent is not reported on its own:
    unrolling the parent unrolls it. A module is reused when one call of its
    caller runs it twice, or when it runs under more than one caller instance.
    """
    by_module: dict[int, list[ModuleCall]] = defaultdict(list)
    for call in calls:
        by_module[call.module_id].append(call)
    caller_module: dict[int | None, int] = {call.index: call.module_id for call in calls}
    reused = {}
    for module_id, module_calls in by_module.items():
        if len(module_calls) < 2:
            continue
        per_parent_call: dict[int | None, int] = defaultdict(int)
        for call in module_calls:
            per_parent_call[call.parent] += 1
        callers = {caller_module.get(c.parent) for c in module_calls}
        if max(per_parent_call.values()) > 1 or len(callers) > 1:
            reused[module_id] = module_calls
    return reused


class _TwoBranchRelu(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 1)
        self.conv2 = nn.Conv2d(3, 4, 1)
        self.relu = nn.ReLU()
        self.cat = _Cat()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cat(self.relu(self.conv1(x)), self.relu(self.conv2(x)))


class _Cat(nn.Module):
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.cat((a, b), 1)


class _Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x))


class _LoopedBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block = _Block()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(3):
            x = self.block(x)
        return x


class _SharedChild(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = _Block()
        self.b = _Block()
        self.b.act = self.a.act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.a(x))


class _OnePerCall(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = _Block()
        self.b = _Block()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.a(x))
