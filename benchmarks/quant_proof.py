"""Quantized end to end: the original model, AIMET's ``prepare_model`` and qready's ``prepare``, side by side.

For each zoo model and each of the three versions of it: does AIMET's W8A8
``QuantizationSimModel`` build; of the value-changing ops one forward of the
sim runs, how many run inside a quantized module (the op counting of
``qready check``'s coverage, taken on the sim itself); the SQNR of the
quantized outputs against that version's float outputs on a held-out input
after ``compute_encodings`` on a calibration set (the same seeded draws for
all three); and whether ``sim.export`` writes ONNX + encodings that
onnxruntime runs. qready's version is ``qready.prepare(model, target="aimet")``.
Weights are random (``weights=None``, ``torch.manual_seed(0)``).

Each model runs in its own subprocess with one torch thread, and a result is
stored per model, so a run can be sliced and resumed::

    python benchmarks/quant_proof.py --slice 1/4      # a quarter of the models not yet measured
    python benchmarks/quant_proof.py --only 'tv/res'  # by regex
    python benchmarks/quant_proof.py --report         # write the BENCHMARKS.md section from all results
    python benchmarks/quant_proof.py --placement tv/efficientnet_b0  # qready's sim with AIMET's placement

``--placement`` measures the explanation of a model where qready's SQNR is below AIMET's: qready's
prepared model under the same sim, changed only where the two placements differ (``PLACEMENTS``).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, run_worker, write_record, write_section
from zoo import _positional, _quiet, _shorten
from zoo_models import ZooModel, zoo

RESULTS = Path(__file__).resolve().parent / "results" / "quant_proof"
VERSIONS = ("original", "aimet", "qready")
CALIBRATION_SEEDS = (101, 102, 103)
HELD_OUT_SEED = 200
NORMALIZE_SEED = 300

#: The models, across families; inputs smaller than the zoo's where the model takes them.
MODELS: dict[str, tuple[int, ...] | None] = {
    "tv/resnet18": (1, 3, 64, 64),
    "tv/mobilenet_v2": (1, 3, 64, 64),
    "tv/mobilenet_v3_small": (1, 3, 64, 64),
    "tv/efficientnet_b0": (1, 3, 64, 64),
    "tv/regnet_x_400mf": (1, 3, 64, 64),
    "tv/shufflenet_v2_x0_5": (1, 3, 64, 64),
    "tv/squeezenet1_1": (1, 3, 64, 64),
    "tv/mnasnet0_5": (1, 3, 64, 64),
    "tv/googlenet": (1, 3, 64, 64),
    "tv/densenet121": (1, 3, 64, 64),
    "timm/convnext_atto": (1, 3, 64, 64),
    "timm/ghostnet_100": (1, 3, 64, 64),
    "timm/repvgg_a0": (1, 3, 64, 64),
    "tv/vit_b_16": None,  # its position embedding fixes 224x224
    "tv/swin_t": (1, 3, 112, 112),
    "timm/vit_tiny_patch16_224": None,
    "timm/deit_tiny_patch16_224": None,
    "hf/vit": None,
    "hf/yolos": None,  # a detector whose forward ends at boxes and logits (no NMS): see EXTRA
    "tv/ssdlite320_mobilenet_v3_large": None,
    "tv/lraspp_mobilenet_v3_large": (1, 3, 64, 64),
    "hf/bert": None,
    "hf/distilbert": None,
    "hf/gpt2": None,
    "hf/llama": None,
}


def _yolos() -> torch.nn.Module:
    import transformers

    config = transformers.YolosConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, image_size=[64, 64],
        patch_size=16, num_detection_tokens=10, num_labels=5,
    )
    return transformers.YolosForObjectDetection(config)


#: Models this benchmark adds to the zoo's.
EXTRA = [ZooModel("hf/yolos", "hf-vision", _yolos, lambda: {"pixel_values": torch.randn(1, 3, 64, 64)})]


def entries() -> list[ZooModel]:
    by_name = {m.name: m for m in [*zoo(), *EXTRA]}
    chosen = []
    for name, shape in MODELS.items():
        entry = by_name[name]
        if shape is not None:
            entry = ZooModel(entry.name, entry.family, entry.build, lambda shape=shape: (torch.randn(*shape),))
        chosen.append(entry)
    return chosen


# --- one model, three versions (in the worker process) ---------------------------------------------


def _randomize_zero_weights(model: torch.nn.Module) -> list[str]:
    """Draw the weights a model initializes to all zeros (torchvision's ViT head, YOLOS's detection tokens and
    position embeddings) from N(0, 0.02): an all-zero output, or tokens that are zero before a LayerNorm,
    would make SQNR meaningless. Biases (one dimension) stay as they are."""
    generator = torch.Generator().manual_seed(0)
    drawn = []
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if parameter.dim() >= 2 and parameter.is_floating_point() and not parameter.any():
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.02)
                drawn.append(name)
    return drawn


def _normalize_batch_norms(model: torch.nn.Module, example: Any) -> int:
    """Give every batch norm the statistics of its own input on one seeded draw (one forward, in order).

    A random-weight CNN whose batch norms keep their initial statistics (mean 0, variance 1) lets its
    activations shrink layer after layer: torchvision's mobilenet_v2 ends at 1e-9, below any 8-bit
    step, and every version's SQNR is 0 dB. Trained models have the statistics of their data; this
    gives them the statistics of this data. Channels seen once (1x1 maps, batch 1) keep theirs.
    """
    def take_statistics(module: torch.nn.Module, args: tuple[Any, ...]) -> None:
        x = args[0]
        dims = [d for d in range(x.dim()) if d != 1]
        if x.dim() < 2 or x.numel() // x.shape[1] < 2:
            return
        module.running_mean.copy_(x.mean(dims))
        module.running_var.copy_(x.var(dims))

    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    hooks = [m.register_forward_pre_hook(take_statistics) for m in norms]
    try:
        with torch.no_grad(), _quiet():
            example.call(model)
    finally:
        for hook in hooks:
            hook.remove()
    return len(norms)


def measure(entry: ZooModel) -> dict[str, Any]:
    import qready
    from qready.example_inputs import Example, as_example, fresh_like

    model = entry.model()
    record_zero = _randomize_zero_weights(model)
    normalized = _normalize_batch_norms(model, fresh_like(as_example(entry.example()), NORMALIZE_SEED))
    example = as_example(entry.example())
    record: dict[str, Any] = {"name": entry.name, "family": entry.family, "versions": {}, "zero_weights_drawn": record_zero,
                              "batch_norms_normalized": normalized}
    for version in VERSIONS:
        start = time.perf_counter()
        try:
            built, to_inputs = _version(version, model, example)
        except Exception as error:  # noqa: BLE001 - a failure is a result here
            record["versions"][version] = {"prepared": False, "error": _one_line(error)}
            continue
        runs = {
            "example": to_inputs(example),
            "calibration": [to_inputs(fresh_like(example, seed)) for seed in CALIBRATION_SEEDS],
            "held_out": to_inputs(fresh_like(example, HELD_OUT_SEED)),
        }
        result = _quantize(built, runs)
        result["time_s"] = round(time.perf_counter() - start, 2)
        record["versions"][version] = result
    del qready, Example
    return record


def _version(version: str, model: torch.nn.Module, example: Any) -> tuple[torch.nn.Module, Any]:
    """The model as this version has it, and how to turn the zoo's inputs into its positional inputs."""
    import qready
    from qready.example_inputs import Example

    if version == "qready":
        with _quiet():
            prepared = qready.prepare(model, example, target="aimet").eval()
        # flat tensors, for a graph and (under target="aimet") for a model that kept its own forward
        return prepared, lambda e: Example(*prepared.arguments_for(*e.args, **e.kwargs))
    work = copy.deepcopy(model)
    if version == "aimet":
        from aimet_torch.model_preparer import prepare_model

        with _quiet():
            work = prepare_model(work).eval()
    return work, lambda e: Example(_positional(model, e))


