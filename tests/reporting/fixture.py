"""The one report every emitter is snapshot-tested against, built by hand.

Paths are relative (to ``DATA``, where ``models/sample_net.py`` holds the lines
the findings point at), so the golden files do not depend on the checkout.
Values carry the characters each format must escape: ``%``, ``:``, ``,``,
newlines, ``<``, ``&`` and quotes.
"""

from __future__ import annotations

from pathlib import Path

from qready.findings import Coverage, Finding, Report, Severity
from qready.passes.base import Change
from qready.prepared import PrepareResult
from qready.tracing import TraceFailure
from qready.verify import OutputDiff

__all__ = [
    "DATA", "SOURCE", "MISSING", "LIBRARY", "MODULE_TYPES", "REPORTS", "fixture_report", "clean_report", "fixture_prepare_result",
]

DATA = Path(__file__).resolve().parent / "data"
SOURCE = "models/sample_net.py"
MISSING = "models/heads, v2/aux: head.py"  # not on disk, and full of characters to escape
# library code, where one machine installed it: reports name it by the library's module path
LIBRARY = "/opt/venv/lib/python3.11/site-packages/torchvision/models/resnet.py"

MODULE_TYPES = {
    "": "SampleNet",
    "stem": "Conv2d",
    "blocks": "Sequential",
    "blocks.0": "Block",
    "blocks.0.conv": "Conv2d",
    "blocks.0.act": "ReLU",
    "blocks.1": "Block",
    "blocks.1.conv": "Conv2d",
    "blocks.1.act": "ReLU",
    "head": "Linear",
    "aux": "AuxHead",
}


def fixture_report() -> Report:
    findings = [
        Finding(
            "QR001", "onnx-export", Severity.ERROR,
            "torch.onnx.export (dynamo) failed: Could not guard on data-dependent expression Eq(u0, 1) at 100%",
            op="torch.onnx.export",
            fix="replace the unsupported construct named here, or try --onnx-exporter torchscript",
            details=(("exporter", "dynamo"), ("log", "Traceback:\n  guard <u0> & friends\r\nGuardOnDataDependentSymNode")),
        ),
        Finding(
            "QR002", "jit-trace", Severity.WARNING,
            "TracerWarning: Converting a tensor to a Python boolean might cause the trace to be incorrect.\n"
            "We can't record the data flow of Python values",
            op="torch.jit.trace", file=SOURCE, line=29,
            fix="replace the branch on a tensor value by torch.where",
        ),
        Finding(
            "QR003", "functional-op", Severity.ERROR,
            "torch.Tensor.add called in the forward of 'blocks.0'; no module wraps it, "
            "so no quantizer can be placed on its output",
            module="blocks.0", op="torch.Tensor.add", file=SOURCE, line=16,
            fix="use qready.nn.Add()", details=(("replacement", "qready.nn.Add()"),),
        ),
        Finding(
            "QR003", "functional-op", Severity.ERROR,
            "torch.Tensor.add called in the forward of 'blocks.1'; no module wraps it, "
            "so no quantizer can be placed on its output",
            module="blocks.1", op="torch.Tensor.add", file=SOURCE, line=16,
            fix="use qready.nn.Add()", details=(("replacement", "qready.nn.Add()"),),
        ),
        Finding(
            "QR003", "functional-op", Severity.ERROR,
            "torch.nn.functional.relu called in the forward of the root model (2 calls); no module wraps it, "
            "so no quantizer can be placed on its output",
            op="torch.nn.functional.relu", file=SOURCE, line=27, count=2,
            fix="use nn.ReLU()", details=(("replacement", "nn.ReLU()"),),
        ),
        Finding(
            "QR004", "reused-module", Severity.ERROR,
            "module 'blocks.0.act' (ReLU) runs 2 times in one forward; it is stateless",
            module="blocks.0.act", op="torch.nn.modules.activation.ReLU", file=SOURCE, line=16, count=2,
            fix="define one instance per call",
            details=(
                ("call_sites", [f"{SOURCE}:15", f"{SOURCE}:16"]),
                ("paths", ["blocks.0.act"]),
                ("holds_parameters", False),
            ),
        ),
        Finding(
            "QR003", "functional-op", Severity.ERROR,
            "torch.Tensor.add called in the forward of 'blocks.1'; no module wraps it, "
            "so no quantizer can be placed on its output",
            module="blocks.1", op="torch.Tensor.add", file=LIBRARY, line=102,
            fix="use qready.nn.Add()", details=(("replacement", "qready.nn.Add()"),),
        ),
        Finding(
            "QR005", "non-tensor-io", Severity.ERROR,
            "'aux' (AuxHead): output output is dict with keys 'logits', '<extra>' & \"more\"",
            module="aux", op="AuxHead", file=MISSING, line=7,
            fix="return a tensor or a tuple of tensors",
            details=(("values", [{"side": "output", "path": "output", "kind": "dict",
                                   "description": "dict with keys 'logits', '<extra>' & \"more\""}]),),
        ),
        Finding(
            "QR005", "non-tensor-io", Severity.WARNING,
            "model SampleNet: input scale is float 0.5",
            op="SampleNet", file=SOURCE, line=26,
            fix="pass the value as a tensor, or fix it in __init__",
            details=(("values", [{"side": "input", "path": "scale", "kind": "float", "description": "float 0.5"}]),),
        ),
    ]
    findings.sort(key=lambda f: (f.code, f.file or "", f.line or 0, f.module, f.op))  # as qready.check sorts
    return Report(
        model="SampleNet",
        findings=tuple(findings),
        coverage=Coverage(covered=7, total=10),
        rules_run=("QR001", "QR002", "QR003", "QR004", "QR005"),
    )


