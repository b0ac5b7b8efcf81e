"""torch.fx tracing with the example's real values riding along.

Every node is also evaluated on the example inputs while it is recorded, so
code that asks a tensor for its ``shape``, ``dtype`` or ``size()`` gets plain
Python values: config- and shape-driven branches are specialized to the
example, as ``torch.jit.trace`` would. A branch on tensor *data* (``if
x.sum() > 0``, ``int(x.max())``) is different: it would bake one input's
answer into the graph, so it stops the trace, and the caller leaves the
module where it happened as a leaf.

The model's parameters and buffers are graph inputs of their own (``get_attr``
nodes), read when the graph runs. What is computed from buffers alone (a flag,
a count, a slice of position ids by constants) is the model's state, not the
input's: it keeps its real value, and Python's questions about it are answered
as eager answers them.
"""

from __future__ import annotations

import builtins
import contextlib
import functools
import math
import operator
import os
import sys
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.fx as fx
from torch.fx.immutable_collections import immutable_dict, immutable_list
from torch.fx.node import Node, map_aggregate
from torch.utils._python_dispatch import TorchDispatchMode, _disable_current_modes

from qready.errors import QreadyError, described, internal_error
from qready.meta_calls import MetaCalls, has_hooks
from qready.meta_shortcuts import kernel_output, module_output, op_output
from qready.namespaces import model_namespaces, script_functions_in_python
from qready.ops import is_leaf_module
from qready.source import call_through, is_internal, raised_by_qready, user_location
from qready.walks import modules_by_path, modules_of, named_state, tensors_of
from qready.wording import a

__all__ = [
    "ConcreteTracer", "DataDependentError", "DataDependentShapeError", "RootNotTraceable", "TraceFailure",
    "random_factories_recorded", "trace_with_leaves",
]

# Tensor attributes and methods that describe a tensor's layout, not its data.
_STATIC_ATTRIBUTES = frozenset(
    "shape dtype device ndim is_cuda is_sparse is_quantized is_meta is_nested layout requires_grad".split()
)
_DEVICE_ATTRIBUTES = frozenset({"device", "is_cuda", "is_meta"})
_STATIC_METHODS = frozenset("size dim ndimension numel nelement is_floating_point is_complex is_contiguous stride".split())


_MISSING = object()


class DataDependentError(fx.proxy.TraceError):
    """Python control flow or a Python value depends on tensor data."""

    # In the root forward, a branch may be specialized to the example's value and reported.
    specializable = True


class DataDependentShapeError(DataDependentError):
    """Python asked for the shape of a tensor whose size depends on the data (``x[mask]``,
    ``nonzero``, ``nms``): that size would be baked into the graph, and never specialized."""

    specializable = False


class _NeedsRealValues(Exception):
    """Shapes alone (meta tensors) could not answer: trace again with real values."""


@dataclass(frozen=True)
class TraceFailure:
    """A module that could not be traced through, and why."""

    module: str
    reason: str
    file: str | None
    line: int | None


class RootNotTraceable(QreadyError):
    """The model's own forward, not one of its submodules, stops the trace."""

    def __init__(self, failure: TraceFailure, model: str) -> None:
        where = f" at {failure.file}:{failure.line}" if failure.file else ""
        super().__init__(
            f"cannot trace the forward of {model} itself ({failure.reason}{where}); "
            "move that code into a submodule so it can be left as a leaf"
        )
        self.failure = failure


class _ConcreteProxy(fx.Proxy):
    tracer: ConcreteTracer  # only a ConcreteTracer makes these proxies (its proxy() below)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__array_"):  # numpy's protocols (__array_ufunc__, __array_wrap__, ...): numpy
            raise AttributeError(name)  # then asks __array__, below
        if name in _STATIC_ATTRIBUTES or name in _STATIC_METHODS:
            value = self.tracer.values.get(self.node)
            if isinstance(value, torch.Tensor):
                if name == "device":
                    return self.tracer.device_of(self.node, value)
                if self.node.meta.get("qready_state"):
                    return getattr(value, name)  # a buffer's shape is the model's, whatever the input
                if name in _SIZE_QUESTIONS:
                    _static_shape(self.node)
                    # sizes stay in the graph (``B, T, _ = x.shape`` then ``view(B, T, H, D)``): the
                    # prepared model runs at other batch sizes and lengths, as the source does
                    if name == "shape":
                        return self.tracer.create_proxy("call_function", getattr, (self, "shape"), {})
                    return super().__getattr__(name)
                if value.is_meta and name in _DEVICE_ATTRIBUTES:
                    # the model runs on the device of its example, not on the stand-in values
                    return getattr(self.tracer.device_probe, name)
                return getattr(value, name)
        return super().__getattr__(name)

    def _size_value(self, conversion: str) -> Any:
        """A size read from a tensor, asked for as a Python number (``range(T)``, ``int(B)``): the
        example's value, noted as a size fixed at this line."""
        if self.node.meta.get("qready_state"):
            return self.tracer.values[self.node]  # a number the model's buffers hold, not the input
        if not self.node.meta.get("qready_size"):
            raise DataDependentError(f"{conversion}() of a traced tensor value ({_describe(self.node)}) depends on the data")
        self.tracer.fixed_sizes.append(user_location(skip=3))
        return self.tracer.values[self.node]

    def __index__(self) -> int:
        return operator.index(self._size_value("int"))

    def __int__(self) -> int:
        return int(self._size_value("int"))

    def __float__(self) -> float:
        return float(self._size_value("float"))

    def __array__(self, dtype: Any = None, copy: Any = None) -> Any:
        # ``np.array(x.shape[2:])``, ``np.ceil(h / w)``: numpy gets the example's sizes, as it gets
        # eager's ints, fixed at this line; a tensor's data read into numpy stops the trace
        import numpy

        return numpy.asarray(self._size_value("numpy.asarray"), dtype=dtype)

    def __len__(self) -> int:
        value = self.tracer.values.get(self.node)
        if isinstance(value, torch.Tensor):
            _static_shape(self.node)
            if not self.node.meta.get("qready_state"):
                self.tracer.fixed_sizes.append(user_location(skip=2))
            return len(value)  # the first dimension, fixed: len() must return an int
        if isinstance(value, (tuple, list)):
            return len(value)
        raise DataDependentError("len() of a traced value")

    def __iter__(self) -> Iterator[Any]:
        return self.tracer.iter(self)

    def __getitem__(self, key: Any) -> Any:
        # An element of a leaf's output that is a Python constant (the None in ``(x, None)``) is
        # part of the output's structure, static like a shape: give the constant, so that
        # ``if out[1] is not None`` takes the branch the example takes.
        value = self.tracer.values.get(self.node)
        if isinstance(value, (tuple, list, dict)) and not isinstance(key, (fx.Proxy, slice)) and not self.node.meta.get("qready_size"):
            try:
                element = value[key]
            except (IndexError, KeyError, TypeError):
                element = _MISSING
            if element is None or isinstance(element, (bool, int, float, str)):
                return element
        return super().__getitem__(key)  # type: ignore[misc]  # fx.Proxy's __getitem__ is generated at run time

    def __setitem__(self, key: Any, value: Any) -> None:
        # ``x[:, 0] = v`` writes into x: record it as an in-place ``operator.setitem`` node, in
        # order, so later reads of x (in the graph, and of its example value now) see the write.
        self.tracer.create_proxy("call_function", operator.setitem, (self, key, value), {})


