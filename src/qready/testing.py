"""Test helpers: assert in a test suite that a model stays ready for quantization.

``assert_quant_ready(model, example_inputs)`` fails with the findings listed as
``qready check`` prints them. Installed with qready, this module is also a
pytest plugin (entry point ``qready``) with a ``quant_ready`` fixture that
returns the same function::

    def test_my_net_is_quant_ready(quant_ready):
        quant_ready(MyNet(), (torch.randn(1, 3, 32, 32),), ignore=["QR001"])
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from qready.findings import Report

__all__ = ["assert_quant_ready", "quant_ready"]


def assert_quant_ready(
    model: torch.nn.Module,
    example_inputs: tuple[Any, ...] | Mapping[str, Any],
    *,
    select: Iterable[str] | None = None,
    ignore: Iterable[str] | None = None,
) -> Report:
    """Check ``model`` and return the report; raise ``AssertionError`` listing the findings if any is an error.

    Warnings alone pass (as for ``qready check``); they are in the returned
    report. ``select`` and ``ignore`` take rule codes or names.
    """
    __tracebackhide__ = True  # pytest shows the caller's line, not this helper's
    # imported here: pytest loads this plugin in every session of an environment
    # that has qready, and most of those sessions never check a model
    from qready.api import check
    from qready.reporting.text_format import format_finding, summary_line

    report = check(model, example_inputs, select=select, ignore=ignore)
    if not report.ok:
        lines = [f"{report.model} is not ready for quantization:"]
        lines += [f"  {format_finding(finding)}" for finding in report.findings]
        lines.append(summary_line(report))
        raise AssertionError("\n".join(lines))
    return report


try:
    import pytest
except ImportError:  # the helper works without pytest; only the fixture needs it
    pass
else:

    @pytest.fixture
    def quant_ready() -> Any:
        """``assert_quant_ready``, as a fixture."""
        return assert_quant_ready
