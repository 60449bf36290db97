"""Digit images and the CNN that classifies them, shared by projects/mnist and projects/adversarial:

IDX/sklearn data, the model, checkpoints and the training loop's parts.
"""

from vision.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from vision.data import DataError, DigitData, Split, load_data, read_idx, write_idx
from vision.model import DigitCNN, ModelConfig
from vision.training import EarlyStopping, Evaluation, evaluate_model, random_shift

__all__ = [
    "CheckpointError",
    "DataError",
    "DigitCNN",
    "DigitData",
    "EarlyStopping",
    "Evaluation",
    "ModelConfig",
    "Split",
    "evaluate_model",
    "load_checkpoint",
    "load_data",
    "random_shift",
    "read_idx",
    "save_checkpoint",
    "write_idx",
]
