"""qready: check and prepare PyTorch models for quantization toolkits."""

from qready.api import check
from qready.errors import (
    InputError,
    LoadError,
    ModelError,
    QreadyError,
    SaveError,
    SpecError,
    VerificationError,
)
from qready.example_inputs import Example
from qready.findings import Coverage, Finding, Report, Severity

__all__ = [
    "check",
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
]

__version__ = "0.1.0"
