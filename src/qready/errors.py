"""The few exceptions qready raises on purpose.

Every message is one line that names the object, says what failed and what to
do. The CLI turns them into exit code 2 without a traceback.
"""

from __future__ import annotations

__all__ = [
    "QreadyError",
    "SpecError",
    "InputError",
    "ModelError",
    "VerificationError",
    "SaveError",
    "LoadError",
    "InternalError",
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

    def __init__(self, message: str, prepared: object | None = None) -> None:
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