def _quantize(model: torch.nn.Module, runs: dict[str, Any]) -> dict[str, Any]:
    from qready.example_inputs import tensor_leaves
    from qready.targets import get_target
    from qready.targets.coverage import sim_coverage

    target = get_target("aimet")
    out: dict[str, Any] = {"prepared": True, "sim": False}
    held_out = runs["held_out"]
    try:
        with torch.no_grad(), _quiet():
            reference = _floats(tensor_leaves(held_out.call(model)))
            sim = target.build_sim(model, runs["example"])
            sim.compute_encodings(lambda m: [run.call(m) for run in runs["calibration"]])
    except Exception as error:  # noqa: BLE001 - a failure is a result here
        out["error"] = _one_line(error)
        return out
    out["sim"] = True
    try:
        with _quiet():
            coverage = sim_coverage(sim.model, held_out, target)
        out["covered"], out["total"] = coverage.covered, coverage.total
        out["uncovered"] = sorted({f"{op.module or '<root>'}: {op.op}" for op in coverage.uncovered})[:8]
        with torch.no_grad(), _quiet():
            quantized = _floats(tensor_leaves(held_out.call(sim.model)))
        out["sqnr_db"] = _sqnr(reference, quantized)
    except Exception as error:  # noqa: BLE001 - a failure is a result here
        out["run_error"] = _one_line(error)
        return out
    out["export"] = _export(sim, runs["example"], held_out, reference)
    return out


