"""How much slower is `qready.check` than the work it cannot avoid?

The floor, measured in the same process on the same model: one eager forward,
`torch.jit.trace`, `torch.onnx.export` (default exporter) and one onnxruntime
run. `qready.check` with every rule does all of that plus its instrumented
forward and the trace's check on a fresh input. Times are CPU seconds of this
process, best of N, the two timed in rounds (one of each, alternating which goes first) so that
the machine's slow stretches fall on both. Target: check <= 1.3x floor.

    .venv/bin/python benchmarks/check_overhead.py [--repeat 2] [--models resnet50,vit_b_16,tiny_bert]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

# CPU time counts every thread: OpenMP's workers spin after each parallel op, and that spinning would be
# billed to whichever of floor and check runs next. Read when torch loads its OpenMP runtime: set first.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import best_in_rounds, machine, models, write_section  # noqa: E402

import qready  # noqa: E402
from qready.example_inputs import as_example, tensor_leaves  # noqa: E402


def floor(model: torch.nn.Module, inputs) -> None:  # type: ignore[no-untyped-def]
    import onnxruntime

    example = as_example(inputs)
    with torch.no_grad():
        example.call(model)
        if example.kwargs:
            torch.jit.trace(model, example_kwarg_inputs=example.kwargs, check_trace=False, strict=False)
        else:
            torch.jit.trace(model, example.args, check_trace=False, strict=False)
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
        path = str(Path(tmp) / "m.onnx")
        torch.onnx.export(model, example.args, path, kwargs=example.kwargs or None, external_data=False)
        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        names = [i.name for i in session.get_inputs()]
        tensors = tensor_leaves(example.args) + tensor_leaves(example.kwargs)
        session.run(None, {n: t.numpy() for n, t in zip(names, tensors)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--models", default="resnet50,vit_b_16,tiny_bert")
    options = parser.parse_args()
    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)
    torch.set_num_threads(2)
    rows = []
    for name, model, inputs in models(options.models.split(",")):
        floor(model, inputs)  # warm-up: first export pays one-time imports and registrations
        report = qready.check(model, inputs)
        best = best_in_rounds(
            {"floor": lambda: floor(model, inputs), "check": lambda: qready.check(model, inputs)},
            options.repeat, clock=time.process_time,
        )
        t_floor, t_check = best["floor"], best["check"]
        ratio = t_check / t_floor
        rows.append((name, t_floor, t_check, ratio, str(report.coverage)))
        print(f"{name:12s} floor {t_floor:7.2f}s  check {t_check:7.2f}s CPU  ratio {ratio:5.2f}  {report.coverage}", flush=True)
    command = "make bench  # or: .venv/bin/python benchmarks/check_overhead.py --repeat " + str(options.repeat)
    lines = [
        "## check overhead",
        "",
        f"`{command}` on {machine()}. Floor = eager forward + `torch.jit.trace` + `torch.onnx.export`"
        " (default exporter) + one onnxruntime run, in the same process; CPU seconds of this process"
        f" (`time.process_time`, all threads, OpenMP's idle workers asleep), best of {options.repeat}, floor and"
        " check in alternating rounds: wall time on this shared 2-core machine"
        " measured the other engineers' work more than ours. Target: check <= 1.3x floor.",
        "",
        "| model | floor (CPU s) | qready.check (CPU s) | ratio | coverage |",
        "|---|---:|---:|---:|---|",
        *[f"| {n} | {f:.2f} | {c:.2f} | {r:.2f}x | {cov} |" for n, f, c, r, cov in rows],
    ]
    write_section("check-overhead", "\n".join(lines))


if __name__ == "__main__":
    main()
