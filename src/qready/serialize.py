"""Saving a prepared model to a directory, and loading it back without pickle.

A saved directory holds three files:

- ``model.py``: the prepared forward as Python source (straight-line torch.fx code);
- ``manifest.json``: the module tree (each module's class and its plain
  attributes: ints, strings, tuples...), parameter tying, input and output
  structure, and what ``prepare`` changed, with a SHA-256 of the other two files;
- ``weights.safetensors``: every parameter and buffer, each shared tensor once.

Loading imports the classes the manifest names (torch.nn, qready.nn, and the
user's own leaf modules, which must be importable) and runs ``model.py``:
trust a saved directory as you would any Python file.
"""

from __future__ import annotations

import copy
import hashlib
import json
import operator
import os
import tempfile
import warnings
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import fx

from qready.checkpoints import with_checkpoint
from qready.dispatch import SITES_ATTRIBUTE, install_call_site_dispatch
from qready.errors import LoadError, QreadyError, SaveError, internal_error
from qready.files import follow_umask, write_failed
from qready.passes.decompose_attention import PACKED_KEYS, keep_packed_keys
from qready.prepared import Prepared, PreparedModule, reattach_dropped_state
from qready.source import error_location, raised_by_qready
from qready.structure import rebuild_type
from qready.user_code import import_recorded, is_file_module, record_sources

__all__ = ["FORMAT_VERSION", "check_destination", "load", "save"]

FORMAT_VERSION = 2  # 2: call sites keyed by module name and qualname, not by file
_MODULE_INTERNALS = frozenset(vars(torch.nn.Module()).keys())
_CODE, _MANIFEST, _WEIGHTS = "model.py", "manifest.json", "weights.safetensors"
_OWN_FILES = frozenset({_CODE, _MANIFEST, _WEIGHTS})


