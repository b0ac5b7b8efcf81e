"""Random models from a grammar, for property-based tests of ``qready.prepare``.

``models()`` is a hypothesis strategy of :class:`GeneratedModel` (Python
source and how to call it); ``check_prepare`` writes one to disk, imports it,
prepares it and asserts what must hold for every model.
"""

from fuzz.grammar import INPUT_KINDS, GeneratedModel, models
from fuzz.loader import build, call, example_inputs, generated_module
from fuzz.properties import assert_same_outputs, check_prepare, inside

__all__ = [
    "GeneratedModel",
    "INPUT_KINDS",
    "models",
    "generated_module",
    "build",
    "call",
    "example_inputs",
    "check_prepare",
    "assert_same_outputs",
    "inside",
]
