"""The few exceptions qready raises on purpose.

Every message is one line that names the object, says what failed and what to
do. The CLI turns them into exit code 2 without a traceback. The builders of
the messages shared by several layers live here too, with the one ``one_line``
that shortens a foreign error and the one ``strip_ansi`` for exporters' colours.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from qready.wording import shorten

if TYPE_CHECKING:  # errors sit below every layer: the prepared model's type only for the checker
    from qready.prepared import Prepared

__all__ = [
    "QreadyError",
    "SpecError",
    "InputError",
    "ModelError",
    "VerificationError",
    "SaveError",
    "LoadError",
    "InternalError",
    "internal_error",
    "forward_failure",
    "too_deep_message",
    "one_line",
    "described",
    "strip_ansi",
]


class QreadyError(Exception):
    """Base of every error qready raises for a reason the user can act on."""


class SpecError(QreadyError):
    """A model SPEC (``pkg.mod:callable`` or ``file.py:Name``) could not be loaded."""


class InputError(QreadyError):
    """Example inputs are malformed or do not fit the model."""


class ModelError(QreadyError):
    """The model itself failed: its forward raised, or it returned nothing usable."""


class VerificationError(QreadyError):
    """A prepared model does not compute what the original computes.

    ``prepared`` holds the model that failed, for inspection or a forced save.
    """

    def __init__(self, message: str, prepared: Prepared | None = None) -> None:
        super().__init__(message)
        self.prepared = prepared


class SaveError(QreadyError):
    """A prepared model could not be written."""


class LoadError(QreadyError):
    """A saved model directory is missing, incomplete or has been tampered with."""


class InternalError(Exception):
    """A bug in qready itself, never the user's model or inputs.

    Deliberately not a ``QreadyError``: the CLI shows it as an internal error
    with a ``--debug`` hint, and callers who catch ``QreadyError`` for their own
    mistakes do not swallow it.
    """


def internal_error(what: str, error: BaseException) -> InternalError:
    """``what`` failed because of a bug in qready: the message says so and how to see the traceback."""
    return InternalError(
        f"{what}: {described(error)}; this is a bug in qready, please report it (rerun with --debug for the traceback)"
    )


def forward_failure(model_name: str, inputs: str, error: BaseException, file: str | None, line: int | None) -> str:
    """The user's forward raised on the example inputs (described as ``inputs``), at ``file:line``."""
    where = f" (at {file}:{line})" if file else ""
    return (
        f"forward of {model_name} raised {type(error).__name__}: {one_line(str(error), limit=None)}{where}; "
        f"check that the example inputs {inputs} fit the model"
    )


def too_deep_message(model_name: str, depth: int, limit: int) -> str:
    """A RecursionError that the nesting of submodules, not the model's code, caused."""
    suggested = max(2 * limit, 16 * depth + 1000)
    return (
        f"{model_name} nests submodules {depth} deep, too deep for Python's recursion limit ({limit}) "
        f"with qready's instrumentation on top; raise it with sys.setrecursionlimit({suggested}) before calling "
        "qready (for the CLI: in the file that defines the model), or nest less deeply"
    )


def one_line(error: BaseException | str, limit: int | None = 240) -> str:
    """The first non-empty line of an error's message (or a text), shortened to ``limit`` characters;
    an exception without a message gives its type's name."""
    text = readable(next((line.strip() for line in str(error).splitlines() if line.strip()), ""))
    if not text and isinstance(error, BaseException):
        text = type(error).__name__
    return text if limit is None or len(text) <= limit else shorten(text, limit)  # never ends inside a word


def described(error: BaseException, limit: int | None = None) -> str:
    """``TypeName: first line`` of an error, or the type name alone when it has no message."""
    first = one_line(str(error), limit=None)
    text = f"{type(error).__name__}: {first}" if first else type(error).__name__
    return text if limit is None or len(text) <= limit else shorten(text, limit)  # never ends inside a word


# a tensor's printed values (``tensor([[-0.61, 0.07, ...``), which say nothing and cut a message short
_TENSOR_REPR = re.compile(
    r"tensor\((?:[\[\]\s]|[-+]?(?:\d+\.?\d*(?:e[-+]?\d+)?|nan|inf)|\.\.\.|,\s*(?=[-+\d\[.ni]))+"
    r"(?:,\s*\w+=(?:<[^>]*>|[\w.]+))*\)?"
)
# the module qready imports a user's file under (``qready_user_net_0123456789ab``): the file's own name
_FILE_MODULE = re.compile(r"\bqready_user_(\w+?)_[0-9a-f]{12}\b")


def readable(text: str) -> str:
    """A message with tensor values elided and the user's file named as the user knows it."""
    return _FILE_MODULE.sub(r"\1", _TENSOR_REPR.sub("tensor(...)", text))


_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")  # terminal colours some exporters put in their messages


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)