def _in_place(op: Callable[[Any, Any], Any]) -> Callable[[fx.Proxy, Any], Any]:
    def record(self: fx.Proxy, other: Any) -> Any:
        return self.tracer.create_proxy("call_function", op, (self, other), {})

    return record


# ``h += y`` on a tensor writes into h, and every alias of h sees it (``v = self.identity(h)``):
# record the in-place operator, not the ``h = h + y`` Python falls back to
for _name in ("iadd", "isub", "imul", "itruediv", "ifloordiv", "imod", "ipow", "iand", "ior", "ixor"):
    setattr(_ConcreteProxy, f"__{_name}__", _in_place(getattr(operator, _name)))


class ConcreteTracer(fx.Tracer):
    """An fx tracer that evaluates each node on real values as it records it."""

    def __init__(self, leaves: set[str], specialize_root: bool = False, meta: bool = False) -> None:
        super().__init__(autowrap_modules=(math,))
        # Meta tensors carry shapes and dtypes without computing anything: most models only
        # ask for those. Data-dependent kernels, or a branch to specialize, need real values.
        self.meta = meta
        self.device_probe = torch.empty(0)
        self._meta_twins: dict[int, torch.Tensor] = {}
        self.meta_calls = MetaCalls()
        self._modules: dict[str, torch.nn.Module] | None = None  # by path (the tree does not change while tracing)
        self._state_names: dict[int, str] | None = None  # the model's parameters and buffers: id -> a name
        self._buffer_names: set[str] = set()
        self.leaves = set(leaves)
        self.values: dict[Node, Any] = {}
        self.placeholder_values: list[Any] = []
        self.module_scope: list[str] = []
        self.failure_scope: str | None = None
        self.specialize_root = specialize_root
        self.specialized: list[tuple[str | None, int | None, Any]] = []
        self.fixed_sizes: list[tuple[str | None, int | None]] = []
        self._evaluating = 0
        # the devices read from traced tensors (``x.device``), by id: one given to a call becomes the graph's
        # own read of that tensor's device, so that the prepared model runs where it is moved
        self._device_reads: dict[int, tuple[torch.device, Node]] = {}
        self._device_nodes: dict[Node, Node] = {}
        self.cwd = os.getcwd()  # where the user's files are shown from: asked once, not for each node

    # -- which modules are traced through -------------------------------------------------
    def is_leaf_module(self, m: torch.nn.Module, module_qualified_name: str) -> bool:
        # What a quantizer wraps whole stays a call (qready.ops.is_leaf_module); everything else is
        # traced through, a user's module without children too. One that cannot be traced becomes
        # a leaf through the retry in trace_with_leaves.
        return module_qualified_name in self.leaves or is_leaf_module(m)

    def call_module(self, m: torch.nn.Module, forward: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
        if self._evaluating:
            return forward(*args, **kwargs)
        try:
            path = self.path_of_module(m)
        except NameError as error:
            if tensors_of(m) != ([], []):  # weights the model does not hold: nothing a graph could read them by
                error.args = (
                    f"{type(m).__name__} is made inside the forward, with weights of its own that the model does "
                    "not hold; create it in __init__",
                )
                raise  # fx's own error (not qready's), in words that say what to change
            # a stateless module made in the forward (NASNet's ``nn.ZeroPad2d((1, 0, 1, 0))(x)``): its
            # ops are the caller's, recorded in the caller's scope like a functional call
            return call_through(forward, args, kwargs)
        if self.is_leaf_module(m, path):
            return self.create_proxy("call_module", path, args, kwargs)
        self.module_scope.append(path)
        try:
            return call_through(forward, args, kwargs)
        except Exception:
            if self.failure_scope is None:
                self.failure_scope = path
            raise
        finally:
            self.module_scope.pop()

    def getattr(self, attr: str, attr_val: Any, parameter_proxy_cache: dict[str, Any]) -> Any:
        """A parameter or buffer of the model, read in a forward that is traced through, is a ``get_attr``
        node: the graph reads it when it runs (a buffer sliced to the input's length stays a slice of the
        buffer, not the example's slice). Anything else is the value itself, as fx's own getattr gives it."""
        if self._evaluating or not _real_isinstance(attr_val, torch.Tensor):
            return attr_val
        if self._state_names is None:  # one walk of the model, where fx walks it for each read
            self._state_names = {}
            parameters, buffers = named_state(self.root)
            for path, tensor in [*parameters, *buffers]:
                self._state_names.setdefault(id(tensor), path)  # a tied tensor: by its first name
            self._buffer_names = {path for path, _ in buffers}
        found = self._state_names.get(id(attr_val))
        if found is None:
            return attr_val  # a tensor the model holds as a plain attribute: a constant of the graph
        if found not in parameter_proxy_cache:
            parameter_proxy_cache[found] = proxy = self.create_proxy("get_attr", found, (), {})
            if found in self._buffer_names and not _real_isinstance(attr_val, torch.nn.Parameter):
                proxy.node.meta["qready_state"] = True
        return parameter_proxy_cache[found]

    # -- recording, with values --------------------------------------------------------------
    def proxy(self, node: Node) -> fx.Proxy:
        return _ConcreteProxy(node, self)

    def create_arg(self, a: Any) -> Any:
        # the arguments of most calls, answered as fx's own checks would answer them after a dozen
        # isinstance tests each: a proxy of this trace by its node, a number or name as itself
        kind = type(a)
        if kind is _ConcreteProxy:
            return a.node
        if kind is torch.device:
            return self._device_arg(a)
        if kind in _ATOMS:
            return a
        return super().create_arg(a)

    def device_of(self, node: Node, value: torch.Tensor) -> torch.device:
        """``x.device`` of a traced tensor: the device the model runs on (the example's, where ``value`` is
        a stand-in on the meta device; a buffer's own), a Python value as eager's, so that
        ``x.device.type == "cuda"`` is answered; given to a call (``torch.arange(n, device=x.device)``),
        it is read in the graph."""
        stand_in = value.is_meta and not node.meta.get("qready_state")
        device = self.device_probe.device if stand_in else value.device
        self._device_reads[id(device)] = (device, node)
        return device

    def _device_arg(self, device: torch.device) -> Any:
        """A device given to a call: the graph's read of the device of the tensor it was read from (the
        prepared model moved to another device computes there, as the source does); any other device
        (``torch.device("cpu")`` in the source) as itself."""
        found = self._device_reads.get(id(device))
        if found is None or found[0] is not device or found[1].graph is not self.graph:
            return device
        origin = found[1]
        node = self._device_nodes.get(origin)
        if node is None or node.graph is not self.graph:
            node = self._device_nodes[origin] = self.create_node("call_function", getattr, (origin, "device"), {})
            self.values[node] = device
            # a device, the same on every call: what is computed from it and the model's buffers alone
            # (``self.inv_freq.to(x.device)``) keeps its real values, as with the device as a constant
            node.meta["qready_state"] = True
            node.meta["qready_tensor"] = False
        return node

    def create_node(self, kind, target, args, kwargs, name=None, type_expr=None):
        node = super().create_node(kind, target, args, kwargs, name, type_expr)
        node.meta["qready_scope"] = self.module_scope[-1] if self.module_scope else ""
        if kind == "get_attr":  # also made outside create_proxy, for buffers and constants
            value = self.values[node] = self._attribute(str(target))
            node.meta["qready_tensor"] = isinstance(value, torch.Tensor)
        if kind in ("call_function", "call_method", "call_module"):
            node.meta["qready_location"] = user_location(skip=2, cwd=self.cwd)
        return node

    def create_proxy(self, kind, target, args, kwargs, name=None, type_expr=None, proxy_factory_fn=None):
        # fx's recording and the node's evaluation ask isinstance thousands of times, and never of a
        # proxy standing for a tensor: the builtin answers them, not the stand-in the user's code meets
        stand_in, builtins.isinstance = builtins.isinstance, _real_isinstance
        if kind == "call_function" and target in _SIZES_AS_ARGUMENTS and len(args) > 1:
            # ``torch.zeros(B, 1, 8)`` as ``torch.zeros((B, 1, 8))``: the same call, that a plain fx trace
            # of the prepared code (qready.load's, a toolkit's own) can record when B is a graph value
            args = (tuple(args),)
        try:
            proxy = super().create_proxy(kind, target, args, kwargs, name, type_expr, proxy_factory_fn)
            try:
                value = self.values[proxy.node] = self._evaluate(proxy.node)
            except BaseException:  # the call raised, as it would in eager: it ran nothing, so it is no node
                # (a forward that catches it and tries another way, ``layer(x, lengths=...)`` then ``layer(x)``)
                self.graph.erase_node(proxy.node)
                raise
            proxy.node.meta["qready_tensor"] = isinstance(value, torch.Tensor)
            if type(value) in (tuple, list) and any(isinstance(v, torch.Tensor) for v in value):
                # a sequence of tensors (meshgrid's, a split's): an op given it takes tensors too
                proxy.node.meta["qready_tensors"] = True
            proxy.node.meta["qready_int"] = type(value) is int  # a size, not a tuple of them nor a SymInt-like
            if _reads_size(proxy.node, value):
                proxy.node.meta["qready_size"] = True
        finally:
            builtins.isinstance = stand_in
        return proxy

    def _attribute(self, target: str) -> Any:
        value: Any = self.root
        self._evaluating += 1  # fx patches Module.__getattr__ to hand out proxies; we want the tensor
        try:
            for part in target.split("."):
                value = getattr(value, part, None)
        finally:
            self._evaluating -= 1
        return value

    def _evaluate(self, node: Node) -> Any:
        if node.op == "placeholder":
            value = self.placeholder_values.pop(0) if self.placeholder_values else None
            if isinstance(value, torch.Tensor):
                self.device_probe = value.new_empty(0)
                return self._to_meta(value) if self.meta else value
            return value
        if node.op == "get_attr":
            return self._attribute(str(node.target))
        if node.op != "call_module" and _state_only(node):
            # computed from buffers alone (position ids, a mask, a flag): the model's own values, real even
            # among stand-ins, so that Python may ask them what eager answers (``if self.ready:``)
            node.meta["qready_state"] = True
            self._evaluating += 1
            try:
                return self._run(
                    node,
                    _mutable(map_aggregate(node.args, self._value_of)),
                    _mutable(map_aggregate(node.kwargs, self._value_of)) if node.kwargs else {},
                )
            finally:
                self._evaluating -= 1
        # plain containers: a leaf may append to a list it is given, as torchvision's FPN blocks do
        if all(type(a) is Node or type(a) in _ATOMS for a in node.args):  # most calls: no container to rebuild
            args: Any = tuple(self._concrete(a) if type(a) is Node else a for a in node.args)
        else:
            args = _mutable(map_aggregate(node.args, self._concrete))
        kwargs = _mutable(map_aggregate(node.kwargs, self._concrete)) if node.kwargs else {}
        self._evaluating += 1
        try:
            if not self.meta:
                # meta tensors cannot run an op whose output size depends on the data: only here
                with _DynamicShapeProbe() as probe:
                    value = self._run(node, args, kwargs)
                dynamic = probe.op or next(
                    (n.meta["qready_dynamic_shape"] for n in node.all_input_nodes if "qready_dynamic_shape" in n.meta),
                    None,
                )
                if dynamic:
                    node.meta["qready_dynamic_shape"] = dynamic
                return value
            try:
                return self._run_on_meta(node, args, kwargs)
            except Exception as error:  # whatever meta tensors can't do, real ones may
                raise _NeedsRealValues(str(error)) from error
        finally:
            self._evaluating -= 1

    def _run_on_meta(self, node: Node, args: Any, kwargs: Any) -> Any:
        """``_run`` on stand-ins; the same torch.nn layer on the same shapes gets its earlier answer."""
        if node.op != "call_module":
            value = _made_here(op_output, node.target, args, kwargs) if node.op == "call_function" else None
            if value is not None:
                return value
            if node.op == "call_method" and args and _real_isinstance(args[0], torch.Tensor) and args[0].is_meta:
                if node.target == "cpu" and len(args) == 1 and not kwargs and self.device_probe.device.type == "cpu":
                    return args[0]  # on the CPU already, as the example is: eager hands back the tensor itself
                if node.target == "to":
                    args, kwargs = self._onto_stand_ins(args, kwargs)
            return self._remembered(self.meta_calls.op_key(node.op, node.target, args, kwargs), node, args, kwargs)
        module = self._submodule(str(node.target))
        value = _made_here(module_output, module, args, kwargs)
        if value is None:  # a convolution's own kernel: cheaper than working out its key (its config, its weights)
            value = call_through(kernel_output, (module, args, kwargs, self._to_meta), {})
        if value is not None:
            return value
        key = self.meta_calls.key(module, args, kwargs)
        if key is None:
            return self._run(node, args, kwargs)
        return self._remembered(key, node, args, kwargs, module)

    def _remembered(self, key: Any, node: Node, args: Any, kwargs: Any, module: torch.nn.Module | None = None) -> Any:
        """The node's meta value: the one an earlier call of the same signature gave, or computed and kept."""
        if key is None:
            return self._run(node, args, kwargs)
        known = _made_here(self.meta_calls.get, key)
        if known is not None:
            return known
        value = self._run(node, args, kwargs)
        state = [] if module is None else [self._to_meta(t) for t in [*module.parameters(), *module.buffers()]]
        self.meta_calls.remember(key, value, args, kwargs, state)
        return value

    def _run(self, node: Node, args: Any, kwargs: Any) -> Any:
        # the user's ops on the example's values: what they raise is the user's (call_through)
        if node.op == "call_function":
            return call_through(node.target, args, kwargs)
        if node.op == "call_method":
            return call_through(getattr(args[0], str(node.target)), args[1:], kwargs)
        if node.op == "call_module":
            module = self._submodule(str(node.target))
            if not self.meta:
                return call_through(module.forward, args, kwargs)
            state = {
                name: self._to_meta(t)
                for name, t in [*module.named_parameters(), *module.named_buffers()]
            }
            # functional_call leaves the stand-ins in place when one submodule appears twice inside
            # `module` (it swaps the shared tensor in and out once per name): put the tensors back ourselves
            held = [(m, dict(m._parameters), dict(m._buffers)) for m in module.modules()]
            try:
                with _state_unchanged(module):
                    if not state and not has_hooks(module):
                        # nothing to swap in (a pooling layer): its own forward, without functional_call's round trip
                        return call_through(module.forward, args, kwargs)
                    return call_through(torch.func.functional_call, (module, state, args, kwargs), {})
            except Exception:
                _put_back(held)
                if not type(module).__module__.startswith("torch.nn."):
                    raise
                # a torch.nn kernel without a meta version (multi-head attention): its output shape
                # never depends on the data, so zeros of the right shapes give it
                return map_aggregate(module.forward(*self._zeros(args), **self._zeros(kwargs)), self._concrete)
            finally:
                _put_back(held)
        return None

    def _onto_stand_ins(self, args: Any, kwargs: Any) -> tuple[Any, Any]:
        """``x.to(y.device)`` of a stand-in, where ``y.device`` answered with the example's device (the
        device the stand-ins stand for): onto the meta device, where eager's call leaves ``x`` where it is."""
        device = self.device_probe.device

        def stand_in(value: Any) -> Any:
            if not isinstance(value, (str, torch.device)):
                return value
            try:
                return torch.device("meta") if torch.device(value) == device else value
            except RuntimeError:  # not a device name: torch's own call says what is wrong with it
                return value

        return (args[0], *map(stand_in, args[1:])), {k: stand_in(v) if k == "device" else v for k, v in kwargs.items()}

    def _submodule(self, path: str) -> torch.nn.Module:
        if self._modules is None:  # one walk, instead of a get_submodule per call
            self._modules = modules_by_path(self.root)
        module = self._modules.get(path)
        if module is None:
            module = self._modules[path] = self.root.get_submodule(path)
        return module

    def _zeros(self, value: Any) -> Any:
        device = self.device_probe.device
        return map_aggregate(
            value,
            lambda v: torch.zeros(v.shape, dtype=v.dtype, device=device) if isinstance(v, torch.Tensor) and v.is_meta else v,
        )

    def _to_meta(self, tensor: torch.Tensor) -> torch.Tensor:
        twin = self._meta_twins.get(id(tensor))
        if twin is None:
            twin = self._meta_twins[id(tensor)] = _made_here(tensor.to, "meta")
        return twin

    def _value_of(self, value: Any) -> Any:
        return self.values[value] if isinstance(value, Node) else value

    def _concrete(self, value: Any) -> Any:
        if isinstance(value, Node):
            value = self.values[value]
        if self.meta and isinstance(value, torch.Tensor) and not value.is_meta:
            return self._to_meta(value)  # parameters and constants meet stand-in values as stand-ins
        return value

    # -- Python asking traced values questions ---------------------------------------------
    def to_bool(self, obj: fx.Proxy) -> bool:
        value = self.values.get(obj.node)
        if obj.node.meta.get("qready_state"):
            return bool(value)  # a branch on the model's own buffers, as it was when the trace held them as values
        if obj.node.op == "call_function" and obj.node.target in _DTYPE_QUESTIONS:
            return bool(value)  # ``torch.is_floating_point(mask)``: the dtype, not the data
        if obj.node.meta.get("qready_size"):
            # a branch on a size: specialized to the example, as jit.trace would; noted in case
            # the prepared model then differs at other sizes
            self.fixed_sizes.append(user_location(skip=2))
            return bool(value)
        if self.specialize_root and not self.module_scope:
            if self.meta:
                raise _NeedsRealValues("a branch to specialize needs the example's real values")
            result = bool(value)
            self.specialized.append((*user_location(skip=2), result))
            return result
        raise DataDependentError(
            f"Python branch on a traced tensor value ({_describe(obj.node)}) depends on the data"
        )

    def iter(self, obj: fx.Proxy) -> Iterator[Any]:
        value = self.values.get(obj.node)
        if isinstance(value, torch.Tensor):
            _static_shape(obj.node)
        if isinstance(value, (tuple, list)) or (isinstance(value, torch.Tensor) and value.dim() > 0):
            return iter([obj[i] for i in range(len(value))])  # type: ignore[index]  # fx.Proxy supports [] at run time
        raise DataDependentError(f"iteration over a traced value ({_describe(obj.node)})")

    def keys(self, obj: fx.Proxy) -> Any:
        value = self.values.get(obj.node)
        if isinstance(value, dict):
            return value.keys()
        raise DataDependentError(f"keys() of a traced value ({_describe(obj.node)})")


def _made_here(make: Callable[..., Any], *args: Any) -> Any:
    """A stand-in the tracer makes itself (a meta tensor for a node's value, a meta twin of a weight),
    made outside the dispatch modes the model runs under: qready's own mode for a model without weights
    (``qready.meta``) turns small tensors made on meta into real ones, and a stand-in must stay one."""
    if not torch._C._len_torch_dispatch_stack():
        return make(*args)
    with _disable_current_modes():
        return make(*args)


@contextlib.contextmanager
def _state_unchanged(module: torch.nn.Module) -> Iterator[None]:
    """A leaf that caches something on itself (anchors, masks) would keep a stand-in value:
    undo it, and say that this leaf needs real values."""
    before = [(m, dict(vars(m))) for m in module.modules()]
    yield
    for m, attributes in before:
        now = vars(m)
        if now.keys() != attributes.keys() or any(now[k] is not v for k, v in attributes.items()):
            now.clear()
            now.update(attributes)
            raise _NeedsRealValues(f"{type(module).__name__} changes its own state when it runs")


# Functions that answer from a tensor's dtype alone, as ``x.is_floating_point()`` does.
_DTYPE_QUESTIONS = frozenset({torch.is_floating_point, torch.is_complex})
# Size questions; ``dim()`` and ``ndim`` stay static even when the sizes depend on the data.
_SIZE_QUESTIONS = frozenset({"shape", "size", "numel", "nelement", "stride"})
# Ops whose output size depends on the data but that carry no dynamic_output_shape tag.
_UNTAGGED_DYNAMIC_OUTPUT = frozenset({"torchvision::nms"})
_MASK_DTYPES = (torch.bool, torch.uint8)


class _DynamicShapeProbe(TorchDispatchMode):
    """Notes the first aten op run whose output size depends on the data (``op`` names it)."""

    def __init__(self) -> None:
        super().__init__()
        self.op: str | None = None

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if self.op is None and _dynamic_output(func, args):
            self.op = str(func.overloadpacket)
        return func(*args, **(kwargs or {}))


def _dynamic_output(func: Any, args: tuple) -> bool:
    if func.name().split(".")[0] in _UNTAGGED_DYNAMIC_OUTPUT:
        return True
    if torch.Tag.dynamic_output_shape not in func.tags:
        return False
    if func.overloadpacket is torch.ops.aten.index:
        # indexing with integer tensors has the indices' shape; only a boolean mask selects by value
        return any(isinstance(i, torch.Tensor) and i.dtype in _MASK_DTYPES for i in args[1])
    return True


_SIZE_METHODS = frozenset({"size", "numel", "nelement", "stride"})
# torch's factories that take a shape as their positional arguments, one size each
_SIZES_AS_ARGUMENTS = frozenset({torch.zeros, torch.ones, torch.empty, torch.rand, torch.randn})
# argument values that stand for themselves: a call whose arguments are these and nodes needs no
# container rebuilt around its values
_ATOMS = frozenset({int, float, bool, str, type(None), torch.dtype, torch.device, torch.memory_format})


def _reads_size(node: Node, value: Any) -> bool:
    """A node whose value is a size, or computed from sizes only (``B * T``, ``x.shape[-2:]``)."""
    if isinstance(value, torch.Tensor) or not isinstance(value, (int, float, bool, tuple)):
        return False
    if node.op == "call_method" and node.target in _SIZE_METHODS:
        return True
    if node.op == "call_function" and node.target is getattr and node.args[1] == "shape":
        return True
    inputs = node.all_input_nodes
    return node.op == "call_function" and bool(inputs) and all(n.meta.get("qready_size") for n in inputs)


def _state_only(node: Node) -> bool:
    """A call on the model's buffers, or on what was computed from them alone, and on constants, that
    writes into none of them: a write (``self.steps.add_(1)``, ``self.cache[0] = ...``) is evaluated on
    stand-ins, so that the trace leaves the buffers as they were; the graph does it when it runs."""
    inputs = node.all_input_nodes
    return bool(inputs) and all(n.meta.get("qready_state") for n in inputs) and not _writes(node)


def _writes(node: Node) -> bool:
    if node.op == "call_method":
        name = str(node.target)
        return (name.endswith("_") and not name.endswith("__")) or "out" in node.kwargs
    return node.op == "call_function" and (node.target in _WRITING_OPERATORS or "out" in node.kwargs)


_WRITING_OPERATORS = frozenset({
    operator.setitem, operator.iadd, operator.isub, operator.imul, operator.itruediv, operator.ifloordiv,
    operator.imod, operator.ipow, operator.iand, operator.ior, operator.ixor,
})


def _static_shape(node: Node) -> None:
    """Raise when ``node``'s value has a size that another input could change."""
    op = node.meta.get("qready_dynamic_shape")
    if op:
        raise DataDependentShapeError(
            f"the size of a traced tensor ({_describe(node)}) depends on the data through {op}"
        )


def _mutable(value: Any) -> Any:
    """fx's immutable_list and immutable_dict, recursively, as list and dict. Only those and plain
    tuples: torch.return_types (``torch.max(x, 1).values``) and ModelOutput keep their type."""
    if type(value) in (list, immutable_list):
        return [_mutable(v) for v in value]
    if type(value) is tuple:
        return tuple(_mutable(v) for v in value)
    if type(value) in (dict, immutable_dict):
        return {k: _mutable(v) for k, v in value.items()}
    return value


def _needed_real_values(error: BaseException) -> bool:
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, _NeedsRealValues):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _describe(node: Node) -> str:
    target = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", str(node.target))
    return f"{node.op} {target}"


