"""How fast is `qready.prepare` next to a bare trace and next to AIMET's preparer?

Same models, each tool in a process of its own, as its users run it: `torch.fx.symbolic_trace`
(the bare floor; it fails on models it cannot trace), AIMET's `prepare_model` when aimet-torch is
installed (`pip install -e '.[interop]'`), and qready: `prepare(verify=False, share_weights=True)`
(like symbolic_trace, no copy of the weights), `prepare(verify=False)`, a bare clone of the weights,
and with `--verified` `prepare()` with its bit-exact verification and re-check. This script starts one
worker process per tool and times them in rounds, one call of each column per round (the other
workers wait on their input meanwhile). Times are CPU seconds, best of N. Target: shared weights
<= 2x symbolic_trace and no slower than AIMET's prepare_model; the default no slower than that plus a
clone of the weights. Then the same prepare on a stack of N blocks, to show it grows linearly with
depth. `--one-process` runs every column in one process, aimet_torch imported (the earlier method).

    .venv/bin/python benchmarks/prepare_speed.py [--repeat 5] [--verified] [--one-process] [--models resnet50,vit_b_16,convnext_tiny,tiny_bert] [--depths 8,32,128]
"""

from __future__ import annotations

import argparse
import copy
import ctypes
import ctypes.util
import gc
import json
import logging
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

# CPU time counts every thread: OpenMP's workers spin for a while after each parallel op (a clone of a
# large weight), and that spinning would be billed to whatever runs next. Idle workers sleep instead,
# so each column is the work of its own tool. Read when torch loads its OpenMP runtime: set it first
# (the worker processes inherit it).
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


import torch  # noqa: E402
import torch.fx  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, models, write_section  # noqa: E402

# the columns, in the table's order, and the worker process each runs in
COLUMNS = {
    "trace": "trace", "aimet": "aimet", "aimet_copy": "aimet", "shared": "qready", "default": "qready", "clone": "qready",
}
Timing = tuple[float, float]  # (wall, CPU) seconds, each the best of its rounds


def clone_weights(model: torch.nn.Module) -> list[torch.Tensor]:
    """The copy the default prepare makes, alone: every parameter and buffer cloned."""
    return [t.clone() for t in [*model.parameters(), *model.buffers()]]


def columns_of(tool: str, model: torch.nn.Module, inputs: Any) -> dict[str, Callable[[], Any]]:
    """The calls a worker for ``tool`` times on ``model``; ``all`` is every column in one process."""
    calls: dict[str, Callable[[], Any]] = {}
    if tool in ("trace", "all"):
        calls["trace"] = lambda: torch.fx.symbolic_trace(model)
    if tool in ("aimet", "all"):
        try:
            from aimet_torch.model_preparer import prepare_model
        except Exception:  # aimet is optional: the column says n/a
            pass
        else:
            calls["aimet"] = lambda: prepare_model(model)
            # what AIMET's users do to keep their model as it was: its preparer's graph calls the model's
            # own modules and weights, which the sim's batch-norm folding and training then change
            calls["aimet_copy"] = lambda: prepare_model(copy.deepcopy(model))
    if tool in ("qready", "all"):
        import qready
        from qready.example_inputs import as_example

        example = as_example(inputs)
        calls["shared"] = lambda: qready.prepare(model, example, verify=False, share_weights=True)
        calls["default"] = lambda: qready.prepare(model, example, verify=False)
        calls["clone"] = lambda: clone_weights(model)
        calls["verified"] = lambda: qready.prepare(model, example)
    return calls


def run_once(fn: Callable[[], Any]) -> Timing:
    """One call, timed until it returns what it made; freeing that is no tool's time.

    CPU time (``time.process_time``: this process, all its threads) is what the ratios use: on a
    machine shared with other work, wall time measures the others too."""
    wall, cpu = time.perf_counter(), time.process_time()
    made = fn()
    timing = (time.perf_counter() - wall, time.process_time() - cpu)
    # what a tool made is freed outside the clocks, all of it now: a model in reference cycles
    # would otherwise be freed by a collection that lands in the next call's time
    del made
    gc.collect()
    return timing


