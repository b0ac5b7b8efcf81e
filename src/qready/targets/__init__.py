"""Quantization targets: which toolkit the user quantizes with, and what it wraps.

``generic`` (the default) is the five guidelines as written; ``aimet`` asks the
installed AIMET which module classes it quantizes. A new toolkit (torch.ao
eager mode, a vendor SDK) is one more :class:`Target` subclass in ``TARGETS``;
the rules only ask the target.
"""

from __future__ import annotations

from qready.errors import InputError
from qready.targets.aimet import AimetTarget
from qready.targets.base import Sim, Target
from qready.targets.generic import GenericTarget

__all__ = ["TARGETS", "Sim", "Target", "get_target"]

TARGETS: dict[str, type[Target]] = {"generic": GenericTarget, "aimet": AimetTarget}


def get_target(target: str | Target | None) -> Target:
    """A target by name (``"aimet"``), an instance as it is, ``None`` for ``generic``."""
    if isinstance(target, Target):
        return target
    name = "generic" if target is None else str(target).strip().lower()
    if name not in TARGETS:
        raise InputError(f"unknown target {target!r}; choose one of {', '.join(TARGETS)}")
    chosen = TARGETS[name]()
    chosen.require()
    return chosen
