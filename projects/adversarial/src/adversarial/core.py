"""A linear model trained with SGD: the smallest real torch model, to be replaced by yours."""

from __future__ import annotations

import torch
from torch import nn


class Model(nn.Module):
    """``y = w * x + b``, one input and one output."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        output: torch.Tensor = self.linear(x)
        return output

    def predict(self, inputs: list[float]) -> list[float]:
        with torch.no_grad():
            values = self(torch.tensor(inputs, dtype=torch.float32).unsqueeze(1))
        return [float(value) for value in values.squeeze(1)]


def make_data(samples: int, noise: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Noisy points on the line ``y = 3x + 1``, shaped ``(samples, 1)``."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(samples, 1, generator=generator) * 2 - 1
    return x, 3 * x + 1 + noise * torch.randn(samples, 1, generator=generator)


def train(
    x: torch.Tensor, y: torch.Tensor, *, steps: int, learning_rate: float, seed: int
) -> tuple[Model, list[float]]:
    """Fit :class:`Model` to ``(x, y)``; returns it and the loss after every step."""
    torch.manual_seed(seed)
    model = Model()
    optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(float(loss))
    return model, losses
