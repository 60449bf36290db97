"""Digit data (MNIST IDX files or sklearn's 8x8 digits), which lives in libs/vision (shared with
projects/adversarial); re-exported so ``mnist.data`` keeps working for mnist's callers."""

from vision.data import (
    DATA_DIR_ENV_VAR,
    DataError,
    DigitData,
    Split,
    load_data,
    load_mnist_idx,
    load_sklearn_digits,
    read_idx,
    write_idx,
)

__all__ = [
    "DATA_DIR_ENV_VAR",
    "DataError",
    "DigitData",
    "Split",
    "load_data",
    "load_mnist_idx",
    "load_sklearn_digits",
    "read_idx",
    "write_idx",
]
