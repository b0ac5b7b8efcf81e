"""Findings and the report that carries them: plain, frozen data."""

from __future__ import annotations

import enum
import json
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Severity", "Finding", "Coverage", "Report", "SCHEMA_VERSION"]

SCHEMA_VERSION = 1


class Severity(str, enum.Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Finding:
    """One place where the model breaks a guideline.

    ``module`` is the dotted module path (``""`` for the root model), ``op`` the
    qualified name of the offending op or module class, ``file``/``line`` the
    user's own source line, ``count`` how often it happened in one forward.
    """

    code: str
    rule: str
    severity: Severity
    message: str
    module: str = ""
    op: str = ""
    file: str | None = None
    line: int | None = None
    count: int = 1
    fix: str = ""
    details: tuple[tuple[str, Any], ...] = ()

    @property
    def location(self) -> str:
        if self.file is None:
            return "<unknown>"
        return f"{self.file}:{self.line}" if self.line is not None else self.file

    def detail(self, key: str, default: Any = None) -> Any:
        return dict(self.details).get(key, default)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["severity"] = self.severity.value
        data["details"] = {key: _jsonable(value) for key, value in self.details}
        return data


@dataclass(frozen=True)
class Coverage:
    """Value-changing op calls in one forward, and how many ran inside a leaf module."""

    covered: int
    total: int

    @property
    def ratio(self) -> float:
        return 1.0 if self.total == 0 else self.covered / self.total

    def __str__(self) -> str:
        return f"coverage {self.covered}/{self.total} ops ({100 * self.ratio:.1f}%)"

    def to_dict(self) -> dict[str, Any]:
        return {"covered": self.covered, "total": self.total, "ratio": round(self.ratio, 6)}


@dataclass(frozen=True)
class Report:
    """What ``qready.check`` found on one model."""

    model: str
    findings: tuple[Finding, ...]
    coverage: Coverage | None  # None when no rule ran the instrumented forward
    rules_run: tuple[str, ...]
    timings: dict[str, float] = field(default_factory=dict, compare=False)
    skipped: dict[str, str] = field(default_factory=dict)  # rule code -> why it did not run
    ran_on: dict[str, str] = field(default_factory=dict)  # rule code -> what it ran on instead of the model
    target: str = "generic"  # the toolkit the checks were made for (--target)

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity is Severity.ERROR)

    @property
    def ok(self) -> bool:
        """True when no finding is an error (warnings don't fail a model)."""
        return not self.errors

    def by_code(self, code: str) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.code == code)

    def counts(self) -> dict[str, int]:
        counts = {code: 0 for code in self.rules_run}
        for finding in self.findings:
            counts[finding.code] = counts.get(finding.code, 0) + 1
        return counts

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "model": self.model,
            "target": self.target,
            "ok": self.ok,
            "summary": {
                "counts": self.counts(),
                "errors": len(self.errors),
                "warnings": len(self.findings) - len(self.errors),
                "coverage": None if self.coverage is None else self.coverage.to_dict(),
            },
            "rules_run": list(self.rules_run),
            "findings": [f.to_dict() for f in self.findings],
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            **({"skipped": dict(self.skipped)} if self.skipped else {}),
            **({"ran_on": dict(self.ran_on)} if self.ran_on else {}),
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False)


def _jsonable(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)