def _export(sim: Any, example: Any, held_out: Any, reference: torch.Tensor) -> dict[str, Any]:
    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="qready-quant-") as directory:
        try:
            with _quiet():
                files = sim.export(directory, "model", example)
        except Exception as error:  # noqa: BLE001 - a failure is a result here
            return {"ok": False, "stage": "export", "error": _one_line(error)}
        try:
            session = ort.InferenceSession(str(Path(directory) / "model.onnx"), providers=["CPUExecutionProvider"])
            names = [i.name for i in session.get_inputs()]
            tensors = [a for a in held_out.args if isinstance(a, torch.Tensor)]
            outputs = session.run(None, {n: t.numpy() for n, t in zip(names, tensors)})
        except Exception as error:  # noqa: BLE001 - a failure is a result here
            return {"ok": False, "stage": "onnxruntime", "error": _one_line(error)}
    exported = _floats([torch.from_numpy(o) for o in outputs if o.dtype.kind == "f"])
    sqnr = _sqnr(reference, exported) if exported.shape == reference.shape else None
    return {"ok": True, "files": [f for f in files if f.endswith((".onnx", ".encodings"))], "onnx_sqnr_db": sqnr}


def _one_line(error: BaseException, limit: int = 300) -> str:
    """The error's type and text on one line (AIMET lists the unregistered classes on the lines after the first)."""
    text = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
    return _shorten(f"{type(error).__name__}: {text}" if text else type(error).__name__, limit) or ""


def _floats(tensors: list[torch.Tensor]) -> torch.Tensor:
    floats = [t.detach().float().flatten() for t in tensors if t.is_floating_point()]
    return torch.cat(floats) if floats else torch.zeros(0)


def _sqnr(reference: torch.Tensor, quantized: torch.Tensor) -> float | None:
    if reference.shape != quantized.shape or not reference.numel():
        return None
    noise = (reference - quantized).double().pow(2).sum().item()
    signal_ = reference.double().pow(2).sum().item()
    if noise == 0:
        return math.inf
    return round(10 * math.log10(signal_ / noise), 2) if signal_ > 0 else None


def _worker(name: str, out: Path) -> int:
    torch.set_num_threads(1)
    [entry] = [e for e in entries() if e.name == name]
    write_record(out, measure(entry))
    return 0


