"""Small models for the target-aware checks, the sim coverage and the attention decomposition."""

from __future__ import annotations

import torch
from torch import nn


class SigmoidGate(nn.Module):
    """A custom module without children: no toolkit has a quantized definition for it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(x)


class GatedConv(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.gate = SigmoidGate()
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.gate(self.conv(x)))


class ResidualBlock(nn.Module):
    """One functional add outside any module: 2 of 3 value-changing ops sit in a leaf."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv(x)) + x


class TinyAttention(nn.Module):
    """A pre-norm attention block; ``batch_first=True`` takes the fused eval kernel."""

    def __init__(self, dim: int = 64, heads: int = 4, batch_first: bool = True, need_weights: bool = False) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.attention = nn.MultiheadAttention(dim, heads, batch_first=batch_first)
        self.head = nn.Linear(dim, 10)
        self.need_weights = need_weights

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm(x)
        y = self.attention(y, y, y, need_weights=self.need_weights)[0]
        return self.head(x + y)
