"""qready on real models from libraries outside the zoo, side by side with AIMET.

The zoo (``zoo.py``) covers torchvision, timm and Hugging Face transformers.
Code nobody here wrote uses other idioms: ``torch.is_tensor`` checks, einops,
``*args`` forwards, containers the parent's forward reads. Each model below is
built from a small config, without weights, and measured by ``zoo.measure`` in
its own subprocess (check, prepare, an independent re-verification, a re-check
of QR003/QR004, AIMET's ``prepare_model`` and ``ModelValidator``). A library
that is not installed is listed as such, not counted as a pass.

    python benchmarks/outside_models.py                 # every model, AIMET columns when installed
    python benchmarks/outside_models.py --only monai    # a subset, by name
    pip install -e '.[outside]'                         # the libraries

Writes the "Outside models" section of ``BENCHMARKS.md`` (``--no-write`` to skip).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import machine, write_section  # noqa: E402
from zoo_models import ZooModel  # noqa: E402

Build = Callable[[], torch.nn.Module]


def _diffusers_unet() -> torch.nn.Module:
    from diffusers import UNet2DModel

    return UNet2DModel(
        sample_size=16, in_channels=3, out_channels=3, layers_per_block=1, block_out_channels=(32, 64),
        down_block_types=("DownBlock2D", "AttnDownBlock2D"), up_block_types=("AttnUpBlock2D", "UpBlock2D"),
        norm_num_groups=8,
    )


def _diffusers_conditional_unet() -> torch.nn.Module:
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=16, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(32, 64),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32, norm_num_groups=8, attention_head_dim=8,
    )


def _diffusers_vae() -> torch.nn.Module:
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3, out_channels=3, block_out_channels=(16, 32), layers_per_block=1, latent_channels=4,
        norm_num_groups=8, down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
    )


def _smp_unet() -> torch.nn.Module:
    import segmentation_models_pytorch as smp

    return smp.Unet(encoder_name="resnet18", encoder_weights=None, classes=2)


def _smp_fpn() -> torch.nn.Module:
    import segmentation_models_pytorch as smp

    return smp.FPN(encoder_name="resnet18", encoder_weights=None, classes=2)


def _monai_unet() -> torch.nn.Module:
    from monai.networks.nets import UNet

    return UNet(spatial_dims=2, in_channels=1, out_channels=2, channels=(8, 16, 32), strides=(2, 2), num_res_units=1)


def _monai_swin_unetr() -> torch.nn.Module:
    from monai.networks.nets import SwinUNETR

    return SwinUNETR(in_channels=1, out_channels=2, feature_size=12, spatial_dims=2, depths=(1, 1, 1, 1),
                     num_heads=(1, 1, 1, 1))


def _open_clip() -> torch.nn.Module:
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

    return CLIP(
        embed_dim=32,
        vision_cfg=CLIPVisionCfg(layers=1, width=32, head_width=16, patch_size=8, image_size=32),
        text_cfg=CLIPTextCfg(context_length=8, vocab_size=64, width=32, heads=2, layers=1),
    )


def _kornia_hardnet() -> torch.nn.Module:
    from kornia.feature import HardNet

    return HardNet(pretrained=False)


def _kornia_sobel() -> torch.nn.Module:
    from kornia.filters import Sobel

    return Sobel()


def _x_transformers() -> torch.nn.Module:
    from x_transformers import Encoder, TransformerWrapper

    return TransformerWrapper(num_tokens=64, max_seq_len=16, attn_layers=Encoder(dim=32, depth=1, heads=2))


def _vector_quantize() -> torch.nn.Module:
    from vector_quantize_pytorch import VectorQuantize

    return VectorQuantize(dim=16, codebook_size=32)


def _tokens(*shape: int, high: int = 64) -> Callable[[], tuple[torch.Tensor, ...]]:
    return lambda: (torch.randint(0, high, shape),)


def _tensors(*shapes: tuple[int, ...]) -> Callable[[], tuple[torch.Tensor, ...]]:
    return lambda: tuple(torch.randn(*shape) for shape in shapes)


MODELS: list[tuple[str, str, Build, Callable[[], Any]]] = [
    # (name, the library's import name, builder, example inputs)
    ("diffusers/UNet2DModel", "diffusers", _diffusers_unet, lambda: (torch.randn(1, 3, 16, 16), torch.tensor([10]))),
    ("diffusers/UNet2DConditionModel", "diffusers", _diffusers_conditional_unet,
     lambda: (torch.randn(1, 4, 16, 16), torch.tensor([10]), torch.randn(1, 5, 32))),
    ("diffusers/AutoencoderKL", "diffusers", _diffusers_vae, _tensors((1, 3, 32, 32))),
    ("smp/Unet-resnet18", "segmentation_models_pytorch", _smp_unet, _tensors((1, 3, 64, 64))),
    ("smp/FPN-resnet18", "segmentation_models_pytorch", _smp_fpn, _tensors((1, 3, 64, 64))),
    ("monai/UNet", "monai", _monai_unet, _tensors((1, 1, 32, 32))),
    ("monai/SwinUNETR", "monai", _monai_swin_unetr, _tensors((1, 1, 64, 64))),
    ("open_clip/CLIP", "open_clip", _open_clip, lambda: (torch.randn(1, 3, 32, 32), torch.randint(0, 64, (1, 8)))),
    ("kornia/HardNet", "kornia", _kornia_hardnet, _tensors((2, 1, 32, 32))),
    ("kornia/Sobel", "kornia", _kornia_sobel, _tensors((1, 3, 32, 32))),
    ("x_transformers/TransformerWrapper", "x_transformers", _x_transformers, _tokens(1, 16)),
    ("vector_quantize_pytorch/VectorQuantize", "vector_quantize_pytorch", _vector_quantize, _tensors((1, 8, 16))),
    ("einops/SwinUNETR-style attention", "einops", lambda: _einops_block(), _tensors((2, 16, 32))),
]


def _einops_block() -> torch.nn.Module:
    """einops-based attention of the kind x-transformers and monai write: rearrange around a
    projection, reduce at the end (einops ships no models of its own)."""
    import einops
    from torch import nn

    class Attention(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.qkv, self.out = nn.Linear(32, 96), nn.Linear(32, 32)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            q, k, v = einops.rearrange(self.qkv(x), "b n (three h d) -> three b h n d", three=3, h=4)
            attention = torch.softmax(torch.einsum("bhid,bhjd->bhij", q, k) * 8 ** -0.5, dim=-1)
            out = einops.rearrange(attention @ v, "b h n d -> b n (h d)")
            return einops.reduce(self.out(out), "b n c -> b c", "mean")

    return Attention()


def entries() -> list[tuple[ZooModel, str]]:
    return [(ZooModel(name, "outside", build, inputs), library) for name, library, build, inputs in MODELS]


def _installed(library: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(library) is not None


def _worker(name: str, out: Path, aimet: bool) -> int:
    import logging

    import zoo

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    logging.getLogger().setLevel(logging.ERROR)
    [entry] = [e for e, _ in entries() if e.name == name]
    record = zoo.measure(entry, onnx=False, aimet=aimet, on_stage=lambda r: out.write_text(json.dumps(r, default=str)))
    out.write_text(json.dumps(record, default=str))
    return 0


def _run(entry: ZooModel, aimet: bool, timeout: float) -> dict[str, Any]:
    from zoo import verdict

    with tempfile.TemporaryDirectory(prefix="qready-outside-") as tmp:
        out = Path(tmp) / "record.json"
        command = [sys.executable, str(Path(__file__).resolve()), "--worker", entry.name, "--worker-out", str(out)]
        command += [] if aimet else ["--no-aimet"]
        start = time.perf_counter()
        try:
            done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
            status = "ok" if done.returncode == 0 else f"exit {done.returncode}"
            log = (done.stdout + done.stderr)[-2000:]
        except subprocess.TimeoutExpired:
            status, log = "timeout", ""
        try:
            record = json.loads(out.read_text())
        except (OSError, json.JSONDecodeError):
            record = {"name": entry.name, "stage": "start"}
        if status != "ok" or record.get("stage") != "done":
            record["status"] = status if status != "ok" else "incomplete"
            record["log_tail"] = log
            record["verdict"] = verdict(record)
        record["wall_s"] = round(time.perf_counter() - start, 1)
        return record


def _row(name: str, library: str, record: dict[str, Any] | None) -> str:
    if record is None:
        return f"| {name} | {library} not installed | | | | |"
    v = record.get("verdict", {})
    prep = record.get("prepare") or {}
    aimet = record.get("aimet") or {}

    def mark(value: Any) -> str:
        return {True: "yes", False: "no", None: "-"}.get(value, str(value))

    reason = (v.get("reason") or "").replace("|", "/")[:120]
    leaves = len(prep.get("leaves") or [])
    aimet_text = mark(v.get("aimet_identical")) if aimet else "-"
    if aimet and aimet.get("prepare") != "ok":
        aimet_text = "fails: " + (aimet.get("prepare_error") or "")[:60].replace("|", "/")
    return (f"| {name} | {mark(v.get('prepare_pass'))} | {mark(v.get('identical'))} | {leaves} | "
            f"{aimet_text} | {reason} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", metavar="REGEX", help="models whose name matches")
    parser.add_argument("--no-aimet", action="store_true", help="leave the AIMET columns out")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per model")
    parser.add_argument("--no-write", action="store_true", help="do not update BENCHMARKS.md")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    aimet = not args.no_aimet and _installed("aimet_torch")
    if args.worker:
        return _worker(args.worker, args.worker_out, aimet)

    rows, passed, measured = [], 0, 0
    for entry, library in entries():
        if args.only and not re.search(args.only, entry.name):
            continue
        record = _run(entry, aimet, args.timeout) if _installed(library) else None
        if record is not None:
            measured += 1
            passed += bool(record.get("verdict", {}).get("prepare_pass"))
        rows.append(_row(entry.name, library, record))
        print(rows[-1], flush=True)
    command = "python benchmarks/outside_models.py" + "".join(f" {a}" for a in (argv or sys.argv[1:]))
    body = "\n".join([
        "## Outside models",
        "",
        f"`{command}` on {machine()}. Real models from libraries outside torchvision, timm and transformers, "
        "built from small configs without weights, one subprocess each (`zoo.measure`: prepare verified "
        "bit-identical, again on an input the benchmark draws, QR003/QR004 re-checked; QR001 skipped). "
        "Target: prepare passes (bit-identical and clean) on 100%.",
        "",
        f"**{passed}/{measured} pass.**",
        "",
        "| model | prepare passes | bit-identical | leaves | AIMET prepare_model bit-identical | reason |",
        "|---|---|---|---:|---|---|",
        *rows,
    ])
    if not args.no_write:
        write_section("outside-models", body)
    print(f"{passed}/{measured} pass")
    return 0


if __name__ == "__main__":
    sys.exit(main())