def trace_with_leaves(
    root: torch.nn.Module,
    forward: Callable[..., Any],
    placeholder_values: list[Any],
    leaves: set[str],
    *,
    max_attempts: int = 64,
) -> tuple[fx.Graph, ConcreteTracer, list[TraceFailure]]:
    """Trace ``forward`` of ``root``; each module whose forward can't be traced becomes a leaf.

    ``forward`` must be a function ``(self, *tensors)``. Returns the graph, the
    tracer (its ``values`` hold the example's value of every node), and the
    modules that were left as leaves with the reason.
    """
    leaves = set(leaves)
    failures: list[TraceFailure] = []
    specialize_root = False
    meta = True
    buffers = [(module, dict(module._buffers)) for module in modules_of(root) if module._buffers]
    for _ in range(max_attempts):
        tracer = ConcreteTracer(leaves, specialize_root=specialize_root, meta=meta)
        # each attempt on its own copies: a forward that writes into its inputs (a static KV cache's
        # index_copy_) must not change the example, nor what the next attempt sees
        tracer.placeholder_values = [
            v.clone() if isinstance(v, torch.Tensor) and not meta else v for v in placeholder_values
        ]  # meta attempts read only stand-ins of them
        try:
            try:
                graph = _trace(tracer, root, forward)
            finally:
                keeper = _put_back_buffers(buffers)
            if keeper is not None:
                owner, name, where = keeper
                path = next(path for path, module in root.named_modules() if module is owner)
                raise _KeepsState(path, name, where)
            _constants_are_not_state(root, graph)
            return graph, tracer, failures
        except _KeepsState as kept:  # a graph keeps nothing from one call to the next: the module stays whole
            held_as = f"{kept.path}.{kept.buffer}" if kept.path else kept.buffer
            reason = (
                f"a value computed from the inputs is kept as the buffer '{held_as}' (state carried from one call "
                "to the next, which a graph cannot hold)"
            )
            if not kept.path or kept.path in leaves:  # the root's own buffer, or a caller writing a leaf's
                raise RootNotTraceable(TraceFailure("", reason, *kept.where), type(root).__name__) from None
            failures.append(TraceFailure(kept.path, reason, *kept.where))
            leaves.add(kept.path)
        except _NeedsRealValues:
            meta = False
            continue
        except RecursionError:  # the nesting, not one submodule: no leaf would help
            raise
        except Exception as error:  # any failure inside the user's forward: find where, leave it, retry
            if meta and _needed_real_values(error):
                meta = False
                continue
            if not isinstance(error, fx.proxy.TraceError) and raised_by_qready(error):
                # qready's own bug: never a leaf with the tracer's message as its reason
                raise internal_error(f"qready's tracer failed on {type(root).__name__}", error) from error
            from qready.source import error_location

            scope = tracer.failure_scope
            file, line = error_location(error)
            reason = _in_user_terms(error) or described(error, limit=200)
            if scope is None or scope == "":
                if isinstance(error, DataDependentError) and error.specializable and not specialize_root:
                    specialize_root = True
                    continue
                raise RootNotTraceable(TraceFailure("", reason, file, line), type(root).__name__) from error
            failures.append(TraceFailure(scope, reason, file, line))
            leaves.add(scope)
    raise RootNotTraceable(
        TraceFailure("", f"still failing after {max_attempts} submodules were left as leaves", None, None),
        type(root).__name__,
    )


