"""The model's own globals: the namespaces of the modules that define its classes.

A forward looks names up there (builtins, helper functions), so that is where qready puts a
stand-in for the duration of a trace or an observed run, and only there: other code that runs
meanwhile (a library imported on first use) meets the real thing.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

__all__ = ["model_namespaces", "script_functions_in_python"]


def model_namespaces(root: torch.nn.Module) -> list[dict[str, Any]]:
    """The globals of the modules that define the classes of ``root``'s modules (bases included),
    torch's and qready's aside."""
    found: dict[int, dict[str, Any]] = {}
    for module in root.modules():
        for cls in type(module).__mro__:
            name = cls.__module__
            if name.startswith(("torch.", "qready.", "builtins")) or name == "torch":
                continue
            namespace = getattr(sys.modules.get(name), "__dict__", None)
            if namespace is not None:
                found[id(namespace)] = namespace
    return list(found.values())


@contextmanager
def script_functions_in_python(namespaces: list[dict[str, Any]]) -> Iterator[None]:
    """Each ``torch.jit.script`` function among ``namespaces``' globals is its Python original for the
    block (geffnet's hard swish): the ops inside run as Python, where a tracer records them and an
    observer sees them; TorchScript would refuse a tracer's stand-in and hide its ops from both."""
    swapped = []
    for namespace in namespaces:
        for name, value in list(namespace.items()):
            original = getattr(value, "_torchdynamo_inline", None) if type(value) is torch.jit.ScriptFunction else None
            if callable(original):
                namespace[name] = original
                swapped.append((namespace, name, value, original))
    try:
        yield
    finally:
        for namespace, name, value, original in swapped:
            if namespace.get(name) is original:  # unless the block rebound the name itself
                namespace[name] = value
