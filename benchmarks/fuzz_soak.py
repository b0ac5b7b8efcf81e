"""Soak ``qready.prepare`` with random models of the tests/fuzz grammar; record the result.

Each example runs every property of ``tests/fuzz/properties.py`` (prepare
succeeds and verifies, bit-identical on a third input, QR003/QR004 only inside
leaves, the original untouched, save/load round trip). Failures do not stop
the run: each is counted, and its model source is written to ``--failures``
with the error on top, ready to become a regression test.

    .venv/bin/python benchmarks/fuzz_soak.py --examples 5000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import traceback
import warnings
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import torch  # noqa: E402
from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402

from common import machine, write_section  # noqa: E402
from fuzz import GeneratedModel, check_prepare, models  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=5000, help="how many generated models to prepare")
    parser.add_argument("--seed", type=int, default=0, help="hypothesis seed: the same seed draws the same models")
    parser.add_argument("--failures", type=Path, default=ROOT / "out" / "fuzz-failures",
                        help="where to write the source of each failing model")
    parser.add_argument("--no-write", action="store_true", help="do not update BENCHMARKS.md")
    options = parser.parse_args(argv)

    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    ran = 0
    failures: list[tuple[GeneratedModel, str, str]] = []
    kinds: Counter[str] = Counter()
    covered: Counter[str] = Counter()
    start = time.perf_counter()

    with tempfile.TemporaryDirectory(prefix="qready-fuzz-") as scratch:

        @seed(options.seed)
        @settings(
            max_examples=options.examples, database=None, deadline=None, phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(generated=models())
        def soak(generated: GeneratedModel) -> None:
            nonlocal ran
            ran += 1
            directory = Path(tempfile.mkdtemp(dir=scratch))
            try:
                result = check_prepare(generated, directory).prepare_result
                covered["models with a submodule left whole"] += bool(result.leaves)
                covered["models with a module unrolled"] += bool(result.unrolled)
                covered["models with flattened inputs or outputs"] += result.inputs_flattened or result.outputs_flattened
                covered["functionals converted to modules"] += len(result.converted)
                covered["modules unrolled"] += len(result.unrolled)
            except Exception as error:  # counted and kept, never raised: the soak goes on
                first = (str(error).strip().splitlines() or [""])[0][:300]
                failures.append((generated, f"{type(error).__name__}: {first}", traceback.format_exc()))
                kinds[f"{type(error).__name__}: {first[:120]}"] += 1
            if ran % 100 == 0:
                print(f"{ran} examples, {len(failures)} failures, {time.perf_counter() - start:.0f} s",
                      file=sys.stderr, flush=True)

        soak()
    elapsed = time.perf_counter() - start

    if failures:
        options.failures.mkdir(parents=True, exist_ok=True)
        for i, (generated, summary, trace) in enumerate(failures):
            header = "".join(f"# {line}\n" for line in trace.rstrip().splitlines())
            (options.failures / f"failure_{i:04d}.py").write_text(header + "\n" + str(generated), encoding="utf-8")
    print(f"{ran} examples, {len(failures)} failures in {elapsed:.0f} s")
    for what, n in covered.items():
        print(f"  {what}: {n}")
    for kind, n in kinds.most_common():
        print(f"  {n:5d}  {kind}")

    if not options.no_write:
        rows = "".join(f"| {n} | `{kind}` |\n" for kind, n in kinds.most_common()) or "| 0 | none |\n"
        write_section(
            "fuzz",
            f"""## Fuzz soak

`.venv/bin/python benchmarks/fuzz_soak.py --examples {options.examples} --seed {options.seed}` on {machine()}, one thread.
Random models from the grammar in `tests/fuzz/grammar.py` (functionals and operators from the conversion
table, in-place ops, reused modules in loops and across parents, containers, nested blocks with
tuple/list/dict/keyword/`*args` I/O, tied weights, data-dependent gates, modules without submodules,
fx-wrapped helpers, einops, `isinstance`/`is_tensor` branches, random draws under one seed); each example checks every property of
`tests/fuzz/properties.py`: prepare verifies, outputs bit-identical on a third input, QR003/QR004 only
inside leaves, the original model unchanged, save/load round trip. Target: 0 failures. Each bug the fuzzer
found is a regression test in `tests/test_fuzz_regressions.py`; CI runs 200 fixed examples (`tests/test_fuzz_prepare.py`).

| examples run | failures | time (s) | examples/s |
|---:|---:|---:|---:|
| {ran} | {len(failures)} | {elapsed:.0f} | {ran / elapsed:.1f} |

| failures | kind |
|---:|---|
{rows}
What the examples exercised: {", ".join(f"{n} {what}" for what, n in covered.items())}.""",
        )
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
