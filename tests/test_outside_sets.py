"""The outside benchmark sets read what they measure correctly.

``benchmarks/aimet_test_models.py`` takes each model and example input out of a
test suite's own code without running its tests. Here it reads a small test file
written the way AIMET's preparer tests are (a model class inside the test, inputs
made after ``prepare_model``, a helper method that builds the model, ``.cuda()``,
``*inputs`` forwards) and must hand back the model and the inputs the test calls
it with, and say why a test it cannot take apart is left out.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import aimet_test_models as reader  # noqa: E402

TEST_FILE = '''
import torch
from missing_package import something  # a failing import is skipped, not fatal
from aimet_torch.model_preparer import prepare_model


class Shared(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 1)

    def forward(self, *inputs):
        return self.conv(inputs[0]) + self.conv(inputs[1])


class TestPreparer:
    def helper(self, model_class):
        input_tensor = [torch.randn(1, 3, 4, 4)]
        model = model_class().eval()
        prepared = prepare_model(model)
        assert torch.equal(prepared(*input_tensor), model(*input_tensor))

    def test_star_inputs(self):
        model = Shared().eval().cuda()
        prepared = prepare_model(model)
        a, b = torch.randn(1, 3, 8, 8), torch.randn(1, 3, 8, 8)
        assert torch.equal(prepared(a, b), model(a, b))

    def test_same_again(self):
        model = Shared().eval()
        prepared = prepare_model(model)
        x = (torch.randn(1, 3, 8, 8), torch.randn(1, 3, 8, 8))
        prepared(*x)

    def test_through_helper(self):
        class Mean(torch.nn.Module):
            def forward(self, *inputs):
                return inputs[0].mean(1)

        self.helper(Mean)

    def test_no_input(self):
        model = Shared().eval()
        prepare_model(model)
'''


def _checkout(tmp_path: Path) -> Path:
    tests = tmp_path / reader.TESTS
    tests.mkdir(parents=True)
    (tests / "test_model_preparer.py").write_text(textwrap.dedent(TEST_FILE))
    (tests / "test_model_validator.py").write_text("import torch\n")
    return tmp_path


def test_each_case_is_the_model_and_the_inputs_its_test_calls_it_with(tmp_path: Path) -> None:
    src = _checkout(tmp_path)
    found = {case.test: (case, missing, key) for case, missing, key in reader.survey(src)}
    assert set(found) == {"test_star_inputs", "test_same_again", "test_through_helper", "test_no_input"}

    model, example = reader.build(found["test_star_inputs"][0], src / reader.TESTS)
    assert type(model).__name__ == "Shared" and not model.training
    assert [tuple(a.shape) for a in example.args] == [(1, 3, 8, 8), (1, 3, 8, 8)]  # *inputs: both, not one
    assert example.call(model).shape == (1, 4, 8, 8)

    # the same class on the same shapes is one case, whatever the test calls it with
    assert found["test_same_again"][2] == found["test_star_inputs"][2]

    model, example = reader.build(found["test_through_helper"][0], src / reader.TESTS)
    assert type(model).__name__ == "Mean" and [tuple(a.shape) for a in example.args] == [(1, 3, 4, 4)]
    torch.testing.assert_close(example.call(model), example.args[0].mean(1))

    assert found["test_no_input"][1] == "not extracted: LookupError: the test builds no input for its model"
