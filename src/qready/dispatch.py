"""One module per functional call site, chosen at run time, for code no tracer can capture.

A submodule left whole because torch.fx could not trace it (a branch on
tensor data, detection post-processing) still calls ``F.relu``, ``x + y``,
``torch.cat`` in its own forward. Here each such call site (file, line, op,
and how many times that line has run in this forward) gets its own
``qready.nn.TorchFunction`` module registered in the owner's scope, and a
torch function mode routes the call through it while the owner's forward
runs. The numbers are the same (the module calls the same function with the
same arguments), and a quantizer now has a module to sit on.

Calls made inside leaf modules (``F.conv2d`` in ``nn.Conv2d``) are not
touched. A call site the example never reached runs as before: correct, but
not covered, and it shows up when the prepared model is checked.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from qready.conversions import conversion_for
from qready.nn.generic import TorchFunction, dotted_path
from qready.ops import is_leaf_module, is_value_changing, op_name
from qready.passes.base import Change, add_module_in_scope
from qready.source import display_path, is_internal

__all__ = ["dispatch_call_sites", "install_call_site_dispatch", "SITES_ATTRIBUTE"]

SITES_ATTRIBUTE = "qready_call_sites"  # plain data on the owner: (file, line, op path, occurrence, module name)

SiteKey = tuple[str, int, Any, int]


class _SiteMode(TorchFunctionMode):
    """Counts or dispatches value-changing calls made by ``owner``'s own code."""

    def __init__(self, owner: torch.nn.Module, routes: dict[SiteKey, torch.nn.Module] | None) -> None:
        super().__init__()
        self.owner = owner
        self.routes = routes  # None: record only
        self.seen: Counter[tuple[str, int, Any]] = Counter()
        self.recorded: list[tuple[SiteKey, tuple, dict]] = []
        self.leaf_depth = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def,override]
        kwargs = kwargs or {}
        if self.leaf_depth or not is_value_changing(func, args, kwargs):
            return func(*args, **kwargs)
        frame = _caller()
        if frame is None:
            return func(*args, **kwargs)
        site = (frame.f_code.co_filename, frame.f_lineno, func)
        self.seen[site] += 1
        key = (*site, self.seen[site])
        if self.routes is None:
            self.recorded.append((key, args, kwargs))
            return func(*args, **kwargs)
        module = self.routes.get(key)
        return module(*args, **kwargs) if module is not None else func(*args, **kwargs)


def _caller() -> Any:
    frame = sys._getframe(2)
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
                owner.forward = previous[path]  # type: ignore[method-assign]
    changes = []
    for path, owner in owners.items():
        sites = []
        for (file, line, func, occurrence), _, _ in modes[path].recorded:
            try:
                target = dotted_path(func)
            except ValueError:
                continue  # a callable that can't be named again stays a plain call, reported by check
            name = add_module_in_scope(owner, "", conversion_for(func).name, TorchFunction(target))
            sites.append((file, line, target, occurrence, name))
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


def install_call_site_dispatch(owner: torch.nn.Module) -> None:
    """Route ``owner``'s call sites through the modules its ``qready_call_sites`` name."""
    owner.forward = DispatchingForward(owner, vars(owner).get("forward"))  # type: ignore[method-assign]


def _wrap(owner: torch.nn.Module, recorder: _SiteMode) -> None:
    owner.forward = DispatchingForward(owner, vars(owner).get("forward"), recorder)  # type: ignore[method-assign]


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
        (file, line, resolve_dotted_path(target), occurrence): owner.get_submodule(name)
        for file, line, target, occurrence, name in getattr(owner, SITES_ATTRIBUTE, ())
    }