class _KeepsState(Exception):
    """A forward assigned a traced value to a buffer: ``self.cache = torch.cat([self.cache, x])``."""

    def __init__(self, path: str, buffer: str, where: tuple[str | None, int | None]) -> None:
        super().__init__(path, buffer)
        self.path, self.buffer, self.where = path, buffer, where


def _put_back_buffers(
    held: list[tuple[torch.nn.Module, dict[str, Any]]],
) -> tuple[torch.nn.Module, str, tuple[str | None, int | None]] | None:
    """Give each module its buffers from before the trace where a traced value replaced one (torch lets a
    module hold anything with ``__torch_function__`` as a buffer, a proxy too); the first such module,
    buffer name and the user's line that computed the value it held, or None."""
    found = None
    for module, buffers in held:
        for name, tensor in buffers.items():
            kept = module._buffers.get(name)
            if _real_type(kept) is _ConcreteProxy:
                module._buffers[name] = tensor
                found = found or (module, name, kept.node.meta.get("qready_location", (None, None)))
    return found


def _put_back(held: list[tuple[torch.nn.Module, dict[str, Any], dict[str, Any]]]) -> None:
    for module, parameters, buffers in held:
        module._parameters.update(parameters)
        module._buffers.update(buffers)


_UNCARRIED = re.compile(r"^argument of type: <class '(?:[\w.]+\.)?(\w+)'>$")


