"""The rules (five from the guidelines, one per target toolkit), one class a file, and how a user selects among them."""

from __future__ import annotations

from collections.abc import Iterable

from qready.errors import QreadyError
from qready.rules.base import CheckContext, Rule, RuleExample
from qready.rules.qr001_onnx_export import OnnxExport
from qready.rules.qr002_jit_trace import JitTrace
from qready.rules.qr003_functional_op import FunctionalOp
from qready.rules.qr004_reused_module import ReusedModule
from qready.rules.qr005_non_tensor_io import NonTensorIO
from qready.rules.qr006_unquantizable_module import UnquantizableModule
from qready.rules.runner import RuleRun, run_rules

__all__ = [
    "RULES", "Rule", "RuleExample", "CheckContext", "RuleRun", "get_rule", "matching_rules", "run_rules", "select_rules",
]

RULES: tuple[type[Rule], ...] = (
    OnnxExport, JitTrace, FunctionalOp, ReusedModule, NonTensorIO, UnquantizableModule,
)


def get_rule(key: str) -> type[Rule]:
    """A rule by code (``QR003``) or name (``functional-op``), case-insensitive."""
    wanted = key.strip().lower()
    for rule in RULES:
        if wanted in (rule.code.lower(), rule.name):
            return rule
    known = ", ".join(f"{r.code} ({r.name})" for r in RULES)
    raise QreadyError(f"unknown rule {key!r}; choose from {known}")


def matching_rules(key: str) -> list[type[Rule]]:
    """The rule a code or name names, or every rule whose code starts with ``key`` (``QR00``)."""
    wanted = key.strip().upper()
    by_prefix = [rule for rule in RULES if rule.code.startswith(wanted)] if len(wanted) >= 2 else []
    return by_prefix if by_prefix and wanted not in {r.code for r in RULES} else [get_rule(key)]


def select_rules(
    select: Iterable[str] | None = None, ignore: Iterable[str] | None = None, extend_select: Iterable[str] | None = None
) -> list[type[Rule]]:
    """Rules to run: ``select`` (default all) plus ``extend_select``, less ``ignore``; each entry a
    code, a name or a code prefix."""
    chosen = [rule for key in select for rule in matching_rules(key)] if select else list(RULES)
    chosen += [rule for key in extend_select or () for rule in matching_rules(key)]
    dropped = {rule for key in ignore or () for rule in matching_rules(key)}
    return [rule for rule in RULES if rule in chosen and rule not in dropped]