# --- where qready's SQNR is below AIMET's: the same sim with AIMET's placement --------------------------


def _split_silu(prepared: torch.nn.Module, sim: Any, target: Any) -> int:
    """Each ``nn.SiLU`` of qready's prepared model as a quantized sigmoid and a quantized multiply, as AIMET's
    ``prepare_model`` has it (its CustomSiLU): before the sim is built."""
    from qready.nn.elementwise import Mul

    count = 0
    for module in list(prepared.modules()):
        for child_name, child in list(module.named_children()):
            if type(child) is torch.nn.SiLU:
                setattr(module, child_name, _SplitSiLU(Mul()))
                count += 1
    return count


class _SplitSiLU(torch.nn.Module):
    def __init__(self, mul: torch.nn.Module) -> None:
        super().__init__()
        self.sigmoid, self.mul = torch.nn.Sigmoid(), mul

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mul(x, self.sigmoid(x))


def _layer_norm_outputs_unquantized(prepared: torch.nn.Module, sim: Any, target: Any) -> int:
    """The output quantizer of each layer norm in qready's sim removed: AIMET's prepared model calls
    ``F.layer_norm`` outside any module, so nothing rounds its output (the next conv's input quantizer is off)."""
    count = 0
    for module in sim.model.modules():
        if target.is_quantized(module) and "LayerNorm" in type(module).__name__:
            module.output_quantizers[0] = None
            count += 1
    return count


def _classifier_unquantized(prepared: torch.nn.Module, sim: Any, target: Any) -> int:
    """No quantizers on the classifier's linear in qready's sim: AIMET's prepared model calls timm's
    Linear as ``F.linear`` outside any module (with the dropout before it)."""
    count = 0
    for name, module in sim.model.named_modules():
        if (name == "classifier" or name.startswith("classifier.")) and target.is_quantized(module):
            module.output_quantizers[0] = None
            for key in module.param_quantizers:
                module.param_quantizers[key] = None
            count += 1
    return count


#: model -> (what differs in AIMET's placement, the change to qready's prepared model or sim that makes it AIMET's,
#: and whether the change is made before the sim is built).
PLACEMENTS: dict[str, tuple[str, Any, bool]] = {
    "tv/efficientnet_b0": ("each SiLU a quantized sigmoid and a quantized multiply", _split_silu, True),
    "timm/convnext_atto": ("no quantizer on the layer norms' outputs", _layer_norm_outputs_unquantized, False),
    "timm/ghostnet_100": ("no quantizers on the classifier's linear", _classifier_unquantized, False),
}


def placement(entry: ZooModel) -> dict[str, Any]:
    """AIMET's sim, qready's sim, and qready's with the placement of AIMET's (``PLACEMENTS``), on the inputs
    and adjustments of ``measure``."""
    from qready.example_inputs import as_example, fresh_like, tensor_leaves
    from qready.targets import get_target

    what, change, before_sim = PLACEMENTS[entry.name]
    target = get_target("aimet")
    model = entry.model()
    _randomize_zero_weights(model)
    _normalize_batch_norms(model, fresh_like(as_example(entry.example()), NORMALIZE_SEED))
    example = as_example(entry.example())
    record: dict[str, Any] = {"name": entry.name, "change": what}
    for key, version, changed in (("aimet", "aimet", False), ("qready", "qready", False), ("qready_changed", "qready", True)):
        built, to_inputs = _version(version, model, example)
        calibration = [to_inputs(fresh_like(example, seed)) for seed in CALIBRATION_SEEDS]
        held_out = to_inputs(fresh_like(example, HELD_OUT_SEED))
        with torch.no_grad(), _quiet():
            reference = _floats(tensor_leaves(held_out.call(built)))
            if changed and before_sim:
                record["changed_modules"] = change(built, None, target)
            sim = target.build_sim(built, to_inputs(example))
            if changed and not before_sim:
                record["changed_modules"] = change(built, sim, target)
            sim.compute_encodings(lambda m: [run.call(m) for run in calibration])
            record[f"{key}_sqnr_db"] = _sqnr(reference, _floats(tensor_leaves(held_out.call(sim.model))))
    return record


