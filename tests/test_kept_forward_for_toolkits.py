"""A model whose own forward stays Python (a detector's untraceable root) under a toolkit target:
custom modules without children are prepared too, the root takes and returns flat tensors for the
toolkit, and the model pickles (torch.save, AIMET's sim.export)."""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

import qready
from qready.reporting.prepare_text import emit_prepare_text


class Normalize(nn.Module):
    """torchvision's GeneralizedRCNNTransform in small: a custom module without children that computes."""

    def forward(self, images: list[torch.Tensor]) -> torch.Tensor:
        return torch.stack([(image - 0.5) * 2.0 for image in images])


class Batch:
    """A plain object around a tensor, as torchvision's ImageList: torch.fx cannot pass it to a module."""

    def __init__(self, tensors: torch.Tensor) -> None:
        self.tensors = tensors


class TinyDetector(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.transform = Normalize()
        self.keep = nn.Identity()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.head = nn.Conv2d(4, 2, 1)

    def forward(self, images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        batch = self.keep(Batch(self.transform(images)))  # the root forward stays Python
        scores = self.head(torch.relu(self.conv(batch.tensors))).flatten(2).sigmoid()
        return [{"scores": s[0][s[0] > 0.5], "best": s.amax(0)} for s in scores]


def _images(seed: int) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.rand(3, 8, 8, generator=generator)]


def test_custom_module_without_children_under_a_kept_forward_is_prepared() -> None:
    model = TinyDetector().eval()
    prepared = qready.prepare(model, (_images(0),))
    assert isinstance(prepared, TinyDetector) and not prepared.saveable  # the root kept its forward
    assert any(change.module.startswith("transform.") for change in prepared.prepare_result.changes)
    report = qready.check(prepared, (_images(1),), select=["QR003", "QR004"])
    assert report.coverage.covered == report.coverage.total
    with torch.no_grad():
        got, want = prepared(_images(1)), model(_images(1))
    assert all(torch.equal(got[0][key], want[0][key]) for key in want[0])


def test_kept_forward_pickles() -> None:
    model = TinyDetector().eval()
    prepared = qready.prepare(model, (_images(0),))
    buffer = io.BytesIO()
    torch.save(prepared, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    assert isinstance(loaded, TinyDetector) and isinstance(loaded, qready.Prepared)
    with torch.no_grad():
        got, want = loaded(_images(2)), model(_images(2))
    assert all(torch.equal(got[0][key], want[0][key]) for key in want[0])


def test_aimet_target_gives_the_kept_forward_flat_tensors_and_the_sim_builds() -> None:
    pytest.importorskip("aimet_torch", reason="the aimet target needs aimet-torch: pip install -e '.[interop]'")
    from qready.example_inputs import Example
    from qready.targets import get_target
    from qready.targets.coverage import sim_coverage

    model = TinyDetector().eval()
    prepared = qready.prepare(model, (_images(0),), target="aimet")
    target = get_target("aimet")
    assert not [path for path, m in prepared.named_modules() if target.refuses(m)]
    args, kwargs = prepared.arguments_for(_images(1))
    assert kwargs == {} and all(isinstance(a, torch.Tensor) for a in args)
    with torch.no_grad():
        flat = prepared(*args)
        assert isinstance(flat, tuple) and all(isinstance(t, torch.Tensor) for t in flat)
        rebuilt, want = prepared.call_original(_images(1)), model(_images(1))
    assert all(torch.equal(rebuilt[0][key], want[0][key]) for key in want[0])
    assert prepared.prepare_result.inputs_flattened and prepared.prepare_result.outputs_flattened

    sim = target.build_sim(prepared, Example(args))
    sim.compute_encodings(lambda m: m(*args))
    coverage = sim_coverage(sim.model, Example(args), target)
    assert coverage.total > 0 and coverage.covered == coverage.total


class Anchors(nn.Module):
    """torchvision's DefaultBoxGenerator in small: a module without children that returns a list with one
    tensor per image (one image here)."""

    def forward(self, batch: Batch) -> list[torch.Tensor]:
        height, width = batch.tensors.shape[-2:]
        size = torch.tensor([width, height], dtype=torch.float32)
        boxes = batch.tensors.flatten(2).mean(1)
        if boxes.abs().sum() < 0:  # a branch on the data (never taken): torch.fx cannot trace it, a leaf
            size = -size
        return [torch.stack([boxes[i] / size[0], boxes[i] / size[1]], -1) for i in range(boxes.shape[0])]


class TinyAnchoredDetector(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.transform = Normalize()
        self.anchors = Anchors()
        self.conv = nn.Conv2d(3, 2, 3, padding=1)

    def forward(self, images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        batch = Batch(self.transform(images))
        anchors = self.anchors(batch)  # a module left whole, called on a plain object: the root stays Python
        deltas = self.conv(batch.tensors).flatten(2).transpose(1, 2)
        # as SSD's postprocess: one image's anchors at a time, indexed by column
        return [{"boxes": d + a[:, 0:1] - a[:, 1:2]} for d, a in zip(deltas, anchors)]


def test_aimet_export_of_a_kept_forward_whose_submodule_returns_a_list_of_one_tensor() -> None:
    # AIMET's sim.export wraps every module in a marker for ONNX node names, and the marker returns a list
    # of one tensor as the bare tensor: SSD's anchors (one image) became one tensor and the postprocess
    # iterated its rows (IndexError: too many indices for tensor of dimension 1).
    pytest.importorskip("aimet_torch", reason="the aimet target needs aimet-torch: pip install -e '.[interop]'")
    import tempfile

    import onnxruntime as ort

    from qready.example_inputs import Example
    from qready.targets import get_target

    model = TinyAnchoredDetector().eval()
    prepared = qready.prepare(model, (_images(0),), target="aimet")
    assert isinstance(prepared, TinyAnchoredDetector)
    [tupled] = [c for c in prepared.prepare_result.changes if c.kind == "tupled"]
    assert tupled.module == "anchors"
    text = io.StringIO()
    emit_prepare_text(prepared.prepare_result, text)
    assert "<target>  tupled      anchors returns its list as a tuple: aimet passes" in text.getvalue()
    # what QR005 still finds at anchors (its plain-object input) the original has too
    [anchors] = [f for f in prepared.prepare_result.residual if f.module == "anchors"]
    assert "output" not in anchors.message and anchors in prepared.prepare_result.inherited
    with torch.no_grad():
        assert isinstance(prepared.anchors(Batch(torch.rand(1, 3, 8, 8))), tuple)
        rebuilt, want = prepared.call_original(_images(1)), model(_images(1))
    assert torch.equal(rebuilt[0]["boxes"], want[0]["boxes"])

    target = get_target("aimet")
    args, _ = prepared.arguments_for(_images(1))
    sim = target.build_sim(prepared, Example(args))
    sim.compute_encodings(lambda m: m(*args))
    with tempfile.TemporaryDirectory() as directory:
        files = sim.export(directory, "model", Example(args))
        assert "model.onnx" in files
        session = ort.InferenceSession(f"{directory}/model.onnx", providers=["CPUExecutionProvider"])
        [boxes] = session.run(None, {session.get_inputs()[0].name: args[0].numpy()})
    assert boxes.shape == tuple(want[0]["boxes"].shape)


class AppendingDetector(TinyAnchoredDetector):
    def forward(self, images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        batch = Batch(self.transform(images))
        anchors = self.anchors(batch)
        anchors.append(anchors[0] * 2.0)  # the model's own code needs the list
        deltas = self.conv(batch.tensors).flatten(2).transpose(1, 2)
        return [{"boxes": deltas[0] + anchors[1][:, 0:1]}]


def test_a_list_the_model_appends_to_stays_a_list() -> None:
    pytest.importorskip("aimet_torch", reason="the aimet target needs aimet-torch: pip install -e '.[interop]'")
    model = AppendingDetector().eval()
    prepared = qready.prepare(model, (_images(0),), target="aimet")
    assert not [c for c in prepared.prepare_result.changes if c.kind == "tupled"]
    with torch.no_grad():
        assert isinstance(prepared.anchors(Batch(torch.rand(1, 3, 8, 8))), list)
        rebuilt, want = prepared.call_original(_images(1)), model(_images(1))
    assert torch.equal(rebuilt[0]["boxes"], want[0]["boxes"])
