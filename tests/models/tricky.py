"""Small models that exercise the traps of automatic preparation."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def pad(x: torch.Tensor) -> torch.Tensor:
    """A user's own function that happens to be called `pad`: not torch's."""
    return x


class PositionalArguments(nn.Module):
    """softmax with dim given positionally, masked_fill out of place, a user function named pad."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.proj(x)
        a = h.softmax(-1)
        b = torch.softmax(h, 1)
        masked = h.masked_fill(h > 0, 0.0)
        return pad(a) + b * masked + F.hardswish(h) + h  # h must be unchanged by masked_fill


class TiedEmbedding(nn.Module):
    """A language-model head that reuses the embedding matrix through F.linear, and a block in a loop."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(20, 8)
        self.block = nn.Sequential(nn.Linear(8, 8), nn.GELU())

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = self.emb(ids)
        for _ in range(3):
            h = self.block(h)
        return F.linear(h, self.emb.weight)


class DataDependentGate(nn.Module):
    """Branches on a tensor value: torch.fx cannot trace it, so it must stay a leaf."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(8, 8)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self.a(x))
        if y.sum() > 0:
            return y * 2
        return y - 1


class GatedNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Linear(8, 8)
        self.gate = DataDependentGate()
        self.head = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.stem(x))
        return torch.sigmoid(self.head(self.gate(h) + h))


class SharedChild(nn.Module):
    """One conv instance registered under two parents."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Sequential(nn.Conv2d(3, 3, 1), nn.ReLU())
        self.b = nn.Sequential(nn.Conv2d(3, 3, 1), nn.ReLU())
        self.b[0] = self.a[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.a(x))


class DictBlock(nn.Module):
    """A traceable block with a structured output and an optional argument."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(8, 8)
        self.b = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor, extra: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        return {"out": F.relu(self.a(x)) + self.b(x)}


class UntraceableRoot(nn.Module):
    """The root itself branches on data, in a way the example and a fresh input disagree on."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([DictBlock(), DictBlock()])
        self.head = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.min() > 0:
            x = x * 2
        for block in self.blocks:
            x = block(x)["out"]
        return torch.sigmoid(self.head(x))
