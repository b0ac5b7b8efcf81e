"""What every rule is: a stable code, a name, documentation, examples, and a check."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar

import torch

from qready.example_inputs import Example
from qready.findings import Finding, Severity
from qready.observe import Observation, observe
from qready.targets.base import Target
from qready.targets.generic import GenericTarget

__all__ = ["Rule", "RuleExample", "CheckContext", "image_input"]


@dataclass(frozen=True)
class RuleExample:
    """A small model that the rule must flag (``flagged=True``) or must pass.

    ``expect`` lists ``(module, op)`` pairs that the findings must contain, in
    any order; ``op`` may be ``None`` to match any op. ``message`` pins a fragment
    of the first expected finding's message. ``prepare_fixes`` says that
    ``qready.prepare`` makes the finding go away: the rule tests check it.
    (No line pin: the examples live in qready's package, whose frames the source
    locator skips, so their findings point at the caller, not at the example.)
    """

    name: str
    model: Callable[[], torch.nn.Module]
    inputs: Callable[[], tuple[Any, ...]]
    flagged: bool
    expect: tuple[tuple[str, str | None], ...] = ()
    target: str | None = None  # the --target the example is checked under (None: generic)
    message: str = ""
    prepare_fixes: bool = False


@dataclass
class CheckContext:
    """The model and its inputs, with the one instrumented forward shared by every rule."""

    model: torch.nn.Module
    example: Example
    onnx_exporter: str | None = None
    target: Target = field(default_factory=GenericTarget)

    @cached_property
    def observation(self) -> Observation:
        return observe(self.model, self.example, is_leaf=self.target.is_leaf)

    @cached_property
    def eager_output(self) -> Any:
        if "observation" in self.__dict__:
            return self.observation.output
        with torch.no_grad():
            return self.example.call(self.model)


class Rule:
    """Base of the five rules. Subclasses set the class attributes and ``check``.

    The docstring of a subclass is its documentation: a first line, then
    paragraphs headed ``Why:``, ``Fix by hand:`` and ``Prepare:``.
    """

    code: ClassVar[str]
    name: ClassVar[str]
    summary: ClassVar[str]
    before: ClassVar[str] = ""
    after: ClassVar[str] = ""
    #: whether ``check`` reads ``ctx.observation`` (the instrumented forward runs once, before any rule)
    observes: ClassVar[bool] = False
    #: how to fix a finding of this rule by hand, in one line: what a finding suggests when it names
    #: nothing more precise (its docstring's ``Prepare:`` paragraph says what ``qready prepare`` does)
    fix: ClassVar[str]
    #: whether ``qready prepare`` removes this rule's findings (the text report marks them ``[*]``)
    prepare_fixes: ClassVar[bool] = False

    def check(self, ctx: CheckContext) -> list[Finding]:
        raise NotImplementedError

    @classmethod
    def applies_to(cls, target: Target) -> bool:
        """Whether the rule runs under ``target`` (most rules are the guidelines': every target)."""
        return True

    @classmethod
    def examples(cls) -> list[RuleExample]:
        return []

    @classmethod
    def documentation(cls) -> str:
        return inspect.cleandoc(cls.__doc__ or cls.summary)

    def finding(self, message: str, *, severity: Severity = Severity.ERROR, **fields: Any) -> Finding:
        details = fields.pop("details", {})
        fields.setdefault("fix", self.fix)
        return Finding(
            code=self.code,
            rule=self.name,
            severity=severity,
            message=message,
            details=tuple(details.items()),
            **fields,
        )


def image_input() -> tuple[torch.Tensor]:
    """The example input most rule examples take: one small image."""
    return (torch.randn(1, 3, 8, 8),)
