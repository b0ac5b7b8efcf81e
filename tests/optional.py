"""Packages some tests need and some environments lack, imported when a test first uses them.

CI's second run uses the previous torch release, for which no torchvision is built here: a test
that touches ``torchvision`` there is skipped with this reason, the rest of its file still runs.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

import pytest

__all__ = ["torchvision"]


class _Optional(ModuleType):
    def __init__(self, name: str, reason: str) -> None:
        super().__init__(name)
        self._reason = reason

    def __getattr__(self, attr: str) -> Any:
        try:
            module = importlib.import_module(self.__name__)
        except ImportError:
            pytest.skip(self._reason)
        return getattr(module, attr)


torchvision = _Optional(
    "torchvision", "torchvision is not installed (CI runs the suite again on torch 2.13, which has no torchvision build here)"
)