def placement_path(name: str) -> Path:
    return RESULTS / "placement" / result_path(name).name


# --- the run: one subprocess per model, resumable ------------------------------------------------


def result_path(name: str) -> Path:
    return RESULTS / (re.sub(r"[^A-Za-z0-9_.-]", "_", name) + ".json")


def run_isolated(name: str, timeout: float) -> dict[str, Any]:
    run = run_worker(Path(__file__), name, timeout=timeout, env={"OMP_NUM_THREADS": "1"})
    record = run.record or {"name": name, "versions": {}, "log_tail": run.log_tail}
    record["status"] = run.status
    record["wall_s"] = round(run.wall_s, 1)
    return record


# --- the report --------------------------------------------------------------------------------------


def _cell_sim(v: dict[str, Any] | None) -> str:
    if not v:
        return "-"
    if not v.get("prepared"):
        return "prepare failed"
    return "yes" if v.get("sim") else "no"


def _cell_ops(v: dict[str, Any] | None) -> str:
    if not v or "total" not in v:
        return "-"
    return f"{v['covered']}/{v['total']}"


def _cell_sqnr(v: dict[str, Any] | None) -> str:
    if not v or v.get("sqnr_db") is None:
        return "-"
    return "inf" if math.isinf(v["sqnr_db"]) else f"{v['sqnr_db']:.1f}"


def _cell_export(v: dict[str, Any] | None) -> str:
    if not v or "export" not in v:
        return "-"
    return "yes" if v["export"]["ok"] else f"no ({v['export']['stage']})"


def report(records: list[dict[str, Any]]) -> str:
    order = {name: i for i, name in enumerate(MODELS)}
    records = sorted(records, key=lambda r: order.get(r["name"], len(order)))
    cells = ("sim builds", "ops behind a quantizer (of N)", "SQNR W8A8 (dB)", "export + ORT run")
    makers = (_cell_sim, _cell_ops, _cell_sqnr, _cell_export)
    lines = [
        (
            "Each cell: original model / AIMET `prepare_model` / qready `prepare(target=\"aimet\")`, each under "
            "AIMET 2.42 `QuantizationSimModel` with its defaults at W8A8 (min-max encodings, its default per-tensor config). "
            "**Random weights** (`weights=None`, seed 0), with two adjustments applied to the model before all three "
            "versions: weights a model initializes to all zeros (torchvision's ViT head, YOLOS's detection tokens) "
            "are drawn from N(0, 0.02), and every batch norm takes the statistics of its own input on one seeded "
            "draw (random CNNs otherwise shrink their activations below an 8-bit step: SQNR 0 dB for all three). "
            "SQNR compares each version's sim with that version's float model on one held-out seeded input, after "
            "`compute_encodings` on the same 3 seeded calibration draws; it measures simulated W8A8 noise on "
            "random weights, not a trained model's accuracy. Ops: value-changing ops of one forward of the sim "
            "that run inside a quantized module, counted as `qready check` counts coverage. Export: `sim.export` "
            "writes ONNX + encodings and onnxruntime runs the ONNX on the held-out input. `-`: a step before failed."
        ),
        "",
        "| model | " + " | ".join(cells) + " |",
        "|---|" + "---|" * len(cells),
    ]
    for record in records:
        versions = record.get("versions", {})
        row = [" / ".join(make(versions.get(v)) for v in VERSIONS) for make in makers]
        status = "" if record.get("status") == "ok" else f" ({record.get('status')})"
        lines.append(f"| {record['name']}{status} | " + " | ".join(row) + " |")
    lines += ["", *_totals(records), "", *_remarks(records), *_failures(records)]
    return "\n".join(lines)