_SIZE_REFUSED = re.compile(r"^(\w+)\(\) takes \d+ positional arguments? but \d+ were given$")


def _in_user_terms(error: BaseException) -> str | None:
    """A tracer limit in what the user's code did, where torch.fx or torch words it as its own internals."""
    found = _UNCARRIED.match(str(error)) if isinstance(error, NotImplementedError) else None
    if found:  # torch.fx's create_arg: a custom object passed to a call the graph records
        return (
            f"its forward passes {a(found.group(1))} to a call the graph records, and a graph carries "
            "only tensors, numbers and tuples, lists and dicts of them"
        )
    refused = _SIZE_REFUSED.match(str(error)) if isinstance(error, TypeError) else None
    if refused:  # eager ran this very call: the argument torch's parser refused is a traced size
        return (
            f"a size read from the input goes into {refused.group(1)}() of a tensor the trace holds as a "
            "value (a tensor attribute that is no parameter or buffer, or one made from constants), whose "
            "methods take only plain ints; register it as a buffer"
        )
    return None


def _constants_are_not_state(root: torch.nn.Module, graph: fx.Graph) -> None:
    """Tensors the trace captured as constants (``_tensor_constant0``: a slice of a buffer, a mask
    built from shapes) become non-persistent buffers: the model holds them, its state dict doesn't."""
    for node in graph.nodes:
        target = str(node.target)
        if node.op != "get_attr" or "." in target or target in root._buffers or target in root._parameters:
            continue
        value = getattr(root, target, None)
        if isinstance(value, torch.Tensor) and not isinstance(value, torch.nn.Parameter):
            delattr(root, target)
            root.register_buffer(target, value, persistent=False)


