"""The prepared model, and the record of what ``prepare`` changed."""

from __future__ import annotations

import copy
from pathlib import Path
import inspect
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, cast

import torch
import torch.fx as fx
from torch.fx.graph_module import _CodeOnlyModule, _copy_attr, _format_import_block, _forward_from_src
from torch.nn.modules import module as module_hooks
from torch.package import sys_importer

from qready.errors import InputError, InternalError
from qready.findings import Finding, Severity
from qready.passes.base import Change
from qready.flatten_io import bind_inputs, check_same_structure
from qready.structure import flatten, unflatten
from qready.tracing import TraceFailure
from qready.walks import Named, modules_of, named_state
from qready.wording import counted

__all__ = ["GraphForward", "KeptForward", "OutputDiff", "PrepareResult", "Prepared", "PreparedModule", "flat_io", "keep_forward", "list_as_tuple", "reattach_dropped_state", "result_of", "run_graph_in_place"]


@dataclass(frozen=True)
class OutputDiff:
    """One output of one run: equal or not, and by how much."""

    run: str  # "example" or "fresh"
    name: str
    equal: bool
    max_abs_diff: float

    def to_dict(self) -> dict[str, Any]:
        return {"run": self.run, "name": self.name, "equal": self.equal, "max_abs_diff": self.max_abs_diff}


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
    # sizes the trace had to fix to the example's (``range(T)``): where, as (file, line)
    fixed_sizes: list[tuple[str | None, int | None]] = field(default_factory=list)
    # inputs of other sizes the original runs on and the prepared model does not: one line each
    shape_bound: list[str] = field(default_factory=list)
    # the quantization toolkit prepared for (``target=``): "generic" or a toolkit such as "aimet"
    target: str = "generic"
    # the rules the prepared model was checked with again, those that could not run (code, why),
    # and the residual findings the original has as well (a torch.nn leaf's own non-tensor argument)
    rechecked: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    inherited: list[Finding] = field(default_factory=list)
    # modules the user declared leaves (``leaves=``): wrapped whole by their toolkit, so the ops in
    # them are no findings in the re-check
    declared_leaves: list[str] = field(default_factory=list)

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
            and not any(f.code in ("QR003", "QR004") for f in self.residual)  # left inside leaves
            and not any(f.severity is Severity.ERROR and f not in self.inherited for f in self.residual)
            and not self.unexpected
            and not self.unconverted
            and not self.specialized
            and not self.shape_bound
        )

    def summary(self) -> str:
        io = []
        if self.inputs_flattened:
            io.append("inputs flattened")
        if self.outputs_flattened:
            io.append("outputs flattened")
        verdict = {True: "verified bit-identical", False: "VERIFICATION FAILED", None: "not verified"}[self.verified]
        return (
            f"{self.model}: {counted(len(self.converted), 'functional')} -> modules, "
            f"{counted(len(self.unrolled), 'module')} unrolled, "
            + (f"{counted(len(self.dispatched), 'call site')} in leaves dispatched to modules, " if self.dispatched else "")
            + f"{', '.join(io) or 'I/O already tensors'}; "
            f"{counted(len(self.leaves) + len(self.excluded), 'submodule')} left as leaves, "
            + self.residual_summary()
            + (f", {counted(len(self.specialized), 'data-dependent branch', 'data-dependent branches')} specialized" if self.specialized else "")
            + (f", runs only at the example's sizes ({self.shape_bound[0]})" if self.shape_bound else "")
            + f"; {verdict}"
        )

    def residual_by_rule(self) -> dict[str, int]:
        """Every finding the prepared model still has (and each call left unconverted), by rule."""
        counts: dict[str, int] = {}
        for finding in self.residual + self.unexpected:
            counts[finding.code] = counts.get(finding.code, 0) + 1
        # a call left unconverted that the re-check did not meet (not checked again, or on a branch
        # the example did not take) still runs outside any module
        found = {(finding.line, Path(finding.file).name) for finding in self.residual + self.unexpected if finding.file}
        missed = [c for c in self.unconverted if (c.line, Path(c.file or "").name) not in found]
        if missed:
            counts["QR003"] = counts.get("QR003", 0) + len(missed)
        return dict(sorted(counts.items()))

    def residual_summary(self) -> str:
        """``3 residual findings [QR001 1 (the original's too), QR005 2 (1 the original's too)]`` and
        what was not re-checked."""
        counts = self.residual_by_rule()
        shared = {code: sum(1 for f in self.inherited if f.code == code) for code in counts}
        parts = [
            f"{code} {n}" + ((" (the original's too)" if shared[code] == n else f" ({shared[code]} the original's too)") if shared[code] else "")
            for code, n in counts.items()
        ]
        text = counted(sum(counts.values()), "residual finding") + (f" [{', '.join(parts)}]" if parts else "")
        if self.skipped:
            text += f" ({', '.join(code for code, _ in self.skipped)} not re-checked: {self.skipped[0][1]})"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "target": self.target,
            "ok": self.ok,
            "verified": self.verified,
            "summary": {
                "converted": len(self.converted),
                "unrolled": len(self.unrolled),
                "dispatched": len(self.dispatched),
                "unconverted": len(self.unconverted),
                "leaves": len(self.leaves) + len(self.excluded),
                "residual": len(self.residual) + len(self.unexpected),
                "residual_by_rule": self.residual_by_rule(),
            },
            "rechecked": list(self.rechecked),
            "not_rechecked": [{"rule": code, "reason": why} for code, why in self.skipped],
            "inherited": [f.to_dict() for f in self.inherited],
            "inputs": {"flattened": self.inputs_flattened, "names": self.input_names},
            "outputs": {"flattened": self.outputs_flattened, "names": self.output_names},
            "changes": [c.to_dict() for c in self.changes],
            "leaves": [
                {"module": f.module, "reason": f.reason, "file": f.file, "line": f.line} for f in self.leaves
            ] + [{"module": m, "reason": "excluded by the user", "file": None, "line": None} for m in self.excluded],
            "specialized_branches": [
                {"file": file, "line": line, "value": str(value)} for file, line, value in self.specialized
            ],
            "fixed_sizes": [{"file": file, "line": line} for file, line in self.fixed_sizes],
            "shape_bound": list(self.shape_bound),
            "verification": [d.to_dict() for d in self.diffs],
            "residual": [f.to_dict() for f in self.residual],
            "unexpected": [f.to_dict() for f in self.unexpected],
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }


