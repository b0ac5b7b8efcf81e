"""Verification of rewritten source in a fresh Python process, before anything is written.

The child imports the new text of each file in place of the file on disk (and
new files such as an ``--ops-module`` where they would be written), builds the
model from the same SPEC and arguments, loads the original ``state_dict`` with
``strict=True``, compares outputs bit for bit on the example and on a fresh
input, and checks QR003/QR004 again. It answers in ``result.json``.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import linecache
import os
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from qready.example_inputs import Example, fresh_like, tensor_leaves
from qready.findings import Finding

__all__ = ["verify_in_fresh_process"]

_RESULT = "result.json"


def verify_in_fresh_process(
    spec: str,
    kwargs: Mapping[str, Any],
    model: torch.nn.Module,
    example: Example,
    sources: Mapping[Path, str],
    *,
    remaining: list[Finding],
    timeout: float = 900.0,
) -> str | None:
    """None when the rewritten model is the same model, or the one-line reason it is not.

    ``remaining`` are the QR003/QR004 findings the rewrite does not claim to fix;
    anything else the child's check reports is a failure.
    """
    from qready.guard import call_preserved

    fresh = fresh_like(example, seed=1)
    # the state the child starts from, and each reference run from it too: a forward that reads what it
    # wrote into its buffers (a call counter) computes the same on both sides
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        references = [tensor_leaves(call_preserved(model, inputs)) for inputs in (example, fresh)]
    with tempfile.TemporaryDirectory(prefix="qready-fix-") as job:
        torch.save(
            {
                "spec": spec,
                "kwargs": dict(kwargs),
                "example": (example.args, example.kwargs),
                "fresh": (fresh.args, fresh.kwargs),
                "references": references,
                "state_dict": state,
                "remaining": [_key(f) for f in remaining],
            },
            os.path.join(job, "job.pt"),
        )
        # read first, before unpickling the example can import any of the user's modules
        Path(job, "sources.json").write_text(json.dumps({
            "sources": {str(path): text for path, text in sources.items()},
            "sys_path": [p for p in sys.path if p],  # where the parent found the user's packages
        }), encoding="utf-8")
        package_root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        try:
            done = subprocess.run(
                [sys.executable, "-m", "qready.fixing.verify", job],
                capture_output=True, text=True, timeout=timeout, env=env, check=False,
            )
        except subprocess.TimeoutExpired:
            return f"verifying the fixed model in a fresh process took over {timeout:.0f} s"
        result_path = Path(job, _RESULT)
        if not result_path.is_file():
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            return f"the fresh process that verifies the fix failed ({last})"
        result = json.loads(result_path.read_text())
    return result.get("reason")


def _key(finding: Finding) -> tuple[str, str, str]:
    return (finding.code, finding.module, finding.op)


# --- the child ----------------------------------------------------------------------


def _serve_sources(sources: Mapping[str, str]) -> None:
    """Make imports of these paths compile the given text (new files included), and show it in tracebacks."""
    original = importlib.machinery.SourceFileLoader.get_code

    def get_code(self: importlib.machinery.SourceFileLoader, fullname: str) -> Any:
        path = os.path.realpath(self.get_filename(fullname))
        if path in sources:
            return compile(sources[path], self.get_filename(fullname), "exec", dont_inherit=True)
        return original(self, fullname)

    importlib.machinery.SourceFileLoader.get_code = get_code  # type: ignore[method-assign,assignment]  # the loader's get_code is replaced for the run, with the same behaviour

    class NewFiles:
        @staticmethod
        def find_spec(fullname: str, path: Any = None, target: Any = None) -> Any:
            leaf = fullname.rpartition(".")[2]
            for directory in path or sys.path:
                candidate = os.path.realpath(os.path.join(directory or os.getcwd(), leaf + ".py"))
                if candidate in sources and not os.path.exists(candidate):
                    return importlib.util.spec_from_file_location(fullname, candidate)
            return None

    sys.meta_path.insert(0, NewFiles())
    for path, text in sources.items():
        linecache.cache[path] = (len(text), None, text.splitlines(keepends=True), path)


def _child(job_dir: str) -> dict[str, Any]:
    from qready.api import check
    from qready.errors import QreadyError
    from qready.guard import call_preserved
    from qready.inputs import load_model
    from qready.verify import compare_exact, first_difference

    files = json.loads(Path(job_dir, "sources.json").read_text(encoding="utf-8"))
    sys.path.extend(p for p in files["sys_path"] if p not in sys.path)
    _serve_sources({os.path.realpath(p): t for p, t in files["sources"].items()})
    job = torch.load(os.path.join(job_dir, "job.pt"), weights_only=False)  # written by the parent, just now
    torch.manual_seed(0)
    try:
        model = load_model(job["spec"], job["kwargs"])
    except QreadyError as error:
        return {"reason": f"the fixed source does not build: {error}"}
    try:
        model.load_state_dict(job["state_dict"], strict=True)
    except RuntimeError as error:
        detail = " ".join(str(error).split())[:200]
        return {"reason": f"the original state_dict does not load strictly into the fixed model ({detail})"}
    model.eval()
    for run, (args, kwargs), expected in zip(("example", "fresh"), (job["example"], job["fresh"]), job["references"]):
        try:
            with torch.no_grad():
                got = tensor_leaves(call_preserved(model, Example(tuple(args), dict(kwargs))))
        except Exception as error:
            return {"reason": f"the fixed model's forward raised {type(error).__name__}: {str(error).strip()[:160]}"}
        names = [f"output {i}" for i in range(len(expected))]
        diff = first_difference(compare_exact(run, names, expected, got))
        if diff is not None:
            return {"reason": f"{diff.name} differs on the {run} input (max |diff| {diff.max_abs_diff:.3g}) after the fix"}
    report = check(model, Example(tuple(job["example"][0]), dict(job["example"][1])), select=["QR003", "QR004"])
    allowed = Counter(tuple(k) for k in job["remaining"])
    for finding in report.findings:
        key = _key(finding)
        if allowed[key] > 0:
            allowed[key] -= 1
            continue
        return {"reason": f"{finding.code} is still reported at {finding.location} ({finding.op}) after the fix"}
    return {"reason": None}


if __name__ == "__main__":
    directory = sys.argv[1]
    try:
        outcome = _child(directory)
    except Exception as error:  # reported to the parent as the reason, in one line
        outcome = {"reason": f"verifying the fix raised {type(error).__name__}: {str(error).strip()[:200]}"}
    Path(directory, _RESULT).write_text(json.dumps(outcome))
