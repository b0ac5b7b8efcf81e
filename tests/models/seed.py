"""The examples of the model guidelines document, as models: each violation and its correction."""

from __future__ import annotations

import torch
from torch import nn


class FunctionalRelu(nn.Module):
    """Uses torch.nn.functional.relu in the forward (guideline 3)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        x = torch.nn.functional.relu(x)
        return x


class ModuleRelu(nn.Module):
    """The correction: relu defined as a module."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv(x))


class ReusedRelu(nn.Module):
    """One relu instance applied to two tensors (guideline 4)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(3, 8, 3, padding=1)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor, x2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.relu(self.conv1(x))
        x2 = self.relu(self.conv2(x2))
        return x, x2


class TwoRelus(nn.Module):
    """The correction: one relu per use."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(3, 8, 3, padding=1)
        self.relu = nn.ReLU()
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor, x2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.relu(self.conv1(x)), self.relu2(self.conv2(x2))


class DictIO(nn.Module):
    """Takes a dict of images and returns a dict (guideline 5)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(1, 8, 3, padding=1)
        self.relu2 = nn.ReLU()

    def forward(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        x = self.conv1(inputs["image_rgb"])
        rgb_output = self.relu1(x)
        x = self.conv2(inputs["image_bw"])
        bw_output = self.relu2(x)
        return {"rgb": rgb_output, "bw": bw_output}


class TensorIO(DictIO):
    """The correction: tensors in, a tuple of tensors out."""

    def forward(self, image_rgb: torch.Tensor, image_bw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        rgb_output = self.relu1(self.conv1(image_rgb))
        bw_output = self.relu2(self.conv2(image_bw))
        return rgb_output, bw_output


def image(channels: int = 3, size: int = 16) -> torch.Tensor:
    return torch.randn(1, channels, size, size)


def dict_inputs() -> tuple[dict[str, torch.Tensor]]:
    return ({"image_rgb": image(3), "image_bw": image(1)},)
