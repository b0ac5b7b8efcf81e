"""A save of a model given as path/to/file.py:Name (or defined in a script) loads in a new
process started in another directory: its own classes and output types come back."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from qready.cli import main

MODEL_SOURCE = textwrap.dedent('''
    from collections import namedtuple

    import torch
    from torch import nn

    Out = namedtuple("Out", ["logits", "features"])


    class Gate(nn.Module):  # a branch on the data keeps it a leaf: saved by its class
        def __init__(self):
            super().__init__()
            self.scale = 2

        def forward(self, x):
            if x.sum() > 0:
                return x * self.scale
            return x


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.gate = Gate()

        def forward(self, x):
            y = self.gate(torch.relu(self.conv(x)))
            return Out(y.mean((2, 3)), y)
''')

LOAD_AND_COMPARE = textwrap.dedent('''
    import importlib.util, sys, torch, qready
    save, source = sys.argv[1], sys.argv[2]
    loaded = qready.load(save)
    spec = importlib.util.spec_from_file_location("original", source)
    original = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(original)
    torch.manual_seed(0)  # the CLI seeds 0 before it builds the model
    model = original.Net().eval()
    x = torch.randn(2, 3, 8, 8)  # another batch size than the example's
    got = loaded.unflatten_outputs(loaded(x))
    want = model(x)
    print(type(got).__name__, got._fields, all(torch.equal(g, w) for g, w in zip(got, want)), type(loaded.gate).__name__)
''')


def _prepare(project: Path, out_dir: Path) -> None:
    err = io.StringIO()
    code = main(["prepare", f"{project / 'net.py'}:Net", "--input", "1x3x8x8", "-o", str(out_dir)], stdout=io.StringIO(), stderr=err)
    assert code == 0, err.getvalue()


def _load_elsewhere(save: Path, source: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": ""}
    return subprocess.run(
        [sys.executable, "-c", LOAD_AND_COMPARE, str(save), str(source)], capture_output=True, text=True, env=env, cwd=cwd
    )


def test_a_file_spec_save_loads_in_a_new_process_from_another_directory(tmp_path: Path) -> None:
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    (project / "net.py").write_text(MODEL_SOURCE)
    _prepare(project, project / "prepared")
    done = _load_elsewhere(project / "prepared", project / "net.py", elsewhere)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["Out", "('logits',", "'features')", "True", "Gate"]

    # the project moved, save and source together: found next to the save, where it was relative to it
    moved = tmp_path / "moved"
    shutil.move(str(project), str(moved))
    done = _load_elsewhere(moved / "prepared", moved / "net.py", elsewhere)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-2:] == ["True", "Gate"]


def test_a_save_whose_source_file_is_gone_says_where_it_was(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "net.py").write_text(MODEL_SOURCE)
    _prepare(project, tmp_path / "prepared")
    shutil.copy(project / "net.py", tmp_path / "kept.py")
    (project / "net.py").unlink()
    done = _load_elsewhere(tmp_path / "prepared", tmp_path / "kept.py", tmp_path)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert "LoadError: cannot import" in last and f"no longer at {str(project / 'net.py')!r}" in last


def test_a_save_made_from_a_script_loads_elsewhere(tmp_path: Path) -> None:
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    script = MODEL_SOURCE + textwrap.dedent('''
        if __name__ == "__main__":
            import sys, qready
            torch.manual_seed(0)
            model = Net()
            qready.save(qready.prepare(model, (torch.randn(1, 3, 8, 8),)), sys.argv[1])
    ''')
    (project / "net.py").write_text(script)
    env = {**os.environ, "PYTHONPATH": ""}
    made = subprocess.run([sys.executable, "net.py", "saved"], capture_output=True, text=True, env=env, cwd=project)
    assert made.returncode == 0, made.stderr
    done = _load_elsewhere(project / "saved", project / "net.py", elsewhere)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["Out", "('logits',", "'features')", "True", "Gate"]


def test_outputs_come_back_as_the_users_own_class_when_they_import_the_file(tmp_path: Path) -> None:
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    (project / "net.py").write_text(MODEL_SOURCE)
    _prepare(project, project / "prepared")
    script = textwrap.dedent('''
        import sys, torch, qready
        save, folder = sys.argv[1], sys.argv[2]
        loaded = qready.load(save)
        sys.path.insert(0, folder)
        import net  # the user's own import of the file the CLI was given
        got = loaded.unflatten_outputs(loaded(torch.randn(2, 3, 8, 8)))
        print(isinstance(got, net.Out), type(got).__module__)
    ''')
    done = subprocess.run(
        [sys.executable, "-c", script, str(project / "prepared"), str(project)],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ""}, cwd=elsewhere,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "net"]
