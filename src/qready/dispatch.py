"""One module per functional call site, chosen at run time, for code no tracer can capture.

A submodule left whole because torch.fx could not trace it (a branch on
tensor data, detection post-processing) still calls ``F.relu``, ``x + y``,
``torch.cat`` in its own forward. Here each such call site (the module and
function it is written in, its line counted from the function's first line,
the op, and how many times that line has run in this forward) gets its own
``qready.nn.TorchFunction`` module registered in the owner's scope, and a
torch function mode routes the call through it while the owner's forward
runs. The numbers are the same (the module calls the same function with the
same arguments), and a quantizer now has a module to sit on.

Calls made inside leaf modules (``F.conv2d`` in ``nn.Conv2d``) are not
touched. A call site the example never reached runs as before: correct, but
not covered, and it shows up when the prepared model is checked.

Sites are keyed by the module's ``__name__`` and the function's qualified
name, never by a file path: a model saved from one checkout and loaded from
another (CI, site-packages, a notebook) finds its sites again. A site that the
loaded source no longer has is named in a warning when the model is loaded.
"""

from __future__ import annotations

import importlib
import inspect
import sys
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from qready.conversions import conversion_for
from qready.nn.generic import TorchFunction, dotted_path
from qready.ops import is_leaf_module, is_value_changing, op_name
from qready.passes.base import Change, Pass, PassResult, add_module_in_scope
from qready.source import call_through, display_path, is_internal

__all__ = ["DispatchCallSites", "dispatch_call_sites", "install_call_site_dispatch", "SITES_ATTRIBUTE"]

# Plain data on the owner, one tuple per site:
# (Python module name, function qualname, line offset in the function, op path, occurrence, module name).
SITES_ATTRIBUTE = "qready_call_sites"

Site = tuple[str, str, int]  # where the call is written: module __name__, function qualname, line offset
SiteKey = tuple[str, str, int, Any, int]  # ... and the op called there, and which run of that line


class _SiteMode(TorchFunctionMode):
    """Counts or dispatches value-changing calls made by ``owner``'s own code."""

    def __init__(self, owner: torch.nn.Module, routes: dict[SiteKey, torch.nn.Module] | None) -> None:
        super().__init__()
        self.owner = owner
        self.routes = routes  # None: record only
        self.seen: Counter[tuple[str, str, int, Any]] = Counter()
        self.recorded: list[tuple[SiteKey, tuple, dict]] = []
        self.where: dict[SiteKey, tuple[str, int]] = {}  # file and line, for the report only
        self.leaf_depth = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self.leaf_depth or not is_value_changing(func, args, kwargs):
            return call_through(func, args, kwargs)
        frame = _caller()
        if frame is None:
            return call_through(func, args, kwargs)
        site = (*site_of(frame), func)
        self.seen[site] += 1
        key = (*site, self.seen[site])
        if self.routes is None:
            self.recorded.append((key, args, kwargs))
            self.where[key] = (frame.f_code.co_filename, frame.f_lineno)
            return call_through(func, args, kwargs)
        module = self.routes.get(key)
        return call_through(func if module is None else module, args, kwargs)


def site_of(frame: Any) -> Site:
    """Where a frame's code is written, in terms that survive moving the source elsewhere."""
    code = frame.f_code
    return (
        frame.f_globals.get("__name__", ""),
        getattr(code, "co_qualname", code.co_name),
        frame.f_lineno - code.co_firstlineno,
    )


def _caller() -> Any:
    frame: Any = sys._getframe(2)
    while frame is not None and is_internal(frame.f_code.co_filename):
        frame = frame.f_back
    return frame


@contextmanager
def _active(owner: torch.nn.Module, mode: _SiteMode) -> Iterator[None]:
    """The mode, with leaves (and other owners) under ``owner`` marked: calls inside them pass through."""
    handles = []

    def enter(*_: Any) -> None:
        mode.leaf_depth += 1

    def leave(*_: Any) -> None:
        mode.leaf_depth -= 1

    for module in owner.modules():
        if module is not owner and _handled_elsewhere(module):
            handles.append(module.register_forward_pre_hook(enter))
            handles.append(module.register_forward_hook(leave, always_call=True))
    try:
        with mode:
            yield
    finally:
        for handle in handles:
            handle.remove()


def _handled_elsewhere(module: torch.nn.Module) -> bool:
    return (
        is_leaf_module(module)
        or isinstance(module, torch.fx.GraphModule)
        or "forward" in vars(module)  # another owner, or a prepared module keeping its calling convention
    )


class DispatchCallSites(Pass[torch.nn.Module]):
    """The step after the graph passes: each call site inside the modules left whole gets a
    module of its own (``dispatch_call_sites``), reported as ``dispatched`` changes through the
    pass manager like any pass's.

    ``owners`` names, for the module being prepared, the submodules whose own code runs in
    Python (by path; ``""`` for a root whose forward stays Python); ``run`` runs that module once
    on the example. The step adds modules and forwards to those owners, never a graph node,
    so there is nothing to lint or recompile.
    """

    name = "dispatch-call-sites"
    rewrites_graph = False

    def __init__(
        self,
        owners: Callable[[torch.nn.Module], dict[str, torch.nn.Module]],
        run: Callable[[torch.nn.Module], Any],
    ) -> None:
        self.owners = owners
        self.run = run

    def call(self, gm: torch.nn.Module) -> PassResult:
        owners = self.owners(gm)
        changes = dispatch_call_sites(owners, lambda: self.run(gm)) if owners else []
        return PassResult(gm, bool(changes), changes)