class Prepared(torch.nn.Module):
    """What ``qready.prepare`` returns on every path: a ``torch.nn.Module`` with these.

    - ``prepare_result``: what changed and what remains;
    - ``call_original(*args, **kwargs)``: run on the original model's arguments and
      return its output structure;
    - ``saveable``: whether ``qready.save`` can write it as code (a model whose own
      forward stayed Python cannot be; ``prepare_result.leaves[0]`` says why).

    Two kinds implement it: ``PreparedModule`` (one fx graph; flat tensor inputs)
    and ``KeptForward`` (the model's own class and forward, its children prepared).
    It is an ``nn.Module`` itself (it adds no ``__init__``), so that one type says
    both: ``KeptForward`` comes after the model's class in the bases, and
    ``PreparedModule`` before ``fx.GraphModule``.
    """

    prepare_result: PrepareResult | None = None  # None after qready.load: see prepare_report
    saveable: bool = False

    def arguments_for(self, *args: Any, **kwargs: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The positional and keyword arguments to call this module with, given the original's."""
        raise NotImplementedError

    def call_original(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError


class KeptForward(Prepared):
    """Mixed into the class of a model whose own forward could not be traced: it keeps that
    forward, its attributes and methods, and is still a ``Prepared``.

    For a toolkit that takes tensors only (``flat_io``), the kept forward is called with flat
    tensors and returns flat tensors, as a ``PreparedModule`` is (see :class:`FlatCall`).
    """

    saveable = False

    def arguments_for(self, *args: Any, **kwargs: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
        flat = vars(self).get("forward")
        if isinstance(flat, FlatCall):
            return flat.flatten_inputs(args, kwargs), {}
        return args, kwargs

    def call_original(self, *args: Any, **kwargs: Any) -> Any:
        flat = vars(self).get("forward")
        if isinstance(flat, FlatCall):
            return flat.unflatten_outputs(self(*flat.flatten_inputs(args, kwargs)))
        return self(*args, **kwargs)

    def __reduce_ex__(self, protocol: Any) -> Any:
        # The mixed class carries the user's class name, under which pickle would find the user's class
        # itself: pickle the user's class and mix again on load (torch.save, AIMET's sim.export).
        return _kept_instance, (type(self).__bases__[0],), self.__getstate__()


_KEPT_CLASSES: dict[type, type] = {}


def _kept_class(cls: type) -> type:
    kept = _KEPT_CLASSES.get(cls)
    if kept is None:
        kept = _KEPT_CLASSES[cls] = type(
            cls.__name__, (cls, KeptForward), {"__module__": cls.__module__, "__qualname__": cls.__qualname__}
        )
    return kept


def _kept_instance(cls: type) -> Any:
    """An empty instance of ``cls`` mixed with ``KeptForward``, for unpickling (its state is set next)."""
    return object.__new__(_kept_class(cls))


def keep_forward(model: torch.nn.Module, result: PrepareResult) -> KeptForward:
    """``model`` (qready's own copy) as a ``KeptForward`` of its class, carrying ``result``."""
    cls = type(model)
    if not isinstance(model, KeptForward):
        model.__class__ = _kept_class(cls)
    kept_model = cast(KeptForward, model)  # its class is a KeptForward now (set just above)
    kept_model.prepare_result = result
    return kept_model


def result_of(prepared: Prepared) -> PrepareResult:
    """The ``prepare_result`` of a model ``prepare`` has just made (only a loaded one has none)."""
    if prepared.prepare_result is None:
        raise InternalError(f"{type(prepared).__name__} carries no prepare_result; this is a bug in qready, please report it")
    return prepared.prepare_result


class PreparedModule(Prepared, fx.GraphModule):
    """A guideline-compliant ``GraphModule`` that computes what the original computes.

    ``prepare_result`` lists what changed; ``unflatten_outputs`` turns the
    prepared model's flat outputs back into the original's structure.
    """

    saveable = True
    prepare_report: dict[str, Any] | None = None
    input_spec: dict[str, Any]
    output_spec: dict[str, Any] | None = None
    outputs_flattened: bool = False
    input_names: list[str]
    output_names: list[str]

    tied_aliases: dict[str, str]

    def __init__(
        self, root: torch.nn.Module | dict[str, Any], graph: fx.Graph, class_name: str = "GraphModule",
        *, compiled: bool = True,
    ) -> None:
        # compiled=False: no code generated yet; the caller's PassManager(..., stale=True) generates it once,
        # after the passes rewrote the graph, instead of once here and again there
        object.__setattr__(self, "_qready_uncompiled", not compiled)
        if not isinstance(root, torch.nn.Module) or isinstance(root, _CodeOnlyModule):
            super().__init__(root, graph, class_name)
        else:  # GraphModule's own steps, the modules and tensors the graph names installed by install_targets
            object.__setattr__(self, "_qready_uncompiled", True)
            super().__init__({}, fx.Graph(), class_name)
            self.training = root.training
            install_targets(root, self, graph)
            object.__setattr__(self, "_qready_uncompiled", not compiled)
            self.graph = graph
            tracer_cls = graph._tracer_cls
            self._tracer_cls = tracer_cls if tracer_cls and "<locals>" not in tracer_cls.__qualname__ else None
            self._tracer_extras = graph._tracer_extras or {}
        object.__setattr__(self, "_qready_uncompiled", False)
        if isinstance(root, torch.nn.Module):
            keep_non_persistent(root, self)

    def recompile(self) -> Any:
        if self.__dict__.get("_qready_uncompiled"):
            return None
        return super().recompile()

    def _apply(self, fn: Callable[..., Any], recurse: bool = True) -> Any:
        # ``.to(torch.bfloat16)``, ``.half()``: a dtype the trace read from a tensor is the example's in
        # the graph, so the steps that convert to it keep converting to the old one; said when it happens
        before = _floating_dtype(self)
        result = super()._apply(fn, recurse)
        after = _floating_dtype(self)
        if before is not None and after is not None and after != before:
            _warn_fixed_dtype(self.graph, before, after)
        return result

    def hide_tied_copies(self, aliases: dict[str, str]) -> None:
        """Keep the state dict to the original's keys: an unrolled copy's shared tensors are
        left out of ``state_dict()`` and filled from the original's key on ``load_state_dict()``."""
        self.tied_aliases = dict(aliases)
        self._register_state_dict_hook(_drop_aliases)
        self._register_load_state_dict_pre_hook(_fill_aliases, with_module=True)

    _CARRIED = (
        "prepare_result", "prepare_report", "input_spec", "output_spec", "outputs_flattened",
        "input_names", "output_names", "tied_aliases", "forward", "qready_packed_keys",
    )

    def __deepcopy__(self, memo: dict[int, Any]) -> PreparedModule:
        # GraphModule's deepcopy keeps the graph and submodules but drops plain attributes:
        # carry ours over, so a copy still flattens, rebuilds and hides tied copies
        res = super().__deepcopy__(memo)
        keep_non_persistent(self, res)
        for name in self._CARRIED:
            if name in self.__dict__:
                object.__setattr__(res, name, copy.deepcopy(self.__dict__[name], memo))
        return res  # type: ignore[return-value]  # torch's stubs type the result of a call as Tensor | Module

    def keep_calling_convention(self) -> None:
        """Take the original model's arguments and return its output structure.

        For a prepared submodule called from a forward that stays Python: the
        graph inside is the same, flattening happens around it.
        """
        self.forward = OriginalCallingConvention(self)

    def arguments_for(self, *args: Any, **kwargs: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
        return self.flatten_inputs(*args, **kwargs), {}

    def call_original(self, *args: Any, **kwargs: Any) -> Any:
        return self.unflatten_outputs(self(*self.flatten_inputs(*args, **kwargs)))

    def unflatten_outputs(self, outputs: Any) -> Any:
        """The original model's output structure (dict, ModelOutput...) from the flat outputs."""
        if not self.outputs_flattened or self.output_spec is None:
            return outputs
        leaves = list(outputs) if isinstance(outputs, tuple) else [outputs]
        return unflatten(self.output_spec, leaves)

    def flatten_inputs(self, *args: Any, **kwargs: Any) -> tuple[torch.Tensor, ...]:
        """The original model's arguments as the prepared model's flat tensor inputs."""
        leaves, spec = flatten(bind_inputs(self.input_spec, args, kwargs))
        check_same_structure(self.input_spec, spec)
        if len(leaves) != len(self.input_names):  # another structure: a cache with more layers, a missing input
            raise InputError(
                f"these inputs hold {len(leaves)} tensors, but the prepared model takes {len(self.input_names)} "
                f"({', '.join(self.input_names)}); pass inputs structured like the example it was prepared with"
            )
        return tuple(leaves)


def _floating_dtype(module: torch.nn.Module) -> torch.dtype | None:
    """The dtype of ``module``'s first floating-point parameter or buffer, if it has one."""
    for tensor in (*module.parameters(), *module.buffers()):
        if tensor.is_floating_point():
            return tensor.dtype
    return None


def _warn_fixed_dtype(graph: fx.Graph, before: torch.dtype, after: torch.dtype) -> None:
    """Warn when ``graph`` converts to ``before`` as a constant, now that the model's weights are ``after``."""
    steps = [
        node for node in graph.nodes
        if node.op in ("call_function", "call_method", "call_module")
        and any(a is before for a in (*node.args, *node.kwargs.values()))
    ]
    if not steps:
        return
    file, line = steps[0].meta.get("qready_location", (None, None))
    where = f" (the first at {file}:{line})" if file else f" (the first: {steps[0].format_node()})"
    old, new = str(before).removeprefix("torch."), str(after).removeprefix("torch.")
    warnings.warn(
        f"this prepared model was traced in {old}, and its graph names {old} as a constant at "
        f"{counted(len(steps), 'step')}{where}: where the source converts to a tensor's own dtype (`x.to(x.dtype)`), it now "
        f"converts to {old}, not {new}; prepare the model again in {new} (qready.prepare(model.to(torch.{new}), "
        "inputs)) to run it in that dtype",
        stacklevel=4,  # the user's call: theirs -> Module.to -> _apply -> here
    )


def _aliases_of(module: torch.nn.Module) -> dict[str, str]:
    return getattr(module, "tied_aliases", None) or getattr(module, "qready_tied_aliases", {})


def install_targets(root: torch.nn.Module, into: torch.nn.Module, graph: fx.Graph) -> None:
    """Put into ``into`` each module and tensor of ``root`` that ``graph`` names, at the same path, with
    plain modules on the way: what ``GraphModule``'s constructor does (fx's ``_copy_attr``, one target at
    a time), made through the modules' own tables instead of ``getattr``/``setattr`` (resnet50: 1.3 ms ->
    0.3 ms). A target it does not recognize (an attribute that is not a submodule, parameter or buffer),
    or a registration hook that torch would run, goes to ``_copy_attr`` itself."""
    hooked = bool(
        module_hooks._global_module_registration_hooks or module_hooks._global_parameter_registration_hooks
        or module_hooks._global_buffer_registration_hooks
    )
    for node in graph.nodes:
        if node.op in ("call_module", "get_attr") and (hooked or not _install(root, into, node.target)):
            _copy_attr(root, into, node.target)


def _install(root: torch.nn.Module, into: torch.nn.Module, target: str) -> bool:
    """``_copy_attr(root, into, target)`` for a submodule, parameter or buffer: False, having installed at most
    the plain modules on its way (as ``_copy_attr`` would), for anything else."""
    *path, name = target.split(".")
    source, owner = root, into
    for part in path:
        child = source._modules.get(part)
        if child is None:
            return False
        placed = owner._modules.get(part)
        if placed is child:
            return True  # installed whole with an owner on the way
        if placed is None:
            if part in owner.__dict__ or part in owner._parameters or part in owner._buffers:
                return False
            placed = owner._modules[part] = torch.nn.Module()
        source, owner = child, placed
    taken = name in owner.__dict__
    if name in source._modules and not taken and name not in owner._parameters and name not in owner._buffers:
        owner._modules[name] = source._modules[name]
    elif type(source._parameters.get(name)) is torch.nn.Parameter and not taken and name not in owner._buffers and name not in owner._modules:
        owner._parameters[name] = source._parameters[name]
    elif (
        isinstance(source._buffers.get(name), torch.Tensor) and not isinstance(source._buffers[name], torch.nn.Parameter)
        and not taken and name not in owner._parameters and name not in owner._modules
    ):
        owner._buffers[name] = source._buffers[name]
        if name in source._non_persistent_buffers_set:
            owner._non_persistent_buffers_set.add(name)
        else:
            owner._non_persistent_buffers_set.discard(name)
    else:
        return False
    return True


def keep_non_persistent(source: torch.nn.Module, copy_: torch.nn.Module) -> None:
    """Buffers that are non-persistent in ``source`` stay so in ``copy_``: GraphModule before
    torch 2.14 registers every buffer it copies as persistent (into the state dict)."""
    if not any(module._non_persistent_buffers_set for module in modules_of(source)):
        return  # nothing to keep
    held = {path: module._non_persistent_buffers_set for path, module in source.named_modules(remove_duplicate=False)}
    for path, module in copy_.named_modules(remove_duplicate=False):
        non_persistent = held.get(path)
        if non_persistent:
            module._non_persistent_buffers_set.update(non_persistent & module._buffers.keys())


def reattach_dropped_state(
    prepared: torch.nn.Module, source: torch.nn.Module, names: Iterable[str]
) -> tuple[Named, Named]:
    """Give ``prepared`` back the parameters and buffers in ``names`` that its graph dropped.

    A GraphModule keeps only the modules and tensors its graph reads; the others
    (weights the forward never used) still belong to the model and its state
    dict. Each is registered at its own name, as the very tensor ``source``
    holds there, non-persistent where it was; a missing owner on the way is an
    empty module. The one place for it: ``prepare`` and ``load`` both call it. Returns ``prepared``'s
    ``named_state`` afterwards (its walk, when nothing was missing).
    """
    state = parameters, buffers = named_state(prepared)
    present = {name for name, _ in [*parameters, *buffers]}
    missing = [name for name in names if name not in present]
    for name in missing:
        owner_path, _, attr = name.rpartition(".")
        owner, holder = prepared, source
        for part in owner_path.split(".") if owner_path else ():
            holder = holder.get_submodule(part)
            child = owner._modules.get(part)
            if child is None:
                child = torch.nn.Module()
                owner.add_module(part, child)
            owner = child
        if attr in holder._parameters:
            owner.register_parameter(attr, holder._parameters[attr])
        else:
            owner.register_buffer(attr, holder._buffers[attr], persistent=attr not in holder._non_persistent_buffers_set)
    return named_state(prepared) if missing else state


def _drop_aliases(module: torch.nn.Module, state_dict: dict[str, Any], prefix: str, local_metadata: Any) -> None:
    for alias in _aliases_of(module):
        state_dict.pop(prefix + alias, None)


def _fill_aliases(module: torch.nn.Module, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
    for alias, original in _aliases_of(module).items():
        if prefix + alias not in state_dict and prefix + original in state_dict:
            state_dict[prefix + alias] = state_dict[prefix + original]


def tied_aliases(
    prepared: torch.nn.Module, original_keys: Callable[[], set[str]], state: tuple[Named, Named] | None = None
) -> dict[str, str]:
    """Names under which a prepared model holds a tensor that an original key already names.
    ``original_keys`` is asked only when some tensor is held under two names (a state dict costs a walk);
    ``state``: ``prepared``'s ``named_state``, where the caller has it already."""
    parameters, buffers = named_state(prepared) if state is None else state
    named = parameters + buffers
    if len({id(tensor) for _, tensor in named}) == len(named):
        return {}
    keys = original_keys()
    owner: dict[int, str] = {}
    for name, tensor in named:
        if name in keys:
            owner.setdefault(id(tensor), name)
    return {name: owner[id(t)] for name, t in named if name not in keys and id(t) in owner}


_CONTAINERS = (
    torch.nn.ModuleList, torch.nn.ModuleDict, torch.nn.Sequential, torch.nn.ParameterList, torch.nn.ParameterDict,
)


def run_graph_in_place(module: torch.nn.Module, prepared: PreparedModule) -> None:
    """Make ``module`` compute through ``prepared``'s graph and stay the module it is.

    For a child of a forward that stays Python: its class, containers, plain
    attributes, properties and methods are what the parent's code reads, so the
    child is not swapped for a GraphModule. The graph's new modules (converted
    functionals, unrolled copies) and captured constants are registered on
    ``module`` (at the graph's path, or at the top when that path would grow a
    container or does not exist), and its forward runs the graph's code with
    ``module`` as ``self``, taking and returning what the original did.
    """
    nodes = [n for n in prepared.graph.nodes if n.op == "call_module"]
    nodes += [n for n in prepared.graph.nodes if n.op == "get_attr"]  # after the modules they may live in
    for node in nodes:
        target = str(node.target)
        value = _lookup(prepared, target)
        if _lookup(module, target) is value:
            continue
        parent_path, _, name = target.rpartition(".")
        parent = _lookup(module, parent_path) if parent_path else module
        if not isinstance(parent, torch.nn.Module) or isinstance(parent, _CONTAINERS) or hasattr(parent, name):
            parent, name = module, _free_name(module, "qready_" + target.replace(".", "_"))
            node.target = name
        if isinstance(value, torch.nn.Module):
            parent.add_module(name, value)
        elif isinstance(value, torch.nn.Parameter):
            parent.register_parameter(name, value)
        else:  # a constant the trace captured: held by the model, not part of its state
            parent.register_buffer(name, value, persistent=False)
    python_code = prepared.recompile()
    aliases = tied_aliases(module, lambda: set(prepared.state_dict()) - set(prepared.tied_aliases))
    if aliases:
        module.qready_tied_aliases = aliases  # type: ignore[assignment]  # plain attributes set on an nn.Module: its __setattr__ is typed for Tensor | Module
        module._register_state_dict_hook(_drop_aliases)
        module._register_load_state_dict_pre_hook(_fill_aliases, with_module=True)
    module.forward = GraphForward(
        module, type(prepared).forward, prepared.input_spec, prepared.output_spec if prepared.outputs_flattened else None
    )
    # the code as text, for a pickle of the model (torch.save, AIMET's sim.export): fx's own import block
    module.forward.source = _format_import_block(python_code.globals, sys_importer) + python_code.src


class GraphForward:
    """A module's forward that runs a prepared graph's code on the module itself.

    An object, not a closure, so that a deep copy of the model runs the copy's
    own submodules and weights.
    """

    def __init__(
        self, owner: torch.nn.Module, code: Any, input_spec: dict[str, Any], output_spec: dict[str, Any] | None
    ) -> None:
        self.owner = owner
        self.code = code
        self.input_spec = input_spec
        self.output_spec = output_spec
        self.source: str | None = None  # the code's source with its imports, when it can be pickled

    def __reduce__(self) -> Any:
        if self.source is None:
            return super().__reduce__()
        return _graph_forward_from_source, (self.owner, self.source, self.input_spec, self.output_spec)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        leaves, _ = flatten(bind_inputs(self.input_spec, args, kwargs))
        outputs = self.code(self.owner, *leaves)
        if self.output_spec is None:
            return outputs
        return unflatten(self.output_spec, list(outputs) if isinstance(outputs, tuple) else [outputs])


def _graph_forward_from_source(
    owner: torch.nn.Module, source: str, input_spec: dict[str, Any], output_spec: dict[str, Any] | None
) -> GraphForward:
    """A ``GraphForward`` unpickled: its code compiled again from its source, as fx unpickles a GraphModule."""
    forward = GraphForward(owner, _forward_from_src(source, {}), input_spec, output_spec)
    forward.source = source
    return forward


class FlatCall:
    """A kept forward that takes flat tensors and returns a tuple of tensors (for toolkits such as
    AIMET's QuantSim, which trace and export nothing else), around the model's own forward.

    An object, not a closure, so that a copy of the model calls its own forward.
    """

    def __init__(
        self, owner: torch.nn.Module, inner: Any, input_spec: dict[str, Any], output_spec: Any
    ) -> None:
        self.owner = owner
        self.inner = inner  # an instance-level forward installed before (call-site dispatch), if any
        self.input_spec = input_spec
        self.output_spec = output_spec

    def __call__(self, *leaves: Any) -> tuple[Any, ...]:
        arguments = unflatten(self.input_spec, list(leaves))
        own = type(self.owner).forward.__get__(self.owner)
        bound = inspect.BoundArguments(inspect.signature(own), OrderedDict(arguments.items()))
        forward = self.inner if self.inner is not None else own
        return tuple(flatten(forward(*bound.args, **bound.kwargs))[0])

    def flatten_inputs(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(flatten(bind_inputs(self.input_spec, args, kwargs))[0])

    def unflatten_outputs(self, outputs: tuple[Any, ...]) -> Any:
        return unflatten(self.output_spec, list(outputs))


def flat_io(model: torch.nn.Module, input_spec: dict[str, Any], output: Any) -> None:
    """Make ``model``, a ``KeptForward``, take flat tensors and return them; ``output`` gives the structure
    its forward returns (rebuilt by ``call_original``)."""
    model.forward = FlatCall(model, vars(model).get("forward"), input_spec, flatten(output)[1])


def list_as_tuple(module: torch.nn.Module, args: tuple[Any, ...], output: Any) -> Any:
    """A forward hook: a submodule's list output returned as a tuple of the same values.

    AIMET's ``sim.export`` wraps every module in a marker that passes tensors, tuples and dicts on
    and turns any other sequence into a tuple, except that a list of one tensor comes back as the
    tensor itself: a detector's anchors for one image became one tensor, whose rows its postprocess
    then took for images. A tuple passes the marker as it is. A function of this module, not a
    closure, so that the model pickles (``torch.save``, the marker pass deep-copies it).
    """
    return tuple(output) if isinstance(output, list) else None


def _lookup(root: Any, path: str) -> Any:
    value = root
    for part in path.split(".") if path else ():
        value = getattr(value, part, _ABSENT)
        if value is _ABSENT:
            return _ABSENT
    return value


_ABSENT = object()


def _free_name(module: torch.nn.Module, name: str) -> str:
    candidate, n = name, 0
    while hasattr(module, candidate):
        n += 1
        candidate = f"{name}_{n}"
    return candidate


class OriginalCallingConvention:
    """A prepared module's forward that takes the original arguments and returns the original
    structure. An object, not a closure, so that copies of the module call their own graph."""

    def __init__(self, module: PreparedModule) -> None:
        self.module = module

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        module = self.module
        flat = module.flatten_inputs(*args, **kwargs)
        return module.unflatten_outputs(type(module).forward(module, *flat))
