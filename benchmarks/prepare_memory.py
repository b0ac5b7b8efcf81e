"""How much memory does `qready.prepare` take beyond the model it prepares?

One fresh process per measurement: build the model (random weights), prepare
it once so that what a process pays once is paid (lazy imports, torch's meta
kernels), give the freed memory back (``malloc_trim``), then reset the process's peak resident set (``/proc/self/clear_refs``), note the
resident set as the baseline, prepare, and read the peak (``VmHWM``). Extra =
peak - baseline, against the size of the model's parameters and buffers.
Targets: default (weights copied) <= 1.1x the weights extra, ``share_weights=True``
<= 0.1x; with verification as well as without. Verification runs the model
(on the example, a fresh input and one a size larger), and running a model
takes its activations: the ``forwards`` cell measures those runs of the
original alone, the same way, and a verified mode is held to its target
above that floor. A process's peak varies by some MiB from one process to the next (where the
allocator puts things), as much as a verified cell's margin on a small model: each cell is measured
``--repeat`` times, the cells of a model taken in turn, and reads its least.

    .venv/bin/python benchmarks/prepare_memory.py [--models resnet50,vit_b_16,llama_100m] [--modes shared,copy,shared+verify,copy+verify] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

MODES = {
    "shared": {"share_weights": True, "verify": False},
    "copy": {"share_weights": False, "verify": False},
    "shared+verify": {"share_weights": True, "verify": True},
    "copy+verify": {"share_weights": False, "verify": True},
}
TARGETS = {"shared": 0.1, "copy": 1.1, "shared+verify": 0.1, "copy+verify": 1.1}
FORWARDS = "forwards"  # the floor of verification: the original's own runs, on the inputs verification uses


def _status(field: str) -> int:
    """A ``/proc/self/status`` size, in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def build(name: str) -> tuple[Any, Any]:
    import torch

    if name == "llama_100m":
        import transformers

        config = transformers.LlamaConfig(
            hidden_size=768, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=12,
            num_key_value_heads=4, vocab_size=32000, tie_word_embeddings=True, max_position_embeddings=2048,
            use_cache=False,
        )
        torch.manual_seed(0)
        model = transformers.LlamaForCausalLM(config).eval()
        return model, {"input_ids": torch.randint(0, 32000, (1, 32), generator=torch.Generator().manual_seed(0))}
    from common import models

    (_, model, inputs), = models([name])
    return model, inputs


def measure(name: str, mode: str) -> dict[str, Any]:
    """Runs in its own process: one prepare, its peak memory above the built model."""
    import ctypes
    import gc
    import logging
    import warnings

    import torch

    import qready

    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)
    torch.set_num_threads(2)
    model, inputs = build(name)
    weights = sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])
    # a first prepare pays what a process pays once (lazy imports, torch's meta kernels and
    # decomposition tables); what it allocated goes back to the system before the measurement
    run = (lambda: _forwards(model, inputs)) if mode == FORWARDS else (lambda: qready.prepare(model, inputs, **MODES[mode]))
    run()
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    Path("/proc/self/clear_refs").write_text("5")  # the peak resident set starts again from now
    baseline = _status("VmRSS")
    result = run()
    peak = _status("VmHWM")
    del result
    return {"model": name, "mode": mode, "weights": weights, "extra": peak - baseline}


