"""QR001 onnx-export."""

from __future__ import annotations

import contextlib
import io
import logging
import re
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from qready.errors import one_line, strip_ansi
from qready.example_inputs import Example, tensor_leaves
from qready.findings import Finding
from qready.exporters import EXPORTERS
from qready.rules.base import CheckContext, Rule, RuleExample, image_input
from qready.rules.qr002_jit_trace import compare_outputs
from qready.source import error_location, forward_location

__all__ = ["OnnxExport", "EXPORTERS"]


class OnnxExport(Rule):
    """The model does not export to ONNX, or the exported graph computes something else.

    Quantization toolkits and NPU compilers take the model as ONNX: the
    encodings a simulator computes are written next to an ONNX graph, and the
    target compiler reads that graph. A model that does not export, or whose
    export runs differently in onnxruntime, cannot be deployed with the
    accuracy measured in simulation. qready exports with torch's default
    exporter (or the one chosen with ``--onnx-exporter``), runs the result in
    onnxruntime on the example inputs, and compares with eager PyTorch.

    Fix by hand: replace the unsupported op named in the finding by supported
    ones, return tensors or tuples of tensors, and keep Python-side logic
    static.

    Prepare: ``qready prepare`` removes non-tensor inputs and outputs; an
    unsupported op stays and is reported.
    """

    code = "QR001"
    name = "onnx-export"
    fix = "replace the construct the exporter refuses, or try the other --onnx-exporter"
    summary = "torch.onnx.export fails, or onnxruntime disagrees with eager"
    before = "def forward(self, x):\n    return torch.kthvalue(x, 3).values  # no ONNX equivalent"
    after = "def forward(self, x):\n    return self.head(x)  # ops with ONNX equivalents, tensor output"

    def check(self, ctx: CheckContext) -> list[Finding]:
        exporter = ctx.onnx_exporter or "dynamo"
        log = io.StringIO()
        with tempfile.TemporaryDirectory(prefix="qready-onnx-") as tmp:
            path = Path(tmp) / "model.onnx"
            try:
                with _quiet(log):
                    _export(ctx.model, ctx.example, path, exporter)
            except Exception as error:  # any exporter failure is what this rule reports
                file, line = error_location(error)
                if file is None:
                    file, line = _user_line_in_text(strip_ansi(str(error)) + log.getvalue())
                if file is None:  # nothing names a line: the forward that was exported
                    file, line = forward_location(ctx.model)
                return [
                    self.finding(
                        f"torch.onnx.export ({exporter}) failed: {strip_ansi(_reason(error))}",
                        op="torch.onnx.export",
                        file=file,
                        line=line,
                        fix="replace the unsupported construct named here, or try --onnx-exporter "
                        + ("torchscript" if exporter == "dynamo" else "dynamo"),
                        details={"exporter": exporter, "log": _stable(log.getvalue() + "\n" + str(error))},
                    )
                ]
            try:
                got = _run_onnxruntime(path, ctx.example)
            except Exception as error:  # the graph exported but does not run
                return [
                    self.finding(
                        f"the exported ONNX graph does not run in onnxruntime: {one_line(error)}",
                        op="onnxruntime.InferenceSession",
                        fix="simplify the op named here or try the other exporter",
                        details={"exporter": exporter, "log": str(error)},
                    )
                ]
        mismatch = compare_outputs(tensor_leaves(ctx.eager_output), got)
        if not mismatch:
            return []
        return [
            self.finding(
                f"onnxruntime disagrees with eager on the example inputs: {mismatch}",
                op="torch.onnx.export",
                fix="look for ops with exporter-specific numerics or Python-side logic baked into the graph",
                details={"exporter": exporter, "log": _stable(log.getvalue())},
            )
        ]

    @classmethod
    def examples(cls) -> list[RuleExample]:
        return [
            RuleExample("op with no ONNX equivalent", _Unsupported, _signal, True, (("", "torch.onnx.export"),)),
            RuleExample("conv and relu", _Exportable, image_input, False),
        ]


