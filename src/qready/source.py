"""Finding the user's own source line from inside torch's machinery."""

from __future__ import annotations

import functools
import os
import sys
import types
from typing import Any

import torch

__all__ = [
    "is_internal", "user_frame", "user_location", "display_path", "error_location", "forward_location", "call_through",
    "raised_by_qready",
]

_QREADY_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_QREADY_NN_DIR = os.path.join(_QREADY_DIR, "nn") + os.sep  # building blocks of models, not qready's machinery
_TORCH_DIR = os.path.dirname(os.path.abspath(torch.__file__)) + os.sep
_STDLIB_DIR = os.path.dirname(os.path.abspath(os.__file__)) + os.sep
_THIRD_PARTY = ("site-packages", "dist-packages")
_cache: dict[str, bool] = {}


def is_internal(filename: str) -> bool:
    internal = _cache.get(filename)
    if internal is None:
        path = os.path.abspath(filename)
        internal = (
            path.startswith((_QREADY_DIR, _TORCH_DIR))
            or (path.startswith(_STDLIB_DIR) and not any(p in path for p in _THIRD_PARTY))
            or filename.startswith("<frozen")
        )
        _cache[filename] = internal
    return internal


def user_frame(skip: int = 1) -> types.FrameType | None:
    """The innermost frame on the stack that belongs to neither torch, qready nor the stdlib."""
    frame: types.FrameType | None = sys._getframe(skip)
    while frame is not None and is_internal(frame.f_code.co_filename):
        frame = frame.f_back
    return frame


def user_location(skip: int = 2, cwd: str | None = None) -> tuple[str | None, int | None]:
    """The user's file (as ``display_path`` shows it) and line; ``cwd``: the working directory, where the
    caller asked for it once already (a trace asks for every node: os.getcwd is a system call)."""
    frame = user_frame(skip)
    if frame is None:
        return None, None
    return display_path(frame.f_code.co_filename, cwd), frame.f_lineno


def display_path(filename: str, cwd: str | None = None) -> str:
    """Relative to the working directory (``cwd``, else asked) when below it (what editors and CI annotate)."""
    if filename.startswith("<"):
        return filename
    return _relative(filename, os.getcwd() if cwd is None else cwd)


@functools.lru_cache(maxsize=4096)
def _relative(filename: str, cwd: str) -> str:
    """``filename`` as seen from ``cwd`` (asked once per node of a trace: kept)."""
    path = os.path.abspath(os.path.join(cwd, filename))
    below = cwd + os.sep
    return path[len(below):] if path.startswith(below) else path


def error_location(error: BaseException) -> tuple[str | None, int | None]:
    """The innermost user line in an exception's traceback."""
    location: tuple[str | None, int | None] = (None, None)
    tb = error.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if not is_internal(filename):
            location = (display_path(filename), tb.tb_lineno)
        tb = tb.tb_next
    return location


def forward_location(model: torch.nn.Module) -> tuple[str | None, int | None]:
    """Where ``model``'s class defines ``forward``: the line a whole-model finding points at when
    the failure itself has no user line (a tracer refusing what the forward returns)."""
    import inspect

    forward = getattr(type(model).forward, "__wrapped__", type(model).forward)
    try:
        filename = inspect.getsourcefile(forward)
        _, line = inspect.getsourcelines(forward)
    except (OSError, TypeError):
        return None, None
    if filename is None or is_internal(filename):
        return None, None
    return display_path(filename), line


def call_through(func: Any, args: Any, kwargs: Any) -> Any:
    """Call ``func`` on behalf of the code that called qready (a torch function mode, a tracer
    evaluating a node): what it raises is owned by that code, not by qready."""
    return func(*args, **kwargs)


def raised_by_qready(error: BaseException) -> bool:
    """Whether ``error`` comes from qready's own code rather than the user's model or inputs.

    Decided by where it was raised: the innermost frame of the traceback outside the standard
    library. qready's package is qready's bug (its ``nn`` building blocks and calls relayed
    through :func:`call_through` aside); torch, the user's code and their libraries are not:
    torch raising on values the user's code passed stays the user's, as before.
    Exceptions qready raises on purpose (``QreadyError``) are never its bug.
    """
    from qready.errors import QreadyError

    if isinstance(error, QreadyError):
        return False
    codes = []
    tb = error.__traceback__
    while tb is not None:
        codes.append(tb.tb_frame.f_code)
        tb = tb.tb_next
    for code in reversed(codes):
        if code is _CALL_THROUGH:
            return False
        path = os.path.abspath(code.co_filename)
        if code.co_filename.startswith("<frozen") or (path.startswith(_STDLIB_DIR) and not any(p in path for p in _THIRD_PARTY)):
            continue
        return path.startswith(_QREADY_DIR) and not path.startswith(_QREADY_NN_DIR)
    return False


_CALL_THROUGH = call_through.__code__
