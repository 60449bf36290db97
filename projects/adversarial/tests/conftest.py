from __future__ import annotations

import pytest
import torch

from vision.data import DigitData, load_data
from vision.model import DigitCNN, ModelConfig
from vision.training import FitConfig, fit

torch.set_num_threads(1)


def tiny_cnn(seed: int = 0) -> DigitCNN:
    torch.manual_seed(seed)
    return DigitCNN(ModelConfig(image_size=8, channels=(8, 16), hidden=32, dropout=0.1))


@pytest.fixture(scope="session")
def digits() -> DigitData:
    return load_data("digits", seed=0)


@pytest.fixture(scope="session")
def trained_cnn(digits: DigitData) -> DigitCNN:
    """A tiny CNN trained for a few epochs: well above chance, far from robust."""
    model = tiny_cnn()
    fit(model, digits.train, digits.validation, FitConfig(epochs=4, seed=0), progress=False)
    return model


@pytest.fixture(scope="session")
def test_batch(digits: DigitData) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(digits.test.images[:120]), torch.from_numpy(digits.test.labels[:120])
