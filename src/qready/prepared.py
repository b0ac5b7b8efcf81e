"""The prepared model, and the record of what ``prepare`` changed."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.fx as fx

from qready.errors import InputError
from qready.findings import Finding
from qready.passes.base import Change
from qready.structure import flatten, unflatten
from qready.tracing import TraceFailure
from qready.verify import OutputDiff

__all__ = ["PrepareResult", "PreparedModule"]


@dataclass
class PrepareResult:
    """What ``prepare`` did to a model, and what it could not do."""

    model: str
    changes: list[Change]
    leaves: list[TraceFailure]
    excluded: list[str]
    inputs_flattened: bool
    outputs_flattened: bool
    input_names: list[str]
    output_names: list[str]
    specialized: list[tuple[str | None, int | None, Any]] = field(default_factory=list)
    diffs: list[OutputDiff] = field(default_factory=list)
    residual: list[Finding] = field(default_factory=list)
    unexpected: list[Finding] = field(default_factory=list)
    verified: bool | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def converted(self) -> list[Change]:
        return [c for c in self.changes if c.kind == "functional"]

    @property
    def unrolled(self) -> list[Change]:
        return [c for c in self.changes if c.kind == "unrolled"]

    @property
    def dispatched(self) -> list[Change]:
        """Call sites inside leaves that run through their own module at run time."""
        return [c for c in self.changes if c.kind == "dispatched"]

    @property
    def unconverted(self) -> list[Change]:
        return [c for c in self.changes if c.kind == "unconverted"]

    @property
    def ok(self) -> bool:
        return (
            self.verified is not False
            and not self.residual
            and not self.unexpected
            and not self.unconverted
            and not self.specialized
        )

    def summary(self) -> str:
        io = []
        if self.inputs_flattened:
            io.append("inputs flattened")
        if self.outputs_flattened:
            io.append("outputs flattened")
        verdict = {True: "verified bit-identical", False: "VERIFICATION FAILED", None: "not verified"}[self.verified]
        return (
            f"{self.model}: {len(self.converted)} functionals -> modules, {len(self.unrolled)} modules unrolled, "
            + (f"{len(self.dispatched)} call sites in leaves dispatched to modules, " if self.dispatched else "")
            + 
            f"{', '.join(io) or 'I/O already tensors'}; {len(self.leaves) + len(self.excluded)} submodules left as leaves, "
            f"{len(self.residual) + len(self.unexpected) + len(self.unconverted)} residual findings"
            + (f", {len(self.specialized)} data-dependent branches specialized" if self.specialized else "")
            + f"; {verdict}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "ok": self.ok,
            "verified": self.verified,
            "summary": {
                "converted": len(self.converted),
                "unrolled": len(self.unrolled),
                "dispatched": len(self.dispatched),
                "unconverted": len(self.unconverted),
                "leaves": len(self.leaves) + len(self.excluded),
                "residual": len(self.residual) + len(self.unexpected),
            },
            "inputs": {"flattened": self.inputs_flattened, "names": self.input_names},
            "outputs": {"flattened": self.outputs_flattened, "names": self.output_names},
            "changes": [c.to_dict() for c in self.changes],
            "leaves": [
                {"module": f.module, "reason": f.reason, "file": f.file, "line": f.line} for f in self.leaves
            ] + [{"module": m, "reason": "excluded by the user", "file": None, "line": None} for m in self.excluded],
            "specialized_branches": [
                {"file": file, "line": line, "value": str(value)} for file, line, value in self.specialized
            ],
            "verification": [d.to_dict() for d in self.diffs],
            "residual": [f.to_dict() for f in self.residual],
            "unexpected": [f.to_dict() for f in self.unexpected],
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }


class PreparedModule(fx.GraphModule):
    """A guideline-compliant ``GraphModule`` that computes what the original computes.

    ``prepare_result`` lists what changed; ``unflatten_outputs`` turns the
    prepared model's flat outputs back into the original's structure.
    """

    prepare_result: PrepareResult | None = None  # None after qready.load: see prepare_report
    prepare_report: dict[str, Any] | None = None
    input_spec: dict[str, Any]
    output_spec: dict[str, Any] | None = None
    outputs_flattened: bool = False
    input_names: list[str]
    output_names: list[str]

    tied_aliases: dict[str, str]

    def hide_tied_copies(self, aliases: dict[str, str]) -> None:
        """Keep the state dict to the original's keys: an unrolled copy's shared tensors are
        left out of ``state_dict()`` and filled from the original's key on ``load_state_dict()``."""
        self.tied_aliases = dict(aliases)
        self._register_state_dict_hook(_drop_aliases)
        self._register_load_state_dict_pre_hook(_fill_aliases, with_module=True)

    _CARRIED = (
        "prepare_result", "prepare_report", "input_spec", "output_spec", "outputs_flattened",
        "input_names", "output_names", "tied_aliases", "forward",
    )

    def __deepcopy__(self, memo: dict[int, Any]) -> PreparedModule:
        # GraphModule's deepcopy keeps the graph and submodules but drops plain attributes:
        # carry ours over, so a copy still flattens, rebuilds and hides tied copies
        res = super().__deepcopy__(memo)
        for name in self._CARRIED:
            if name in self.__dict__:
                object.__setattr__(res, name, copy.deepcopy(self.__dict__[name], memo))
        return res  # type: ignore[return-value]

    def keep_calling_convention(self) -> None:
        """Take the original model's arguments and return its output structure.

        For a prepared submodule called from a forward that stays Python: the
        graph inside is the same, flattening happens around it.
        """
        self.forward = OriginalCallingConvention(self)  # type: ignore[method-assign]

    def unflatten_outputs(self, outputs: Any) -> Any:
        """The original model's output structure (dict, ModelOutput...) from the flat outputs."""
        if not self.outputs_flattened or self.output_spec is None:
            return outputs
        leaves = list(outputs) if isinstance(outputs, tuple) else [outputs]
        return unflatten(self.output_spec, leaves)

    def flatten_inputs(self, *args: Any, **kwargs: Any) -> tuple[torch.Tensor, ...]:
        """The original model's arguments as the prepared model's flat tensor inputs."""
        arguments = dict(zip(self.input_spec["keys"], args))
        arguments.update(kwargs)
        ordered = {key: arguments[key] for key in self.input_spec["keys"] if key in arguments}
        leaves, _ = flatten(ordered)
        if len(leaves) != len(self.input_names):  # another structure: a cache with more layers, a missing input
            raise InputError(
                f"these inputs hold {len(leaves)} tensors, but the prepared model takes {len(self.input_names)} "
                f"({', '.join(self.input_names)}); pass inputs structured like the example it was prepared with"
            )
        return tuple(leaves)