def _trace(tracer: ConcreteTracer, root: torch.nn.Module, forward: Callable[..., Any]) -> fx.Graph:
    # fx traces type(root).forward; point it at the flat forward for the duration of the trace.
    cls = type(root)

    @functools.wraps(forward)  # fx reads the parameters of the function it unwraps to
    def answering(*args: Any) -> Any:
        # the stand-ins for isinstance, type and len while the user's forward runs: not while fx walks
        # the model's attributes before it (thousands of isinstance calls that meet no proxy)
        with _answers_like_tensors(root):
            return forward(*args)

    patched = type(cls.__name__, (cls,), {"forward": answering, "__module__": cls.__module__})
    root.__class__ = patched
    try:
        with _user_wrapped_functions_traced_into(), random_factories_recorded(tracer):
            return tracer.trace(root)
    finally:
        root.__class__ = cls


# Factories that draw random numbers from Python values alone (``torch.rand(8)``): fx would call them
# once while tracing and keep their result as a constant, the same numbers on every call.
_RANDOM_FACTORIES = ("rand", "randn", "randint", "randperm", "normal")


@contextlib.contextmanager
def random_factories_recorded(tracer: fx.Tracer) -> Iterator[None]:
    """While the forward is traced, ``torch.rand(...)`` and the other random factories are recorded as
    calls in the graph, so the prepared model draws anew on every call, in the original's order."""
    originals = {name: getattr(torch, name) for name in _RANDOM_FACTORIES}

    def recorded(original: Callable[..., Any]) -> Callable[..., Any]:
        def factory(*args: Any, **kwargs: Any) -> Any:
            if getattr(tracer, "_evaluating", 0):  # a leaf run on values, or the node's own evaluation
                return original(*args, **kwargs)
            return tracer.create_proxy("call_function", original, args, kwargs)

        return factory

    for name, original in originals.items():
        setattr(torch, name, recorded(original))
    try:
        yield
    finally:
        for name, original in originals.items():
            setattr(torch, name, original)


