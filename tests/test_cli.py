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
    assert any("error    QR003 [*]  functional-op  <root>  torch.nn.functional.relu -> use nn.ReLU()" in line for line in lines)
    assert any("every_rule.py:35  error    QR004 [*]  reused-module  relu" in line for line in lines)
    assert lines[-2].startswith("EveryRule: ") and "coverage" in lines[-2] and "QR002" in lines[-2]
    assert lines[-1].startswith("[*] ") and "fixable with `qready prepare`" in lines[-1]
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
    (["check", f"{SEED}:FunctionalRelo", "--input", "1x3"], "has no attribute 'FunctionalRelo'; did you mean 'FunctionalRelu'?"),
    (["check", f"{SEED}:functionalrelu", "--input", "1x3"], "did you mean 'FunctionalRelu'?"),
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
    assert code == 0 and [line.split()[0] for line in out.splitlines()] == ["QR001", "QR002", "QR003", "QR004", "QR005", "QR006"]
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
    (tmp_path / "taken").mkdir()
    code, out, err = run("prepare", f"{SEED}:FunctionalRelu", "--input", "1x3x8x8", "-o", str(tmp_path / "taken"))
    assert code == 2 and "already exists; choose a new directory or pass --force" in err
    assert [p.name for p in tmp_path.iterdir()] == ["taken"]


def _user_project(tmp_path: Path) -> Path:
    """A folder as a user has it: the model's source, notes, a subfolder of data."""
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    (project / "net.py").write_text(Path(SEED).read_text())
    (project / "notes.txt").write_text("mine")
    (project / "data" / "x.bin").write_bytes(b"\x00\x01")
    return project


