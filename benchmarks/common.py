"""Shared pieces of the benchmark scripts: models, timing, one model per subprocess, and the BENCHMARKS.md writer."""

from __future__ import annotations

import gc
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "BENCHMARKS.md"


def best_of(fn: Callable[[], Any], repeat: int, clock: Callable[[], float] = time.perf_counter) -> float:
    """The fastest of ``repeat`` runs, in seconds of ``clock``: the least disturbed by the rest of the
    machine (``time.process_time`` counts only this process's CPU time, all its threads)."""
    return best_in_rounds({"": fn}, repeat, clock)[""]


def best_in_rounds(
    fns: Mapping[str, Callable[[], Any]], repeat: int, clock: Callable[[], float] = time.perf_counter
) -> dict[str, float]:
    """Each function's fastest of ``repeat`` runs, timed in rounds of one call each, every other round in
    the reverse order: a slow stretch of the machine falls on all of them alike, where timing one function
    ``repeat`` times and then the next would bill it to whichever ran then. What a call made is freed, and
    Python's cycles collected, outside the clock."""
    best = dict.fromkeys(fns, float("inf"))
    order = list(fns.items())
    for round_ in range(repeat):
        for name, fn in order if round_ % 2 == 0 else reversed(order):
            start = clock()
            made = fn()
            elapsed = clock() - start
            del made
            gc.collect()
            best[name] = min(best[name], elapsed)
    return best


def models(names: list[str]) -> list[tuple[str, torch.nn.Module, Any]]:
    """(name, model in eval mode, example inputs) for torchvision names and 'tiny_bert'."""
    import torchvision

    out = []
    for name in names:
        torch.manual_seed(0)
        if name == "tiny_bert":
            import transformers

            config = transformers.BertConfig(
                vocab_size=1000, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                intermediate_size=128, max_position_embeddings=128,
            )
            model = transformers.BertModel(config).eval()
            inputs: Any = {
                "input_ids": torch.randint(0, 1000, (1, 32)),
                "attention_mask": torch.ones(1, 32, dtype=torch.long),
            }
        else:
            model = torchvision.models.get_model(name, weights=None).eval()
            inputs = (torch.randn(1, 3, 224, 224),)
        out.append((name, model, inputs))
    return out


def write_section(name: str, body: str) -> None:
    """Replace the text between ``<!-- name:start -->`` and ``<!-- name:end -->`` in BENCHMARKS.md."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = BENCHMARKS.read_text() if BENCHMARKS.exists() else "# Benchmarks\n"
    block = f"{start}\n{body.rstrip()}\n{end}"
    if start in text:
        text = re.sub(re.escape(start) + r".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    BENCHMARKS.write_text(text)


def machine() -> str:
    import os
    import platform

    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"


# --- one model in its own process ------------------------------------------------------------------


@dataclass
class WorkerRun:
    """What a worker process left: its last record (``None`` when it wrote none), how it ended, its log."""

    record: dict[str, Any] | None
    status: str  # "ok", "exit N", "signal N" or "timeout"
    log_tail: str
    wall_s: float


def run_worker(
    script: Path,
    name: str,
    *,
    timeout: float,
    options: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> WorkerRun:
    """Run ``python script --worker name --worker-out FILE *options`` from the repository root, in a
    session of its own, killed with all its children after ``timeout`` seconds.

    The worker writes its record to FILE (with :func:`write_record`, as often as it likes: a killed
    worker leaves the record of the stage it reached).
    """
    with tempfile.TemporaryDirectory(prefix="qready-bench-") as tmp:
        out, log = Path(tmp) / "record.json", Path(tmp) / "log.txt"
        command = [sys.executable, str(Path(script).resolve()), "--worker", name, "--worker-out", str(out), *options]
        environment = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
                       "PYTHONWARNINGS": "ignore", **(env or {})}
        start = time.perf_counter()
        with log.open("wb") as sink:
            process = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=sink, stderr=subprocess.STDOUT,
                                       start_new_session=True)
            try:
                code = process.wait(timeout=timeout)
                status = "ok" if code == 0 else (f"signal {-code}" if code < 0 else f"exit {code}")
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                status = "timeout"
        wall = round(time.perf_counter() - start, 2)
        try:
            record = json.loads(out.read_text())
        except (OSError, json.JSONDecodeError):  # the worker died before its first record
            record = None
        return WorkerRun(record, status, _tail(log), wall)


def write_record(path: Path, record: dict[str, Any]) -> None:
    """Write ``record`` as JSON in one step (a reader never sees half a file)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1, default=str))
    tmp.replace(path)


def _tail(path: Path, lines: int = 8) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])
