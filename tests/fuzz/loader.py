"""Generated source as a real module on disk, the model built from it, and its inputs."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from fuzz.grammar import GeneratedModel

__all__ = ["generated_module", "build", "example_inputs", "call"]


@contextmanager
def generated_module(generated: GeneratedModel, directory: Path) -> Iterator[ModuleType]:
    """Write the source to ``directory`` and import it (a real file: qready reports its lines).

    The module stays in ``sys.modules`` while the block runs, so ``qready.load``
    can import the leaf classes a saved model names.
    """
    digest = hashlib.sha256(generated.source.encode()).hexdigest()[:16]
    name = f"fuzz_model_{digest}"
    path = Path(directory) / f"{name}.py"
    path.write_text(generated.source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(name, None)


def build(generated: GeneratedModel, module: ModuleType) -> torch.nn.Module:
    """The root model in eval mode, with weights drawn from the model's seed."""
    torch.manual_seed(generated.seed)
    return getattr(module, generated.class_name)().eval()


def example_inputs(generated: GeneratedModel, seed: int) -> tuple[Any, ...] | dict[str, Any]:
    """Inputs in the model's convention: a tuple of positional arguments or a dict of keywords."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 4, 8, generator=generator)
    y = torch.randn(2, 4, 8, generator=generator)
    ids = torch.randint(0, 8, (2, 4), generator=generator)
    ids[0, 0], ids[0, 1] = 0, 7  # span the vocabulary: fresh draws stay inside it
    extra: tuple[Any, ...] = (ids,) if generated.uses_ids else ()
    kind = generated.input_kind
    if kind == "tensor":
        return (x, *extra)
    if kind == "pair":
        return (x, y, *extra)
    if kind == "tuple":
        return ((x, y), *extra)
    if kind == "list":
        return ([x, y], *extra)
    if kind == "dict":
        return ({"image": x, "mask": y}, *extra)
    if kind == "flag":
        return (x, y, 0.5, *extra)
    if kind == "none":
        return (x, y, None, *extra)
    if kind == "varargs":
        return (x, y, *extra)
    return {"x": x, "y": y, **({"ids": ids} if generated.uses_ids else {})}


def call(model: torch.nn.Module, inputs: tuple[Any, ...] | dict[str, Any]) -> Any:
    if isinstance(inputs, dict):
        return model(**inputs)
    return model(*inputs)
