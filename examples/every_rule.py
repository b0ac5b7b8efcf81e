"""A small model that breaks each of the five guidelines once.

    qready check examples/every_rule.py:EveryRule --input 1x3x32x32
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Head(nn.Module):
    """Returns a dict: a non-tensor output at a submodule boundary (QR005)."""

    def __init__(self) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 10)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"logits": self.fc(self.pool(x).flatten(1))}


class EveryRule(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.relu = nn.ReLU()
        self.head = Head()

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.relu(self.conv1(x))
        y = self.relu(self.conv2(x))  # QR004: self.relu runs a second time
        x = F.relu(x + y)  # QR003: a functional relu and an add, outside any leaf module
        if x.mean() > 0.5:  # QR001, QR002: control flow on a tensor value
            x = x * 0.5
        return self.head(x)  # QR005: the model returns a dict
