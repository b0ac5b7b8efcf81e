"""Finding the user's own source line from inside torch's machinery."""

from __future__ import annotations

import os
import sys
import types

import torch

__all__ = ["is_internal", "user_frame", "user_location", "display_path", "error_location"]

_QREADY_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
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
    frame = sys._getframe(skip)
    while frame is not None and is_internal(frame.f_code.co_filename):
        frame = frame.f_back
    return frame


def user_location(skip: int = 2) -> tuple[str | None, int | None]:
    frame = user_frame(skip)
    if frame is None:
        return None, None
    return display_path(frame.f_code.co_filename), frame.f_lineno


def display_path(filename: str) -> str:
    """Relative to the working directory when below it (what editors and CI annotate)."""
    if filename.startswith("<"):
        return filename
    path = os.path.abspath(filename)
    cwd = os.getcwd() + os.sep
    return path[len(cwd):] if path.startswith(cwd) else path


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