@contextlib.contextmanager
def _user_wrapped_functions_traced_into() -> Iterator[None]:
    """``torch.fx.wrap("fn")`` in the user's own code keeps ``fn`` one opaque node for fx's tracer;
    its ops would then run where no module wraps them. Trace into them instead (this tracer has the
    example's values, so most such functions trace), as eager runs them; a function that still cannot
    be traced stops the trace where it is called, and that module is left as a leaf, its calls
    dispatched. Functions wrapped by libraries stay wrapped."""
    from torch.fx import _symbolic_trace

    table = _symbolic_trace._wrapped_fns_to_patch
    held = {key: frame for key, frame in table.items() if _is_user_code(frame.get("__file__"))}
    for key in held:
        del table[key]
    try:
        yield
    finally:
        table.update(held)


def _is_user_code(filename: Any) -> bool:
    return isinstance(filename, str) and not is_internal(filename) and not any(
        part in filename for part in ("site-packages", "dist-packages")
    )


# Code that must see the proxy as the proxy it is: the tracer's own, and qready's.
_TRACING_MODULES = (
    "torch.fx", "qready", "torch.utils._pytree", "torch.nn.parameter", "torch.overrides", "torch._tensor",
    "torch.nn.modules.module",
)
_real_isinstance = isinstance
_real_callable = callable