def _export(model: nn.Module, example: Example, path: Path, exporter: str) -> None:
    args = example.args
    if args and isinstance(args[-1], dict):
        # torch.onnx.export reads a trailing dict in ``args`` as keyword arguments; an empty dict
        # after it says "no keywords", so the dict stays the positional argument it is
        args = (*args, {})
    torch.onnx.export(
        model,
        args,
        str(path),
        kwargs=example.kwargs or None,
        dynamo=exporter == "dynamo",
        verbose=False,
        external_data=False,
    )


def _run_onnxruntime(path: Path, example: Example) -> list[Any]:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    tensors = tensor_leaves(example.args) + tensor_leaves(example.kwargs)
    by_name = {k: v for k, v in example.kwargs.items() if isinstance(v, torch.Tensor)}
    if all(name in by_name for name in names):
        feed = {name: by_name[name] for name in names}
    elif len(names) <= len(tensors):
        feed = dict(zip(names, tensors))
    else:
        raise RuntimeError(f"the graph expects {len(names)} inputs, the example has {len(tensors)} tensors")
    outputs = session.run(None, {k: v.detach().cpu().numpy() for k, v in feed.items()})
    return [torch.from_numpy(o) for o in outputs]


# torch's own log lines start with level, date, time and process id: "W1128 00:04:16.714000 23757 "
_LOG_PREFIX = re.compile(r"(?m)^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+ +\d+ ")


def _stable(log: str) -> str:
    """The exporter's log without times and process ids: two runs give the same report."""
    return _LOG_PREFIX.sub("", log)
_NODE_TARGET = re.compile(r"target=torch\.ops\.(\w+\.\w+)")
_SUMMARY_LINE = re.compile(r"^<class '[\w.]+'>: (.+)$", re.MULTILINE)


def _reason(error: BaseException) -> str:
    """One line a user can act on, out of an exporter's multi-page error."""
    text = strip_ansi(str(error))
    if "data-dependent" in text:
        detail = next(line.strip() for line in text.splitlines() if "data-dependent" in line)
        detail = re.sub(r"^<class '[\w.]+'>: ", "", detail)
        return _shorten(f"Python control flow depends on a tensor value ({detail})")
    if "## Exception summary" in text:
        summary = text.split("## Exception summary", 1)[1]
        first = _SUMMARY_LINE.search(summary)
        node = _NODE_TARGET.search(summary)
        if first:
            cause = first.group(1).strip()
            where = f"{node.group(1)}: " if node and node.group(1) not in cause else ""
            return _shorten(where + cause)
    return one_line(error)


_FRAME = re.compile(r'File "([^"]+)", line (\d+)')


def _user_line_in_text(text: str) -> tuple[str | None, int | None]:
    """torch.export names the user's frame in its message, not in the traceback."""
    from qready.source import display_path, is_internal

    found: tuple[str | None, int | None] = (None, None)
    for match in _FRAME.finditer(text):
        if not is_internal(match.group(1)):
            found = (display_path(match.group(1)), int(match.group(2)))
    return found


def _shorten(text: str, limit: int = 240) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


@contextlib.contextmanager
def _quiet(log: io.StringIO) -> Iterator[None]:
    """Keep the exporter's progress lines and warnings out of the user's terminal, and in the log."""
    handler = logging.StreamHandler(log)
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript")]
    saved = [(lg, lg.level, lg.propagate) for lg in loggers]
    try:
        for lg in loggers:
            lg.addHandler(handler)
            lg.setLevel(logging.ERROR)
            lg.propagate = False
        with warnings.catch_warnings(), contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level, propagate in saved:
            lg.removeHandler(handler)
            lg.setLevel(level)
            lg.propagate = propagate


class _Unsupported(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.kthvalue(x, 3).values


class _Exportable(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv(x))



def _signal() -> tuple[torch.Tensor]:
    return (torch.randn(1, 64),)
