"""Writing files so that a failure never leaves half an output behind."""

from __future__ import annotations

import errno
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from qready.errors import SaveError

__all__ = ["atomic_text", "check_report_path", "follow_umask", "write_failed"]


@contextmanager
def atomic_text(path: str | os.PathLike[str]) -> Iterator[TextIO]:
    """Write to a temporary file next to ``path``, then rename it into place."""
    target = check_report_path(path)
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
        raise write_failed(target, error) from error
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_report_path(path: str | os.PathLike[str]) -> Path:
    """``path`` if a report can be written there, else a SaveError saying why: checked before
    a long check or prepare runs, so a typo costs seconds, not the whole run."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise SaveError(f"{str(target)!r} is a directory; give a file name for the report")
    if folder.exists() and not folder.is_dir():
        raise SaveError(f"{str(folder)!r} is a file, not a directory; choose another place for {target.name!r}")
    if not folder.exists():
        raise SaveError(f"folder {str(folder)!r} for {target.name!r} does not exist; create it first")
    if not os.access(folder, os.W_OK | os.X_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise SaveError(f"cannot write {str(target)!r} (permission denied); choose a writable place")
    if target.exists() and not _is_qready_report(target):
        raise SaveError(
            f"refusing to overwrite {str(target)!r}: it is not a report qready wrote; "
            "choose another file name, or move that file away first"
        )
    return target


_REPORT_MARK = re.compile(rb"qready|\bQR0\d\d\b")


def _is_qready_report(path: Path) -> bool:
    """Whether an existing file looks like a report qready wrote: every format names qready or a
    rule code near its start, and Python source is never one (a model file with a
    ``# qready: ignore[QR003]`` comment must not be taken for a report)."""
    if path.suffix in (".py", ".pyi", ".ipynb") or path.is_symlink() or not path.is_file():
        return False
    try:
        with path.open("rb") as stream:
            head = stream.read(1 << 16)
    except OSError:
        return False
    return bool(_REPORT_MARK.search(head))


def write_failed(target: Path, error: OSError) -> SaveError:
    """The one-line error for a write that failed part way; free space is the fix only when it ran out."""
    fix = "free space or choose another place" if error.errno in (errno.ENOSPC, errno.EDQUOT) else "choose another place"
    return SaveError(f"cannot write {str(target)!r} ({error.strerror or error}); {fix}")


def follow_umask(*paths: Path) -> None:
    """Give files and directories made by ``tempfile`` (0600/0700) the modes the umask gives
    files and directories made the ordinary way, as every other tool's output has."""
    mask = os.umask(0)
    os.umask(mask)
    for path in paths:
        if path.exists():
            path.chmod((0o777 if path.is_dir() else 0o666) & ~mask)
