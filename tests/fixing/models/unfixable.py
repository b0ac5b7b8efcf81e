"""Findings that source cannot fix, each for its own reason."""

import functools

import torch
import torch.nn.functional as F
from torch import nn


class InLambda(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)
        self.act = lambda t: F.relu(t)

    def forward(self, x):
        return self.act(self.conv(x))


class ThroughPartial(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)
        self.act = functools.partial(F.gelu, approximate="tanh")

    def forward(self, x):
        return self.act(self.conv(x))


class ThroughGetattr(nn.Module):
    def __init__(self, kind: str = "silu") -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)
        self.kind = kind

    def forward(self, x):
        return getattr(F, self.kind)(self.conv(x))


class InLoop(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(3, 3, 1) for _ in range(3))
        self.act = nn.ReLU()

    def forward(self, x):
        for conv in self.convs:
            x = F.relu(conv(x))
            x = self.act(x)
        return x


class SharedWeights(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)
        self.head = nn.Conv2d(3, 3, 1)

    def forward(self, x):
        return self.head(self.conv(self.conv(x)))


class DictInputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)

    def forward(self, inputs):
        return {"out": self.conv(inputs["image"])}


_GENERATED = '''
class Generated(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)

    def forward(self, x):
        return torch.sigmoid(self.conv(x))
'''
_namespace = {"nn": nn, "torch": torch}
exec(compile(_GENERATED, "<generated>", "exec"), _namespace)
Generated = _namespace["Generated"]


class ScalarArithmetic(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)

    def forward(self, x):
        return self.conv(x) * (x.shape[2] * 0.5)


class Ambiguous(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)

    def forward(self, x):
        h, w = x.shape[2:]
        return self.conv(x) * (h * w)

