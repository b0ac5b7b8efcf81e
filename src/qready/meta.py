"""Check and prepare models whose weights are not there: parameters on the ``meta`` device.

A 70B-parameter LLM built from its config under ``torch.device("meta")`` or
``accelerate.init_empty_weights()`` has shapes and no values. qready runs its
forward in one of two ways, both under a torch dispatch mode:

- **shapes**: weights stay on meta and so does everything computed from them;
  what the forward derives from the example inputs alone (positions, masks,
  cache lengths) is computed on the inputs' device with real values, so that
  code that reads it (``.item()``, ``if mask.all()``) still runs. Fast, and
  memory is that of the activations' shapes: nothing.
- **values**: each meta weight an op needs is made real just for that op
  (seeded random values, the same every time for the same parameter name) and
  dropped afterwards, so the forward computes real numbers while peak memory
  stays near one weight tensor. Needed where the forward reads data computed
  from weights: a mixture-of-experts router choosing experts.

Shapes is tried first, values when shapes cannot answer. QR001 and QR002 run
the exporters, which need real weights: on a meta model they are skipped, and
the report says so.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import time
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten, tree_unflatten

from qready.walks import tensors_of

__all__ = [
    "EXPORTER_RULES", "MetaWeights", "check_without_weights", "has_meta_weights", "meta_weights", "needs_values",
    "prepare_without_weights", "skipped_reason",
]

EXPORTER_RULES = ("QR001", "QR002")
_META = torch.device("meta")
# a factory on meta larger than this is an activation (a preallocated cache), not a position or a mask
_SMALL = 1 << 22
_ACTIVE: contextvars.ContextVar[MetaWeights | None] = contextvars.ContextVar("qready_meta_weights", default=None)


def has_meta_weights(model: torch.nn.Module) -> bool:
    """True when some parameter or buffer of ``model`` has no values, and no meta mode runs yet."""
    if _ACTIVE.get() is not None:
        return False
    parameters, buffers = tensors_of(model)
    return any(t.is_meta for t in parameters) or any(t.is_meta for t in buffers)


def skipped_reason(code: str) -> str:
    tool = "torch.onnx.export" if code == "QR001" else "torch.jit.trace"
    return f"the weights are on the meta device, and exporting ({tool}) needs real values"


class _NeedsValues(RuntimeError):
    """The forward read data computed from weights that only have shapes."""


def needs_values(error: BaseException) -> bool:
    """Whether ``error`` (or what caused it) came from reading data that meta tensors don't hold."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, _NeedsValues):
            return True
        text = str(seen)
        if "meta tensor" in text or "meta tensors" in text or "device meta" in text or "on meta" in text:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class MetaWeights(TorchDispatchMode):
    """Runs ops of a model whose weights are on meta: ``values=False`` is shapes, ``True`` is values."""

    def __init__(self, model: torch.nn.Module, device: torch.device, *, values: bool, seed: int = 0) -> None:
        super().__init__()
        self.device = device
        self.values = values
        self.seed = seed
        self.names: dict[int, str] = {}
        self._held: list[torch.Tensor] = []  # keeps the named tensors alive, so their ids stay theirs
        for name, tensor in [*model.named_parameters(remove_duplicate=False), *model.named_buffers(remove_duplicate=False)]:
            if tensor.is_meta:
                self.names.setdefault(id(tensor), name)
                self._held.append(tensor)

    def add_model(self, model: torch.nn.Module) -> None:
        """A copy that shares the very same meta tensors keeps their values; new ones get their own."""
        for name, tensor in [*model.named_parameters(remove_duplicate=False), *model.named_buffers(remove_duplicate=False)]:
            if tensor.is_meta and id(tensor) not in self.names:
                self.names[id(tensor)] = name
                self._held.append(tensor)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        flat, spec = tree_flatten((args, kwargs))
        if self.values:
            flat = [self._real(v) for v in flat]
        else:
            tensors = [v for v in flat if isinstance(v, torch.Tensor)]
            if any(t.is_meta for t in tensors) and any(not t.is_meta for t in tensors):
                flat = [v.to(_META) if isinstance(v, torch.Tensor) and not v.is_meta else v for v in flat]
        args, kwargs = tree_unflatten(flat, spec)
        if not self.values and func is torch.ops.aten._to_copy.default and args[0].is_meta:
            kwargs.pop("device", None)  # ``w.to(x.device)``: what has no values stays shapes
        elif kwargs.get("device") == _META and not any(isinstance(v, torch.Tensor) and v.is_meta for v in flat):
            # a tensor made from the inputs' shapes (positions, a causal mask): real, so it can be read
            size = next((a for a in args if isinstance(a, (list, tuple))), None)
            if self.values or size is None or _numel(size) <= _SMALL:
                kwargs["device"] = self.device
        if func is torch.ops.aten._local_scalar_dense.default and args[0].is_meta:
            raise _NeedsValues("the forward reads a value computed from weights that are on the meta device")
        if self.values:
            return func(*args, **kwargs)
        try:
            return func(*args, **kwargs)
        except Exception as error:
            if not any(isinstance(v, torch.Tensor) and v.is_meta for v in flat):
                raise
            # A meta kernel can be stricter than the real one (``_grouped_mm`` takes only bfloat16 on
            # meta, float32 too on the CPU): shapes cannot answer, real values can.
            raise _NeedsValues(f"{func} has no shape rule for these arguments on meta ({error})") from error

    def _real(self, value: Any) -> Any:
        if not isinstance(value, torch.Tensor) or not value.is_meta:
            return value
        name = self.names.get(id(value))
        if name is None:
            return torch.zeros(value.shape, dtype=value.dtype, device=self.device)  # meta from a factory
        generator = torch.Generator().manual_seed(self.seed + zlib.crc32(name.encode()))
        if value.dtype.is_floating_point:
            real = torch.randn(value.shape, generator=generator, dtype=torch.float32).mul_(0.02)
            return real.to(dtype=value.dtype, device=self.device)
        if value.dtype == torch.bool:
            return torch.ones(value.shape, dtype=torch.bool, device=self.device)
        return torch.zeros(value.shape, dtype=value.dtype, device=self.device)