def clean_report() -> Report:
    return Report(model="TinyNet", findings=(), coverage=Coverage(4, 4), rules_run=("QR003", "QR004"))


def empty_report() -> Report:
    """Every rule ran and found nothing, on a model with no value-changing op at all (0 of 0)."""
    return Report(model="Identity", findings=(), coverage=Coverage(0, 0), rules_run=("QR001", "QR002", "QR003", "QR004", "QR005"))


def unmeasured_report() -> Report:
    """``--select QR002``: only an exporter rule ran, so coverage was never measured (None)."""
    [finding] = [f for f in fixture_report().findings if f.code == "QR002"]
    return Report(model="SampleNet", findings=(finding,), coverage=None, rules_run=("QR002",))


def subset_report() -> Report:
    """Two of the five rules, with findings of only one of them."""
    findings = tuple(f for f in fixture_report().findings if f.code == "QR004")
    return Report(model="SampleNet", findings=findings, coverage=Coverage(3, 9), rules_run=("QR004", "QR005"))


def fileless_report() -> Report:
    """Findings without a source file (an exporter's failure, a finding in generated code)."""
    findings = (
        Finding(
            "QR001", "onnx-export", Severity.ERROR, "torch.onnx.export (torchscript) failed: unsupported op",
            op="torch.onnx.export",
        ),
        Finding(
            "QR003", "functional-op", Severity.WARNING,
            "torch.Tensor.mul called in the forward of 'head'; no module wraps it",
            module="head", op="torch.Tensor.mul", file="<eval_with_key>.3", line=4,
        ),
    )
    return Report(model="Generated", findings=findings, coverage=Coverage(1, 2), rules_run=("QR001", "QR003"))


#: Every shared fixture, the awkward ones included; every emitter runs on each.
REPORTS = {
    "full": fixture_report,
    "clean": clean_report,
    "empty": empty_report,
    "coverage_not_measured": unmeasured_report,
    "subset_of_rules": subset_report,
    "finding_without_file": fileless_report,
}


def fixture_prepare_result() -> PrepareResult:
    report = fixture_report()
    return PrepareResult(
        model="SampleNet",
        changes=[
            Change("functional", "operator.add", "blocks.0", "blocks.0.add", "qready.nn.elementwise.Add", SOURCE, 16),
            Change("functional", "torch.nn.functional.relu", "", "relu", "torch.nn.modules.activation.ReLU", SOURCE, 27),
            Change("unrolled", "blocks.0.act", "blocks.0", "blocks.0.act_1", "ReLU", SOURCE, 16,
                   (("call", 1), ("weights_tied", False))),
            Change("unconverted", "torch.Tensor.__getitem__", "", "", "", SOURCE, 31,
                   (("reason", "no module for <getitem> & friends"),)),
        ],
        leaves=[TraceFailure("aux", "Proxy used as bool at head.py:9", MISSING, 9)],
        excluded=["head"],
        inputs_flattened=False,
        outputs_flattened=True,
        input_names=["x"],
        output_names=["logits"],
        specialized=[(SOURCE, 29, False)],
        diffs=[OutputDiff("example", "logits", True, 0.0), OutputDiff("fresh", "logits", False, 0.125)],
        residual=[f for f in report.findings if f.module == "aux"],
        verified=False,
    )
