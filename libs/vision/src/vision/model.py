"""A small CNN whose classifier head adapts to 8x8 (sklearn digits) or 28x28 (MNIST) input."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    image_size: int = 8
    num_classes: int = 10
    channels: tuple[int, int] = (32, 64)
    hidden: int = 128
    dropout: float = 0.25

    def __post_init__(self) -> None:
        if self.image_size < 4 or self.image_size % 4:
            raise ValueError(
                f"image_size must be a multiple of 4 (two 2x poolings), got {self.image_size}."
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ModelConfig:
        return cls(**{**values, "channels": tuple(values["channels"])})


def _conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
    )


class DigitCNN(nn.Module):
    """Two conv blocks (each halves the image) and an MLP head sized from the image."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        first, second = config.channels
        self.features = nn.Sequential(_conv_block(1, first), _conv_block(first, second))
        side = config.image_size // 4
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(config.dropout),
            nn.Linear(second * side * side, config.hidden),
            nn.ReLU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.hidden, config.num_classes),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Map (N, H, W) or (N, 1, H, W) images to (N, num_classes) logits."""
        if images.dim() == 3:
            images = images.unsqueeze(1)
        if images.shape[-1] != self.config.image_size or images.shape[-2] != self.config.image_size:
            raise ValueError(
                f"model expects {self.config.image_size}x{self.config.image_size} images, "
                f"got {tuple(images.shape[-2:])}."
            )
        logits: torch.Tensor = self.classifier(self.features(images))
        return logits
