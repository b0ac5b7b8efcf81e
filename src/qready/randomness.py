"""Forwards that draw random numbers, run so that two of them can be compared.

A model whose forward draws random numbers (``torch.randn``, noise injection,
``F.dropout(x, training=True)``) gives other outputs on every call, so the
prepared model could never be compared with the original bit for bit. Every
forward qready runs on a model is therefore run from one fixed random state:
torch's generators (CPU and the devices the inputs live on), Python's
``random`` and NumPy's are forked, seeded with :data:`SEED`, and given back as
they were afterwards, so the user's own random state is never touched. The
prepared graph draws the same numbers in the same order, and the comparison
holds bit for bit.

A model that still differs between two runs from the same random state (a
counter it keeps, the clock, a nondeterministic kernel) cannot be verified:
:func:`require_deterministic` says so in one line.
"""

from __future__ import annotations

import contextlib
import random
import sys
from collections.abc import Iterator
from typing import Any

import torch

from qready.errors import ModelError
from qready.structure import map_leaves

__all__ = ["SEED", "draws_random", "require_deterministic", "same_draws"]

#: The random state every forward qready runs starts from.
SEED = 0


@contextlib.contextmanager
def same_draws(*values: Any) -> Iterator[None]:
    """Run the block from the random state :data:`SEED`; restore every generator afterwards.

    ``values`` (the inputs, the model) name the accelerator devices whose generators are forked too.
    """
    devices = _accelerator_devices(values)
    python_state = random.getstate()
    numpy = sys.modules.get("numpy")
    numpy_state = numpy.random.get_state() if numpy is not None else None
    try:
        with torch.random.fork_rng(devices=devices, device_type="cuda"):
            torch.random.default_generator.manual_seed(SEED)
            for index in devices:  # only the generators fork_rng gives back
                torch.cuda.default_generators[index].manual_seed(SEED)
            random.seed(SEED)
            if numpy is not None:
                numpy.random.seed(SEED)
            yield
    finally:
        random.setstate(python_state)
        if numpy is not None:
            numpy.random.set_state(numpy_state)


# torch functions and tensor methods (by name, in-place spellings included) that draw from a generator.
_RANDOM_NAMES = frozenset(
    "rand randn randint randperm rand_like randn_like randint_like bernoulli multinomial normal poisson "
    "dropout dropout1d dropout2d dropout3d alpha_dropout feature_alpha_dropout rrelu "
    "uniform random exponential geometric cauchy log_normal".split()
)


def draws_random(target: Any) -> bool:
    """Whether a call of ``target`` (a callable, or a method name) may draw random numbers: such a call
    advances the generator even when its result is unused, so every later draw depends on it."""
    name = target if isinstance(target, str) else getattr(target, "__name__", "")
    return name.removesuffix("_") in _RANDOM_NAMES


def _accelerator_devices(values: tuple[Any, ...]) -> list[int]:
    found: set[int] = set()

    def note(tensor: torch.Tensor) -> torch.Tensor:
        if tensor.device.type == "cuda":
            found.add(tensor.device.index or 0)
        return tensor

    for value in values:
        if isinstance(value, torch.nn.Module):
            for tensor in [*value.parameters(), *value.buffers()][:1]:  # a model lives on one device
                note(tensor)
        else:
            map_leaves(value, note)
    return sorted(found)


def require_deterministic(model: torch.nn.Module, difference: float) -> None:
    """Raise ``ModelError`` when two runs of ``model`` from the same random state differed by
    ``difference`` (0.0: they were equal)."""
    if difference:
        raise ModelError(
            f"{type(model).__name__} is not deterministic: two runs on the same inputs from the same random "
            f"state differ (max abs diff {difference:.3g}), so a prepared copy cannot be verified against it; "
            "make the forward depend only on its inputs, weights and torch's random generators, "
            "or prepare with verify=False (--no-verify)"
        )