def _tensor_value(obj: Any) -> Any:
    """The example's value behind a traced proxy, when the proxy stands for a tensor."""
    if _real_type(obj) is not _ConcreteProxy:  # not type(): it may be the stand-in below, which asks here
        return _MISSING
    value = obj.tracer.values.get(obj.node, _MISSING)
    if not _real_isinstance(value, torch.Tensor):
        return _MISSING
    caller = sys._getframe(2).f_globals.get("__name__", "")
    if caller.startswith(_TRACING_MODULES):
        return _MISSING
    return value


def _isinstance(obj: Any, classes: Any) -> bool:
    if _real_isinstance(obj, classes):
        return True
    if type(obj) is not _ConcreteProxy:  # the common case, and every isinstance in the process goes through here
        return False
    value = _tensor_value(obj)
    return value is not _MISSING and _real_isinstance(value, classes)


def _callable(obj: Any) -> bool:
    return _real_callable(obj) and _tensor_value(obj) is _MISSING


_real_type = type
_real_issubclass = issubclass


class _TypeQuestions(type):
    """The metaclass of ``_type``: ``isinstance(C, type)`` and ``issubclass(M, type)`` in the
    user's code answer as for the real ``type`` while it stands in for it."""

    def __instancecheck__(cls, obj: Any) -> bool:
        return _real_isinstance(obj, _real_type)

    def __subclasscheck__(cls, subclass: Any) -> bool:
        return _real_issubclass(subclass, _real_type)


class _type(type, metaclass=_TypeQuestions):  # noqa: N801  # stands in for the builtin of that name
    """``type(x)`` of a proxy standing for a tensor is the tensor's class (``type(x) is
    torch.Tensor`` holds, as in eager); everything else is the real ``type``."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        if len(args) == 1 and not kwargs:
            value = _tensor_value(args[0])
            return _real_type(args[0] if value is _MISSING else value)
        return _real_type(*args, **kwargs)

    def __class_getitem__(cls, item: Any) -> Any:  # ``type[int]`` in an annotation evaluated at run time
        return _real_type[item]  # type: ignore[misc]  # types.GenericAlias, as the builtin gives


_real_len = len

# torch's tensor factories take sizes as Python ints, and torch's argument parser refuses a traced
# size (``torch.ones(T, T)`` with ``B, T, C = x.shape``) before any override can see it: while the
# user's forward is traced they record the call instead, so the size stays a size. ``torch.tensor``
# of a size (RAFT: ``torch.sqrt(torch.tensor(num_channels))``) asks its argument for array
# interfaces a proxy cannot give: recorded the same way, it holds the size the prepared model reads.
_FACTORIES = ("ones", "zeros", "full", "empty", "arange", "eye", "tensor", "as_tensor", "scalar_tensor")


def _recording(factory: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(factory)
    def call(*args: Any, **kwargs: Any) -> Any:
        proxies: list[Any] = []
        map_aggregate((args, kwargs), lambda v: proxies.append(v) if _real_isinstance(v, fx.Proxy) else None)
        if not proxies:
            return factory(*args, **kwargs)
        return proxies[0].tracer.create_proxy("call_function", factory, args, kwargs)

    return call


def _len(obj: Any) -> Any:
    """``len(x)`` of a proxy standing for a tensor: its first size, as ``x.shape[0]`` gives it (a
    size that stays symbolic in the graph; ``range(len(x))`` still fixes it, and says so)."""
    value = _tensor_value(obj)
    if value is _MISSING:
        return _real_len(obj)
    if value.dim() == 0:
        raise TypeError("len() of a 0-d tensor")
    _static_shape(obj.node)
    return obj.tracer.create_proxy("call_method", "size", (obj, 0), {})


@contextlib.contextmanager
def _answers_like_tensors(root: torch.nn.Module) -> Iterator[None]:
    """While the user's forward is traced, a proxy standing for a tensor answers ``isinstance``
    (and with it ``torch.is_tensor``, ``torch.jit.isinstance``, einops' backend lookup),
    ``callable``, ``type`` and ``len`` as the tensor would: the trace takes the branch eager
    takes, and ``len(x)`` is ``x.shape[0]``, a size that stays symbolic.

    ``type`` and ``len`` are answered in the modules that define the model's classes only (globals
    of theirs for the duration), not for all code: other code that runs meanwhile (a library
    imported on first use) must meet the real ones. Elsewhere the proxy's own ``__len__`` gives
    the tensor's length, noted as a size fixed to the example's. A TorchScript function among those
    globals is its Python original for the duration.
    """
    namespaces = model_namespaces(root)
    builtins.isinstance, builtins.callable = _isinstance, _callable  # type: ignore[assignment]  # same call, a looser annotation
    stand_ins = {"type": _type, "len": _len}
    added = []
    for namespace in namespaces:
        for name, stand_in in stand_ins.items():
            if name not in namespace:
                namespace[name] = stand_in
                added.append((namespace, name))
    factories = {name: getattr(torch, name) for name in _FACTORIES}
    for name, factory in factories.items():
        setattr(torch, name, _recording(factory))
    try:
        # a TorchScript function (geffnet's hard swish) refuses a proxy for its tensor argument: its
        # Python original runs instead, its ops recorded like the forward's own
        with script_functions_in_python(namespaces):
            yield
    finally:
        builtins.isinstance, builtins.callable = _real_isinstance, _real_callable
        for name, factory in factories.items():
            setattr(torch, name, factory)
        for namespace, name in added:
            if namespace.get(name) is stand_ins[name]:
                del namespace[name]
