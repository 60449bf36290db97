"""Digit classification: IDX/sklearn data, a small CNN, single-process or DDP training.

The data, the model and the training loop's parts live in libs/vision (``vision``).
"""

from mnist.data import DataError, DigitData, load_data, read_idx
from mnist.evaluate import load_checkpoint
from mnist.model import DigitCNN, ModelConfig
from mnist.train import TrainConfig, train

__all__ = [
    "DataError",
    "DigitCNN",
    "DigitData",
    "ModelConfig",
    "TrainConfig",
    "load_checkpoint",
    "load_data",
    "read_idx",
    "train",
]
