"""How fast is `qready.prepare` next to a bare trace and next to AIMET's preparer?

Same process, same models: `torch.fx.symbolic_trace` (the bare floor; it
fails on models it cannot trace), `qready.prepare(verify=False,
share_weights=True)` (like symbolic_trace, no copy of the weights),
`qready.prepare(verify=False)`,
`qready.prepare()` with its bit-exact verification and re-check, and AIMET's
`prepare_model` when aimet-torch is installed (`pip install -e '.[interop]'`).
Times are CPU seconds (best of N; wall time too, in the printout), all in one
process. Target: shared weights <= 2x symbolic_trace and no slower than
AIMET's prepare_model; the default no slower than that plus a clone of the
weights. Then the same prepare on a stack of N blocks, to show it grows
linearly with depth.

    .venv/bin/python benchmarks/prepare_speed.py [--repeat 5] [--verified] [--models resnet50,vit_b_16,convnext_tiny,tiny_bert] [--depths 8,32,128]
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import gc
import logging
import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

# CPU time counts every thread: OpenMP's workers spin for a while after each parallel op (a clone of a
# large weight), and that spinning would be billed to whatever runs next. Idle workers sleep instead,
# so each column is the work of its own tool. Read when torch loads its OpenMP runtime: set it first.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def keep_freed_memory() -> None:
    """Freed memory stays with this process (glibc: no trimming, no mmap for blocks up to 32 MB).

    Otherwise whether a copy of the weights pays the kernel for fresh pages (faults and zeroing) depends
    on whether the allocator gave the previous tool's memory back: resnet50's 100 MB clone read 18 ms CPU
    or 48 ms from one round to the next. Held, every column that copies weights measures the copy."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        libc.mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD
        libc.mallopt(-1, 1 << 30)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError):  # not glibc: the allocator's own policy
        pass


keep_freed_memory()

import torch  # noqa: E402
import torch.fx  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, models, write_section  # noqa: E402

import qready  # noqa: E402
from qready.example_inputs import as_example  # noqa: E402


def aimet_prepare():  # type: ignore[no-untyped-def]
    try:
        from aimet_torch.model_preparer import prepare_model
    except Exception:  # aimet is optional: the column says n/a
        return None
    return prepare_model


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float] | None:
    """(wall, CPU) seconds, each the best of ``repeat``; None when the tool cannot handle the model.

    CPU time (``time.process_time``: this process, all its threads) is what the
    ratios use: on a machine shared with other work, wall time measures the others too.
    """
    return interleaved([fn], repeat)[0]


def interleaved(fns: list[Callable[[], Any]], repeat: int) -> list[tuple[float, float] | None]:
    """``timed`` for several tools at once, in rounds of one call each, every other round in the
    reverse order: a slower stretch of the machine, or the state a copy leaves the allocator and the
    caches in, falls on all of them alike, and each tool's best is its best in either place. Each
    call is timed until it returns what it made; freeing that is no tool's time."""
    works = []
    for fn in fns:
        try:
            fn()
            works.append(True)
        except Exception:  # the tool cannot handle this model: no time to report
            works.append(False)
    best: list[list[float]] = [[float("inf"), float("inf")] for _ in fns]
    for round_ in range(repeat):
        order = list(zip(fns, works, best))
        for fn, ok, times in order if round_ % 2 == 0 else reversed(order):
            if not ok:
                continue
            wall, cpu = time.perf_counter(), time.process_time()
            made = fn()
            times[0] = min(times[0], time.perf_counter() - wall)
            times[1] = min(times[1], time.process_time() - cpu)
            # what a tool made is freed outside the clocks, all of it now: a model in reference cycles
            # would otherwise be freed by a collection that lands in another tool's time
            del made
            gc.collect()
    return [(wall, cpu) if ok else None for (wall, cpu), ok in zip(best, works)]


def _unavailable() -> None:
    raise RuntimeError("not installed")


def clone_weights(model: torch.nn.Module) -> list[torch.Tensor]:
    """The copy the default prepare makes, alone: every parameter and buffer cloned."""
    return [t.clone() for t in [*model.parameters(), *model.buffers()]]


