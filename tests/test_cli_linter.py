"""The CLI as people use a linter's: output paths checked first, interrupts and closed pipes,
version, quiet, statistics, rule selection by prefix, colour, stable JSON, grouped text."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from qready.cli import main

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = str(ROOT / "examples" / "every_rule.py") + ":EveryRule"
SEED = str(ROOT / "tests" / "models" / "seed.py")


def run(*argv: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def _counting_model(tmp_path: Path) -> str:
    """A model file whose factory leaves a mark when it runs: proves what ran before an error."""
    source = tmp_path / "counted.py"
    source.write_text(
        "from pathlib import Path\nimport torch\n"
        f"MARK = Path({str(tmp_path / 'built')!r})\n"
        "def build():\n    MARK.write_text('built')\n    return torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU())\n"
    )
    return f"{source}:build"


@pytest.mark.parametrize("option, where, reason", [
    ("--html", "a_file/report.html", "'{tmp}/a_file' is a file, not a directory"),
    ("--html", "missing/report.html", "folder '{tmp}/missing' for 'report.html' does not exist; create it first"),
    ("--html", "", "'{tmp}' is a directory; give a file name for the report"),
    ("-o", "a_file/out", "'{tmp}/a_file' is a file, not a directory"),
])
def test_prepare_output_paths_are_checked_before_the_model_is_built(tmp_path: Path, option: str, where: str, reason: str) -> None:
    spec = _counting_model(tmp_path)
    (tmp_path / "a_file").write_text("mine")
    argv = ["prepare", spec, "--input", "1x4", "-o", str(tmp_path / "out")]
    if option == "--html":
        argv += ["--html", str(tmp_path / where) if where else str(tmp_path)]
    else:
        argv[argv.index("-o") + 1] = str(tmp_path / where)
    code, out, err = run(*argv)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert reason.format(tmp=tmp_path) in err and "free space" not in err
    assert not (tmp_path / "built").exists()  # refused before the model was built
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "counted.py"]


def test_check_output_path_is_checked_before_the_model_is_built(tmp_path: Path) -> None:
    spec = _counting_model(tmp_path)
    (tmp_path / "a_file").write_text("mine")
    code, _, err = run("check", spec, "--input", "1x4", "--format", "json", "-o", str(tmp_path / "a_file" / "r.json"))
    assert code == 2 and f"'{tmp_path}/a_file' is a file, not a directory" in err
    assert not (tmp_path / "built").exists()


def test_ctrl_c_that_torch_turns_into_another_error_is_an_interrupt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # torch.onnx's lazy imports, interrupted, once failed with "module 'triton' has no attribute
    # 'backends'": that became a QR001 finding with exit 1
    import signal

    from qready.rules import qr001_onnx_export

    def interrupted_export(*args: object, **kwargs: object) -> None:
        try:
            signal.raise_signal(signal.SIGINT)
        except KeyboardInterrupt:
            raise AttributeError("module 'triton' has no attribute 'backends'") from None

    monkeypatch.setattr(qr001_onnx_export, "_export", interrupted_export)
    report = tmp_path / "report.json"
    code, out, err = run("check", f"{SEED}:FunctionalRelu", "--input", "1x3x8x8", "--format", "json", "-o", str(report))
    assert (code, out, err) == (130, "", "qready: interrupted\n")
    assert list(tmp_path.iterdir()) == []
    code, out, err = run("prepare", f"{SEED}:FunctionalRelu", "--input", "1x3x8x8", "--html", str(report), "-o", str(tmp_path / "out"))
    assert (code, out, err) == (130, "", "qready: interrupted\n")
    assert list(tmp_path.iterdir()) == []
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler is put back


def test_a_reader_that_stops_early_ends_qready_quietly(tmp_path: Path) -> None:
    # `true` has exited long before qready (seconds to import torch) writes its report: a closed pipe
    command = f"{sys.executable} -m qready.cli check {SEED}:FunctionalRelu --input 1x3x8x8 --format json --select QR003 | true"
    done = subprocess.run(["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True, cwd=tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (141, "", "")
