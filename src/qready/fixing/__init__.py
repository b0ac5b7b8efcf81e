"""``qready fix``: rewrite the user's own source so the model follows the guidelines.

``plan`` turns findings into edits (or reasons), ``rewrite`` applies them with
libcst, ``verify`` proves the new source in a fresh process, ``apply`` writes.
Imported lazily: the CLI's parser reaches ``qready.fixing.command`` without torch.
"""

from __future__ import annotations

from typing import Any

__all__ = ["FIXABLE", "LIBRARY", "FixResult", "NotFixed", "fix"]


def __getattr__(name: str) -> Any:
    if name in ("FIXABLE", "FixResult", "fix"):
        from qready.fixing import apply

        return getattr(apply, name)
    if name in ("LIBRARY", "NotFixed"):
        from qready.fixing import plan

        return getattr(plan, name)
    raise AttributeError(f"module 'qready.fixing' has no attribute {name!r}")
