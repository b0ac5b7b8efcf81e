"""Models for the leaf policy: what a module-wrapping quantizer can wrap whole, and what it cannot."""

from __future__ import annotations

import torch
import torch.fx
import torch.nn.functional as F
from torch import nn


class Affine(nn.Module):
    """A user's module without submodules: no toolkit has a quantized version of it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2 + 1


class WithAffine(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(8, 8)
        self.affine = Affine()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.affine(self.linear(x))


class Recurrent(nn.Module):
    """An LSTM and multi-head attention: wrapped whole by AIMET, children and all."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(8, 8, batch_first=True)
        self.attention = nn.MultiheadAttention(8, 2, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, _ = self.lstm(x)
        return self.attention(y, y, y, need_weights=False)[0]


class Encoder(nn.Module):
    def __init__(self, nested: bool = False, norm_first: bool = False) -> None:
        super().__init__()
        layer = nn.TransformerEncoderLayer(16, 4, 32, batch_first=True, norm_first=norm_first)
        self.encoder = nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm(16), enable_nested_tensor=nested)

    def forward(self, x: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        return self.encoder(x, src_key_padding_mask=padding)


def scaled_sum(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.relu(x) * 2 + y


torch.fx.wrap("scaled_sum")


class CallsWrapped(nn.Module):
    """Calls a function the user wrapped with torch.fx.wrap: one opaque node to fx."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return scaled_sum(self.linear(x), x)


class Noisy(nn.Module):
    """Draws random numbers in its forward: noise, and dropout that is on in eval too."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.linear(x) + 0.1 * torch.randn_like(x)
        return F.dropout(y, 0.5, training=True) + torch.rand(x.shape[-1])


class Counting(nn.Module):
    """Its output depends on how often it ran: not deterministic under any seed."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(8, 8)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.linear(x) * self.calls


class Gate(nn.Module):
    """A branch on data: the trace leaves it whole, and the example takes only one arm."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor, scale=None) -> torch.Tensor:
        y = self.linear(x)
        if y.sum() > 0:
            return self.squash(y) * 2
        y = F.relu(y) - 1
        if scale is not None:
            y = scale(y)  # a callable only known when it runs
        return y

    def squash(self, y: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(y)


class WithGate(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.gate = Gate()
        self.out = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.gate(x))