def dispatch_call_sites(owners: dict[str, torch.nn.Module], run: Callable[[], Any]) -> list[Change]:
    """Run ``run()`` once while recording the call sites of each owner (by path), give each site
    met its own module in the owner's scope, and route the owner's calls through them from now on."""
    modes = {path: _SiteMode(owner, routes=None) for path, owner in owners.items()}
    previous = {path: vars(owner).get("forward") for path, owner in owners.items()}
    for path, owner in owners.items():
        _wrap(owner, modes[path])
    try:
        with torch.no_grad():
            run()
    finally:
        for path, owner in owners.items():
            if previous[path] is None:
                del owner.forward
            else:
                owner.forward = previous[path]  # type: ignore[assignment]  # the instance-level forward it had
    changes = []
    for path, owner in owners.items():
        sites = []
        for key, _, _ in modes[path].recorded:
            module_name, qualname, offset, func, occurrence = key
            file, line = modes[path].where[key]
            try:
                target = dotted_path(func)
            except ValueError:
                continue  # a callable that can't be named again stays a plain call, reported by check
            name = add_module_in_scope(owner, "", conversion_for(func).name, TorchFunction(target))
            sites.append((module_name, qualname, offset, target, occurrence, name))
            changes.append(
                Change(
                    "dispatched", op_name(func), path, f"{path}.{name}" if path else name,
                    "qready.nn.generic.TorchFunction", display_path(file), line,
                    (("occurrence", occurrence),),
                )
            )
        if sites:
            setattr(owner, SITES_ATTRIBUTE, tuple(sites))
            install_call_site_dispatch(owner)
    return changes


def install_call_site_dispatch(owner: torch.nn.Module, *, check_source: bool = False) -> None:
    """Route ``owner``'s call sites through the modules its ``qready_call_sites`` name.

    With ``check_source`` (on load), each site must still be in the source that is imported now:
    one that is not is named in a warning, since its calls would bypass their module unseen.
    """
    if check_source:
        for module_name, qualname, offset, target, _, name in getattr(owner, SITES_ATTRIBUTE, ()):
            problem = _missing_site(module_name, qualname, offset)
            if problem:
                warnings.warn(
                    f"call site {target} at {module_name}.{qualname} (line {offset} of the function) of "
                    f"{type(owner).__qualname__} {problem}, so its calls bypass {name!r} and a quantizer there "
                    "sees no values; prepare the model again from the source it runs with",
                    stacklevel=3,
                )
    owner.forward = DispatchingForward(owner, vars(owner).get("forward"))


def _missing_site(module_name: str, qualname: str, offset: int) -> str | None:
    """Why the site cannot be found in the source imported now, or None when it can."""
    try:
        found: Any = importlib.import_module(module_name)
    except Exception:  # the user's module: whatever importing it raises, the site is lost
        return f"is in module {module_name!r}, which cannot be imported"
    for part in qualname.replace(".<locals>", "").split("."):
        found = getattr(found, part, None)
    code = getattr(inspect.unwrap(found), "__code__", None) if found is not None else None
    if code is None:
        return f"is in {qualname}, which {module_name} no longer defines"
    lines = [line for _, _, line in code.co_lines() if line is not None]
    if not lines or code.co_firstlineno + offset not in lines:
        return "is no longer on a line of that function"
    return None


def _wrap(owner: torch.nn.Module, recorder: _SiteMode) -> None:
    owner.forward = DispatchingForward(owner, vars(owner).get("forward"), recorder)


class DispatchingForward:
    """``owner``'s forward run under its call-site mode.

    An object rather than a closure: deep copies and pickles of the model take
    it along with the copied owner (a closure would keep calling the original).
    The routes are read from the owner's plain site table on each call, so
    modules a toolkit swaps in (quantized versions) are the ones called.
    """

    qready_dispatch = True

    def __init__(self, owner: torch.nn.Module, inner: Callable[..., Any] | None, recorder: _SiteMode | None = None) -> None:
        self.owner = owner
        self.inner = inner  # an instance-level forward installed before this one, if any
        self.recorder = recorder

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        owner = self.owner
        mode = self.recorder if self.recorder is not None else _SiteMode(owner, _routes(owner))
        forward = self.inner if self.inner is not None else type(owner).forward.__get__(owner)
        with _active(owner, mode):
            return forward(*args, **kwargs)


def _routes(owner: torch.nn.Module) -> dict[SiteKey, torch.nn.Module]:
    from qready.nn.generic import resolve_dotted_path

    return {
        (module_name, qualname, offset, resolve_dotted_path(target), occurrence): owner.get_submodule(name)
        for module_name, qualname, offset, target, occurrence, name in getattr(owner, SITES_ATTRIBUTE, ())
    }
