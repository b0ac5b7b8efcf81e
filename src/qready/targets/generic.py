"""The ``generic`` target: the five guidelines, no particular toolkit."""

from __future__ import annotations

from qready.targets.base import Target

__all__ = ["GenericTarget"]


class GenericTarget(Target):
    """Leaves as the guidelines define them; no toolkit is asked, nothing is refused."""

    name = "generic"
    summary = "the five guidelines: a leaf is a torch.nn built-in without children, attention, an RNN or a qready.nn module"
