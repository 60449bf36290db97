"""Digit classification: IDX/sklearn data, a small CNN, single-process or DDP training."""

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