def _numel(size: Any) -> int:
    count = 1
    for dim in size:
        count *= int(dim) if isinstance(dim, int) else 1
    return count


def example_device(example: Any) -> torch.device:
    flat, _ = tree_flatten((example.args, example.kwargs))
    for value in flat:
        if isinstance(value, torch.Tensor) and not value.is_meta:
            return value.device
    return torch.device("cpu")


@contextlib.contextmanager
def meta_weights(model: torch.nn.Module, device: torch.device, *, values: bool) -> Iterator[MetaWeights]:
    """Run the block with ``model``'s meta weights handled as shapes or as values (see the module)."""
    mode = MetaWeights(model, device, values=values)
    token = _ACTIVE.set(mode)
    try:
        with mode:
            yield mode
    finally:
        _ACTIVE.reset(token)


def _in_shapes_then_values(model: torch.nn.Module, device: torch.device, run: Callable[[], Any]) -> tuple[Any, str]:
    for values in (False, True):
        try:
            with meta_weights(model, device, values=values):
                return run(), "values" if values else "shapes"
        except Exception as error:
            if values or not needs_values(error):
                raise
    raise AssertionError("unreachable")


def check_without_weights(
    run_check: Callable[..., Any], model: torch.nn.Module, example: Any, codes: list[str]
) -> Any:
    """``run_check(codes)`` on a meta model: the rules that need no values on shapes, the exporter
    rules on a depth-reduced twin with real weights (``run_check(codes, twin, twin_example)``) where
    one can be built, skipped and said why where not."""
    from qready.findings import Report
    from qready.twin import depth_reduced_twin

    exporting = [code for code in codes if code in EXPORTER_RULES]
    running = tuple(code for code in codes if code not in EXPORTER_RULES)
    if running:
        start = time.perf_counter()
        report, how = _in_shapes_then_values(model, example_device(example), lambda: run_check(running))
        timings = {**report.timings, f"meta_{how}": time.perf_counter() - start}
    else:
        report, timings = Report(model=type(model).__name__, findings=(), coverage=None, rules_run=()), {}
    twin = depth_reduced_twin(model, example) if exporting else None
    skipped: dict[str, str] = {}
    ran_on: dict[str, str] = {}
    twin_report = None
    if isinstance(twin, str):
        skipped = {code: f"{skipped_reason(code)}; {twin}" for code in exporting}
    elif twin is not None:
        twin_report = run_check(tuple(exporting), twin.model, twin.example)
        ran_on = {code: twin.description for code in exporting}
    if twin_report is not None:
        timings.update({f"twin_{code}": seconds for code, seconds in twin_report.timings.items() if code in exporting})
        report = dataclasses.replace(
            report, findings=(*twin_report.findings, *report.findings),
            rules_run=tuple(code for code in codes if code in ran_on or code in report.rules_run),
        )
    return dataclasses.replace(report, skipped=skipped, ran_on=ran_on, timings=timings)