def _drop_aliases(module: PreparedModule, state_dict: dict[str, Any], prefix: str, local_metadata: Any) -> None:
    for alias in module.tied_aliases:
        state_dict.pop(prefix + alias, None)


def _fill_aliases(module: PreparedModule, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
    for alias, original in module.tied_aliases.items():
        if prefix + alias not in state_dict and prefix + original in state_dict:
            state_dict[prefix + alias] = state_dict[prefix + original]


def tied_aliases(prepared: torch.nn.Module, original_keys: set[str]) -> dict[str, str]:
    """Names under which a prepared model holds a tensor that an original key already names."""
    owner: dict[int, str] = {}
    named = list(prepared.named_parameters(remove_duplicate=False)) + list(prepared.named_buffers(remove_duplicate=False))
    for name, tensor in named:
        if name in original_keys:
            owner.setdefault(id(tensor), name)
    return {name: owner[id(t)] for name, t in named if name not in original_keys and id(t) in owner}


class OriginalCallingConvention:
    """A prepared module's forward that takes the original arguments and returns the original
    structure. An object, not a closure, so that copies of the module call their own graph."""

    def __init__(self, module: PreparedModule) -> None:
        self.module = module

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        module = self.module
        flat = module.flatten_inputs(*args, **kwargs)
        return module.unflatten_outputs(type(module).forward(module, *flat))
