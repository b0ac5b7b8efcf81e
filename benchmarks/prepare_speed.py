"""How fast is `qready.prepare` next to a bare trace and next to AIMET's preparer?

Same process, same models: `torch.fx.symbolic_trace` (the bare floor; it
fails on models it cannot trace), `qready.prepare(verify=False,
share_weights=True)` (like symbolic_trace, no copy of the weights),
`qready.prepare(verify=False)`,
`qready.prepare()` with its bit-exact verification and re-check, and AIMET's
`prepare_model` when aimet-torch is installed (`pip install -e '.[interop]'`).
Target: prepare without verification <= 2x symbolic_trace and no slower than
AIMET's prepare_model.

    .venv/bin/python benchmarks/prepare_speed.py [--repeat 3] [--models resnet50,vit_b_16,convnext_tiny,tiny_bert]
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from pathlib import Path

import torch
import torch.fx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import best_of, machine, models, write_section  # noqa: E402

import qready  # noqa: E402
from qready.example_inputs import as_example  # noqa: E402


def aimet_prepare():  # type: ignore[no-untyped-def]
    try:
        from aimet_torch.model_preparer import prepare_model
    except Exception:  # aimet is optional: the column says n/a
        return None
    return prepare_model


def timed(fn, repeat: int) -> float | None:  # type: ignore[no-untyped-def]
    try:
        fn()
    except Exception:  # the tool cannot handle this model: no time to report
        return None
    return best_of(fn, repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--models", default="resnet50,vit_b_16,convnext_tiny,tiny_bert")
    options = parser.parse_args()
    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)
    torch.set_num_threads(2)
    aimet = aimet_prepare()
    rows = []
    for name, model, inputs in models(options.models.split(",")):
        example = as_example(inputs)
        t_trace = timed(lambda: torch.fx.symbolic_trace(model), options.repeat)
        t_shared = timed(lambda: qready.prepare(model, example, verify=False, share_weights=True), options.repeat)
        t_plain = timed(lambda: qready.prepare(model, example, verify=False), options.repeat)
        t_verified = timed(lambda: qready.prepare(model, example), options.repeat)
        t_aimet = timed(lambda: aimet(model), options.repeat) if aimet else None
        rows.append((name, t_trace, t_shared, t_plain, t_verified, t_aimet))
        print(name, *(f"{t:.3f}" if t is not None else "n/a" for t in rows[-1][1:]), flush=True)

    def cell(t: float | None) -> str:
        return f"{t:.3f}" if t is not None else "fails"

    def ratio(a: float | None, b: float | None) -> str:
        return f"{a / b:.2f}x" if a is not None and b is not None else "n/a"

    lines = [
        "## prepare speed",
        "",
        f"`.venv/bin/python benchmarks/prepare_speed.py --repeat {options.repeat}` on {machine()}; best of "
        f"{options.repeat}, seconds. AIMET: aimet-torch {'installed' if aimet else 'not installed'}."
        " Targets: prepare without verification <= 2x symbolic_trace, and no slower than AIMET.",
        "",
        "| model | symbolic_trace | qready, shared weights | qready (no verify) | qready (verified) | AIMET prepare_model"
        " | shared / trace | shared / AIMET | no verify / AIMET |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        *[
            f"| {n} | {cell(t)} | {cell(s)} | {cell(p)} | {cell(v)} | {cell(a)} | {ratio(s, t)} | {ratio(s, a)} | {ratio(p, a)} |"
            for n, t, s, p, v, a in rows
        ],
        "",
        "symbolic_trace and AIMET's preparer return graphs around the user's own modules and weights;"
        " qready by default copies the weights first (so that batch-norm folding or training on the"
        " prepared model cannot change the original), and `share_weights=True` is the like-for-like"
        " comparison. symbolic_trace and AIMET fail on the Hugging Face model.",
    ]
    write_section("prepare-speed", "\n".join(lines))


if __name__ == "__main__":
    main()
