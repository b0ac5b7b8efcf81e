"""The functional -> module table: which module replaces a call to a given callable.

Entries are keyed by the callable itself (``F.relu``, ``torch.relu``,
``torch.Tensor.relu``, ``operator.add``, ``torch.Tensor.__radd__``, ...), never
by a name, so a user's own function called ``pad`` is not matched.

``Conversion.build(args, kwargs)`` returns ``(module, new_args, new_kwargs)``
with ``module(*new_args, **new_kwargs)`` bit-identical to the original call,
in-place exactly when the original is. Only plain literals move into a
constructor; anything else (``torch.fx.Node``, tensors, parameters) stays a
call argument, in the same position or under the same keyword. When a value
the chosen module needs as a constant is only known at run time, or a call
uses an argument the table does not know (``out=``), the call is wrapped
unchanged in ``qready.nn.TorchFunction`` instead: still a module, still exact.
"""

from __future__ import annotations

import inspect
import keyword
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import qready.nn as qnn
from qready.nn.generic import TorchFunction, dotted_path

__all__ = ["CONVERSIONS", "Conversion", "conversion_for", "generic_call", "lookup"]

Built = tuple[nn.Module, tuple[Any, ...], dict[str, Any]]


@dataclass(frozen=True)
class Conversion:
    """How to replace calls to one callable by a module.

    ``name`` is the base attribute name for the new module in its owner
    (``"relu"``, ``"add"``, ``"iadd"``); ``module`` is what to tell a user to
    use (``"nn.ReLU"``, ``"qready.nn.Add"``).
    """

    name: str
    module: str
    func: Callable[..., Any] = field(repr=False, compare=False)
    path: str = field(repr=False)
    signature: inspect.Signature | None = field(default=None, repr=False, compare=False)
    factory: _Factory | None = field(default=None, repr=False, compare=False)

    def build(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Built:
        """``(module, new_args, new_kwargs)`` computing what ``func(*args, **kwargs)`` computes."""
        args, kwargs = tuple(args), dict(kwargs)
        if self.factory is not None and self.signature is not None:
            try:
                bound = self.signature.bind(*args, **kwargs)
            except TypeError:
                bound = None  # an argument the table does not model, e.g. out=
            if bound is not None:
                try:
                    return self.factory(_Call.of(bound, len(args)))
                except _NotConstant:
                    pass  # the module needs a constant that is only known at run time
        return generic_call(self.path, args, kwargs)

    def hint(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> str:
        """The module to use instead of this call, as code: ``"nn.Softmax(dim=-1)"``."""
        module = self.build(args, kwargs)[0]
        if isinstance(module, TorchFunction):  # its constants are the call's own arguments: not a setting to write
            return f"qready.nn.TorchFunction({module.path!r})"
        return f"{_module_text(type(module))}({module.extra_repr()})"


def generic_call(path: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Built:
    """``TorchFunction(path)`` for a call, its plain literal arguments held as the module's constants:
    the module is then called with what varies (tensors, values computed at run time) alone."""
    constants: list[tuple[int | str, Any]] = [(i, v) for i, v in enumerate(args) if _is_literal(v)]
    constants += [(k, v) for k, v in kwargs.items() if _is_literal(v)]
    rest = tuple(v for v in args if not _is_literal(v))
    keywords = {k: v for k, v in kwargs.items() if not _is_literal(v)}
    return TorchFunction(path, tuple(constants)), rest, keywords


def lookup(func: Callable[..., Any]) -> Conversion | None:
    """The table entry for ``func`` (matched by identity), or None."""
    try:
        return _TABLE.get(func)
    except TypeError:  # unhashable callable objects are never table keys
        return None


def conversion_for(func: Callable[..., Any]) -> Conversion:
    """``lookup(func)``, else a conversion wrapping ``func`` in ``qready.nn.TorchFunction``.

    Raises ValueError, naming ``func``, when it cannot be re-imported by a
    dotted path (a lambda, a local function, a callable outside torch).
    """
    conversion = lookup(func)
    if conversion is not None:
        return conversion
    path = dotted_path(func)
    return Conversion(
        name=_attribute_name(func),
        module=f"qready.nn.TorchFunction({path!r})",
        func=func,
        path=path,
    )


# --- how a call is taken apart ------------------------------------------------


class _NotConstant(Exception):
    """A value the module would hold as an attribute is not a plain literal."""


_LITERAL_TYPES = (int, float, bool, str, type(None), torch.dtype, torch.memory_format)


def _is_literal(value: Any) -> bool:
    if isinstance(value, (tuple, list)):
        return all(_is_literal(item) for item in value)
    return isinstance(value, _LITERAL_TYPES)


def _plain(value: Any) -> Any:
    # Lists and torch.Size become plain tuples: attributes must be immutable
    # plain types, and torch accepts a tuple wherever it accepts a list here.
    if isinstance(value, (tuple, list)):
        return tuple(_plain(item) for item in value)
    return value


@dataclass(frozen=True)
class _Call:
    """A call bound to the table's signature: values by parameter name."""

    arguments: Mapping[str, Any]  # only what the call passed; defaults are the module's
    positional: frozenset[str]  # parameters passed by position

    @classmethod
    def of(cls, bound: inspect.BoundArguments, n_positional: int) -> _Call:
        names = [
            p.name
            for p in bound.signature.parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
        ]
        return cls(dict(bound.arguments), frozenset(names[:n_positional]))

    def given(self, name: str) -> bool:
        return name in self.arguments

    def constant(self, name: str, default: Any = None) -> Any:
        value = self.arguments.get(name, default)
        if not _is_literal(value):
            raise _NotConstant(name)
        return _plain(value)

    def operands(self, names: Iterable[str], held: Iterable[str] = ()) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The given ``names`` as call arguments, each passed as the original passed it.

        ``names`` are in signature order, so the positional ones are a prefix
        and keep their relative positions once constants are taken out. A name
        in ``held`` is left out (the module holds it); a positional operand after
        one left out is passed by keyword, so it still lands on its parameter.
        """
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        held = set(held)
        gap = False
        for name in names:
            if name in held:
                gap = gap or name in self.positional
            elif name in self.positional and not gap:
                args.append(self.arguments[name])
            elif name in self.arguments:
                kwargs[name] = self.arguments[name]
        return tuple(args), kwargs


class _Factory:
    """Builds the module for a bound call; ``module`` names the usual class."""

    module: str

    def __call__(self, call: _Call) -> Built:
        raise NotImplementedError


def _module_text(cls: type[nn.Module]) -> str:
    if cls.__module__.startswith("qready."):
        return f"qready.nn.{cls.__name__}"
    if cls.__module__.startswith("torch.nn."):
        return f"nn.{cls.__name__}"
    return f"{cls.__module__}.{cls.__name__}"


class _Module(_Factory):
    """``cls(**constants)`` called with the operands, for most entries.

    ``constants`` map call parameters to constructor arguments (a plain
    sequence: same names); they must be literals. ``dynamic`` parameters are
    constructor arguments when literal and forward keywords otherwise (an
    interpolation size read from a shape). ``held`` operands (mapped to
    constructor arguments like ``constants``) are constructor arguments when
    the call passes a plain literal (``x * 0.5``: ``Mul(other=0.5)``) and stay
    operands otherwise, so that the module takes tensors alone. ``fixed``
    constructor arguments come from the entry itself (``inplace=True`` for
    ``relu_``). An operand passed as ``None`` where the module's forward
    defaults to ``None`` is left out, and a list of tensors is passed as a tuple
    (the guidelines' module inputs: tensors and tuples of tensors).
    """

    def __init__(
        self,
        cls: type[nn.Module],
        constants: Sequence[str] | Mapping[str, str] = (),
        operands: Sequence[str] = ("input",),
        dynamic: Sequence[str] = (),
        fixed: Mapping[str, Any] | None = None,
        held: Sequence[str] | Mapping[str, str] = (),
    ) -> None:
        self.cls = cls
        self.constants = _by_name(constants)
        self.operands = tuple(operands)
        self.dynamic = tuple(dynamic)
        self.fixed = dict(fixed or {})
        self.held = _by_name(held)
        self.module = _module_text(cls)
        forward = inspect.signature(cls.forward).parameters
        self.optional = {name for name in self.operands if name in forward and forward[name].default is None}

    def parameters(self) -> set[str]:
        return {*self.constants, *self.operands, *self.dynamic}

    def __call__(self, call: _Call) -> Built:
        init = dict(self.fixed)
        for name, init_name in self.constants.items():
            if call.given(name):
                init[init_name] = call.constant(name)
        call = self._reflect(call, init)
        left_out = []
        for name in self.operands:
            if not call.given(name):
                continue
            value = call.arguments[name]
            if name in self.held and _is_scalar(value):
                init[self.held[name]] = value
                left_out.append(name)
            elif value is None and name in self.optional:
                left_out.append(name)
        args, kwargs = call.operands(self.operands, left_out)
        args = tuple(_as_tuple(a) for a in args)
        kwargs = {k: _as_tuple(v) for k, v in kwargs.items()}
        for name in self.dynamic:
            if not call.given(name):
                continue
            value = call.arguments[name]
            if _is_literal(value):
                init[name] = _plain(value)
            else:
                kwargs[name] = value
        return self.cls(**init), args, kwargs


    def _reflect(self, call: _Call, init: dict[str, Any]) -> _Call:
        """``2 * x`` (recorded as ``operator.mul(2, x)``): the module holds the 2 on the left
        (``reflected``) and takes the tensor as its first operand; Python then runs the very
        same ``x.__rmul__(2)``."""
        second = next((name for name, init_name in self.held.items() if init_name == "other"), None)
        if second is None or "reflected" not in getattr(self.cls, "__constants__", ()):
            return call
        first, other = call.arguments.get("input"), call.arguments.get(second)
        if not (call.given("input") and call.given(second) and _is_scalar(first) and not _is_scalar(other)):
            return call
        init.update(other=first, reflected=True)
        arguments = {name: value for name, value in call.arguments.items() if name != second}
        arguments["input"] = other
        return _Call(arguments, (call.positional - {second}) | {"input"})


def _by_name(names: Sequence[str] | Mapping[str, str]) -> dict[str, str]:
    return dict(names) if isinstance(names, Mapping) else {name: name for name in names}


def _is_scalar(value: Any) -> bool:
    """A Python number or bool written in the call: the module can hold it."""
    return isinstance(value, (bool, int, float))


def _as_tuple(value: Any) -> Any:
    """A list of operands (``torch.cat([a, b])``) as a tuple: the same call to torch."""
    return tuple(value) if isinstance(value, list) else value


class _Reflected(_Factory):
    """``Tensor.__rsub__(x, 2)`` is ``2 - x``: the binary module with swapped operands.

    Python calls ``x.__rsub__(2)`` for ``2 - x``, so the module runs the very
    same method. With ``scalar_only``, another left operand stays a
    TorchFunction: ``x.__rtruediv__(y)`` is ``x.reciprocal() * y``, which is
    not what ``y / x`` computes for a tensor ``y``.
    """

    def __init__(self, cls: type[nn.Module], scalar_only: bool = False) -> None:
        self.cls = cls
        self.scalar_only = scalar_only
        self.module = _module_text(cls)

    def __call__(self, call: _Call) -> Built:
        other = call.arguments["other"]
        if self.scalar_only and not isinstance(other, (int, float)):
            raise _NotConstant("other")
        if _is_scalar(other) and "reflected" in getattr(self.cls, "__constants__", ()):  # ``2 - x``: the 2 is held, on the left
            return self.cls(other=other, reflected=True), (call.arguments["input"],), {}
        return self.cls(), (other, call.arguments["input"]), {}


class _SoftmaxLike(_Factory):
    """``nn.Softmax(dim)`` unless a ``dtype`` cast is asked for, which only qready's module does."""

    def __init__(self, torch_cls: type[nn.Module], qready_cls: type[nn.Module]) -> None:
        self.torch_cls = torch_cls
        self.qready_cls = qready_cls
        self.module = _module_text(torch_cls)

    def __call__(self, call: _Call) -> Built:
        dim = call.constant("dim")
        dtype = call.constant("dtype")
        args, kwargs = call.operands(("input",))
        if dtype is None:
            return self.torch_cls(dim=dim), args, kwargs
        return self.qready_cls(dim=dim, dtype=dtype), args, kwargs


class _MaxMin(_Factory):
    """``torch.max`` and ``torch.min``: over all, along a dim (a named tuple), or binary.

    A run-time second argument is passed on positionally, so torch picks the
    overload just as it did for the original call.
    """

    def __init__(self, cls: type[nn.Module]) -> None:
        self.cls = cls
        self.module = _module_text(cls)

    def __call__(self, call: _Call) -> Built:
        args, kwargs = call.operands(("input", "other"))
        if call.given("other"):
            if call.given("dim") or call.given("keepdim"):
                raise _NotConstant("dim")
            return self.cls(), args, kwargs
        if not call.given("dim"):
            if call.given("keepdim"):
                raise _NotConstant("keepdim")
            return self.cls(), args, kwargs
        dim = call.arguments["dim"]
        if _is_literal(dim):
            module = self.cls(dim=call.constant("dim"), keepdim=call.constant("keepdim", False))
            return module, args, kwargs
        if call.given("keepdim") or "dim" not in call.positional:
            raise _NotConstant("dim")
        return self.cls(), (*args, dim), kwargs


class _Moment(_Factory):
    """``var``/``std`` in all their overloads, normalized to ``correction``.

    ``var(x, True)`` is the ``unbiased`` overload; ``unbiased=b`` is
    ``correction=int(b)`` in torch's own implementation.
    """

    def __init__(self, cls: type[nn.Module]) -> None:
        self.cls = cls
        self.module = _module_text(cls)

    def __call__(self, call: _Call) -> Built:
        dim = call.constant("dim")
        unbiased = call.constant("unbiased")
        if isinstance(dim, bool) and not call.given("unbiased"):
            dim, unbiased = None, dim
        correction = call.constant("correction")
        if unbiased is not None:
            if correction is not None:
                raise _NotConstant("correction")  # torch rejects both; let it say so
            correction = int(unbiased)
        init = {"dim": dim, "correction": correction, "keepdim": call.constant("keepdim", False)}
        args, kwargs = call.operands(("input",))
        return self.cls(**init), args, kwargs


class _Einsum(_Factory):
    """``torch.einsum(equation, *operands)``; the sublist form stays a TorchFunction."""

    module = "qready.nn.Einsum"

    def __call__(self, call: _Call) -> Built:
        equation = call.arguments.get("equation")
        if not isinstance(equation, str) or call.positional != {"equation", "operands"}:
            raise _NotConstant("equation")
        operands = tuple(call.arguments["operands"])
        if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
            operands = tuple(operands[0])  # ``einsum(eq, [a, b])`` is ``einsum(eq, a, b)`` (torch unpacks it so)
        return qnn.Einsum(equation), operands, {}


class _WhereMethod(_Factory):
    """``x.where(condition, y)`` is ``torch.where(condition, x, y)``."""

    module = "qready.nn.Where"

    def __call__(self, call: _Call) -> Built:
        values = call.arguments
        return _WHERE(_Call({**values}, frozenset({"condition", "input", "other"})))


# --- the table ------------------------------------------------------------------

_TABLE: dict[Callable[..., Any], Conversion] = {}


def _attribute_name(func: Callable[..., Any]) -> str:
    # ``__radd__`` -> "radd", ``add_`` -> "add", ``operator.and_`` -> "and_"
    # (a keyword would break the code torch.fx generates: ``self.and``).
    name = getattr(func, "__name__", "op").strip("_") or "op"
    return f"{name}_" if keyword.iskeyword(name) else name


def _params(spelling: Callable[..., None]) -> inspect.Signature:
    """The parameters of a call, spelled as a lambda: ``lambda input, dim=None: None``."""
    return inspect.signature(spelling)


def _register(
    keys: Iterable[Callable[..., Any]],
    signature: Callable[..., None] | inspect.Signature,
    factory: _Factory,
) -> None:
    """Add one entry per key; ``signature`` spells the parameters the keys take."""
    if not isinstance(signature, inspect.Signature):
        signature = _params(signature)
    if isinstance(factory, _Module) and set(signature.parameters) != factory.parameters():
        raise RuntimeError(
            f"table entry for {factory.module}: signature {signature} does not match "
            f"the parameters it maps {sorted(factory.parameters())}"
        )
    for func in dict.fromkeys(keys):  # aliases such as Tensor.__neg__ is Tensor.neg
        if func in _TABLE:
            raise RuntimeError(
                f"{func!r} is in the conversion table twice (as {_TABLE[func].module} "
                f"and {factory.module}); it is an alias in this torch version"
            )
        _TABLE[func] = Conversion(
            name=_attribute_name(func),
            module=factory.module,
            func=func,
            path=dotted_path(func),
            signature=signature,
            factory=factory,
        )


T = torch.Tensor

# Activations: torch.nn classes, whose forward calls the same functional.
_register([F.relu, torch.relu, T.relu], lambda input, inplace=False: None,
          _Module(nn.ReLU, ["inplace"]))
_register([F.relu_, torch.relu_, T.relu_], lambda input: None,
          _Module(nn.ReLU, fixed={"inplace": True}))
_register([F.relu6], lambda input, inplace=False: None, _Module(nn.ReLU6, ["inplace"]))
_register([F.gelu], lambda input, approximate="none": None, _Module(nn.GELU, ["approximate"]))
_register([F.silu], lambda input, inplace=False: None, _Module(nn.SiLU, ["inplace"]))
_register([F.mish], lambda input, inplace=False: None, _Module(nn.Mish, ["inplace"]))
_register([F.hardswish], lambda input, inplace=False: None, _Module(nn.Hardswish, ["inplace"]))
_register([F.hardsigmoid], lambda input, inplace=False: None,
          _Module(nn.Hardsigmoid, ["inplace"]))
_register([F.sigmoid, torch.sigmoid, T.sigmoid, torch.special.expit], lambda input: None,
          _Module(nn.Sigmoid))
_register([F.tanh, torch.tanh, T.tanh], lambda input: None, _Module(nn.Tanh))
_register([F.logsigmoid], lambda input: None, _Module(nn.LogSigmoid))
_register([F.softsign], lambda input: None, _Module(nn.Softsign))
_register([F.tanhshrink], lambda input: None, _Module(nn.Tanhshrink))
_register([F.hardtanh], lambda input, min_val=-1.0, max_val=1.0, inplace=False: None,
          _Module(nn.Hardtanh, ["min_val", "max_val", "inplace"]))
_register([F.hardtanh_], lambda input, min_val=-1.0, max_val=1.0: None,
          _Module(nn.Hardtanh, ["min_val", "max_val"], fixed={"inplace": True}))
_register([F.leaky_relu], lambda input, negative_slope=0.01, inplace=False: None,
          _Module(nn.LeakyReLU, ["negative_slope", "inplace"]))
_register([F.leaky_relu_], lambda input, negative_slope=0.01: None,
          _Module(nn.LeakyReLU, ["negative_slope"], fixed={"inplace": True}))
_register([F.elu], lambda input, alpha=1.0, inplace=False: None,
          _Module(nn.ELU, ["alpha", "inplace"]))
_register([F.elu_], lambda input, alpha=1.0: None,
          _Module(nn.ELU, ["alpha"], fixed={"inplace": True}))
_register([F.celu, torch.celu], lambda input, alpha=1.0, inplace=False: None,
          _Module(nn.CELU, ["alpha", "inplace"]))
_register([F.celu_, torch.celu_], lambda input, alpha=1.0: None,
          _Module(nn.CELU, ["alpha"], fixed={"inplace": True}))
_register([F.selu, torch.selu], lambda input, inplace=False: None, _Module(nn.SELU, ["inplace"]))
_register([F.selu_, torch.selu_], lambda input: None,
          _Module(nn.SELU, fixed={"inplace": True}))
_register([F.threshold, torch.threshold], lambda input, threshold, value, inplace=False: None,
          _Module(nn.Threshold, ["threshold", "value", "inplace"]))
_register([F.threshold_, torch.threshold_], lambda input, threshold, value: None,  # type: ignore[attr-defined]  # F.threshold_ exists at run time; torch's stubs omit it
          _Module(nn.Threshold, ["threshold", "value"], fixed={"inplace": True}))
_register([F.softplus], lambda input, beta=1.0, threshold=20.0: None,
          _Module(nn.Softplus, ["beta", "threshold"]))
_register([F.hardshrink, torch.hardshrink, T.hardshrink], lambda input, lambd=0.5: None,
          _Module(nn.Hardshrink, ["lambd"]))
_register([F.softshrink], lambda input, lambd=0.5: None, _Module(nn.Softshrink, ["lambd"]))
_register([F.glu], lambda input, dim=-1: None, _Module(nn.GLU, ["dim"]))
_register([F.prelu, torch.prelu, T.prelu], lambda input, weight: None,
          _Module(qnn.FunctionalPReLU, operands=["input", "weight"]))

# Softmax family: F.* has ``_stacklevel`` third, torch.* and Tensor.* have ``dtype``.
_F_SOFTMAX = _params(lambda input, dim=None, _stacklevel=3, dtype=None: None)
_TORCH_SOFTMAX = _params(lambda input, dim, dtype=None: None)
_register([F.softmax], _F_SOFTMAX, _SoftmaxLike(nn.Softmax, qnn.Softmax))
_register([torch.softmax, T.softmax, torch.special.softmax], _TORCH_SOFTMAX,
          _SoftmaxLike(nn.Softmax, qnn.Softmax))
_register([F.log_softmax], _F_SOFTMAX, _SoftmaxLike(nn.LogSoftmax, qnn.LogSoftmax))
_register([torch.log_softmax, T.log_softmax, torch.special.log_softmax], _TORCH_SOFTMAX,
          _SoftmaxLike(nn.LogSoftmax, qnn.LogSoftmax))
_register([F.softmin], _F_SOFTMAX, _SoftmaxLike(nn.Softmin, qnn.Softmin))

# Binary arithmetic: function, method, dunder and Python operator forms.
_BINARY = _params(lambda input, other: None)
_WITH_ALPHA = _params(lambda input, other, *, alpha=1: None)
_WITH_ROUNDING = _params(lambda input, other, *, rounding_mode=None: None)
_INPLACE = {"inplace": True}
_register([operator.add, torch.add, T.add, T.__add__], _WITH_ALPHA,
          _Module(qnn.Add, ["alpha"], ["input", "other"], held=["other"]))
_register([operator.iadd, T.add_, T.__iadd__], _WITH_ALPHA,
          _Module(qnn.Add, ["alpha"], ["input", "other"], held=["other"], fixed=_INPLACE))
_register([T.__radd__], _BINARY, _Reflected(qnn.Add))
_register([operator.sub, torch.sub, torch.subtract, T.sub, T.subtract, T.__sub__], _WITH_ALPHA,
          _Module(qnn.Sub, ["alpha"], ["input", "other"], held=["other"]))
_register([operator.isub, T.sub_, T.subtract_, T.__isub__], _WITH_ALPHA,
          _Module(qnn.Sub, ["alpha"], ["input", "other"], held=["other"], fixed=_INPLACE))
_register([T.__rsub__], _BINARY, _Reflected(qnn.Sub))
_register([operator.mul, torch.mul, torch.multiply, T.mul, T.multiply, T.__mul__], _BINARY,
          _Module(qnn.Mul, operands=["input", "other"], held=["other"]))
_register([operator.imul, T.mul_, T.multiply_, T.__imul__], _BINARY,
          _Module(qnn.Mul, operands=["input", "other"], held=["other"], fixed=_INPLACE))
_register([T.__rmul__], _BINARY, _Reflected(qnn.Mul))
_register(
    [operator.truediv, torch.div, torch.divide, torch.true_divide, T.div, T.divide,
     T.true_divide, T.__truediv__, T.__div__],
    _WITH_ROUNDING, _Module(qnn.Div, ["rounding_mode"], ["input", "other"], held=["other"]),
)
_register([operator.itruediv, T.div_, T.divide_, T.true_divide_, T.__itruediv__, T.__idiv__],
          _WITH_ROUNDING, _Module(qnn.Div, ["rounding_mode"], ["input", "other"], held=["other"], fixed=_INPLACE))
_register([T.__rtruediv__, T.__rdiv__], _BINARY, _Reflected(qnn.Div, scalar_only=True))
_register([operator.floordiv, torch.floor_divide, T.floor_divide, T.__floordiv__], _BINARY,
          _Module(qnn.FloorDiv, operands=["input", "other"], held=["other"]))
_register([operator.ifloordiv, T.floor_divide_, T.__ifloordiv__], _BINARY,
          _Module(qnn.FloorDiv, operands=["input", "other"], held=["other"], fixed=_INPLACE))
_register([T.__rfloordiv__], _BINARY, _Reflected(qnn.FloorDiv))
_register([operator.mod, torch.remainder, T.remainder, T.__mod__], _BINARY,
          _Module(qnn.Remainder, operands=["input", "other"], held=["other"]))
_register([operator.imod, T.remainder_, T.__imod__], _BINARY,
          _Module(qnn.Remainder, operands=["input", "other"], held=["other"], fixed=_INPLACE))
_register([T.__rmod__], _BINARY, _Reflected(qnn.Remainder))
_register([operator.pow, torch.pow, T.pow, T.__pow__], lambda input, exponent: None,
          _Module(qnn.Pow, operands=["input", "exponent"], held={"exponent": "other"}))
_register([operator.ipow, T.pow_, T.__ipow__], lambda input, exponent: None,
          _Module(qnn.Pow, operands=["input", "exponent"], held={"exponent": "other"}, fixed=_INPLACE))
_register([T.__rpow__], _BINARY, _Reflected(qnn.Pow))
_register([operator.matmul, torch.matmul, T.matmul, T.__matmul__], _BINARY,
          _Module(qnn.MatMul, operands=["input", "other"]))
_register([T.__rmatmul__], _BINARY, _Reflected(qnn.MatMul))
_register([torch.mm, T.mm], lambda input, mat2: None, _Module(qnn.MM, operands=["input", "mat2"]))
_register([torch.bmm, T.bmm], lambda input, mat2: None,
          _Module(qnn.BatchMatMul, operands=["input", "mat2"]))
_register([torch.addmm, T.addmm], lambda input, mat1, mat2, *, beta=1, alpha=1: None,
          _Module(qnn.AddMM, ["beta", "alpha"], ["input", "mat1", "mat2"]))
_register([torch.baddbmm, T.baddbmm], lambda input, batch1, batch2, *, beta=1, alpha=1: None,
          _Module(qnn.BAddBMM, ["beta", "alpha"], ["input", "batch1", "batch2"]))
_register([torch.einsum], lambda equation, *operands: None, _Einsum())
_register([torch.minimum, T.minimum], _BINARY, _Module(qnn.Minimum, operands=["input", "other"]))
_register([torch.maximum, T.maximum], _BINARY, _Module(qnn.Maximum, operands=["input", "other"]))

# Unary math.
_UNARY = _params(lambda input: None)
_register([operator.neg, torch.neg, torch.negative, T.neg, T.negative, T.__neg__], _UNARY,
          _Module(qnn.Neg))
_register([torch.neg_, torch.negative_, T.neg_, T.negative_], _UNARY,
          _Module(qnn.Neg, fixed=_INPLACE))
_register([operator.abs, torch.abs, torch.absolute, T.abs, T.absolute, T.__abs__], _UNARY,
          _Module(qnn.Abs))
_register([torch.abs_, T.abs_, T.absolute_], _UNARY, _Module(qnn.Abs, fixed=_INPLACE))
for _cls, _out_of_place, _in_place in [
    (qnn.Exp, [torch.exp, T.exp], [torch.exp_, T.exp_]),
    (qnn.Log, [torch.log, T.log], [torch.log_, T.log_]),
    (qnn.Sqrt, [torch.sqrt, T.sqrt], [torch.sqrt_, T.sqrt_]),
    (qnn.Rsqrt, [torch.rsqrt, T.rsqrt], [torch.rsqrt_, T.rsqrt_]),
    (qnn.Square, [torch.square, T.square], [torch.square_, T.square_]),
    (qnn.Reciprocal, [torch.reciprocal, T.reciprocal], [torch.reciprocal_, T.reciprocal_]),
    (qnn.Sin, [torch.sin, T.sin], [torch.sin_, T.sin_]),
    (qnn.Cos, [torch.cos, T.cos], [torch.cos_, T.cos_]),
    (qnn.Erf, [torch.erf, T.erf, torch.special.erf], [torch.erf_, T.erf_]),
    (qnn.Sign, [torch.sign, T.sign], [T.sign_]),
    (qnn.Floor, [torch.floor, T.floor], [torch.floor_, T.floor_]),
    (qnn.Ceil, [torch.ceil, T.ceil], [torch.ceil_, T.ceil_]),
]:
    _register(_out_of_place, _UNARY, _Module(_cls))
    _register(_in_place, _UNARY, _Module(_cls, fixed=_INPLACE))  # type: ignore[arg-type]  # one loop variable over several classes or callables of mixed types
_register([torch.round, T.round], lambda input, *, decimals=0: None,
          _Module(qnn.Round, ["decimals"]))
_register([torch.round_, T.round_], lambda input, *, decimals=0: None,
          _Module(qnn.Round, ["decimals"], fixed=_INPLACE))
_register([torch.clamp, torch.clip, T.clamp, T.clip], lambda input, min=None, max=None: None,
          _Module(qnn.Clamp, dynamic=["min", "max"]))
_register([torch.clamp_, torch.clip_, T.clamp_, T.clip_], lambda input, min=None, max=None: None,
          _Module(qnn.Clamp, dynamic=["min", "max"], fixed=_INPLACE))
_register([torch.clamp_min, T.clamp_min], lambda input, min: None,
          _Module(qnn.ClampMin, dynamic=["min"]))
_register([torch.clamp_min_, T.clamp_min_], lambda input, min: None,
          _Module(qnn.ClampMin, dynamic=["min"], fixed=_INPLACE))
_register([torch.clamp_max, T.clamp_max], lambda input, max: None,
          _Module(qnn.ClampMax, dynamic=["max"]))
_register([torch.clamp_max_, T.clamp_max_], lambda input, max: None,
          _Module(qnn.ClampMax, dynamic=["max"], fixed=_INPLACE))

# Comparisons and logic: boolean tensors used as values (masks). ``x > 0`` holds the 0.
_HELD_OTHER = {cls: ["other"] for cls in (qnn.Greater, qnn.GreaterEqual, qnn.Less, qnn.LessEqual, qnn.Equal, qnn.NotEqual)}
for _cls, _keys in [  # type: ignore[assignment]  # one loop variable over several classes or callables of mixed types
    (qnn.Greater, [operator.gt, torch.gt, torch.greater, T.gt, T.greater, T.__gt__]),
    (qnn.GreaterEqual, [operator.ge, torch.ge, torch.greater_equal, T.ge, T.greater_equal,
                        T.__ge__]),
    (qnn.Less, [operator.lt, torch.lt, torch.less, T.lt, T.less, T.__lt__]),
    (qnn.LessEqual, [operator.le, torch.le, torch.less_equal, T.le, T.less_equal, T.__le__]),
    (qnn.Equal, [operator.eq, torch.eq, T.eq, T.__eq__]),
    (qnn.NotEqual, [operator.ne, torch.ne, torch.not_equal, T.ne, T.not_equal, T.__ne__]),
    (qnn.LogicalAnd, [torch.logical_and, T.logical_and]),
    (qnn.LogicalOr, [torch.logical_or, T.logical_or]),
    (qnn.LogicalXor, [torch.logical_xor, T.logical_xor]),
]:
    _register(_keys, _BINARY, _Module(_cls, operands=["input", "other"], held=_HELD_OTHER.get(_cls, ())))  # type: ignore[arg-type]  # one loop variable over several classes or callables of mixed types
for _cls, _out_of_place, _in_place, _reflected in [  # type: ignore[assignment]  # one loop variable over several classes or callables of mixed types
    (qnn.BitwiseAnd, [operator.and_, torch.bitwise_and, T.bitwise_and, T.__and__],
     [operator.iand, T.bitwise_and_, T.__iand__], [T.__rand__]),
    (qnn.BitwiseOr, [operator.or_, torch.bitwise_or, T.bitwise_or, T.__or__],
     [operator.ior, T.bitwise_or_, T.__ior__], [T.__ror__]),
    (qnn.BitwiseXor, [operator.xor, torch.bitwise_xor, T.bitwise_xor, T.__xor__],
     [operator.ixor, T.bitwise_xor_, T.__ixor__], [T.__rxor__]),
]:
    _register(_out_of_place, _BINARY, _Module(_cls, operands=["input", "other"], held=["other"]))
    _register(_in_place, _BINARY, _Module(_cls, operands=["input", "other"], fixed=_INPLACE, held=["other"]))
    _register(_reflected, _BINARY, _Reflected(_cls))
_register([operator.invert, operator.inv, torch.bitwise_not, T.bitwise_not, T.__invert__],
          _UNARY, _Module(qnn.BitwiseNot))
_register([torch.logical_not, T.logical_not], _UNARY, _Module(qnn.LogicalNot))

# Selection.
_WHERE = _Module(qnn.Where, operands=["condition", "input", "other"], held=["input", "other"])
_register([torch.where], lambda condition, input, other: None, _WHERE)
_register([T.where], lambda input, condition, other: None, _WhereMethod())
_register([torch.masked_fill, T.masked_fill], lambda input, mask, value: None,
          _Module(qnn.MaskedFill, operands=["input", "mask", "value"], held=["value"]))
_register([T.masked_fill_], lambda input, mask, value: None,
          _Module(qnn.MaskedFill, operands=["input", "mask", "value"], fixed=_INPLACE, held=["value"]))

# Joining.
_register([torch.cat, torch.concat], lambda tensors, dim=0: None,
          _Module(qnn.Cat, ["dim"], ["tensors"]))
_register([torch.concatenate], lambda tensors, axis=0: None,
          _Module(qnn.Cat, {"axis": "dim"}, ["tensors"]))
_register([torch.stack], lambda tensors, dim=0: None, _Module(qnn.Stack, ["dim"], ["tensors"]))

# Reductions.
_REDUCTION = _params(lambda input, dim=None, keepdim=False, *, dtype=None: None)
_register([torch.sum, T.sum], _REDUCTION, _Module(qnn.Sum, ["dim", "keepdim", "dtype"]))
_register([torch.mean, T.mean], _REDUCTION, _Module(qnn.Mean, ["dim", "keepdim", "dtype"]))
_register([torch.prod, T.prod], _REDUCTION, _Module(qnn.Prod, ["dim", "keepdim", "dtype"]))
_register([torch.norm], lambda input, p="fro", dim=None, keepdim=False, *, dtype=None: None,
          _Module(qnn.Norm, ["p", "dim", "keepdim", "dtype"]))
_register([T.norm], lambda input, p="fro", dim=None, keepdim=False, dtype=None: None,
          _Module(qnn.Norm, ["p", "dim", "keepdim", "dtype"]))
_register([torch.cumsum, T.cumsum], lambda input, dim, *, dtype=None: None,
          _Module(qnn.CumSum, ["dim", "dtype"]))
_register([torch.amax, T.amax], lambda input, dim=(), keepdim=False: None,
          _Module(qnn.AMax, ["dim", "keepdim"]))
_register([torch.amin, T.amin], lambda input, dim=(), keepdim=False: None,
          _Module(qnn.AMin, ["dim", "keepdim"]))
_MAX_MIN = _params(lambda input, dim=None, keepdim=False, *, other=None: None)
_register([torch.max, T.max], _MAX_MIN, _MaxMin(qnn.Max))
_register([torch.min, T.min], _MAX_MIN, _MaxMin(qnn.Min))
_MOMENT = _params(
    lambda input, dim=None, unbiased=None, keepdim=False, *, correction=None: None
)
_register([torch.var, T.var], _MOMENT, _Moment(qnn.Var))
_register([torch.std, T.std], _MOMENT, _Moment(qnn.Std))
_register([torch.logsumexp, T.logsumexp], lambda input, dim, keepdim=False: None,
          _Module(qnn.LogSumExp, ["dim", "keepdim"]))

# torch.nn.functional layers.
_register([F.pad], lambda input, pad, mode="constant", value=None: None,
          _Module(qnn.Pad, ["mode", "value"], dynamic=["pad"]))
_INTERPOLATE = ["mode", "align_corners", "recompute_scale_factor", "antialias"]
_register(
    [F.interpolate, F.upsample],
    lambda input, size=None, scale_factor=None, mode="nearest", align_corners=None,
    recompute_scale_factor=None, antialias=False: None,
    _Module(qnn.Interpolate, _INTERPOLATE, dynamic=["size", "scale_factor"]),
)
_register([F.upsample_nearest], lambda input, size=None, scale_factor=None: None,
          _Module(qnn.Interpolate, dynamic=["size", "scale_factor"], fixed={"mode": "nearest"}))
_register([F.upsample_bilinear], lambda input, size=None, scale_factor=None: None,
          _Module(qnn.Interpolate, dynamic=["size", "scale_factor"],
                  fixed={"mode": "bilinear", "align_corners": True}))
_register([F.grid_sample],
          lambda input, grid, mode="bilinear", padding_mode="zeros", align_corners=None: None,
          _Module(qnn.GridSample, ["mode", "padding_mode", "align_corners"], ["input", "grid"]))

# Pooling: the torch.nn classes take the same arguments under the same names.
# torch.max_pool*d has no return_indices and spells "stride = kernel" as ().
_MAX_POOL = ["kernel_size", "stride", "padding", "dilation", "ceil_mode"]
_AVG_POOL = ["kernel_size", "stride", "padding", "ceil_mode", "count_include_pad"]
_F_MAX_POOL = _params(
    lambda input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
    return_indices=False: None
)
_TORCH_MAX_POOL = _params(
    lambda input, kernel_size, stride=(), padding=0, dilation=1, ceil_mode=False: None
)
_AVG_POOL_1D = _params(
    lambda input, kernel_size, stride=None, padding=0, ceil_mode=False,
    count_include_pad=True: None
)
_AVG_POOL_ND = _params(
    lambda input, kernel_size, stride=None, padding=0, ceil_mode=False,
    count_include_pad=True, divisor_override=None: None
)
for _f_max, _torch_max, _max_cls in [
    (F.max_pool1d, torch.max_pool1d, nn.MaxPool1d),
    (F.max_pool2d, torch.max_pool2d, nn.MaxPool2d),
    (F.max_pool3d, torch.max_pool3d, nn.MaxPool3d),
]:
    _register([_f_max], _F_MAX_POOL, _Module(_max_cls, [*_MAX_POOL, "return_indices"]))
    _register([_torch_max], _TORCH_MAX_POOL, _Module(_max_cls, _MAX_POOL))
_register([F.avg_pool1d], _AVG_POOL_1D, _Module(nn.AvgPool1d, _AVG_POOL))
_register([F.avg_pool2d], _AVG_POOL_ND, _Module(nn.AvgPool2d, [*_AVG_POOL, "divisor_override"]))
_register([F.avg_pool3d], _AVG_POOL_ND, _Module(nn.AvgPool3d, [*_AVG_POOL, "divisor_override"]))
for _avg_key, _avg_cls, _max_key, _max_cls in [  # type: ignore[assignment]  # one loop variable over several classes or callables of mixed types
    (F.adaptive_avg_pool1d, nn.AdaptiveAvgPool1d, F.adaptive_max_pool1d, nn.AdaptiveMaxPool1d),
    (F.adaptive_avg_pool2d, nn.AdaptiveAvgPool2d, F.adaptive_max_pool2d, nn.AdaptiveMaxPool2d),
    (F.adaptive_avg_pool3d, nn.AdaptiveAvgPool3d, F.adaptive_max_pool3d, nn.AdaptiveMaxPool3d),
]:
    _register([_avg_key], lambda input, output_size: None, _Module(_avg_cls, ["output_size"]))
    _register([_max_key], lambda input, output_size, return_indices=False: None,
              _Module(_max_cls, ["output_size", "return_indices"]))

_register(
    [F.batch_norm],
    lambda input, running_mean, running_var, weight=None, bias=None, training=False,
    momentum=0.1, eps=1e-5: None,
    _Module(qnn.FunctionalBatchNorm, ["momentum", "eps"],
            ["input", "running_mean", "running_var", "weight", "bias", "training"],
            held={"training": "batch_statistics"}),
)
_register(
    [F.instance_norm],
    lambda input, running_mean=None, running_var=None, weight=None, bias=None,
    use_input_stats=True, momentum=0.1, eps=1e-5: None,
    _Module(qnn.FunctionalInstanceNorm, ["use_input_stats", "momentum", "eps"],
            ["input", "running_mean", "running_var", "weight", "bias"]),
)
_register([F.group_norm], lambda input, num_groups, weight=None, bias=None, eps=1e-5: None,
          _Module(qnn.FunctionalGroupNorm, ["num_groups", "eps"], ["input", "weight", "bias"]))
_register([F.layer_norm], lambda input, normalized_shape, weight=None, bias=None, eps=1e-5: None,
          _Module(qnn.FunctionalLayerNorm, ["normalized_shape", "eps"],
                  ["input", "weight", "bias"]))
_register([F.rms_norm], lambda input, normalized_shape, weight=None, eps=None: None,
          _Module(qnn.FunctionalRMSNorm, ["normalized_shape", "eps"], ["input", "weight"]))
_register([F.normalize], lambda input, p=2.0, dim=1, eps=1e-12: None,
          _Module(qnn.Normalize, ["p", "dim", "eps"]))
_register([F.linear], lambda input, weight, bias=None: None,
          _Module(qnn.FunctionalLinear, operands=["input", "weight", "bias"]))
_CONV = _params(lambda input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1: None)
_CONV_TRANSPOSE = _params(
    lambda input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
    dilation=1: None
)
for _conv, _conv_cls, _transpose, _transpose_cls in [
    (F.conv1d, qnn.FunctionalConv1d, F.conv_transpose1d, qnn.FunctionalConvTranspose1d),
    (F.conv2d, qnn.FunctionalConv2d, F.conv_transpose2d, qnn.FunctionalConvTranspose2d),
    (F.conv3d, qnn.FunctionalConv3d, F.conv_transpose3d, qnn.FunctionalConvTranspose3d),
]:
    _register([_conv], _CONV, _Module(_conv_cls, ["stride", "padding", "dilation", "groups"],
                                      ["input", "weight", "bias"]))
    _register([_transpose], _CONV_TRANSPOSE,
              _Module(_transpose_cls, ["stride", "padding", "output_padding", "groups", "dilation"],
                      ["input", "weight", "bias"]))
_register(
    [F.embedding],
    lambda input, weight, padding_idx=None, max_norm=None, norm_type=2.0,
    scale_grad_by_freq=False, sparse=False: None,
    _Module(qnn.FunctionalEmbedding,
            ["padding_idx", "max_norm", "norm_type", "scale_grad_by_freq", "sparse"],
            ["input", "weight"]),
)
_register([F.dropout], lambda input, p=0.5, training=True, inplace=False: None,
          _Module(qnn.FunctionalDropout, ["p", "inplace"], ["input", "training"], held={"training": "active"}))
_register(
    [F.scaled_dot_product_attention],
    lambda query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
    enable_gqa=False: None,
    _Module(qnn.ScaledDotProductAttention, ["dropout_p", "is_causal", "scale", "enable_gqa"],
            ["query", "key", "value", "attn_mask"]),
)

del T

#: The table: callable -> Conversion, read-only.
CONVERSIONS: Mapping[Callable[..., Any], Conversion] = MappingProxyType(_TABLE)
