"""The guidelines' example of one module used twice: `qready fix` defines a second one."""

import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3)
        self.conv2 = nn.Conv2d(3, 8, 3)
        self.relu = torch.nn.ReLU()

    def forward(self, x, x2):
        x = self.relu(self.conv1(x))
        x2 = self.relu(self.conv2(x2))
        return x, x2