def _forwards(model: Any, inputs: Any) -> Any:
    """What verification runs of the original: the example, a fresh input, the inputs a size larger."""
    import torch

    from qready.example_inputs import as_example, fresh_like
    from qready.sizes import other_sizes

    example = as_example(inputs)
    with torch.no_grad():
        return example.call(model), fresh_like(example, seed=1).call(model), other_sizes(model, example)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="resnet50,vit_b_16,llama_100m")
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated: " + ", ".join(MODES))
    parser.add_argument("--repeat", type=int, default=3, help="processes per cell; a cell reads its least")
    parser.add_argument("--one", nargs=2, metavar=("MODEL", "MODE"), help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.one:
        print(json.dumps(measure(*options.one)))
        return
    from common import machine, write_section

    rows = []
    modes = options.modes.split(",")
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        parser.error(f"unknown mode {unknown[0]!r}; choose from {', '.join(MODES)}")
    if any(mode.endswith("+verify") for mode in modes):
        modes.append(FORWARDS)
    for name in options.models.split(","):
        cells: dict[str, dict[str, Any]] = {}
        for _ in range(options.repeat):
            for mode in modes:
                run = subprocess.run(
                    [sys.executable, __file__, "--one", name, mode], capture_output=True, text=True, check=False,
                )
                if run.returncode != 0:
                    print(f"{name} {mode}: failed\n{run.stderr[-2000:]}", file=sys.stderr, flush=True)
                    cells[mode] = {"model": name, "mode": mode, "weights": None, "extra": None}
                    continue
                row = json.loads(run.stdout.strip().splitlines()[-1])
                print(f"{name:12s} {mode:14s} weights {row['weights'] / 2**20:8.1f} MiB  extra {row['extra'] / 2**20:8.1f} MiB"
                      f"  {row['extra'] / row['weights']:.2f}x", flush=True)
                kept = cells.get(mode)
                if kept is None or (kept["extra"] is not None and row["extra"] < kept["extra"]):
                    cells[mode] = row
        rows += [cells[mode] for mode in modes]

    def floor(model: str) -> int:
        found = [r["extra"] for r in rows if r["model"] == model and r["mode"] == FORWARDS and r["extra"] is not None]
        return found[0] if found else 0

    def cell(row: dict[str, Any]) -> str:
        if row["extra"] is None:
            return "fails"
        if row["mode"] == FORWARDS:
            return f"{row['extra'] / 2**20:.0f} MiB"
        ratio = row["extra"] / row["weights"]
        if not row["mode"].endswith("+verify"):
            return f"{row['extra'] / 2**20:.0f} MiB, {ratio:.2f}x ({'ok' if ratio <= TARGETS[row['mode']] else 'over'})"
        above = (row["extra"] - floor(row["model"])) / row["weights"]
        verdict = "ok" if above <= TARGETS[row["mode"]] else "over"
        return f"{row['extra'] / 2**20:.0f} MiB, {ratio:.2f}x; {above:.2f}x above the forwards ({verdict})"

    names = list(dict.fromkeys(r["model"] for r in rows))
    weights = {r["model"]: r["weights"] for r in rows if r["weights"]}
    lines = [
        "## prepare memory",
        "",
        f"`.venv/bin/python benchmarks/prepare_memory.py --models {options.models} --repeat {options.repeat}` on"
        f" {machine()}. One process per measurement, each cell the least of {options.repeat} (a process's peak varies by"
        " some MiB from one to the next; a model's cells are measured in turn): the model is built (random weights) and prepared once (imports and torch's meta kernels load once per"
        " process; the memory is given back with `malloc_trim`), the peak resident set is reset"
        " (`/proc/self/clear_refs`), then one `prepare`; extra = peak (`VmHWM`) - resident set before it, and x ="
        " extra / the model's parameters and buffers. Targets: weights copied (the default) <= 1.1x, `share_weights=True`"
        " <= 0.1x. Verification runs the model (the example, a fresh input, and inputs one larger along the batch"
        " and the sequence), and a run takes the model's activations: the `forwards` column is those runs of the"
        " original alone, measured the same way, and a verified mode is held to its target above that floor.",
        "",
        "| model | weights | " + " | ".join(modes) + " |",
        "|---|---:|" + "---:|" * len(modes),
        *[
            f"| {n} | {weights[n] / 2**20:.0f} MiB | "
            + " | ".join(cell(next(r for r in rows if r["model"] == n and r["mode"] == m)) for m in modes) + " |"
            for n in names if n in weights
        ],
    ]
    write_section("prepare-memory", "\n".join(lines))


if __name__ == "__main__":
    main()