def prepare_without_weights(
    run_prepare: Callable[..., torch.nn.Module],
    model: torch.nn.Module,
    example: Any,
    *,
    verify: Callable[[Any, Any, Any, tuple[Any, Any]], None] | None,
) -> torch.nn.Module:
    """``run_prepare`` on a meta model: the structure prepared on shapes (values where the forward reads
    data), sharing the original's meta tensors; then, given ``verify`` (``qready.verify.verify_prepared``),
    verified bit for bit against the original with every weight made real from the same seed in both."""
    from qready.example_inputs import fresh_like

    _require_declared_ties(model)
    device = example_device(example)
    prepared, how = _in_shapes_then_values(model, device, lambda: run_prepare(verify=False, share_weights=True))
    _require_no_folded_meta(model, prepared)
    result = prepared.prepare_result
    result.timings[f"meta_{how}"] = result.timings.get("trace", 0.0)
    if verify is not None:
        start = time.perf_counter()
        with meta_weights(model, device, values=True) as mode, torch.no_grad():
            mode.add_model(prepared)
            fresh = fresh_like(example, seed=1)
            references = (example.call(model), fresh.call(model))
            verify(prepared, example, fresh, references)
        result.timings["verify"] = time.perf_counter() - start
    return prepared


def _require_no_folded_meta(model: torch.nn.Module, prepared: torch.nn.Module) -> None:
    """A tensor the trace folded into a constant from a meta buffer (rotary ``cos``/``sin`` from
    ``inv_freq``) has no values, and no checkpoint holds it: refuse, and say how to keep buffers."""
    own = {id(t) for t in [*model.parameters(), *model.buffers()]}
    folded = [name for name, t in prepared.named_buffers() if t.is_meta and id(t) not in own]
    if folded:
        from qready.errors import ModelError

        sources = [name for name, t in model.named_buffers() if t.is_meta]
        raise ModelError(
            f"{type(model).__name__}'s forward computes constants ({', '.join(folded[:3])}) from buffers that are on "
            f"the meta device ({', '.join(sources[:3]) or 'none named'}), so they have no values and no checkpoint "
            "holds them; build the model under accelerate.init_empty_weights(), which keeps buffers real"
        )


def _require_declared_ties(model: torch.nn.Module) -> None:
    """A Hugging Face model that ties its output embedding to its input one (``tie_word_embeddings``)
    but holds two tensors was untied on the way to meta (``init_empty_weights`` re-registers each
    parameter): prepared that way, it would need both in the checkpoint, which holds one."""
    config = getattr(model, "config", None)
    declared = getattr(model, "_tied_weights_keys", None)
    if not isinstance(declared, dict) or not getattr(config, "tie_word_embeddings", False):
        return
    tensors = dict(model.named_parameters(remove_duplicate=False))
    for target, source in declared.items():
        if target in tensors and source in tensors and tensors[target] is not tensors[source]:
            from qready.errors import ModelError

            raise ModelError(
                f"{type(model).__name__} declares {target!r} tied to {source!r} (tie_word_embeddings), but they are "
                "two tensors on the meta device; call model.tie_weights() before preparing it"
            )
