"""The CLI as people use a linter's: output paths checked first, interrupts and closed pipes,
version, quiet, statistics, rule selection by prefix, colour, stable JSON, grouped text."""

from __future__ import annotations

import io
import json
import re
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
    handler = signal.getsignal(signal.SIGINT)  # Python's own, or SIG_IGN under a runner that ignores Ctrl-C
    report = tmp_path / "report.json"
    code, out, err = run("check", f"{SEED}:FunctionalRelu", "--input", "1x3x8x8", "--format", "json", "-o", str(report))
    assert (code, out, err) == (130, "", "qready: interrupted\n")
    assert list(tmp_path.iterdir()) == []
    code, out, err = run("prepare", f"{SEED}:FunctionalRelu", "--input", "1x3x8x8", "--html", str(report), "-o", str(tmp_path / "out"))
    assert (code, out, err) == (130, "", "qready: interrupted\n")
    assert list(tmp_path.iterdir()) == []
    assert signal.getsignal(signal.SIGINT) is handler  # the handler is put back


def test_a_reader_that_stops_early_ends_qready_quietly(tmp_path: Path) -> None:
    # `true` has exited long before qready (seconds to import torch) writes its report: a closed pipe
    command = f"{sys.executable} -m qready.cli check {SEED}:FunctionalRelu --input 1x3x8x8 --format json --select QR003 | true"
    done = subprocess.run(["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True, cwd=tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (141, "", "")


BLOCKS = '''
import torch
from torch import nn


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        return torch.relu(self.lin(x)) + x


class Deep(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.Sequential(*[Block() for _ in range(12)])

    def forward(self, x):
        return torch.sigmoid(self.blocks(x))
'''


@pytest.fixture
def deep(tmp_path: Path) -> str:
    (tmp_path / "deep.py").write_text(BLOCKS)
    return f"{tmp_path / 'deep.py'}:Deep"


def test_text_groups_a_source_line_across_modules_sorted_by_line_with_severity(deep: str, tmp_path: Path) -> None:
    code, out, _ = run("check", deep, "--input", "2x4", "--select", "QR003")
    assert code == 1
    lines = out.splitlines()
    where = f"{tmp_path / 'deep.py'}"
    assert lines[:-2] == [
        f"{where}:12  error    QR003 [*]  functional-op  blocks.0 (x12 modules)  torch.Tensor.add -> use qready.nn.Add()",
        f"{where}:12  error    QR003 [*]  functional-op  blocks.0 (x12 modules)  torch.relu -> use nn.ReLU()",
        f"{where}:21  error    QR003 [*]  functional-op  <root>  torch.sigmoid -> use nn.Sigmoid()",
    ]
    assert lines[-2].endswith("; 25 findings at 3 source lines (--show-all lists each)")
    assert lines[-1].startswith("[*] 25 fixable with `qready prepare`")
    code, out, _ = run("check", deep, "--input", "2x4", "--select", "QR003", "--show-all")
    shown = out.splitlines()[:-2]
    assert len(shown) == 25 and "(x12 modules)" not in out
    assert [line.split("  ")[0] for line in shown] == [f"{where}:12"] * 24 + [f"{where}:21"]
    assert {line.split()[5] for line in shown[:24]} == {f"blocks.{i}" for i in range(12)}


def test_statistics_quiet_and_version(deep: str) -> None:
    code, out, _ = run("check", deep, "--input", "2x4", "--select", "QR003,QR004", "--statistics")
    assert code == 1
    assert out.splitlines()[0] == "   25  QR003  functional-op   at 3 source line(s)"
    assert out.splitlines()[-1].startswith("Deep: 25 error(s)")
    code, out, _ = run("check", deep, "--input", "2x4", "--select", "QR003", "--quiet")
    assert code == 1 and len(out.splitlines()) == 3 and "Deep:" not in out
    code, out, _ = run("check", deep, "--input", "2x4", "--select", "QR003", "--statistics", "--format", "json")
    assert code == 2 and out == ""
    code, out, _ = run("--version")
    from importlib.metadata import version

    assert code == 0 and out == f"qready {version('qready')}\n"


def test_select_by_prefix_repeated_and_extended(deep: str) -> None:
    def rules_run(*options: str) -> list[str]:
        code, out, err = run("check", deep, "--input", "2x4", "--format", "json", *options)
        assert code in (0, 1), err
        return json.loads(out)["rules_run"]

    assert rules_run("--select", "QR00", "--ignore", "QR001,QR002") == ["QR003", "QR004", "QR005"]
    assert rules_run("--select", "QR003", "--select", "reused-module") == ["QR003", "QR004"]
    assert rules_run("--select", "QR003", "--extend-select", "QR005") == ["QR003", "QR005"]
    code, _, err = run("check", deep, "--input", "2x4", "--select", "QR9")
    assert code == 2 and "unknown rule 'QR9'" in err


def test_extend_select_adds_to_the_projects_configured_select(
    deep: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.qready]\nselect = ["QR003"]\n')
    monkeypatch.chdir(tmp_path)
    code, out, err = run("check", deep, "--input", "2x4", "--format", "json", "--extend-select", "QR005")
    assert code in (0, 1), err
    assert json.loads(out)["rules_run"] == ["QR003", "QR005"]  # not every rule plus QR005


def test_color_always_colours_a_report_file_and_auto_does_not(deep: str, tmp_path: Path) -> None:
    styles = re.compile(r"\x1b\[[0-9;]*m")
    for choice, coloured in (("always", True), ("auto", False)):
        report = tmp_path / f"{choice}.txt"
        code, _, err = run("check", deep, "--input", "2x4", "--select", "QR003", "--color", choice, "-o", str(report))
        assert code == 1, err
        assert bool(styles.search(report.read_text())) is coloured


def test_json_is_the_same_on_two_runs_and_timings_only_on_request(deep: str) -> None:
    outputs = [run("check", deep, "--input", "2x4", "--format", "json", "--ignore", "QR001")[1] for _ in range(2)]
    assert outputs[0] == outputs[1] and json.loads(outputs[0])["timings"] == {}
    timed = json.loads(run("check", deep, "--input", "2x4", "--format", "json", "--select", "QR003", "--timings")[1])
    assert set(timed["timings"]) == {"observe", "QR003"}


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("choice, no_color, coloured", [
    ("auto", None, True), ("auto", "1", False), ("never", None, False), ("always", "1", True),
])
def test_color_follows_the_option_and_no_color(
    deep: str, monkeypatch: pytest.MonkeyPatch, choice: str, no_color: str | None, coloured: bool
) -> None:
    if no_color is None:
        monkeypatch.delenv("NO_COLOR", raising=False)
    else:
        monkeypatch.setenv("NO_COLOR", no_color)
    out, err = _Terminal(), _Terminal()
    code = main(["check", deep, "--input", "2x4", "--select", "QR003", "--color", choice], stdout=out, stderr=err)
    assert code == 1
    styles = re.compile(r"\x1b\[[0-9;]*m")  # colour, bold, dim (cursor moves of the spinner are not styles)
    assert bool(styles.search(out.getvalue())) is coloured
    assert bool(styles.search(err.getvalue())) is coloured  # not even bold or dim on the progress lines


def test_a_module_in_the_current_directory_is_a_spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "cnn_here.py").write_text(BLOCKS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".", str(tmp_path))])
    code, out, err = run("check", "cnn_here:Deep", "--input", "2x4", "--select", "QR004")
    assert code == 0, err
    assert out.startswith("Deep: ok")


def test_prepare_quiet_prints_nothing_and_its_json_has_timings_only_on_request(tmp_path: Path) -> None:
    code, out, err = run("prepare", f"{SEED}:FunctionalRelu", "--input", "1x3x8x8", "-o", str(tmp_path / "a"), "--quiet")
    assert (code, out, err) == (0, "", "") and (tmp_path / "a" / "manifest.json").is_file()
    _, out, _ = run("prepare", f"{SEED}:FunctionalRelu", "--input", "1x3x8x8", "-o", str(tmp_path / "b"), "--format", "json")
    assert json.loads(out)["timings"] == {}
    _, out, _ = run("prepare", f"{SEED}:FunctionalRelu", "--input", "1x3x8x8", "-o", str(tmp_path / "c"), "--format", "json", "--timings")
    assert "trace" in json.loads(out)["timings"]
