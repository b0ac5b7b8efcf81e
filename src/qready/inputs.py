"""What the CLI needs to get a model and its example inputs from strings."""

from __future__ import annotations

import difflib
import importlib
import json
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from qready.errors import InputError, SpecError, one_line
from qready.example_inputs import Example, as_example
from qready.source import error_location
from qready.user_code import NotPythonSource, import_source_file
from qready.wording import a

__all__ = ["load_example", "load_model", "load_object", "parse_input", "parse_kwargs"]

_DTYPES = {
    "float32": torch.float32, "float": torch.float32, "float16": torch.float16, "half": torch.float16,
    "bfloat16": torch.bfloat16, "float64": torch.float64, "double": torch.float64,
    "int64": torch.int64, "long": torch.int64, "int32": torch.int32, "int": torch.int32,
    "int16": torch.int16, "int8": torch.int8, "uint8": torch.uint8, "bool": torch.bool,
}
_SHAPE = re.compile(r"^\d+(x\d+)*$")


def load_object(spec: str, what: str = "SPEC") -> Any:
    """Resolve ``package.module:attr`` or ``path/to/file.py:attr`` to the object it names."""
    target, sep, attr = spec.rpartition(":")
    if not sep or not target or not attr:
        saved = " (or, for a model, a directory `qready prepare -o` wrote)" if what == "SPEC" else ""
        raise SpecError(f"{what} {spec!r} is not of the form package.module:Name or path/to/file.py:Name{saved}")
    if target.endswith(".py") or "/" in target or "\\" in target:
        module = _import_file(spec, Path(target), what)
    else:
        _current_directory_on_path()
        try:
            module = importlib.import_module(target)
        except ImportError as error:
            raise SpecError(
                f"cannot import {target!r} for {what} {spec!r} ({error}); "
                "install the package or give a path/to/file.py instead"
            ) from error
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as error:
            names = [name for name in dir(obj) if not name.startswith("_")]
            close = difflib.get_close_matches(part, names, n=1) or [n for n in names if n.lower() == part.lower()]
            hint = f"did you mean {close[0]!r}?" if close else f"check the name after ':' in {spec!r}"
            raise SpecError(f"{target!r} has no attribute {attr!r}; {hint}") from error
    return obj


def _current_directory_on_path() -> None:
    """``qready check cnn:SmallCNN`` from the model's folder imports as ``python -c "import cnn"`` does;
    after installed packages, so a file in the folder never hides one of them."""
    here = os.getcwd()
    if not any(entry in ("", ".", here) for entry in sys.path):
        sys.path.append(here)


def _import_file(spec: str, path: Path, what: str = "SPEC") -> Any:
    if not path.is_file():
        raise SpecError(f"no such file {str(path)!r} in {what} {spec!r}; give an existing path/to/file.py:Name")
    try:
        return import_source_file(path)
    except NotPythonSource as error:
        raise SpecError(f"cannot load {str(path)!r} as Python source; give a .py file") from error
    except Exception as error:
        raise _import_failed(path, error) from error


def _import_failed(path: Path, error: Exception) -> SpecError:
    file, line = error_location(error)
    where = f" (at {file}:{line})" if file else ""
    return SpecError(
        f"importing {str(path)!r} raised {type(error).__name__}: {one_line(str(error), limit=None)}{where}; "
        "fix the file, or install what it imports"
    )


