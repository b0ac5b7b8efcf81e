"""The source that the findings of tests/reporting/fixture.py point at."""

import torch
import torch.nn.functional as F
from torch import nn


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(8, 8, 3, padding=1)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self.conv(x))
        return self.act(y + x)  # the same ReLU twice, and a functional add


class SampleNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.blocks = nn.Sequential(Block(), Block())
        self.head = nn.Linear(8, 10)

    def forward(self, x: torch.Tensor, scale: float = 0.5) -> dict[str, torch.Tensor]:
        x = F.relu(self.stem(x))
        x = self.blocks(x)
        if x.mean() > 0:
            x = x * scale
        return {"logits": self.head(x.mean((2, 3)))}
