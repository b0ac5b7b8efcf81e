"""qready: check and prepare PyTorch models for quantization toolkits."""

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

from qready.errors import (
    InputError,
    InternalError,
    LoadError,
    ModelError,
    QreadyError,
    SaveError,
    SpecError,
    VerificationError,
)

if TYPE_CHECKING:
    from qready.api import check, prepare
    from qready.example_inputs import Example
    from qready.findings import Coverage, Finding, Report, Severity
    from qready.prepared import Prepared, PreparedModule, PrepareResult
    from qready.serialize import load, save

# imported on first use: they import torch (seconds), and `qready --help` needs none of them
_LAZY = {
    "check": "qready.api", "prepare": "qready.api", "save": "qready.serialize", "load": "qready.serialize",
    "Prepared": "qready.prepared", "PreparedModule": "qready.prepared", "PrepareResult": "qready.prepared",
    "Example": "qready.example_inputs", "Report": "qready.findings", "Finding": "qready.findings",
    "Coverage": "qready.findings", "Severity": "qready.findings",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        if name.startswith("_") or importlib.util.find_spec(f"qready.{name}") is None:
            raise AttributeError(f"module 'qready' has no attribute {name!r}")
        return importlib.import_module(f"qready.{name}")  # a subpackage, as `import qready` gave before: qready.nn
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "check",
    "prepare",
    "save",
    "load",
    "Prepared",
    "PreparedModule",
    "PrepareResult",
    "Example",
    "Report",
    "Finding",
    "Coverage",
    "Severity",
    "QreadyError",
    "SpecError",
    "InputError",
    "ModelError",
    "VerificationError",
    "SaveError",
    "LoadError",
    "InternalError",
]

__version__ = "0.1.0"