def _totals(records: list[dict[str, Any]]) -> list[str]:
    n = len(records)
    out = [f"Totals over {n} models:", ""]
    for version in VERSIONS:
        vs = [r.get("versions", {}).get(version) or {} for r in records]
        sims = sum(bool(v.get("sim")) for v in vs)
        full = sum("total" in v and v["covered"] == v["total"] for v in vs)
        exported = sum(bool(v.get("export", {}).get("ok")) for v in vs)
        out.append(f"- {version}: sim builds {sims}/{n}, every op behind a quantizer {full}/{n}, export + ORT run {exported}/{n}")
    both = [(r["versions"]["aimet"], r["versions"]["qready"]) for r in records
            if (r.get("versions", {}).get("aimet") or {}).get("sqnr_db") is not None
            and (r.get("versions", {}).get("qready") or {}).get("sqnr_db") is not None]
    at_least = sum(q["sqnr_db"] >= a["sqnr_db"] for a, q in both)
    out.append(f"- SQNR: qready >= AIMET prepare_model on {at_least} of the {len(both)} models where both sims ran")
    for record in records:
        versions = record.get("versions", {})
        a, q = versions.get("aimet") or {}, versions.get("qready") or {}
        if a.get("sqnr_db") is not None and q.get("sqnr_db") is not None and q["sqnr_db"] < a["sqnr_db"]:
            note = NOTES.get(record["name"], "not explained yet")
            measured = placement_path(record["name"])
            if measured.exists():
                p = json.loads(measured.read_text())
                note += (f"; measured (`--placement`): qready's prepared model with {p['change']} "
                         f"({p['changed_modules']} module{'s' if p['changed_modules'] != 1 else ''}) gives {p['qready_changed_sqnr_db']} dB, AIMET's "
                         f"{p['aimet_sqnr_db']} dB, qready's as prepared {p['qready_sqnr_db']} dB")
            out.append(f"  - {record['name']}: qready {q['sqnr_db']} dB < AIMET {a['sqnr_db']} dB: {note}")
    return out


#: Why qready's SQNR is below AIMET's where it is, as found by reading the two sims (and measured: PLACEMENTS).
NOTES = {
    "timm/convnext_atto": "AIMET's prepared model leaves timm's LayerNorm2d `F.layer_norm` outside any quantized "
    "module (103 of 120 ops behind a quantizer), so nothing rounds the 17 layer norms' outputs; qready quantizes "
    "all 120",
    "timm/ghostnet_100": "AIMET's prepared model calls the classifier (timm's Linear) as `F.linear` outside any "
    "quantized module (287 of 289 ops behind a quantizer), so the logits are not rounded; qready quantizes it",
    "tv/efficientnet_b0": "AIMET's prepare_model replaces each of the 49 nn.SiLU with its CustomSiLU, a sigmoid and "
    "a multiply quantized apart (288 ops), so the sigmoid's output in [0, 1] gets an 8-bit grid of its own; qready "
    "keeps nn.SiLU, one op (239)",
}


#: What a cell does not say by itself.
REMARKS = {
    "tv/ssdlite320_mobilenet_v3_large": "qready's export runs the whole forward, the postprocess included (box "
    "decoding, a score threshold and top-k per class, torchvision's batched NMS as ONNX NonMaxSuppression); its "
    "SQNR compares the detections after NMS, so a box that NMS keeps in one and drops in the other counts as "
    "noise. The export failed (IndexError) until qready returned the anchor generator's list as a tuple: "
    "`sim.export` wraps every module in a marker to name its ONNX nodes, and the marker hands a list of one "
    "tensor back as the bare tensor, whose rows the postprocess then took for images' anchors",
}


def _remarks(records: list[dict[str, Any]]) -> list[str]:
    out = [f"- {record['name']}: {REMARKS[record['name']]}" for record in records if record["name"] in REMARKS]
    return ["Remarks:", "", *out, ""] if out else []


