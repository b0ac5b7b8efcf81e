"""The guidelines' example of a functional in forward: `qready fix` moves it into a module."""

import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)

    def forward(self, x):
        x = self.conv(x)
        x = torch.nn.functional.relu(x)
        return x