class Block(torch.nn.Module):
    """A residual conv block and a transformer-style MLP: modules, a functional, a reused activation."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(width, width, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(width)
        self.act = torch.nn.ReLU()
        self.norm = torch.nn.LayerNorm(width)
        self.up = torch.nn.Linear(width, 2 * width)
        self.down = torch.nn.Linear(2 * width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(x + self.bn(self.conv(x)))
        y = self.norm(x.permute(0, 2, 3, 1))
        y = self.down(torch.nn.functional.gelu(self.up(y)))
        return self.act(x + y.permute(0, 3, 1, 2))


def scaling(depths: list[int], repeat: int) -> list[tuple[int, float]]:
    """CPU seconds of ``prepare(share_weights=True, verify=False)`` on a stack of N blocks."""
    rows = []
    for depth in depths:
        torch.manual_seed(0)
        model = torch.nn.Sequential(*[Block(16) for _ in range(depth)]).eval()
        inputs = as_example((torch.randn(1, 16, 8, 8),))
        result = timed(lambda: qready.prepare(model, inputs, verify=False, share_weights=True), repeat)
        assert result is not None, "prepare failed on the block stack"
        rows.append((depth, result[1]))
        print(f"{depth:4d} blocks  {result[1]:.3f} s CPU  {result[1] / depth * 1000:.2f} ms/block", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--models", default="resnet50,vit_b_16,convnext_tiny,tiny_bert")
    parser.add_argument("--verified", action="store_true", help="also time prepare() with its verification and re-check")
    parser.add_argument("--depths", default="8,32,128", help="block-stack depths for the linear-growth check")
    options = parser.parse_args()
    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)
    torch.set_num_threads(2)
    aimet = aimet_prepare()
    rows = []
    for name, model, inputs in models(options.models.split(",")):
        example = as_example(inputs)
        trace, peer, shared, default, clone = interleaved([
            lambda: torch.fx.symbolic_trace(model),
            (lambda: aimet(model)) if aimet else _unavailable,
            lambda: qready.prepare(model, example, verify=False, share_weights=True),
            lambda: qready.prepare(model, example, verify=False),
            lambda: clone_weights(model),
        ], options.repeat)
        rows.append((
            name,
            trace,
            peer,
            shared,
            default,
            clone,
            timed(lambda: qready.prepare(model, example), options.repeat) if options.verified else None,
        ))
        print(name, *(f"{t[1]:.3f}" if t else "n/a" for t in rows[-1][1:]), flush=True)
    depths = scaling([int(d) for d in options.depths.split(",")], options.repeat)

    def cell(t: tuple[float, float] | None, missing: str = "fails") -> str:
        return f"{t[1]:.3f}" if t is not None else missing

    def ratio(a: tuple[float, float] | None, b: tuple[float, float] | None) -> str:
        return f"{a[1] / b[1]:.2f}x" if a is not None and b is not None else "n/a"

    def plus(a: tuple[float, float] | None, b: tuple[float, float] | None) -> tuple[float, float] | None:
        return (a[0] + b[0], a[1] + b[1]) if a is not None and b is not None else None

    lines = [
        "## prepare speed",
        "",
        f"`.venv/bin/python benchmarks/prepare_speed.py --repeat {options.repeat}"
        f"{' --verified' if options.verified else ''}` on {machine()}; CPU seconds of"
        f" this process (`time.process_time`, all threads), best of {options.repeat}, every column in the same"
        " process, in rounds of one call of each tool: wall time on this shared 2-core machine measured the other"
        " engineers' work more than ours. OpenMP's idle workers sleep"
        f" (`OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}`, the script's default) instead of spinning"
        " on the clock of whatever runs after a parallel op (a clone of a large weight), and freed memory stays"
        " with the process (glibc's `mallopt`, set by the script), so that no copy of the weights pays for fresh"
        " pages that another tool's memory, given back, left to fault in."
        f" AIMET: aimet-torch {'installed' if aimet else 'not installed'}. Targets: shared weights <= 2x"
        " symbolic_trace and <= 1x AIMET's `prepare_model`; the default (weights copied) <= shared + the copy.",
        "",
        "| model | symbolic_trace | AIMET prepare_model | qready, shared weights | clone of the weights"
        " | qready (default, no verify) | qready (verified) | shared / trace | shared / AIMET"
        " | default / (shared + clone) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *[
            f"| {n} | {cell(t)} | {cell(a)} | {cell(s)} | {cell(c)} | {cell(p)} | {cell(v, 'not run')} | {ratio(s, t)}"
            f" | {ratio(s, a)} | {ratio(p, plus(s, c))} |"
            for n, t, a, s, p, c, v in rows
        ],
        "",
        "symbolic_trace and AIMET's preparer return graphs around the user's own modules and weights;"
        " qready by default copies the weights first (so that batch-norm folding or training on the"
        " prepared model cannot change the original), and `share_weights=True` is the like-for-like"
        " comparison; the clone column is that copy alone (every parameter and buffer cloned), timed in the same"
        " rounds. The verified column (with"
        " `--verified`) includes the re-check of all rules, ONNX export included. symbolic_trace and AIMET fail"
        " on the Hugging Face model.",
        "",
        "Linear in depth: `prepare(share_weights=True, verify=False)` on a stack of N blocks (conv, batch norm,"
        " residual add, layer norm, two linears with a functional GELU, one ReLU called twice), same run:",
        "",
        "| blocks | CPU seconds | ms per block |",
        "|---:|---:|---:|",
        *[f"| {d} | {t:.3f} | {t / d * 1000:.2f} |" for d, t in depths],
    ]
    write_section("prepare-speed", "\n".join(lines))


if __name__ == "__main__":
    main()