def _files(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("target", [".", "..", "project", "data", "~"])
def test_prepare_force_never_deletes_what_qready_did_not_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str
) -> None:
    # `qready prepare net.py:Net -o . --force` once deleted the whole current directory, source included
    project = _user_project(tmp_path)
    monkeypatch.chdir(project)
    monkeypatch.setenv("HOME", str(project / "data"))
    before = _files(tmp_path)
    where = {"project": str(project), "~": str(project / "data")}.get(target, target)
    code, out, err = run("prepare", "net.py:FunctionalRelu", "--input", "1x3x8x8", "-o", where, "--force")
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert "refusing to write over" in err and "choose a new directory" in err
    assert _files(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["project"]


def test_prepare_force_replaces_an_earlier_save_and_nothing_else(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = _user_project(tmp_path)
    monkeypatch.chdir(project)
    assert run("prepare", "net.py:FunctionalRelu", "--input", "1x3x8x8", "-o", "out")[0] == 0
    first = _files(project / "out")
    assert sorted(first) == ["manifest.json", "model.py", "weights.safetensors"]
    code, _, err = run("prepare", "net.py:FunctionalRelu", "--input", "1x3x4x4", "-o", "out", "--force")
    assert code == 0, err
    assert sorted(_files(project / "out")) == sorted(first) and _files(project / "out") != first
    assert sorted(p.name for p in project.iterdir()) == ["data", "net.py", "notes.txt", "out"]  # no temporary left
    # a file dropped into an earlier save makes it no longer qready's alone: refused, kept
    (project / "out" / "README").write_text("mine too")
    code, _, err = run("prepare", "net.py:FunctionalRelu", "--input", "1x3x8x8", "-o", "out", "--force")
    assert code == 2 and "holds files qready did not write (README)" in err
    assert (project / "out" / "README").read_text() == "mine too"


def test_prepare_force_refuses_a_look_alike_without_a_qready_manifest(tmp_path: Path) -> None:
    fake = tmp_path / "out"
    fake.mkdir()
    (fake / "model.py").write_text("print('my own model.py')")
    code, _, err = run("prepare", f"{SEED}:FunctionalRelu", "--input", "1x3x8x8", "-o", str(fake), "--force")
    assert code == 2 and "has no qready manifest" in err
    assert (fake / "model.py").read_text() == "print('my own model.py')"


def test_saved_files_and_directory_follow_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        code, _, err = run("prepare", f"{SEED}:FunctionalRelu", "--input", "1x3x8x8", "-o", str(tmp_path / "out"),
                           "--html", str(tmp_path / "report.html"))
    finally:
        os.umask(previous)
    assert code == 0, err
    modes = {p.name: p.stat().st_mode & 0o777 for p in [tmp_path / "out", *(tmp_path / "out").iterdir(), tmp_path / "report.html"]}
    assert modes == {"out": 0o755, "model.py": 0o644, "manifest.json": 0o644, "weights.safetensors": 0o644, "report.html": 0o644}


def test_prepare_exit_one_when_findings_remain(tmp_path: Path) -> None:
    code, out, _ = run("prepare", EXAMPLE, "--input", "1x3x16x16", "-o", str(tmp_path / "out"), "--format", "json")
    data = json.loads(out)
    assert code == 1
    assert data["specialized_branches"][0]["file"].endswith("every_rule.py")
    assert data["summary"] == {"converted": 2, "unrolled": 1, "dispatched": 0, "unconverted": 0, "leaves": 0, "residual": 0, "residual_by_rule": {}}


def test_prepare_of_an_untraceable_root_reports_and_writes_nothing(tmp_path: Path) -> None:
    spec = str(ROOT / "tests" / "models" / "tricky.py") + ":UntraceableRoot"
    script = str(tmp_path / "inputs.py")
    Path(script).write_text("import torch\ndef inputs():\n    return (torch.rand(3, 8) + 1,)\n")
    code, out, err = run("prepare", spec, "--inputs", f"{script}:inputs", "-o", str(tmp_path / "out"))
    assert code == 1 and "kept its own Python forward" in err and "nothing written" in err
    assert "dispatched" in out and "verified bit-identical" in out
    assert not (tmp_path / "out").exists()


def test_explain_the_toolkit_rule() -> None:
    code, out, _ = run("explain", "QR006")
    assert code == 0 and out.startswith("QR006 unquantizable-module: ")
    assert "--target aimet" in out and "QuantizationMixin.implements(MyGate)" in out


@pytest.mark.parametrize("name, content", [
    ("notes.txt", "my notes"),
    ("net.py", "# qready: ignore[QR003]\nimport torch\n"),  # names a rule code, but is source
    ("data.json", '{"weights": [1, 2]}'),
])
def test_a_report_never_overwrites_a_file_qready_did_not_write(tmp_path: Path, name: str, content: str) -> None:
    target = tmp_path / name
    target.write_text(content)
    for argv in (["check", SEED + ":FunctionalRelu", "--input", "1x3x8x8", "--select", "QR003", "-o", str(target)],
                 ["prepare", SEED + ":FunctionalRelu", "--input", "1x3x8x8", "-o", str(tmp_path / "out"), "--html", str(target)]):
        code, out, err = run(*argv)
        assert code == 2 and out == "" and f"refusing to overwrite '{target}': it is not a report qready wrote" in err
        assert target.read_text() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


@pytest.mark.parametrize("fmt", ["text", "json", "sarif", "github", "html"])
def test_a_report_replaces_an_earlier_report_of_any_format(tmp_path: Path, fmt: str) -> None:
    target = tmp_path / f"report.{fmt}"
    argv = ["check", SEED + ":FunctionalRelu", "--input", "1x3x8x8", "--select", "QR003", "--format", fmt, "-o", str(target)]
    assert run(*argv)[0] == 1
    first = target.read_text()
    target.write_text(first + "\n")  # changed since, but still qready's report
    assert run(*argv)[0] == 1 and target.read_text() == first


def test_help_does_not_import_torch_and_import_qready_still_gives_the_api() -> None:
    import subprocess
    import sys

    script = (
        "import sys, qready.cli\n"
        "print('torch' in sys.modules)\n"
        "import qready\n"
        "print(callable(qready.prepare), qready.nn.Add.__name__, 'torch' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert (done.returncode, done.stdout) == (0, "False\nTrue Add True\n"), done.stderr


@pytest.mark.parametrize(("name", "fmt"), [("report.json", "json"), ("report.sarif", "sarif"), ("report.html", "html"), ("report.txt", "text")])
def test_the_report_file_suffix_names_the_format_when_format_is_not_given(tmp_path: Path, name: str, fmt: str) -> None:
    target = tmp_path / name
    code, out, err = run("check", EXAMPLE, "--input", "1x3x16x16", "--select", "QR003", "-o", str(target))
    assert (code, out, err) == (1, "", "")
    text = target.read_text()
    shown = {"json": text.startswith("{\n") and '"schema_version"' in text, "sarif": '"$schema"' in text and "sarif" in text,
             "html": text.lstrip().lower().startswith("<!doctype html>"), "text": "  error    QR003 " in text}
    assert [f for f, yes in shown.items() if yes] == [fmt], text[:200]


def test_a_format_that_contradicts_the_file_suffix_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    code, out, err = run("check", EXAMPLE, "--input", "1x3x16x16", "--format", "json", "-o", str(target))
    assert code == 2 and out == "" and not target.exists()
    assert err.strip() == (
        f"qready: error: --format json does not fit -o {target} (an HTML file name); drop --format to write html, "
        "or name the file for json"
    )


def test_check_takes_the_directory_prepare_wrote(tmp_path: Path) -> None:
    out = tmp_path / "prepared"
    assert run("prepare", EXAMPLE, "--input", "1x3x16x16", "-o", str(out))[0] == 1  # 1: a branch was specialized
    assert (out / "manifest.json").is_file()
    code, text, err = run("check", str(out), "--input", "1x3x16x16", "--select", "QR003,QR004", "--format", "json")
    assert (code, err) == (0, "") and json.loads(text)["findings"] == []  # what prepare removed stays removed
    code, _, err = run("check", str(out), "--input", "1x3x16x16", "--kwargs", '{"width": 3}')
    assert code == 2 and "is a saved model; drop --kwargs" in err
