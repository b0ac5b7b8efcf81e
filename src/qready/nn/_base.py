"""The base class of qready's modules: one torch op, configuration in plain attributes."""

from __future__ import annotations

import functools
import inspect
from typing import Any, ClassVar, Union

from torch import Tensor, nn

__all__ = ["OpModule", "TensorOrScalar"]

#: An operand of an elementwise op: a tensor or a Python number.
TensorOrScalar = Union[Tensor, int, float, bool]


class OpModule(nn.Module):
    """A stateless module whose forward calls exactly one torch op.

    Subclasses name their configuration attributes in ``__constants__`` (as
    ``torch.nn`` modules do). Every such attribute is a plain int, float, bool,
    str, None, tuple or ``torch.dtype``, and the module has no parameters or
    buffers, so it pickles, deep-copies and can be rebuilt from its attributes
    alone. Tensors (weights included) always come in as forward arguments.
    """

    __constants__: ClassVar[tuple[str, ...]] = ()
    #: a leaf wherever it is defined: here, or copied into a user's ops module by ``qready fix``
    qready_op_module: ClassVar[bool] = True

    def extra_repr(self) -> str:
        # Only values that differ from the constructor's defaults: ``Add()``,
        # ``Clamp(min=0.0, max=6.0)``; this is also the text of a fix hint.
        defaults = _init_defaults(type(self))
        shown = []
        for name in self.__constants__:
            value = getattr(self, name)
            if name in defaults and _same_value(value, defaults[name]):
                continue
            shown.append(f"{name}={value!r}")
        return ", ".join(shown)


@functools.cache
def _init_defaults(cls: type[nn.Module]) -> dict[str, Any]:
    parameters = inspect.signature(cls.__init__).parameters.values()
    return {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}


def _same_value(value: Any, default: Any) -> bool:
    # ``1 == True`` and ``1 == 1.0`` in Python; a default shown as equal must
    # also have the same type, or ``alpha=True`` would be hidden.
    return type(value) is type(default) and value == default
