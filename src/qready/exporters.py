"""The ONNX exporters QR001 can run, by name: a list the CLI offers without importing torch."""

from __future__ import annotations

__all__ = ["EXPORTERS"]

EXPORTERS = ("dynamo", "torchscript")