def worker(tool: str) -> None:
    """Answer the coordinator's requests, one JSON line each way, on the stdin and stdout it was given;
    whatever the tools print goes to stderr."""
    replies: TextIO = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    keep_freed_memory()
    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)
    torch.set_num_threads(2)
    calls: dict[str, Callable[[], Any]] = {}
    for line in sys.stdin:
        request = json.loads(line)
        if request["op"] == "load":  # build the model, call each column once: which ones handle it
            _, model, inputs = models([request["model"]])[0]
            calls = columns_of(tool, model, inputs)
            works = {}
            for column in request["columns"]:
                try:
                    calls[column]()
                    works[column] = True
                except Exception:  # the tool is missing or cannot handle this model: no time to report
                    works[column] = False
            reply: Any = works
        elif request["op"] == "run":
            reply = run_once(calls[request["column"]])
        elif request["op"] == "best":
            runs = [run_once(calls[request["column"]]) for _ in range(request["repeat"])]
            reply = (min(wall for wall, _ in runs), min(cpu for _, cpu in runs))
        else:  # "scaling"
            reply = scaling(request["depths"], request["repeat"])
        replies.write(json.dumps(reply) + "\n")


class Worker:
    """A worker process of this script, for one tool."""

    def __init__(self, tool: str) -> None:
        self.tool = tool
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--worker", tool],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )

    def ask(self, **request: Any) -> Any:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"the {self.tool} worker exited (code {self.process.wait()}); its errors are above")
        return json.loads(line)

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait()


