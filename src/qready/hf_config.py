"""A Hugging Face model built from its ``config.json`` alone, without weights: ``hf:path/to/config.json``.

The model is built under ``accelerate.init_empty_weights()`` (parameters on the
meta device, buffers real), so a 70B config costs no memory; qready checks and
prepares it without weights (see ``qready.meta``) and ``qready.load(dir,
weights=...)`` fills the prepared model from the checkpoint later.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from qready.errors import SpecError

__all__ = ["PREFIX", "model_from_config"]

PREFIX = "hf:"


def model_from_config(spec: str, overrides: Mapping[str, Any] | None = None) -> torch.nn.Module:
    """``hf:PATH`` (a config.json, or the directory holding one) as a causal LM, or the base model when
    the architecture has no causal-LM head; ``overrides`` change config fields (``num_hidden_layers``)."""
    path = Path(spec[len(PREFIX):])
    file = path / "config.json" if path.is_dir() else path
    if not file.is_file():
        raise SpecError(f"no config file {str(file)!r} for SPEC {spec!r}; give hf:path/to/config.json")
    try:
        fields = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise SpecError(f"cannot read {str(file)!r} as JSON ({error}); give a Hugging Face config.json") from error
    if not isinstance(fields, dict) or "model_type" not in fields:
        raise SpecError(f"{str(file)!r} has no \"model_type\"; give a Hugging Face config.json")
    try:
        import accelerate
        import transformers
    except ImportError as error:
        raise SpecError(f"hf: SPECs need transformers and accelerate ({error}); pip install transformers accelerate") from error
    model_type = fields.pop("model_type")
    try:
        config = transformers.AutoConfig.for_model(model_type, **{**fields, **dict(overrides or {})})
    except (ValueError, KeyError, TypeError) as error:
        raise SpecError(f"transformers cannot build a {model_type!r} config from {str(file)!r} ({error})") from error
    with accelerate.init_empty_weights():
        for auto in (transformers.AutoModelForCausalLM, transformers.AutoModel):
            try:
                model = auto.from_config(config)
                break
            except ValueError:  # no such head for this architecture: the next
                continue
        else:
            raise SpecError(f"transformers has no model class for {model_type!r} configs")
    model.tie_weights()  # init_empty_weights re-registers each parameter, which unties them
    return model.eval()
