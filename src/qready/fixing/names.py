"""Readable attribute names for the modules ``fix`` adds, unique within their class."""

from __future__ import annotations

import keyword
import re

from torch import nn

__all__ = ["NameAllocator", "context_name"]

# Names that say nothing about a value: ``out = F.relu(out)`` gives ``relu``, not ``relu_out``.
_GENERIC = frozenset({
    "out", "output", "outputs", "res", "result", "ret", "tmp", "temp", "hidden", "hidden_states",
    "inp", "input", "inputs", "value", "val", "feat", "feats", "features", "self", "args", "kwargs",
})
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


def context_name(*candidates: str | None) -> str | None:
    """The first candidate that names a value (``residual``, ``attn``), if any."""
    for name in candidates:
        if name is None:
            continue
        name = name.strip("_").lower()
        if len(name) > 1 and name not in _GENERIC and _IDENTIFIER.match(name):
            return name
    return None


class NameAllocator:
    """Hands out attribute names that clash with nothing the class (or ``nn.Module``) has."""

    def __init__(self, taken: set[str]) -> None:
        self.taken = set(taken) | set(dir(nn.Module))

    def op_name(self, base: str, context: str | None = None) -> str:
        """``relu``, else ``relu_1``, ``relu_2``...; ``add_residual`` when the code names the value."""
        if context and context != base:
            candidate = f"{base}_{context}"
            if self._free(candidate):
                return self._take(candidate)
        if self._free(base):
            return self._take(base)
        return self._numbered(f"{base}_", 1)

    def copy_name(self, original: str) -> str:
        """A second instance of ``self.relu``: ``relu2`` (``relu1`` gets ``relu1_2``)."""
        stem = f"{original}_" if original[-1].isdigit() else original
        return self._numbered(stem, 2)

    def _numbered(self, stem: str, start: int) -> str:
        n = start
        while not self._free(f"{stem}{n}"):
            n += 1
        return self._take(f"{stem}{n}")

    def _free(self, name: str) -> bool:
        return name.isidentifier() and not keyword.iskeyword(name) and name not in self.taken

    def _take(self, name: str) -> str:
        self.taken.add(name)
        return name
