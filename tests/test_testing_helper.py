"""qready.testing: the assertion helper and the pytest plugin's ``quant_ready`` fixture."""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path

import pytest
import torch

from qready.findings import Report
from qready.reporting.text_format import format_finding, summary_line
from qready.testing import assert_quant_ready
from models.seed import FunctionalRelu, ModuleRelu, image

pytest_plugins = ["pytester"]
TESTS = Path(__file__).resolve().parent
FAST = ["QR003", "QR004", "QR005"]  # the exporters are covered elsewhere; these run in one forward


def test_a_ready_model_returns_its_report() -> None:
    report = assert_quant_ready(ModuleRelu(), (image(),), select=FAST)
    assert isinstance(report, Report) and report.ok and report.rules_run == tuple(FAST)


def test_a_flagged_model_fails_with_the_findings_as_check_prints_them() -> None:
    model, inputs = FunctionalRelu(), (image(),)
    with pytest.raises(AssertionError, match=r"FunctionalRelu is not ready for quantization:\n  .*QR003  functional-op") as info:
        assert_quant_ready(model, inputs, select=FAST)
    from qready.api import check

    report = check(model, inputs, select=FAST)
    assert str(info.value).splitlines() == [
        "FunctionalRelu is not ready for quantization:",
        *(f"  {format_finding(f)}" for f in report.findings),
        summary_line(report),
    ]


def test_ignore_and_select_take_codes_and_names() -> None:
    assert assert_quant_ready(FunctionalRelu(), (image(),), select=FAST, ignore=["functional-op"]).ok
    assert assert_quant_ready(FunctionalRelu(), {"x": torch.randn(1, 3, 8, 8)}, select=["QR004"]).ok


def test_plugin_is_registered_under_the_pytest11_entry_point() -> None:
    plugins = {ep.name: ep.value for ep in entry_points(group="pytest11")}
    assert plugins.get("qready") == "qready.testing"


def test_quant_ready_fixture_in_a_user_test_suite(pytester: pytest.Pytester) -> None:
    pytester.syspathinsert(TESTS)
    pytester.makepyfile(
        """
        from models.seed import FunctionalRelu, ModuleRelu, image

        FAST = ["QR003", "QR004", "QR005"]

        def test_ready(quant_ready):
            assert quant_ready(ModuleRelu(), (image(),), select=FAST).ok

        def test_not_ready(quant_ready):
            quant_ready(FunctionalRelu(), (image(),), select=FAST)
        """
    )
    # hypothesis and anyio take seconds to set up in an inline run, and are not what this tests
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:anyio")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*FunctionalRelu is not ready for quantization:*", "*QR003  functional-op*"])
    result.stdout.no_fnmatch_line("*def assert_quant_ready*")  # the helper hides its own frame
