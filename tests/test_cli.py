"""The CLI: exit codes, formats, one-line errors, and the prepare -> load round trip."""

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


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_check_text_lists_findings_and_a_summary_with_coverage() -> None:
    code, out, err = run("check", EXAMPLE, "--input", "1x3x16x16", "--ignore", "QR001")
    assert code == 1 and err == ""
    lines = out.strip().splitlines()
    assert any("QR003  functional-op  <root>  torch.nn.functional.relu -> use nn.ReLU()" in line for line in lines)
    assert any("every_rule.py:35  QR004  reused-module  relu" in line for line in lines)
    assert lines[-1].startswith("EveryRule: ") and "coverage" in lines[-1] and "QR002" in lines[-1]
    assert "\x1b[" not in out  # no colour when stdout is not a terminal


def test_check_json_is_the_report_and_exit_zero_overrides_findings() -> None:
    code, out, _ = run("check", EXAMPLE, "--input", "1x3x16x16", "--select", "QR003,QR004", "--format", "json", "--exit-zero")
    assert code == 0
    data = json.loads(out)
    assert data["schema_version"] == 1 and data["rules_run"] == ["QR003", "QR004"]
    assert {f["code"] for f in data["findings"]} == {"QR003", "QR004"}


def test_check_clean_model_exits_zero() -> None:
    code, out, _ = run("check", f"{SEED}:ModuleRelu", "--input", "1x3x8x8", "--select", "QR002,QR003,QR004,QR005")
    assert code == 0 and "ModuleRelu: ok" in out


def test_check_writes_the_report_to_a_file(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    code, out, _ = run("check", EXAMPLE, "--input", "1x3x16x16", "--select", "QR003", "--format", "json", "-o", str(target))
    assert code == 1 and out == ""
    assert json.loads(target.read_text())["findings"]
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


@pytest.mark.parametrize("argv, message", [
    (["check", "nope/missing.py:Model", "--input", "1x3"], "no such file 'nope/missing.py'"),
    (["check", f"{SEED}:Missing", "--input", "1x3"], "has no attribute 'Missing'"),
    (["check", f"{SEED}:image", "--input", "1x3"], "returned a Tensor, not a torch.nn.Module"),
    (["check", "qready.nonexistent:Model", "--input", "1x3"], "cannot import 'qready.nonexistent'"),
    (["check", f"{SEED}:FunctionalRelu", "--input", "1x3xfoo"], "shape '1x3xfoo' is not like 1x3x224x224"),
    (["check", f"{SEED}:FunctionalRelu", "--input", "complex7:1x3"], "unknown dtype 'complex7'"),
    (["check", f"{SEED}:FunctionalRelu", "--input", "1x3"], "forward of FunctionalRelu raised RuntimeError"),
    (["check", f"{SEED}:FunctionalRelu"], "no example inputs; pass --input"),
    (["check", f"{SEED}:FunctionalRelu", "--input", "1x3x8x8", "--kwargs", "{bad"], "--kwargs '{bad' is not valid JSON"),
    (["check", f"{SEED}:FunctionalRelu", "--input", "1x3x8x8", "--kwargs", '{"width": 3}'], "building"),
    (["check", f"{SEED}:FunctionalRelu", "--input", "1x3x8x8", "--select", "QR042"], "unknown rule 'QR042'"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
])
def test_bad_input_is_one_line_and_exit_two(argv: list[str], message: str) -> None:
    code, out, err = run(*argv)
    assert code == 2 and out == ""
    assert err.startswith("qready: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_debug_shows_the_traceback() -> None:
    code, _, err = run("--debug", "check", f"{SEED}:FunctionalRelu", "--input", "1x3")
    assert code == 2 and "Traceback" in err


def test_rules_and_explain() -> None:
    code, out, _ = run("rules")
    assert code == 0 and [line.split()[0] for line in out.splitlines()] == ["QR001", "QR002", "QR003", "QR004", "QR005"]
    code, out, _ = run("explain", "functional-op")
    assert code == 0 and out.startswith("QR003 functional-op: ")
    assert "Fix by hand:" in out and "Before:" in out and "self.relu = nn.ReLU()" in out


def test_prepare_writes_a_directory_that_loads_in_a_fresh_process(tmp_path: Path) -> None:
    out_dir = tmp_path / "prepared"
    code, out, err = run("prepare", f"{SEED}:DictIO", "--inputs", f"{SEED}:dict_inputs", "-o", str(out_dir))
    assert code == 0, err
    assert "converted" not in out and "outputs flattened" in out and f"wrote {out_dir}" in out
    assert sorted(p.name for p in out_dir.iterdir()) == ["manifest.json", "model.py", "weights.safetensors"]
    script = f"""
import sys, torch
sys.path.insert(0, {str(ROOT / 'tests')!r})
import qready
from models import seed
torch.manual_seed(0)
model = seed.DictIO()  # the CLI seeds 0 before building the model and before drawing inputs
torch.manual_seed(0)
(inputs,) = seed.dict_inputs()
loaded = qready.load({str(out_dir)!r})
expected = model.eval()(inputs)
got = loaded.unflatten_outputs(loaded(inputs['image_rgb'], inputs['image_bw']))
print(all(torch.equal(got[k], expected[k]) for k in expected), sorted(got))
"""
    # qready.load needs no user source: the prepared DictIO is made of torch.nn modules only
    env = {**os.environ, "PYTHONPATH": ""}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True ['bw', 'rgb']"


def test_prepare_refuses_an_existing_directory_and_leaves_it_alone(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    code, out, err = run("prepare", f"{SEED}:FunctionalRelu", "--input", "1x3x8x8", "-o", str(tmp_path))
    assert code == 2 and "already exists; choose a new directory or pass --force" in err
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_prepare_exit_one_when_findings_remain(tmp_path: Path) -> None:
    code, out, _ = run("prepare", EXAMPLE, "--input", "1x3x16x16", "-o", str(tmp_path / "out"), "--format", "json")
    data = json.loads(out)
    assert code == 1
    assert data["specialized_branches"][0]["file"].endswith("every_rule.py")
    assert data["summary"] == {"converted": 2, "unrolled": 1, "dispatched": 0, "unconverted": 0, "leaves": 0, "residual": 0}


def test_prepare_of_an_untraceable_root_reports_and_writes_nothing(tmp_path: Path) -> None:
    spec = str(ROOT / "tests" / "models" / "tricky.py") + ":UntraceableRoot"
    script = str(tmp_path / "inputs.py")
    Path(script).write_text("import torch\ndef inputs():\n    return (torch.rand(3, 8) + 1,)\n")
    code, out, err = run("prepare", spec, "--inputs", f"{script}:inputs", "-o", str(tmp_path / "out"))
    assert code == 1 and "kept its own Python forward" in err and "nothing written" in err
    assert "dispatched" in out and "verified bit-identical" in out
    assert not (tmp_path / "out").exists()
