"""The guidelines' example of a dict at the model boundary: `qready fix` explains what to change."""

from typing import Dict

import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(1, 8, 3)
        self.relu2 = nn.ReLU()

    def forward(self, inputs: Dict[str, torch.Tensor]):
        x = self.conv1(inputs["image_rgb"])
        rgb_output = self.relu1(x)
        x = self.conv2(inputs["image_bw"])
        bw_output = self.relu2(x)
        return {"rgb": rgb_output, "bw": bw_output}


def example_inputs():
    return ({"image_rgb": torch.randn(1, 3, 8, 8), "image_bw": torch.randn(1, 1, 8, 8)},)