def save(prepared: Prepared, out_dir: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Write ``prepared`` to ``out_dir`` atomically (a temporary directory renamed into place)."""
    from safetensors.torch import save_file

    if not isinstance(prepared, PreparedModule) or not prepared.saveable:
        raise SaveError(
            f"{type(prepared).__name__} kept its own Python forward (it could not be traced), so it cannot be "
            "saved as code; keep the Python object, or make the forward traceable (see prepare_result.leaves)"
        )
    target, parent = check_destination(out_dir, overwrite=overwrite)
    manifest = _manifest(prepared)
    code = _source(prepared)
    _record_user_sources(manifest, code, target)
    tensors, aliases = _unique_tensors(prepared)
    manifest["aliases"] = aliases
    # prepared from a config alone: the structure is saved, the weights come at load time (weights=)
    manifest["without_values"] = {
        name: {"shape": list(t.shape), "dtype": str(t.dtype).removeprefix("torch.")}
        for name, t in tensors.items() if t.is_meta
    }
    tensors = {name: t for name, t in tensors.items() if not t.is_meta}
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=parent))
    except OSError as error:
        raise SaveError(f"cannot write in {str(parent)!r} ({error.strerror}); choose a writable directory") from error
    try:
        (tmp / _CODE).write_text(code, encoding="utf-8")
        save_file(_own_storages(tensors), str(tmp / _WEIGHTS))
        manifest["sha256"] = {name: _sha256(tmp / name) for name in (_CODE, _WEIGHTS)}
        (tmp / _MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        follow_umask(tmp, *(tmp / name for name in _OWN_FILES))
        check_destination(target, overwrite=overwrite)  # again: the directory may have changed meanwhile
        _swap_in(tmp, target)
    except OSError as error:  # a full disk, a vanished directory: nothing half-written stays behind
        _remove_own_save(tmp)
        raise write_failed(target, error) from error
    except BaseException:
        _remove_own_save(tmp)
        raise
    return target


def _swap_in(new: Path, target: Path) -> None:
    """Put the directory ``new`` at ``target``; an earlier save there is moved aside first and
    removed only once the new one is in place (its own three files, never anything else)."""
    if not target.exists():
        os.replace(new, target)
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
    aside.rmdir()  # a free name next to the target, for a rename
    os.rename(target, aside)
    try:
        os.replace(new, target)
    except BaseException:
        os.rename(aside, target)
        raise
    _remove_own_save(aside)


def _remove_own_save(directory: Path) -> None:
    """Delete the files qready writes in a save, then the directory if that left it empty."""
    for name in _OWN_FILES:
        (directory / name).unlink(missing_ok=True)
    try:
        directory.rmdir()
    except OSError:
        pass  # something else is in there: it is not ours to delete


def check_destination(out_dir: str | os.PathLike[str], *, overwrite: bool) -> tuple[Path, Path]:
    """The output directory and its parent, or a SaveError saying why it can't be written.

    An existing directory is replaced only with ``overwrite`` and only when it is empty or an
    earlier qready save (its own three files and nothing else): a directory holding anything
    qready did not write, the current directory, one above it and the home directory are refused.
    """
    target = Path(out_dir)
    parent = target.parent if str(target.parent) else Path(".")
    if target.is_symlink():
        raise SaveError(f"{str(target)!r} is a symbolic link; give the output directory itself")
    if target.exists():
        if not target.is_dir():
            raise SaveError(f"{str(target)!r} is a file, not a directory; choose a new directory for the prepared model")
        _require_replaceable(target)
        if not overwrite:
            raise SaveError(
                f"{str(target)!r} already exists; choose a new directory or pass --force (overwrite=True in Python)"
            )
    if parent.exists() and not parent.is_dir():
        raise SaveError(f"{str(parent)!r} is a file, not a directory; choose an output directory elsewhere")
    if not parent.is_dir():
        raise SaveError(f"parent directory {str(parent)!r} of the output does not exist; create it first")
    if not os.access(parent, os.W_OK):
        raise SaveError(f"cannot write in {str(parent)!r} (permission denied); choose a writable directory")
    return target, parent


def _require_replaceable(target: Path) -> None:
    resolved = target.resolve()
    cwd = Path.cwd().resolve()
    if resolved == cwd or resolved in cwd.parents:
        where = "the current directory" if resolved == cwd else "a directory above the current one"
        raise SaveError(f"refusing to write over {str(target)!r}: it is {where}; choose a new directory")
    if resolved == Path.home().resolve() or resolved == Path(resolved.anchor):
        raise SaveError(f"refusing to write over {str(target)!r}: it is a home or root directory; choose a new directory")
    try:
        entries = sorted(entry.name for entry in target.iterdir())
    except OSError as error:
        raise SaveError(f"cannot read {str(target)!r} ({error.strerror}); choose another directory") from error
    foreign = [name for name in entries if name not in _OWN_FILES]
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise SaveError(
            f"refusing to write over {str(target)!r}: it holds files qready did not write ({shown}); "
            "choose a new directory"
        )
    if entries and not _is_qready_manifest(target / _MANIFEST):
        raise SaveError(
            f"refusing to write over {str(target)!r}: it has no qready manifest, so it is not an earlier "
            "qready save; choose a new directory"
        )


def _is_qready_manifest(path: Path) -> bool:
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and manifest.get("written_by") == "qready"


def load(directory: str | os.PathLike[str], *, weights: Any = None) -> PreparedModule:
    """Rebuild a model written by ``save`` (or ``qready prepare -o``).

    ``weights`` fills it from the original model's checkpoint, by the original's
    keys: a ``state_dict``, a ``.safetensors`` (or ``.pt``) file, or a directory as
    ``save_pretrained`` writes it, sharded or not. Tensors are read one at a
    time; tied weights stay one tensor. Required for a model prepared without
    weights (parameters on the meta device).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    root_dir = Path(directory)
    if not root_dir.is_dir():
        raise LoadError(f"{str(root_dir)!r} is not a directory; give the OUT_DIR that qready prepare wrote")
    for name in (_CODE, _MANIFEST, _WEIGHTS):
        if not (root_dir / name).is_file():
            raise LoadError(f"{str(root_dir)!r} has no {name}; it is not a complete qready save, run qready prepare again")
    try:
        manifest = json.loads((root_dir / _MANIFEST).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise LoadError(f"{str(root_dir / _MANIFEST)!r} is not valid JSON ({error}); the save is damaged") from error
    if not isinstance(manifest, dict):
        raise LoadError(f"{str(root_dir / _MANIFEST)!r} is not a qready manifest (a JSON object); the save is damaged")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise LoadError(
            f"{str(root_dir)!r} has format version {manifest.get('format_version')!r}, this qready reads "
            f"{FORMAT_VERSION}; prepare the model again with this version"
        )
    checksums = manifest.get("sha256")
    for name in (_CODE, _WEIGHTS):  # both are required: a manifest without them would vouch for anything
        digest = checksums.get(name) if isinstance(checksums, dict) else None
        if digest is None:
            raise LoadError(f"{_MANIFEST} in {str(root_dir)!r} has no checksum for {name}; the save is damaged, run qready prepare again")
        if _sha256(root_dir / name) != digest:
            raise LoadError(
                f"{name} in {str(root_dir)!r} does not match its checksum; it was changed or truncated after "
                "saving, run qready prepare again"
            )
    try:
        tensors = load_file(str(root_dir / _WEIGHTS))
    except (SafetensorError, OSError, ValueError) as error:
        raise LoadError(f"cannot read {_WEIGHTS} in {str(root_dir)!r} ({error}); the save is damaged") from error
    problem = _manifest_problem(manifest)
    if problem:
        raise LoadError(
            f"{_MANIFEST} in {str(root_dir)!r} does not describe a loadable model ({problem}); "
            "the save is damaged, run qready prepare again"
        )
    try:
        import_recorded(manifest.get("sources", {}), root_dir)
    except Exception as error:  # the user's own file raised while importing
        raise LoadError(
            f"importing the model's own source for {str(root_dir)!r} raised {type(error).__name__}: {error}; "
            "fix that file, or install what it imports"
        ) from error
    try:
        model = _rebuild(root_dir, manifest, with_checkpoint(manifest, tensors, weights, root_dir))
    except QreadyError:
        raise
    except Exception as error:  # the manifest is well formed: qready's bug, or the user's classes'
        if raised_by_qready(error):
            raise internal_error(f"loading {str(root_dir)!r} failed inside qready", error) from error
        file, line = error_location(error)
        where = f" at {file}:{line}" if file else ""
        raise LoadError(
            f"rebuilding the model saved in {str(root_dir)!r} raised {type(error).__name__}: {error}{where}; "
            "the classes it names must be importable and behave as when it was saved"
        ) from error
    _warn_unbuildable_outputs(manifest["output_spec"])
    return model


def _record_user_sources(manifest: dict[str, Any], code: str, target: Path) -> None:
    """Say where the user's own classes come from, so a load in another process and another
    directory finds them; a script's ``__main__`` classes get a name a new process can import."""
    type_entries = [m for m in manifest["modules"] if "type" in m]
    for key in ("input_spec", "output_spec"):  # renamed below: not the prepared model's own specs
        manifest[key] = copy.deepcopy(manifest[key])
    specs = [s for s in (manifest["input_spec"], manifest["output_spec"]) if s is not None]
    names = [m["type"].partition(":")[0] for m in type_entries] + [t.partition(":")[0] for t in _spec_types(specs)]
    sources, renamed = record_sources(names, target)
    for old, new in renamed.items():
        if f"from {old} import" in code or f"import {old}" in code:
            raise SaveError(
                f"the prepared forward calls functions defined in the script itself ({old}); "
                "move them into a module and import it from the script"
            )
        for entry in type_entries:
            entry["type"] = _rename_module(entry["type"], old, new)
        _rename_spec_types(specs, old, new)
    manifest["sources"] = sources


def _spec_types(specs: list[Any]) -> list[str]:
    found: list[str] = []
    for spec in specs:
        if isinstance(spec, dict):
            if isinstance(spec.get("type"), str):
                found.append(spec["type"])
            found.extend(_spec_types(list(spec.get("items", []))))
    return found


def _rename_spec_types(specs: list[Any], old: str, new: str) -> None:
    for spec in specs:
        if isinstance(spec, dict):
            if isinstance(spec.get("type"), str):
                spec["type"] = _rename_module(spec["type"], old, new)
            _rename_spec_types(list(spec.get("items", [])), old, new)


def _rename_module(type_path: str, old: str, new: str) -> str:
    module, sep, qualname = type_path.partition(":")
    return f"{new}{sep}{qualname}" if module == old else type_path


def _warn_unbuildable_outputs(output_spec: dict[str, Any] | None) -> None:
    missing = sorted({t for t in _spec_types([output_spec]) if rebuild_type(t) is None})
    if missing:
        warnings.warn(
            f"cannot import {', '.join(missing)}: outputs of those types come back as dicts; "
            "make the module that defines them importable",
            stacklevel=3,
        )


# The manifest's entries and their JSON types, as _rebuild reads them.
_MANIFEST_ENTRIES: dict[str, type | tuple[type, ...]] = {
    "class_name": str, "modules": list, "parameters": dict, "buffers": list, "aliases": dict, "training": dict,
    "outputs_flattened": bool, "input_names": list, "output_names": list, "tied_aliases": dict,
}
_MODULE_ENTRIES: dict[str, type | tuple[type, ...]] = {"path": str, "leaf": bool}


def _manifest_problem(manifest: dict[str, Any]) -> str | None:
    """What makes a manifest unreadable (an entry missing or of the wrong type), or None."""
    for key, kind in _MANIFEST_ENTRIES.items():
        if not isinstance(manifest.get(key), kind):
            return f"entry {key!r} is missing or not a {_json_type(kind)}"
    for key in ("input_spec", "output_spec"):  # an object, or null for a plain tensor
        if not isinstance(manifest.get(key, ()), (dict, type(None))):
            return f"entry {key!r} is missing or not an object"
    for index, entry in enumerate(manifest["modules"]):
        if not isinstance(entry, dict):
            return f"modules[{index}] is not an object"
        for key, kind in _MODULE_ENTRIES.items():
            if not isinstance(entry.get(key), kind):
                return f"modules[{index}] has no {_json_type(kind)} {key!r}"
        if not isinstance(entry.get("alias_of", entry.get("type")), str):
            return f"modules[{index}] names neither its type nor the module it aliases"
        if "alias_of" not in entry and not all(
            isinstance(entry.get(key), list) for key in ("non_persistent", "none_parameters", "none_buffers")
        ):
            return f"modules[{index}] lacks its lists of non-persistent buffers and None entries"
    return None


def _json_type(kind: type | tuple[type, ...]) -> str:
    names = {str: "string", list: "list", dict: "object", bool: "boolean"}
    return names.get(kind, "value") if isinstance(kind, type) else "value"


def _rebuild(root_dir: Path, manifest: dict[str, Any], tensors: Mapping[str, torch.Tensor]) -> PreparedModule:
    holder = _build_tree(manifest["modules"], manifest.get("sources", {}))
    _attach_tensors(holder, manifest, tensors)
    _attach_tensor_attributes(holder, manifest["modules"])
    for module in holder.modules():
        if hasattr(module, SITES_ATTRIBUTE):
            install_call_site_dispatch(module, check_source=True)
    code = (root_dir / _CODE).read_text(encoding="utf-8")
    graph = _graph_from_code(holder, code, {m["path"] for m in manifest["modules"] if m["leaf"]})
    prepared = PreparedModule(holder, graph, class_name=manifest["class_name"])
    _keep_unused_state(prepared, holder, manifest)
    for name, flag in manifest["training"].items():
        prepared.get_submodule(name).training = flag
    prepared.input_spec = manifest["input_spec"]
    prepared.output_spec = manifest["output_spec"]
    prepared.outputs_flattened = manifest["outputs_flattened"]
    prepared.input_names = manifest["input_names"]
    prepared.output_names = manifest["output_names"]
    prepared.prepare_report = manifest["report"]
    prepared.hide_tied_copies(manifest["tied_aliases"])
    keep_packed_keys(prepared, manifest.get("packed_keys", {}))  # the original's keys for split tensors
    return prepared


def _manifest(prepared: PreparedModule) -> dict[str, Any]:
    leaves = {str(n.target) for n in prepared.graph.nodes if n.op == "call_module"}
    modules = []
    first_path: dict[int, str] = {}
    for path, module in prepared.named_modules(remove_duplicate=False):
        if path == "":
            continue
        if id(module) in first_path:  # one module under two names stays one module (its flags, its sharing)
            modules.append({"path": path, "alias_of": first_path[id(module)], "leaf": path in leaves})
            continue
        first_path[id(module)] = path
        modules.append(
            {
                "path": path,
                "type": f"{type(module).__module__}:{type(module).__qualname__}",
                "attributes": _plain_attributes(path, module),
                "leaf": path in leaves,
                "non_persistent": sorted(module._non_persistent_buffers_set),
                # registered as None (nn.Conv2d(bias=False).bias): forward code reads them
                "none_parameters": sorted(k for k, v in module._parameters.items() if v is None),
                "none_buffers": sorted(k for k, v in module._buffers.items() if v is None),
            }
        )
    result = prepared.prepare_result
    return {
        "written_by": "qready",  # what --force may replace
        "format_version": FORMAT_VERSION,
        "torch_version": torch.__version__,
        "class_name": type(prepared).__name__,
        "modules": modules,
        "parameters": {
            name: {"requires_grad": p.requires_grad}
            for name, p in prepared.named_parameters(remove_duplicate=False)
        },
        "buffers": [name for name, _ in prepared.named_buffers(remove_duplicate=False)],
        "root_non_persistent": sorted(prepared._non_persistent_buffers_set),
        "training": {name: m.training for name, m in prepared.named_modules()},
        "input_spec": prepared.input_spec,
        "output_spec": prepared.output_spec,
        "outputs_flattened": prepared.outputs_flattened,
        "input_names": prepared.input_names,
        "output_names": prepared.output_names,
        "report": result.to_dict() if result is not None else prepared.prepare_report,
        "tied_aliases": prepared.tied_aliases,
        "packed_keys": getattr(prepared, PACKED_KEYS, {}),
    }


def _plain_attributes(path: str, module: torch.nn.Module) -> dict[str, Any]:
    # an attribute may hold the module's own tensors (nn.LSTM's _flat_weights): saved by name
    own = {id(t): name for name, t in [*module._parameters.items(), *module._buffers.items()] if t is not None}
    attributes = {}
    for key, value in vars(module).items():
        if key in _MODULE_INTERNALS or getattr(value, "qready_dispatch", False):
            continue  # call-site dispatch is rebuilt on load from its plain table
        try:
            attributes[key] = _encode(value, own)
        except TypeError as error:
            raise SaveError(
                f"cannot save module {path!r} ({type(module).__qualname__}): attribute {key!r} is {error}; "
                "keep only plain values (numbers, strings, tuples) on leaf modules"
            ) from None
    return attributes


def _encode(value: Any, own: dict[int, str]) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, torch.Tensor) and id(value) in own:
        return {"tensor": own[id(value)]}
    if isinstance(value, weakref.ref) and id(value()) in own:  # nn.LSTM's _flat_weight_refs
        return {"weakref": own[id(value())]}
    if isinstance(value, torch.dtype):
        return {"dtype": str(value).removeprefix("torch.")}
    if isinstance(value, torch.device):
        return {"device": str(value)}
    if isinstance(value, torch.Size):
        return {"size": list(value)}
    if isinstance(value, tuple):
        return {"tuple": [_encode(v, own) for v in value]}
    if isinstance(value, list):
        return [_encode(v, own) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"dict": {k: _encode(v, own) for k, v in value.items()}}
    raise TypeError(f"a {type(value).__qualname__}")


def _decode(value: Any, module: torch.nn.Module | None = None) -> Any:
    if isinstance(value, list):
        return [_decode(v, module) for v in value]
    if not isinstance(value, dict):
        return value
    if "tensor" in value:
        if module is None:
            raise ValueError(f"tensor reference {value['tensor']!r} outside a module")
        tensors = {**module._parameters, **module._buffers}
        return tensors[value["tensor"]]
    if "weakref" in value:
        if module is None:
            raise ValueError(f"tensor reference {value['weakref']!r} outside a module")
        return weakref.ref({**module._parameters, **module._buffers}[value["weakref"]])
    if "dtype" in value:
        return getattr(torch, value["dtype"])
    if "device" in value:
        return torch.device(value["device"])
    if "size" in value:
        return torch.Size(value["size"])
    if "tuple" in value:
        return tuple(_decode(v, module) for v in value["tuple"])
    return {k: _decode(v, module) for k, v in value["dict"].items()}


def _refers_to_tensors(value: Any) -> bool:
    if isinstance(value, list):
        return any(_refers_to_tensors(v) for v in value)
    if isinstance(value, dict):
        return "tensor" in value or "weakref" in value or any(_refers_to_tensors(v) for v in value.values())
    return False


def _unique_tensors(prepared: torch.nn.Module) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Each tensor object once, under its first name; other names become aliases."""
    first: dict[int, str] = {}
    tensors: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    named = list(prepared.named_parameters(remove_duplicate=False)) + list(prepared.named_buffers(remove_duplicate=False))
    for name, tensor in named:
        if id(tensor) in first:
            aliases[name] = first[id(tensor)]
            continue
        first[id(tensor)] = name
        tensors[name] = tensor
    return tensors, aliases


def _own_storages(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Each tensor contiguous and in its own storage, as safetensors requires: constants the trace
    captured may be views of one tensor (a rotary ``cos`` unsqueezed once per layer)."""
    seen: set[int] = set()
    out = {}
    for name, tensor in tensors.items():
        tensor = tensor.detach().contiguous()
        storage = tensor.untyped_storage().data_ptr()
        if storage in seen and tensor.numel():
            tensor = tensor.clone()
        seen.add(tensor.untyped_storage().data_ptr())
        out[name] = tensor
    return out


def _build_tree(modules: list[dict[str, Any]], sources: dict[str, dict[str, Any]]) -> torch.nn.Module:
    root = torch.nn.Module()
    for entry in modules:  # named_modules order: parents before children
        owner_path, _, name = entry["path"].rpartition(".")
        owner = root.get_submodule(owner_path) if owner_path else root
        if "alias_of" in entry:
            owner.add_module(name, root.get_submodule(entry["alias_of"]))
            continue
        cls = rebuild_type(entry["type"])
        if cls is None or not issubclass(cls, torch.nn.Module):
            module_name = entry["type"].partition(":")[0]
            source = sources.get(module_name)
            where = (
                f"the file that defines it is no longer at {source['file']!r} nor at {source['relative']!r} "
                "next to the save; put it back"
                if source is not None and is_file_module(module_name)
                else f"put the package or file that defines it ({module_name}) on PYTHONPATH"
            )
            raise LoadError(f"cannot import {entry['type']} for module {entry['path']!r}; {where}")
        module = cls.__new__(cls)
        torch.nn.Module.__init__(module)
        for key, value in entry["attributes"].items():
            if not _refers_to_tensors(value):  # those wait for the tensors: _attach_tensor_attributes
                object.__setattr__(module, key, _decode(value))
        for key in entry["none_parameters"]:
            module.register_parameter(key, None)
        for key in entry["none_buffers"]:
            module.register_buffer(key, None)
        owner.add_module(name, module)
    return root


def _attach_tensors(root: torch.nn.Module, manifest: dict[str, Any], tensors: Mapping[str, torch.Tensor]) -> None:
    params = manifest["parameters"]
    aliases = manifest["aliases"]
    entries = {m["path"]: m for m in manifest["modules"]}
    non_persistent = {
        f"{m['path']}.{b}" for m in manifest["modules"] for b in entries[m.get("alias_of", m["path"])]["non_persistent"]
    }
    non_persistent |= set(manifest.get("root_non_persistent", ()))
    objects: dict[str, torch.Tensor] = {}
    for name in list(params) + manifest["buffers"]:
        source = aliases.get(name, name)
        if source not in tensors:
            raise LoadError(f"{_WEIGHTS} lacks tensor {source!r}; the save is incomplete, run qready prepare again")
        if source not in objects:
            tensor = tensors[source].clone()  # own, aligned memory: kernels may pick another path on a mapped buffer
            objects[source] = torch.nn.Parameter(tensor, requires_grad=params[source]["requires_grad"]) if source in params else tensor
        owner_path, _, attr = name.rpartition(".")
        owner = root.get_submodule(owner_path) if owner_path else root
        if name in params:
            owner.register_parameter(attr, objects[source])  # type: ignore[arg-type]  # the tensor came from a Parameter entry of the manifest
        else:
            owner.register_buffer(attr, objects[source], persistent=name not in non_persistent)


def _attach_tensor_attributes(root: torch.nn.Module, modules: list[dict[str, Any]]) -> None:
    for entry in modules:
        module = root.get_submodule(entry["path"])
        for key, value in entry.get("attributes", {}).items():
            if _refers_to_tensors(value):
                object.__setattr__(module, key, _decode(value, module))


def _keep_unused_state(prepared: PreparedModule, holder: torch.nn.Module, manifest: dict[str, Any]) -> None:
    """The saved modules and tensors the graph does not read, back in ``prepared`` (see
    ``reattach_dropped_state``); the modules first, of their saved types."""
    for entry in manifest["modules"]:  # parents before children
        owner_path, _, name = entry["path"].rpartition(".")
        owner = prepared.get_submodule(owner_path) if owner_path else prepared
        if name not in owner._modules:
            owner.add_module(name, holder.get_submodule(entry["path"]))
    reattach_dropped_state(prepared, holder, [*manifest["parameters"], *manifest["buffers"]])


def _graph_from_code(root: torch.nn.Module, code: str, leaves: set[str]) -> fx.Graph:
    namespace: dict[str, Any] = {}
    exec(compile(code, "<qready saved model.py>", "exec"), namespace)  # noqa: S102 - documented: saves are code
    forward = namespace["forward"]
    cls = type("SavedForward", (torch.nn.Module,), {"forward": forward})
    root.__class__ = cls

    class Tracer(fx.Tracer):
        proxy_buffer_attributes = True  # the saved graph reads its buffers when it runs (``position_ids[:, :n]``)

        def is_leaf_module(self, m: torch.nn.Module, qualname: str) -> bool:
            return qualname in leaves

        def proxy(self, node: fx.Node) -> fx.Proxy:
            return _SavedProxy(node, self)

    from qready.tracing import random_factories_recorded

    tracer = Tracer()
    try:
        with random_factories_recorded(tracer):  # ``torch.rand(8)`` in the code stays a draw, not a constant
            return tracer.trace(root)
    finally:
        root.__class__ = torch.nn.Module


class _SavedProxy(fx.Proxy):
    def __setitem__(self, key: Any, value: Any) -> None:
        # torch.fx writes an operator.setitem node as `x[key] = value`: read it back as that node
        self.tracer.create_proxy("call_function", operator.setitem, (self, key, value), {})


def _source(prepared: fx.GraphModule) -> str:
    """The forward with the imports its globals need, as torch.fx writes them for pickling."""
    from torch.fx.graph_module import _format_import_block
    from torch.package import sys_importer

    python_code = prepared.graph.python_code(root_module="self")
    return _format_import_block(python_code.globals, sys_importer) + "\n" + python_code.src


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
