"""Property-based fuzzing of ``qready.prepare`` on random models from the tests/fuzz grammar.

For every generated model: prepare succeeds and verifies, the outputs are bit
for bit the original's on a third input, QR003/QR004 remain only inside the
submodules left whole, the original model is unchanged, and the saved model
loads back to the same outputs (see ``fuzz/properties.py``). CI runs a fixed,
bounded set of examples; ``benchmarks/fuzz_soak.py`` runs thousands.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F  # noqa: F401 - the templates below are evaluated with it
from hypothesis import HealthCheck, given, note, settings

import qready
from fuzz import GeneratedModel, build, check_prepare, example_inputs, generated_module, models
from fuzz.grammar import BINARY, INPLACE, LEAF_MODULES, RANDOM, TIED, UNARY

CI_EXAMPLES = 200


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="qready-fuzz-") as directory:
        yield Path(directory)


@settings(
    max_examples=CI_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(generated=models())
def test_prepare_is_exact_and_leaves_the_model_alone(generated: GeneratedModel, scratch: Path) -> None:
    note(str(generated))  # the model's source, readable, when an example fails
    check_prepare(generated, Path(tempfile.mkdtemp(dir=scratch)))


def test_every_template_keeps_the_shape_every_statement_relies_on() -> None:
    a, b = torch.randn(2, 4, 8), torch.randn(2, 4, 8)
    from einops import rearrange, reduce

    namespace = {"torch": torch, "F": F, "nn": torch.nn, "a": a, "b": b, "rearrange": rearrange, "reduce": reduce}
    for template in (*UNARY, *RANDOM):
        assert eval(template.format("a"), namespace).shape == (2, 4, 8), template  # noqa: S307 - our own templates
    for template in BINARY:
        assert eval(template.format("a", "b"), namespace).shape == (2, 4, 8), template  # noqa: S307
    for ctor, _ in LEAF_MODULES:
        assert eval(ctor, namespace).eval()(a).shape == (2, 4, 8), ctor  # noqa: S307
    linear = torch.nn.Linear(8, 8)
    for template in TIED:
        assert eval(template.format("a", m="linear"), {**namespace, "self": type("S", (), {"linear": linear})}).shape == (2, 4, 8)  # noqa: S307
    for template in INPLACE:
        target = a.clone()
        exec(template.format("target", "b"), {**namespace, "target": target})  # noqa: S102
        assert target.shape == (2, 4, 8), template


def test_findings_on_a_generated_model_point_at_its_source_file(scratch: Path) -> None:
    source = '''
import torch
import torch.nn.functional as F
from torch import nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(8, 8)
    def forward(self, x):
        return F.relu(self.lin(x))
'''
    generated = GeneratedModel(source, "Model", "tensor", uses_ids=False, seed=0)
    with generated_module(generated, scratch) as module:
        report = qready.check(build(generated, module), example_inputs(generated, seed=0), select=["QR003"])
    [finding] = report.findings
    assert finding.file is not None and finding.file.endswith(f"{module.__name__}.py") and finding.line == 12
