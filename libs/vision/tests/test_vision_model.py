import pytest
import torch

from vision.model import DigitCNN, ModelConfig


@pytest.mark.parametrize("size", [8, 28])
def test_model_adapts_to_image_size(size: int) -> None:
    model = DigitCNN(ModelConfig(image_size=size))
    assert model(torch.rand(3, size, size)).shape == (3, 10)
    assert model(torch.rand(3, 1, size, size)).shape == (3, 10)


def test_wrong_image_size_is_a_clear_error() -> None:
    model = DigitCNN(ModelConfig(image_size=8))
    with pytest.raises(ValueError, match="expects 8x8 images, got \\(28, 28\\)"):
        model(torch.rand(1, 28, 28))


def test_invalid_image_size_config() -> None:
    with pytest.raises(ValueError, match="multiple of 4"):
        ModelConfig(image_size=10)


def test_config_round_trips_through_a_dict() -> None:
    config = ModelConfig(image_size=28, channels=(8, 16))
    assert ModelConfig.from_dict(config.to_dict()) == config
