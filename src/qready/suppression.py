"""What a project tells qready to leave alone: inline comments and ``[tool.qready]``.

Inline, ruff-style: ``# qready: ignore[QR003]`` (or ``ignore[QR003, QR004]``,
or a bare ``# qready: ignore`` for every rule) on the line a finding points at.
A QR004 finding is also silenced by the comment on any of its call sites.

In ``pyproject.toml`` (the nearest one above the working directory that has a
``[tool.qready]`` table)::

    [tool.qready]
    select = ["QR003", "QR004"]        # rules to run (default: all)
    ignore = ["QR001"]                 # rules to skip
    exclude = ["legacy/*.py"]          # files whose findings are dropped
    per-file-ignores = { "models/vit.py" = ["QR005"] }

Patterns are ``fnmatch`` globs over paths relative to the directory of that
``pyproject.toml``; a pattern without a ``/`` also matches a file's base name.
Rules given to ``check`` (``--select``/``--ignore``) replace the configured ones.
"""

from __future__ import annotations

import fnmatch
import linecache
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import tomllib

from qready.errors import InputError
from qready.findings import Finding

__all__ = ["Config", "configured_rules", "inline_codes", "load_config", "suppressed"]

_INLINE = re.compile(r"#\s*qready:\s*ignore(?:\[(?P<codes>[^\]]*)\])?", re.IGNORECASE)
_ALL = "*"


@dataclass(frozen=True)
class Config:
    """The ``[tool.qready]`` table, validated; ``root`` is the directory its patterns are relative to."""

    root: Path | None = None
    select: tuple[str, ...] | None = None
    ignore: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    per_file_ignores: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def excluded(self, file: str) -> bool:
        return any(self._matches(pattern, file) for pattern in self.exclude)

    def ignored_in(self, file: str) -> set[str]:
        codes: set[str] = set()
        for pattern, ignored in self.per_file_ignores.items():
            if self._matches(pattern, file):
                codes.update(ignored)
        return codes

    def _matches(self, pattern: str, file: str) -> bool:
        path = Path(file).resolve()
        relative = path.as_posix()
        if self.root is not None:
            try:
                relative = path.relative_to(self.root).as_posix()
            except ValueError:
                pass
        pattern = pattern.removeprefix("./")
        if fnmatch.fnmatch(relative, pattern):
            return True
        return "/" not in pattern and fnmatch.fnmatch(path.name, pattern)


def load_config(start: str | os.PathLike[str] | None = None) -> Config:
    """``[tool.qready]`` from the nearest ``pyproject.toml`` at or above ``start`` (the working directory)."""
    here = Path(start or os.getcwd()).resolve()
    for directory in (here, *here.parents):
        candidate = directory / "pyproject.toml"
        if not candidate.is_file():
            continue
        try:
            with candidate.open("rb") as stream:
                data = tomllib.load(stream)
        except (OSError, tomllib.TOMLDecodeError) as error:
            raise InputError(f"cannot read {str(candidate)!r} ({error}); fix its TOML or run qready elsewhere") from error
        table = data.get("tool", {}).get("qready")
        if table is None:
            continue
        return _parse(table, candidate)
    return Config()


def _parse(table: object, path: Path) -> Config:
    where = f"[tool.qready] in {str(path)!r}"
    if not isinstance(table, dict):
        raise InputError(f"{where} is not a table; write it as [tool.qready] with keys such as ignore = [\"QR001\"]")
    known = {"select", "ignore", "exclude", "per-file-ignores"}
    unknown = sorted(set(table) - known)
    if unknown:
        raise InputError(f"{where}: unknown key {unknown[0]!r}; use {', '.join(sorted(known))}")

    def strings(key: str, value: object) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InputError(f"{where}: {key} must be a list of strings, e.g. {key} = [\"QR001\"]")
        return tuple(value)

    per_file = table.get("per-file-ignores", {})
    if not isinstance(per_file, dict):
        raise InputError(f"{where}: per-file-ignores must be a table of glob = [codes]")
    return Config(
        root=path.parent,
        select=strings("select", table["select"]) if "select" in table else None,
        ignore=strings("ignore", table.get("ignore", [])),
        exclude=strings("exclude", table.get("exclude", [])),
        per_file_ignores={
            pattern: tuple(_code(c) for c in strings(f"per-file-ignores[{pattern!r}]", codes))
            for pattern, codes in per_file.items()
        },
    )


def _code(key: str) -> str:
    from qready.rules import get_rule

    return get_rule(key).code


def configured_rules(
    select: Iterable[str] | None, ignore: Iterable[str] | None, config: Config | None = None
) -> tuple[Sequence[str] | None, Sequence[str] | None]:
    """``(select, ignore)`` for ``check``: what the caller gave, else what the project configured."""
    config = config or load_config()
    chosen = list(select) if select is not None else config.select
    dropped = list(ignore) if ignore is not None else list(config.ignore)
    return chosen, dropped


def inline_codes(file: str, line: int) -> set[str] | None:
    """The codes a ``# qready: ignore[...]`` comment on that line names (``{"*"}`` for all), or None."""
    match = _INLINE.search(linecache.getline(os.path.realpath(file), line))
    if match is None:
        return None
    codes = match.group("codes")
    if codes is None or not codes.strip():
        return {_ALL}
    return {c.strip().upper() for c in codes.split(",") if c.strip()}


def suppressed(findings: Iterable[Finding], config: Config | None = None) -> list[Finding]:
    """The findings that no comment, ``exclude`` or ``per-file-ignores`` silences."""
    config = config or load_config()
    linecache.checkcache()  # a file edited (or fixed) since it was last read
    return [f for f in findings if not _silenced(f, config)]


def _silenced(finding: Finding, config: Config) -> bool:
    if finding.file is None or finding.file.startswith("<"):
        return False
    if config.excluded(finding.file) or finding.code in config.ignored_in(finding.file):
        return True
    lines = [(finding.file, finding.line)] if finding.line is not None else []
    for site in finding.detail("call_sites", ()) or ():
        site_file, _, site_line = str(site).rpartition(":")
        if site_line.isdigit():
            lines.append((site_file, int(site_line)))
    for file, line in lines:
        codes = inline_codes(file, line)
        if codes is not None and (_ALL in codes or finding.code in codes):
            return True
    return False
