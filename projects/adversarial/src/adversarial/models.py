"""The models under attack: the shared :class:`~vision.model.DigitCNN` and a second architecture (an
MLP) for transfer attacks, extraction surrogates and the disagreement detector."""

from __future__ import annotations

import torch
from torch import nn

from vision.data import Split
from vision.model import DigitCNN, ModelConfig
from vision.training import FitConfig, fit


class DigitMLP(nn.Module):
    """Flattened pixels -> one hidden layer -> logits."""

    def __init__(self, image_size: int = 8, hidden: int = 256, dropout: float = 0.1) -> None:
        super().__init__()
        self.image_size = image_size
        self.layers = nn.Sequential(
            nn.Flatten(),
            nn.Linear(image_size * image_size, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, 10),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.layers(images.reshape(len(images), -1))
        return logits


def cnn(image_size: int = 8, dropout: float = 0.25) -> DigitCNN:
    """The digit CNN of projects/mnist, with the adversarial project's default sizes."""
    return DigitCNN(ModelConfig(image_size=image_size, dropout=dropout))


def train_cnn(
    train: Split, validation: Split, config: FitConfig, *, dropout: float = 0.25, **kwargs: object
) -> DigitCNN:
    """A freshly initialised CNN (seeded by ``config.seed``) fitted with
    :func:`vision.training.fit`."""
    torch.manual_seed(config.seed)
    model = cnn(int(train.images.shape[-1]), dropout)
    fit(model, train, validation, config, **kwargs)  # type: ignore[arg-type]
    return model


def train_mlp(train: Split, validation: Split, config: FitConfig, **kwargs: object) -> DigitMLP:
    torch.manual_seed(config.seed)
    model = DigitMLP(int(train.images.shape[-1]))
    fit(model, train, validation, config, **kwargs)  # type: ignore[arg-type]
    return model
