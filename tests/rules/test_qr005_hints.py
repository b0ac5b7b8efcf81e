"""QR005's fix says what to do about the values found, and nothing that does not apply to them."""

from __future__ import annotations

import pytest
import torch

import qready


class _Optional(torch.nn.Module):
    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return x if mask is None else x * mask


class _DictIn(torch.nn.Module):
    def forward(self, batch: dict) -> tuple[torch.Tensor, list]:
        return batch["x"], [batch["x"]]


def test_qr005_suggests_only_what_applies_to_the_values_it_found() -> None:
    [none_in] = qready.check(_Optional(), (torch.ones(2), None), select=["QR005"]).findings
    assert none_in.fix == "drop optional None arguments"
    [dict_in] = qready.check(_DictIn(), ({"x": torch.ones(2)},), select=["QR005"]).findings
    assert dict_in.fix == "take each tensor as its own forward argument; return a tensor or a tuple of tensors"


class _Padded(torch.nn.Module):
    """Pads by a size read from the input, as a list or a tuple (kornia's filters, torchaudio's HDemucs)."""

    def __init__(self, as_list: bool) -> None:
        super().__init__()
        self.as_list = as_list

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        side = x.shape[-1] // 8
        padding = [side, side, 1, 1] if self.as_list else (side, side, 1, 1)
        return torch.nn.functional.pad(x, padding, mode="reflect") * 2


@pytest.mark.parametrize("as_list", [True, False])
def test_numbers_at_a_boundary_are_one_warning_as_a_list_or_a_tuple(as_list: bool) -> None:
    """A padding in a list is as constant as in a tuple: the Pad module prepare makes for the call gets a
    warning either way, with the values, never an error the original does not have."""
    x = torch.randn(1, 1, 16, 16)
    model = _Padded(as_list).eval()
    assert not qready.check(model, (x,), select=["QR005"]).findings
    result = qready.prepare(model, (x,)).prepare_result
    [finding] = [f for f in result.residual if f.code == "QR005"]
    kind, shown = ("list", "[2, 2, 1, 1]") if as_list else ("tuple", "(2, 2, 1, 1)")
    assert finding.severity.name == "WARNING" and finding.count == 1
    assert finding.message.endswith(f"inputs['pad'] is {kind} of 4 int {shown}")
    assert finding.fix.startswith("fine if the value is a constant")
