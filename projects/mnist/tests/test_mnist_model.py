import pytest
import torch

import vision
from mnist.model import DigitCNN, ModelConfig


def test_mnist_uses_the_shared_cnn() -> None:
    assert DigitCNN is vision.DigitCNN and ModelConfig is vision.ModelConfig


@pytest.mark.parametrize("size", [8, 28])
def test_the_cnn_fits_both_of_mnists_data_sources(size: int) -> None:
    model = DigitCNN(ModelConfig(image_size=size))
    assert model(torch.rand(3, size, size)).shape == (3, 10)
