"""qready: check and prepare PyTorch models for quantization toolkits."""

from qready.api import check, prepare
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
from qready.example_inputs import Example
from qready.findings import Coverage, Finding, Report, Severity
from qready.prepared import Prepared, PreparedModule, PrepareResult
from qready.serialize import load, save

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
