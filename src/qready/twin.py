"""A depth-reduced twin of a model without weights, for the rules that need real values.

QR001 and QR002 run the exporters (``torch.onnx.export``, ``torch.jit.trace``),
which need weights. A 70B-parameter decoder built on meta has none, and making
them all real does not fit in memory. Its layers are alike, though: a twin
built from the same config with fewer layers (enough to hold one of each kind
of layer), with seeded random weights, exports exactly where the full model
would and fails where it would fail. The report says which rules ran on a
twin, and what the twin was.

Only models that say how deep they are can have a twin: Hugging Face models
(a ``config`` with ``num_hidden_layers``).
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import torch

from qready.caches import is_cache
from qready.example_inputs import Example

__all__ = ["Twin", "TWIN_WEIGHT_BUDGET", "depth_reduced_twin"]

TWIN_WEIGHT_BUDGET = 2 * 2**30  # bytes of real weights a twin may hold
_MIN_LAYERS = 2  # two layers show what passes from one layer to the next (the cache, the residual)


@dataclasses.dataclass(frozen=True)
class Twin:
    """The twin, the example cut to its depth, and what it is, in words."""

    model: torch.nn.Module
    example: Example
    description: str


def depth_reduced_twin(model: torch.nn.Module, example: Example, *, budget: int | None = None) -> Twin | str:
    """A twin of ``model`` with fewer layers and real (seeded) weights, or why there is none
    (``budget``: the most bytes of weights it may hold, ``TWIN_WEIGHT_BUDGET`` when not given)."""
    budget = TWIN_WEIGHT_BUDGET if budget is None else budget
    config = getattr(model, "config", None)
    depth = getattr(config, "num_hidden_layers", None)
    if not isinstance(depth, int) or not hasattr(config, "to_dict"):
        return f"{type(model).__name__} has no Hugging Face config with num_hidden_layers to build a depth-reduced twin from"
    keep = min(depth, _layers_needed(config))
    twin_config: Any = copy.deepcopy(config)
    twin_config.num_hidden_layers = keep
    for name, value in vars(twin_config).items():  # per-layer lists (layer_types): the first ``keep``
        if isinstance(value, list) and len(value) == depth:
            setattr(twin_config, name, value[:keep])
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
    try:
        with torch.device("meta"):
            shell = type(model)(twin_config)
        size = sum(p.numel() for p in shell.parameters()) * dtype.itemsize
        if size > budget:
            return (f"a depth-reduced twin ({keep} of {depth} layers) would still hold {size / 2**30:.1f} GiB of weights, "
                    f"over the {budget / 2**30:.0f} GiB qready makes real")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            twin = type(model)(twin_config).to(dtype).eval()
    except Exception as error:  # a model class that cannot be rebuilt from a changed config
        return f"{type(model).__name__} cannot be rebuilt with {keep} layers ({type(error).__name__}: {error})"
    cut = Example(_cut(example.args, keep), _cut(example.kwargs, keep))
    return Twin(twin, cut, f"a depth-reduced twin: {keep} of {depth} layers, seeded random weights")


def _layers_needed(config: Any) -> int:
    """Enough layers for one of each kind: the dense layers before the first mixture of experts
    (``first_k_dense_replace``), one of each ``layer_types`` entry (sliding and full attention)."""
    needed = _MIN_LAYERS
    dense = getattr(config, "first_k_dense_replace", None)
    if isinstance(dense, int):
        needed = max(needed, dense + 1)
    kinds = getattr(config, "layer_types", None)
    if isinstance(kinds, list) and kinds:
        needed = max(needed, max(kinds.index(kind) for kind in set(kinds)) + 1)
    return needed


def _cut(value: Any, keep: int) -> Any:
    """A cache in the example holds one entry per layer of the full model: the twin takes the first ``keep``."""
    if is_cache(value) and isinstance(getattr(value, "layers", None), list):
        cut = copy.deepcopy(value)
        cut.layers = cut.layers[:keep]
        return cut
    if type(value) in (tuple, list):
        return type(value)(_cut(v, keep) for v in value)
    if type(value) is dict:
        return {k: _cut(v, keep) for k, v in value.items()}
    return value