def interleaved(workers: dict[str, Worker], model: str, repeat: int) -> dict[str, Timing | None]:
    """Each column's best on ``model``, in rounds of one call of each, every other round in the reverse
    order: a slower stretch of the machine, or the state a copy leaves the caches in, falls on all of
    them alike, and each tool's best is its best in either place."""
    works: dict[str, bool] = {}
    for tool, worker_ in workers.items():
        works.update(worker_.ask(op="load", model=model, columns=[c for c, t in COLUMNS.items() if t == tool or tool == "all"]))
    order = [(column, workers["all" if "all" in workers else COLUMNS[column]]) for column in COLUMNS if works[column]]
    best: dict[str, Timing | None] = {column: None for column in COLUMNS}
    for round_ in range(repeat):
        for column, worker_ in order if round_ % 2 == 0 else reversed(order):
            wall, cpu = worker_.ask(op="run", column=column)
            previous = best[column]
            best[column] = (wall, cpu) if previous is None else (min(previous[0], wall), min(previous[1], cpu))
    return best


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
    """CPU seconds of ``prepare(share_weights=True, verify=False)`` on a stack of N blocks (in a qready worker)."""
    import qready
    from qready.example_inputs import as_example

    rows = []
    for depth in depths:
        torch.manual_seed(0)
        model = torch.nn.Sequential(*[Block(16) for _ in range(depth)]).eval()
        inputs = as_example((torch.randn(1, 16, 8, 8),))
        qready.prepare(model, inputs, verify=False, share_weights=True)
        cpu = min(run_once(lambda: qready.prepare(model, inputs, verify=False, share_weights=True))[1] for _ in range(repeat))
        rows.append((depth, cpu))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--models", default="resnet50,vit_b_16,convnext_tiny,tiny_bert")
    parser.add_argument("--verified", action="store_true", help="also time prepare() with its verification and re-check")
    parser.add_argument("--one-process", action="store_true", help="every column in one process, aimet_torch imported")
    parser.add_argument("--depths", default="8,32,128", help="block-stack depths for the linear-growth check")
    parser.add_argument("--worker", choices=["trace", "aimet", "qready", "all"], help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.worker:
        worker(options.worker)
        return
    workers = {tool: Worker(tool) for tool in (["all"] if options.one_process else ["trace", "aimet", "qready"])}
    qready_worker = workers["all" if options.one_process else "qready"]
    rows = []
    try:
        for name in options.models.split(","):
            best = interleaved(workers, name, options.repeat)
            verified = qready_worker.ask(op="best", column="verified", repeat=options.repeat) if options.verified else None
            rows.append((
                name, best["trace"], best["aimet"], best["shared"], best["default"], best["clone"], verified,
                best["aimet_copy"],
            ))
            print(name, *(f"{t[1]:.3f}" if t else "n/a" for t in rows[-1][1:]), flush=True)  # type: ignore[index]
        depths = [(d, t) for d, t in qready_worker.ask(op="scaling", depths=[int(d) for d in options.depths.split(",")], repeat=options.repeat)]
        for depth, cpu in depths:
            print(f"{depth:4d} blocks  {cpu:.3f} s CPU  {cpu / depth * 1000:.2f} ms/block", flush=True)
    finally:
        for worker_ in workers.values():
            worker_.close()
    aimet = any(row[2] is not None for row in rows)

    def cell(t: Timing | None, missing: str = "fails") -> str:
        return f"{t[1]:.3f}" if t is not None else missing

    def ratio(a: Timing | None, b: Timing | None) -> str:
        return f"{a[1] / b[1]:.2f}x" if a is not None and b is not None else "n/a"

    def plus(a: Timing | None, b: Timing | None) -> Timing | None:
        return (a[0] + b[0], a[1] + b[1]) if a is not None and b is not None else None

    where = (
        "every column in one process, aimet_torch imported (`--one-process`)" if options.one_process else
        "each tool in a process of its own (symbolic_trace with torch alone, AIMET's preparer with aimet_torch,"
        " qready's columns with qready), called in turn by this script"
    )
    lines = [
        "## prepare speed",
        "",
        f"`.venv/bin/python benchmarks/prepare_speed.py --repeat {options.repeat}"
        f"{' --verified' if options.verified else ''}{' --one-process' if options.one_process else ''}` on"
        f" {machine()}; CPU seconds (`time.process_time`, all threads), best of {options.repeat}, {where}, in rounds"
        " of one call of each column: wall time on this shared 2-core machine measured the other"
        " engineers' work more than ours. OpenMP's idle workers sleep"
        f" (`OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}`, the script's default) instead of spinning"
        " on the clock of whatever runs after a parallel op (a clone of a large weight), and freed memory stays"
        " with the process (glibc's `mallopt`, set by the script), so that no copy of the weights pays for fresh"
        " pages that another tool's memory, given back, left to fault in."
        f" AIMET: aimet-torch {'installed' if aimet else 'not installed'}. Targets: shared weights <= 2x"
        " symbolic_trace and <= 1x AIMET's `prepare_model`; the default (weights copied) <= that plus the copy.",
        "",
        "| model | symbolic_trace | AIMET prepare_model | qready, shared weights | clone of the weights"
        " | qready (default, no verify) | qready (verified) | shared / trace | shared / AIMET"
        " | AIMET on a deep copy | default / (AIMET + clone) | default / AIMET on a deep copy"
        " | default / (shared + clone) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *[
            f"| {n} | {cell(t)} | {cell(a)} | {cell(s)} | {cell(c)} | {cell(p)} | {cell(v, 'not run')} | {ratio(s, t)}"
            f" | {ratio(s, a)} | {cell(ac)} | {ratio(p, plus(a, c))} | {ratio(p, ac)} | {ratio(p, plus(s, c))} |"
            for n, t, a, s, p, c, v, ac in rows
        ],
        "",
        "symbolic_trace and AIMET's preparer return graphs around the user's own modules and weights;"
        " qready by default copies the weights first (so that batch-norm folding or training on the"
        " prepared model cannot change the original), and `share_weights=True` is the like-for-like"
        " comparison; the clone column is that copy alone (every parameter and buffer cloned), timed in the same"
        " rounds. The default is the shared prepare with the weights copied into new parameters, so the last"
        " column reads about 1x by construction. Two columns hold it to AIMET plus a copy: against AIMET's"
        " preparer plus the bare clone (a floor: no peer copies a model for less), and against AIMET's"
        " preparer on `copy.deepcopy(model)`, the same job as the default's (a prepared model that leaves the"
        " original as it was), done as AIMET's users do it. The verified column (with"
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