def _failures(records: list[dict[str, Any]]) -> list[str]:
    out = ["Why a step failed (first error of each):", ""]
    for record in records:
        for version in VERSIONS:
            v = record.get("versions", {}).get(version) or {}
            error = v.get("error") or v.get("run_error") or (v.get("export") or {}).get("error")
            if error:
                out.append(f"- {record['name']} / {version}: {error[:220]}")
            elif v.get("uncovered"):
                out.append(f"- {record['name']} / {version}: not behind a quantizer: {', '.join(v['uncovered'][:4])}")
        if record.get("status") not in (None, "ok"):
            out.append(f"- {record['name']}: {record['status']} after {record.get('wall_s')} s")
    return out


#: The runs behind the results in BENCHMARKS.md, in order; the report prints them. The fifth was stopped
#: after tv/regnet_x_400mf (to run the placements first) and the sixth measured the models it had left.
RUNS = (
    "--only 'tv/ssdlite' --force",
    "--only 'timm/vit_tiny|hf/bert' --force",
    "--only 'tv/vit_b_16' --force",
    "--only 'tv/efficientnet_b0|timm/convnext_atto' --force",
    "--only '^(?!tv/ssdlite|tv/vit_b_16|timm/vit_tiny|hf/bert|tv/efficientnet_b0|timm/convnext_atto)' --force --timeout 900",
    "--placement tv/efficientnet_b0",
    "--placement timm/convnext_atto",
    "--only '^(?!tv/ssdlite|tv/vit_b_16|timm/vit_tiny|hf/bert|tv/efficientnet_b0|timm/convnext_atto|tv/resnet18|"
    "tv/mobilenet_v2|tv/mobilenet_v3_small|tv/regnet_x_400mf)' --force --timeout 900",
    "--placement timm/ghostnet_100",
    "--report",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="regex over model names")
    parser.add_argument("--slice", help="K/N: the K-th of N slices of the models still to measure")
    parser.add_argument("--force", action="store_true", help="measure again models that have a result")
    parser.add_argument("--timeout", type=float, default=1200, help="seconds per model")
    parser.add_argument("--report", action="store_true", help="write the BENCHMARKS.md section from all results")
    parser.add_argument("--placement", choices=sorted(PLACEMENTS),
                        help="qready's sim with AIMET's placement where qready's SQNR is below AIMET's")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.worker:
        return _worker(options.worker, Path(options.worker_out))
    if options.placement:
        torch.set_num_threads(1)
        [entry] = [e for e in entries() if e.name == options.placement]
        record = placement(entry)
        placement_path(entry.name).parent.mkdir(parents=True, exist_ok=True)
        placement_path(entry.name).write_text(json.dumps(record, indent=1))
        print(json.dumps(record))
        return 0
    if options.report:
        records = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))]
        runs = "\n".join(f"python benchmarks/quant_proof.py {run}" for run in RUNS)
        write_section(
            "quant-proof",
            f"## Quantized end to end (AIMET W8A8)\n\nRun in this order (one model per subprocess, one torch thread, "
            f"{machine()}):\n\n```sh\n{runs}\n```\n\n{report(records)}",
        )
        print(report(records))
        return 0
    names = [n for n in MODELS if not options.only or re.search(options.only, n)]
    todo = [n for n in names if options.force or not result_path(n).exists()]
    if options.slice:
        k, n = (int(x) for x in options.slice.split("/"))
        todo = todo[k - 1::n]
    RESULTS.mkdir(parents=True, exist_ok=True)
    for name in todo:
        record = run_isolated(name, options.timeout)
        result_path(name).write_text(json.dumps(record, indent=1, default=str))
        q = record.get("versions", {}).get("qready", {})
        print(f"{name}: {record['status']} {record['wall_s']} s; qready sim {q.get('sim')} "
              f"{q.get('covered')}/{q.get('total')} SQNR {q.get('sqnr_db')} export {q.get('export', {}).get('ok')}",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
