"""Call-site dispatch inside a leaf survives a load from another copy of the model's source."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

GATE_SOURCE = textwrap.dedent(
    '''
    import torch
    import torch.nn.functional as F
    from torch import nn


    class Gate(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(8, 8)

        def forward(self, x):
            y = F.relu(self.a(x))
            if y.sum() > 0:  # a branch on data: the gate stays a leaf, its calls are dispatched
                return torch.sigmoid(y) * 2
            return y - 1


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.stem = nn.Linear(8, 8)
            self.gate = Gate()

        def forward(self, x):
            return self.gate(self.stem(x)) + 1
    '''
)

PREPARE = textwrap.dedent(
    '''
    import sys, torch, qready
    from gatepkg import Net
    torch.manual_seed(0)
    model = Net().eval()
    x = torch.ones(2, 8)
    prepared = qready.prepare(model, (x,))
    assert [leaf.module for leaf in prepared.prepare_result.leaves] == ["gate"], prepared.prepare_result.leaves
    qready.save(prepared, sys.argv[1])
    '''
)

LOAD_AND_COUNT = textwrap.dedent(
    '''
    import json, sys, warnings, torch, qready
    import gatepkg
    warnings.simplefilter("always")
    with warnings.catch_warnings(record=True) as caught:
        loaded = qready.load(sys.argv[1]).eval()
    calls = {}
    sites = {entry[-1] for entry in getattr(loaded.get_submodule("gate"), "qready_call_sites", ())}
    for name in sites:
        calls[name] = 0
        loaded.get_submodule(f"gate.{name}").register_forward_hook(lambda m, a, o, name=name: calls.__setitem__(name, calls[name] + 1))
    x = torch.ones(2, 8)
    with torch.no_grad():
        same = torch.equal(loaded(x), gatepkg.Net().eval()(x))
    print(json.dumps({"calls": calls, "same": same, "source": gatepkg.__file__,
                      "warnings": [str(w.message) for w in caught]}))
    '''
)


def _run(code: str, path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(path), str(ROOT / "src")])}
    return subprocess.run([sys.executable, "-c", code, *args], cwd=path, env=env, capture_output=True, text=True, timeout=300)


def _package(where: Path) -> Path:
    package = where / "gatepkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(GATE_SOURCE)
    return where


def test_dispatched_sites_see_values_after_loading_from_another_directory(tmp_path: Path) -> None:
    first = _package(tmp_path / "checkout_a")
    saved = tmp_path / "saved"
    done = _run(PREPARE, first, str(saved))
    assert done.returncode == 0, done.stderr
    second = tmp_path / "elsewhere" / "checkout_b"
    shutil.copytree(first, second)
    shutil.rmtree(first)  # the source it was prepared from is gone: only the copy can be imported

    done = _run(LOAD_AND_COUNT, second, str(saved))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["source"].startswith(str(second))
    assert result["same"]
    # relu, sum, gt, sigmoid and mul ran inside the gate: each dispatched module saw its value
    assert len(result["calls"]) >= 4, result
    # ... and the other arm's `y - 1`, found in the source, has its module too, not run by this input
    assert {name: count for name, count in result["calls"].items() if count != 1} == {"sub": 0}, result
    assert result["warnings"] == []


def test_a_site_the_loaded_source_no_longer_has_is_named_in_a_warning(tmp_path: Path) -> None:
    first = _package(tmp_path / "checkout_a")
    saved = tmp_path / "saved"
    done = _run(PREPARE, first, str(saved))
    assert done.returncode == 0, done.stderr
    # the gate's forward is now shorter: the lines its sites were recorded at are gone
    source = (first / "gatepkg" / "__init__.py").read_text()
    moved = source.replace("    def forward(self, x):\n        y = F.relu", "    def forward(self, x):\n        return x\n\n    def unused(self, x):\n        y = F.relu", 1)
    assert moved != source
    (first / "gatepkg" / "__init__.py").write_text(moved)
    done = _run(LOAD_AND_COUNT, first, str(saved))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert any("gatepkg" in w and "Gate.forward" in w for w in result["warnings"]), result["warnings"]
