"""Writing files so that a failure never leaves half an output behind."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from qready.errors import SaveError

__all__ = ["atomic_text", "follow_umask"]


@contextmanager
def atomic_text(path: str | os.PathLike[str]) -> Iterator[TextIO]:
    """Write to a temporary file next to ``path``, then rename it into place."""
    target = Path(path)
    if target.is_dir():
        raise SaveError(f"{str(target)!r} is a directory; give a file name for the report")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent if str(target.parent) else ".")
    except OSError as error:
        raise SaveError(f"cannot write in {str(target.parent)!r} ({error.strerror}); choose a writable place") from error
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            yield stream
        follow_umask(Path(tmp))
        os.replace(tmp, target)
    except OSError as error:  # a full disk: no half-written report stays behind
        Path(tmp).unlink(missing_ok=True)
        raise SaveError(f"cannot write {str(target)!r} ({error.strerror or error}); free space or choose another place") from error
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def follow_umask(*paths: Path) -> None:
    """Give files and directories made by ``tempfile`` (0600/0700) the modes the umask gives
    files and directories made the ordinary way, as every other tool's output has."""
    mask = os.umask(0)
    os.umask(mask)
    for path in paths:
        if path.exists():
            path.chmod((0o777 if path.is_dir() else 0o666) & ~mask)
