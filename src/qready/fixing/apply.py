"""``fix``: check, plan, rewrite, verify in a fresh process, then write (or only show the diff)."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from qready.errors import InputError, SaveError
from qready.example_inputs import Example, as_example
from qready.findings import Finding
from qready.fixing.ops_module import MARKER, existing_classes, ops_module_source
from qready.fixing.plan import NotFixed, plan_fixes
from qready.fixing.rewrite import rewrite, unified_diff
from qready.fixing.verify import verify_in_fresh_process
from qready.nn import OpModule
from qready.source import display_path

__all__ = ["FIXABLE", "FixResult", "fix"]

#: The rules whose findings ``fix`` looks at (QR005 only to explain what to change by hand).
FIXABLE = ("QR003", "QR004", "QR005")


@dataclass
class FixResult:
    """What ``fix`` did: the diffs (by display path), what it fixed and what it left, and why."""

    diffs: dict[str, str] = field(default_factory=dict)
    fixed: list[Finding] = field(default_factory=list)
    not_fixed: list[NotFixed] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    failure: str | None = None  # why nothing was written: verification failed

    @property
    def changed(self) -> bool:
        return bool(self.diffs)

    @property
    def diff(self) -> str:
        return "".join(self.diffs.values())


def fix(
    spec: str,
    example_inputs: Example | tuple[Any, ...] | Mapping[str, Any],
    *,
    kwargs: Mapping[str, Any] | None = None,
    write: bool = True,
    ops_module: str | os.PathLike[str] | None = None,
    select: Iterable[str] | None = None,
    ignore: Iterable[str] | None = None,
    verify: bool = True,
) -> FixResult:
    """Rewrite the source files of the model ``spec`` names so that it follows QR003 and QR004.

    The model is built from ``spec`` (``pkg.mod:Name`` or ``path/to/file.py:Name``)
    with ``kwargs`` after ``torch.manual_seed(0)``, checked on ``example_inputs``,
    and each finding in the user's own files is rewritten with libcst (comments
    and formatting outside the changed lines kept). Before anything is written,
    a fresh Python process imports the new source, builds the model, loads the
    original ``state_dict`` strictly, compares outputs bit for bit on the
    example and a fresh input, and checks again; if any of that fails,
    ``result.failure`` says why and nothing is written. ``write=False`` only
    computes the diffs. Files are replaced atomically.
    """
    from qready.api import check
    from qready.inputs import load_model
    from qready.rules import select_rules
    from qready.suppression import configured_rules

    kwargs = dict(kwargs or {})
    example = as_example(example_inputs)
    select, ignore = configured_rules(select, ignore)  # [tool.qready] when not given
    chosen = [rule.code for rule in select_rules(select or FIXABLE, ignore)]
    rules = [code for code in chosen if code in FIXABLE]
    if not rules:
        raise InputError(f"fix works on {', '.join(FIXABLE)}; select at least one of them")
    ops_path = Path(ops_module).resolve() if ops_module is not None else None
    previous_ops = existing_classes(ops_path) if ops_path is not None else []  # refuses a file qready did not write

    torch.manual_seed(0)  # the same weights the CLI's check sees
    model = load_model(spec, kwargs)
    report = check(model, example, select=rules, ignore=())
    findings = [f for f in report.findings if not _op_module_io(model, f)]
    plan = plan_fixes(findings, model, ops_module=str(ops_path) if ops_path else None)
    result = FixResult(not_fixed=plan.not_fixed)

    sources: dict[Path, str] = {}
    originals: dict[Path, str] = {}
    for path, edits in plan.files.items():
        text = rewrite(edits)
        if text != edits.source:
            sources[path], originals[path] = text, edits.source
    if ops_path is not None and plan.ops_classes:
        wanted = [*previous_ops, *(c for c in plan.ops_classes if c not in previous_ops)]
        if len(wanted) > len(previous_ops) or not ops_path.exists():
            sources[ops_path] = ops_module_source(wanted)
            originals[ops_path] = ops_path.read_text(encoding="utf-8") if ops_path.exists() else ""
    if not sources:
        return result

    fixed = plan.fixed
    if verify:
        fixed_ids = {id(f) for f in fixed}
        remaining = [f for f in findings if f.code in ("QR003", "QR004") and id(f) not in fixed_ids]
        failure = verify_in_fresh_process(spec, kwargs, model, example, sources, remaining=remaining)
        if failure is not None:
            result.failure = failure
            return result
    result.fixed = fixed
    result.diffs = {
        display_path(str(path)): unified_diff(originals[path], text, display_path(str(path)))
        for path, text in sorted(sources.items())
    }
    if write:
        _replace_all(sources)
        result.written = [display_path(str(p)) for p in sorted(sources)]
    return result


def _op_module_io(model: torch.nn.Module, finding: Finding) -> bool:
    """A QR005 finding on one of qready's op modules (a list into ``Cat``, a Python scalar into
    ``Greater``), also as copied into an ops module: how those modules are, not the user's code."""
    if finding.code != "QR005" or not finding.module:
        return False
    try:
        module = model.get_submodule(finding.module)
    except AttributeError:
        return False
    if isinstance(module, OpModule):
        return True
    file = getattr(sys.modules.get(type(module).__module__), "__file__", None)
    try:
        with open(file or "", encoding="utf-8", errors="replace") as stream:
            return MARKER in stream.read(2048)
    except OSError:
        return False


def _replace_all(sources: Mapping[Path, str]) -> None:
    """Write every file or none: all temporary files first, then one rename each."""
    staged: list[tuple[str, Path]] = []
    try:
        for path, text in sources.items():
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".qready", dir=path.parent)
            staged.append((tmp, path))
            with os.fdopen(fd, "wb") as stream:
                stream.write(text.encode("utf-8"))
            if path.exists():
                shutil.copymode(path, tmp)
            else:
                from qready.files import follow_umask

                follow_umask(Path(tmp))
    except OSError as error:
        for tmp, _ in staged:
            Path(tmp).unlink(missing_ok=True)
        raise SaveError(f"cannot write next to {str(staged[-1][1]) if staged else 'the model'!r} ({error.strerror or error}); nothing was changed") from error
    for tmp, path in staged:
        os.replace(tmp, path)
