"""``--ops-module``: the qready.nn classes a fix uses, written as one standalone file next to the
model, so that the model's code does not import qready at run time."""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterable
from pathlib import Path

from torch import nn

import qready.nn as qnn
from qready.errors import InputError
from qready.nn import _base

__all__ = ["MARKER", "existing_classes", "ops_module_source"]

MARKER = "# Written by `qready fix --ops-module`"
_HEADER = '''"""Modules for ops that torch.nn has no class for: one torch op each, no parameters or buffers.

Each class computes exactly what the call it replaced computed, so quantization
toolkits can place a quantizer on its output.
"""
{marker}: regenerated (with the classes it lists) when fix needs more.

from __future__ import annotations

import functools
import inspect
from collections.abc import Sequence
from typing import Any, ClassVar, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

TensorOrScalar = Union[Tensor, int, float, bool]
'''


def existing_classes(path: Path) -> list[type[nn.Module]]:
    """The qready.nn classes an ops module written earlier defines; refuses a file qready did not write."""
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8", errors="replace")
    if MARKER not in text:
        raise InputError(f"--ops-module {str(path)!r} exists and was not written by qready; choose another path")
    found = []
    for name in re.findall(r"^class (\w+)\(", text, flags=re.MULTILINE):
        cls = getattr(qnn, name, None)
        if isinstance(cls, type) and issubclass(cls, nn.Module):
            found.append(cls)
    return found


def ops_module_source(classes: Iterable[type[nn.Module]]) -> str:
    """A module defining ``classes`` (and the bases they need), standalone."""
    chunks = [_HEADER.format(marker=MARKER)]
    for helper in (_base._init_defaults, _base._same_value, _base.OpModule):
        chunks.append(inspect.getsource(helper))
    written: set[type] = {_base.OpModule}
    for cls in sorted(set(classes), key=lambda c: c.__name__):
        for base in reversed(cls.__mro__):
            if base in written or not issubclass(base, _base.OpModule):
                continue
            chunks.append(inspect.getsource(base))
            written.add(base)
    return "\n\n".join(chunk.rstrip("\n") + "\n" for chunk in chunks)
