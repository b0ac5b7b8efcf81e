"""Read a model's checkpoint by its own keys, one tensor at a time.

``qready.load(directory, weights=...)`` fills a prepared model (often one
prepared from its config alone, without weights) from the original model's
checkpoint: a ``state_dict``, a ``.safetensors`` file, a ``.pt``/``.bin`` file,
or a directory as Hugging Face's ``save_pretrained`` writes it (one
``model.safetensors``, or shards with a ``model.safetensors.index.json``).
Tensors are read when asked for, so the checkpoint is never in memory twice.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, cast

import torch

from qready.errors import LoadError

__all__ = ["Checkpoint", "open_checkpoint", "with_checkpoint"]

_INDEX_SUFFIX = ".safetensors.index.json"


class Checkpoint(Mapping[str, torch.Tensor]):
    """Tensors by key, read lazily from wherever they live."""

    def __init__(self, where: dict[str, Any], describe: str) -> None:
        self._where = where  # key -> a tensor, or the safetensors file that holds it
        self.describe = describe
        self._handles: dict[str, Any] = {}

    def __getitem__(self, key: str) -> torch.Tensor:
        source = self._where[key]
        if isinstance(source, torch.Tensor):
            return source
        return self._open(source).get_tensor(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._where)

    def __len__(self) -> int:
        return len(self._where)

    def _open(self, path: str) -> Any:
        from safetensors import safe_open

        handle = self._handles.get(path)
        if handle is None:
            try:
                handle = self._handles[path] = safe_open(path, framework="pt")
            except (OSError, ValueError, Exception) as error:  # safetensors raises its own error type
                raise LoadError(f"cannot read the checkpoint shard {path!r} ({error}); check that it is complete") from error
        return handle


def open_checkpoint(weights: Any) -> Checkpoint:
    """A ``Checkpoint`` over ``weights``: a mapping of tensors, a file, or a save_pretrained directory."""
    if isinstance(weights, Mapping):
        bad = [k for k, v in weights.items() if not isinstance(v, torch.Tensor)]
        if bad:
            raise LoadError(f"weights[{bad[0]!r}] is a {type(weights[bad[0]]).__name__}, not a tensor; pass a state_dict")
        return Checkpoint(dict(weights), "the state_dict")
    if not isinstance(weights, (str, os.PathLike)):
        raise LoadError(
            f"weights is a {type(weights).__name__}; pass a state_dict, a .safetensors file, or a directory "
            "written by save_pretrained"
        )
    path = Path(weights)
    if path.is_dir():
        return _directory(path)
    if not path.is_file():
        raise LoadError(f"weights {str(path)!r} does not exist; pass a checkpoint file or directory")
    if path.name.endswith(_INDEX_SUFFIX):
        return _sharded(path)
    if path.suffix == ".safetensors":
        return _safetensors_files([path], str(path))
    try:
        state = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
    except Exception as error:  # torch.load raises many kinds on a file that is not a state dict
        raise LoadError(f"cannot read {str(path)!r} as a state_dict ({type(error).__name__}: {error})") from error
    if isinstance(state, Mapping) and isinstance(state.get("state_dict"), Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping):
        raise LoadError(f"{str(path)!r} holds a {type(state).__name__}, not a state_dict")
    return open_checkpoint(dict(state))


def _directory(path: Path) -> Checkpoint:
    indexes = sorted(path.glob("*" + _INDEX_SUFFIX))
    if len(indexes) == 1:
        return _sharded(indexes[0])
    files = sorted(path.glob("*.safetensors"))
    if len(indexes) > 1 or len(files) != 1:
        found = ", ".join(p.name for p in [*indexes, *files][:5]) or "no .safetensors file"
        raise LoadError(
            f"{str(path)!r} holds {found}; pass the one checkpoint file, or a directory with one "
            f"model.safetensors or one *{_INDEX_SUFFIX}"
        )
    return _safetensors_files(files, str(path))


def _sharded(index: Path) -> Checkpoint:
    try:
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise LoadError(f"{str(index)!r} is not a safetensors index with a weight_map ({error})") from error
    where = {}
    for key, shard in weight_map.items():
        file = index.parent / shard
        if not file.is_file():
            raise LoadError(f"{str(index)!r} names shard {shard!r} for {key!r}, which is missing; download it again")
        where[key] = str(file)
    return Checkpoint(where, str(index.parent))


def _safetensors_files(files: list[Path], describe: str) -> Checkpoint:
    from safetensors import safe_open

    where: dict[str, Any] = {}
    for file in files:
        try:
            with safe_open(str(file), framework="pt") as handle:
                where.update(dict.fromkeys(handle.keys(), str(file)))
        except Exception as error:  # safetensors' own error type for a damaged header
            raise LoadError(f"cannot read {str(file)!r} as safetensors ({error})") from error
    return Checkpoint(where, describe)


def with_checkpoint(
    manifest: dict[str, Any], saved: Mapping[str, torch.Tensor], weights: Any, directory: Path
) -> Mapping[str, torch.Tensor]:
    """The tensors a saved model is rebuilt from: its saved ones, each replaced by the checkpoint's
    tensor under any of its names (a tied tensor has several), read when the rebuild asks for it."""
    without = cast(dict[str, dict[str, Any]], manifest.get("without_values") or {})
    if weights is None:
        if without:
            example = next(iter(without))
            raise LoadError(
                f"{str(directory)!r} was prepared without weights ({len(without)} tensors such as {example!r} have "
                "none); pass weights= the original model's checkpoint (a state_dict, .safetensors file or directory)"
            )
        return saved
    checkpoint = open_checkpoint(weights)
    aliases: dict[str, str] = manifest.get("aliases", {})
    names: dict[str, list[str]] = {}
    for name in [*manifest["parameters"], *manifest["buffers"]]:
        names.setdefault(aliases.get(name, name), []).append(name)
    chosen: dict[str, str] = {}
    for source, group in names.items():
        key = next((n for n in group if n in checkpoint), None)
        if key is not None:
            chosen[source] = key
    missing = [names[source][0] for source in without if source not in chosen]
    if missing:
        raise LoadError(
            f"{checkpoint.describe} has no tensor for {len(missing)} of the model's weights, such as "
            f"{', '.join(repr(m) for m in missing[:3])}; pass the checkpoint of the model that was prepared"
        )
    return _Filled(saved, without, checkpoint, chosen)


class _Filled(Mapping[str, torch.Tensor]):
    def __init__(
        self, saved: Mapping[str, torch.Tensor], without: dict[str, dict[str, Any]], checkpoint: Checkpoint,
        chosen: dict[str, str],
    ) -> None:
        self.saved, self.without, self.checkpoint, self.chosen = saved, without, checkpoint, chosen

    def __getitem__(self, source: str) -> torch.Tensor:
        key = self.chosen.get(source)
        if key is None:
            return self.saved[source]
        tensor = self.checkpoint[key]
        if source in self.without:
            shape, dtype = self.without[source]["shape"], getattr(torch, self.without[source]["dtype"])
        else:
            shape, dtype = list(self.saved[source].shape), self.saved[source].dtype
        if list(tensor.shape) != shape:
            raise LoadError(
                f"{self.checkpoint.describe} has {key!r} of shape {list(tensor.shape)}, the model expects {shape}; "
                "pass the checkpoint of the model that was prepared"
            )
        return tensor.to(dtype)

    def __iter__(self) -> Iterator[str]:
        return iter({*self.saved, *self.chosen})

    def __len__(self) -> int:
        return len({*self.saved, *self.chosen})
