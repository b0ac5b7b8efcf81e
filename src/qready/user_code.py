"""The user's own Python files: imported by path, recorded in a save, imported again on load.

A model given as ``path/to/file.py:Name`` lives in a module that no ``import`` statement can
reach, so its name alone is not enough to rebuild its classes in another process. The name is
stable (derived from the file's absolute path) and a save records where the file is, both
relative to the save and absolute, so ``qready.load`` finds it from any working directory.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = [
    "NotPythonSource", "import_recorded", "import_source_file", "is_file_module", "module_name_for", "own_name_for",
    "record_sources",
]

_PREFIX = "qready_user_"
# modules that are importable wherever qready is: nothing to record for them
_INSTALLED = ("torch", "qready", "builtins", "collections", "typing", "torchvision", "transformers", "timm")


class NotPythonSource(ImportError):
    """The file is not something Python can import (not a .py file)."""


def module_name_for(path: Path) -> str:
    """A module name for a file, the same in every process (``hash()`` of a str is not)."""
    resolved = str(path.resolve())
    stem = re.sub(r"\W", "_", path.stem)
    return f"{_PREFIX}{stem}_{hashlib.sha256(resolved.encode()).hexdigest()[:12]}"


def is_file_module(name: str) -> bool:
    return name.startswith(_PREFIX)


def own_name_for(name: str) -> ModuleType | None:
    """The module the user imported themselves from the same file as the file module ``name``
    (``import io_models`` next to qready's ``qready_user_io_models_...``), if any: its classes are
    the ones the user's code compares with (``isinstance``, ``match``)."""
    if not is_file_module(name):
        return None
    file = getattr(sys.modules.get(name), "__file__", None)
    if not file:
        return None
    found = [
        module for other, module in list(sys.modules.items())
        if not is_file_module(other) and getattr(module, "__file__", None) == file
    ]
    found.sort(key=lambda module: module.__name__ == "__main__")  # an imported module first, then a script
    return found[0] if found else None


_STAMP = "__qready_source_stamp__"


def _stamp(path: Path) -> tuple[int, int]:
    """When and how big the file was: an edited file is imported again, not served from sys.modules."""
    status = path.stat()
    return status.st_mtime_ns, status.st_size


def import_source_file(path: Path, name: str | None = None) -> ModuleType:
    """Import ``path`` as a module named ``name`` (default: ``module_name_for(path)``), with its
    folder on ``sys.path`` while it runs so its own sibling imports work. Raises what the file raises."""
    name = name or module_name_for(path)
    stamp = _stamp(path)
    known = sys.modules.get(name)
    if known is not None and getattr(known, "__file__", None) == str(path.resolve()) and getattr(known, _STAMP, None) == stamp:
        return known  # the same file, unchanged since it was imported: its classes stay the same objects
    spec = importlib.util.spec_from_file_location(name, path.resolve())
    if spec is None or spec.loader is None:
        raise NotPythonSource(f"cannot load {str(path)!r} as Python source")
    module = importlib.util.module_from_spec(spec)
    setattr(module, _STAMP, stamp)
    sys.modules[name] = module
    folder = str(path.resolve().parent)
    sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    finally:
        sys.path.remove(folder)
    return module


def record_sources(module_names: Iterable[str], save_dir: Path) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Where each user module's source is, for a save in ``save_dir``; and the names to write
    in place of ``__main__`` (a script's classes, which a new process's ``__main__`` lacks)."""
    sources: dict[str, dict[str, Any]] = {}
    renamed: dict[str, str] = {}
    for name in sorted(set(module_names)):
        if name.split(".")[0] in _INSTALLED:
            continue
        module = sys.modules.get(name)
        file = getattr(module, "__file__", None)
        if module is None or not file or not file.endswith(".py"):
            continue
        path = Path(file).resolve()
        recorded = name
        if name == "__main__":
            recorded = renamed[name] = module_name_for(path)
        entry: dict[str, Any] = {"file": str(path), "relative": os.path.relpath(path, save_dir.resolve())}
        if not is_file_module(recorded):  # an ordinary module: the folder that makes its dotted name importable
            root = path.parent if path.name != "__init__.py" else path.parent.parent
            for _ in recorded.split(".")[1:]:
                root = root.parent
            entry["sys_path"] = str(root)
            entry["sys_path_relative"] = os.path.relpath(root, save_dir.resolve())
        sources[recorded] = entry
    return sources, renamed


def import_recorded(sources: dict[str, dict[str, Any]], save_dir: Path) -> None:
    """Make each recorded module importable again: as it is, or from the file the save names
    (first next to the save, as it was when saved, then at its absolute path)."""
    for name, entry in sources.items():
        if name in sys.modules:
            continue
        if not is_file_module(name):
            if _importable(name):
                continue
            for folder in (save_dir / entry.get("sys_path_relative", ""), Path(entry.get("sys_path", ""))):
                if entry.get("sys_path") and folder.is_dir():
                    if str(folder.resolve()) not in sys.path:
                        sys.path.append(str(folder.resolve()))
                    if _importable(name):
                        break
            continue
        for candidate in (save_dir / entry["relative"], Path(entry["file"])):
            if candidate.is_file():
                import_source_file(candidate, name)
                break


def _importable(name: str) -> bool:
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True
