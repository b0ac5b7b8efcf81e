"""QR005's fix says what to do about the values found, and nothing that does not apply to them."""

from __future__ import annotations

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