def load_model(spec: str, kwargs: Mapping[str, Any] | None = None) -> torch.nn.Module:
    """Build the model a SPEC names: a class or factory called with ``kwargs``, or an instance;
    ``hf:path/to/config.json`` builds a Hugging Face model without weights (``kwargs`` change the config)."""
    from qready.hf_config import PREFIX, model_from_config

    if spec.startswith(PREFIX):
        return model_from_config(spec, kwargs)
    if os.path.isdir(spec) and os.path.isfile(os.path.join(spec, "manifest.json")):  # a model qready.save wrote
        from qready.serialize import load

        if kwargs:
            raise SpecError(f"{spec!r} is a saved model; drop --kwargs")
        return load(spec)
    obj = load_object(spec)
    if isinstance(obj, torch.nn.Module):
        if kwargs:
            raise SpecError(f"{spec!r} is already a model instance; drop --kwargs")
        return obj
    if not callable(obj):
        raise SpecError(
            f"{spec!r} is {a(type(obj).__name__)}, not an nn.Module class or factory; "
            "name the model class, a function that builds the model, or a model instance"
        )
    try:
        model = obj(**dict(kwargs or {}))
    except Exception as error:
        file, line = error_location(error)
        where = f" (at {file}:{line})" if file else ""
        # a TypeError at the call itself is a wrong or missing argument; anything else is the factory's own failure
        hint = (
            "pass its arguments with --kwargs '{\"name\": value}'"
            if isinstance(error, TypeError) and file is None
            else "fix the error there, or pass other arguments with --kwargs"
        )
        raise SpecError(
            f"building {spec!r} raised {type(error).__name__}: {one_line(str(error), limit=None)}{where}; {hint}"
        ) from error
    if not isinstance(model, torch.nn.Module):
        raise SpecError(f"{spec!r} returned {a(type(model).__name__)}, not a torch.nn.Module; name what builds the model")
    return model


def parse_kwargs(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(f"--kwargs {text!r} is not valid JSON ({error.msg}); write e.g. '{{\"num_classes\": 10}}'") from error
    if not isinstance(value, dict):
        raise InputError(f"--kwargs must be a JSON object, got {type(value).__name__}")
    return value


def parse_input(text: str, generator: torch.Generator) -> torch.Tensor:
    """``1x3x224x224`` (float32, normal) or ``int64:1x16`` (integers 0..9) or ``bool:1x16``."""
    dtype_name, sep, shape_text = text.rpartition(":")
    if not sep:
        dtype_name, shape_text = "float32", text
    dtype = _DTYPES.get(dtype_name.strip().lower())
    if dtype is None:
        if shape_text.strip().lower() in _DTYPES:
            raise InputError(f"--input {text!r}: the dtype comes first; write {shape_text.strip()}:{dtype_name.strip()}")
        raise InputError(
            f"--input {text!r}: unknown dtype {dtype_name!r}; use one of {', '.join(sorted(_DTYPES))}"
        )
    if not _SHAPE.match(shape_text.strip()):
        raise InputError(f"--input {text!r}: shape {shape_text!r} is not like 1x3x224x224")
    shape = tuple(int(n) for n in shape_text.split("x"))
    try:
        if dtype.is_floating_point:
            return torch.randn(shape, generator=generator).to(dtype)
        if dtype == torch.bool:
            return torch.randint(0, 2, shape, generator=generator).bool()
        return torch.randint(0, 10, shape, generator=generator).to(dtype)
    except (RuntimeError, MemoryError) as error:  # too large to allocate
        raise InputError(f"--input {text!r}: cannot allocate a tensor of that shape ({one_line(str(error), limit=None)[:120]}); give a smaller shape") from error


def load_example(
    inputs: list[str] | None, inputs_fn: str | None, *, seed: int = 0
) -> Example:
    """Example inputs from ``--input`` shapes or from an ``--inputs`` function."""
    if inputs and inputs_fn:
        raise InputError("give either --input shapes or --inputs FUNCTION, not both")
    if inputs_fn:
        factory = load_object(inputs_fn, "--inputs")
        if not callable(factory):
            raise InputError(f"--inputs {inputs_fn!r} is not callable; name a function returning the inputs")
        torch.manual_seed(seed)
        try:
            value = factory()
        except Exception as error:
            raise InputError(f"--inputs {inputs_fn!r} raised {type(error).__name__}: {error}") from error
        if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], Mapping) and isinstance(value[0], tuple):
            return as_example(value[0], value[1])
        if not isinstance(value, (tuple, Mapping)):
            raise InputError(
                f"--inputs {inputs_fn!r} returned {a(type(value).__name__)}; return a tuple of positional "
                "arguments, e.g. (x,), a dict of keyword arguments, or (args, kwargs)"
            )
        return as_example(value)
    if not inputs:
        raise InputError("no example inputs; pass --input 1x3x224x224 (repeat for more) or --inputs pkg.mod:function")
    generator = torch.Generator().manual_seed(seed)
    return Example(tuple(parse_input(text, generator) for text in inputs))
