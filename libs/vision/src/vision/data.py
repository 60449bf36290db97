"""Digit images: the real MNIST IDX files, or scikit-learn's bundled 8x8 digits offline."""

from __future__ import annotations

import dataclasses
import gzip
import os
import struct
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

DATA_DIR_ENV_VAR = "MNIST_DATA_DIR"
# The IDX magic number is 0x0000 + a dtype byte (0x08: unsigned byte) + the number of dims.
IDX_UBYTE = 0x08
MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


class DataError(ValueError):
    """The data on disk is missing or not what it claims to be."""


@dataclasses.dataclass(frozen=True)
class Split:
    """Images scaled to [0, 1] with shape (N, H, W) and integer labels (N,)."""

    images: np.ndarray
    labels: np.ndarray

    def __post_init__(self) -> None:
        if self.images.ndim != 3 or len(self.images) != len(self.labels):
            raise DataError(
                f"images {self.images.shape} and labels {self.labels.shape} do not match."
            )

    def __len__(self) -> int:
        return len(self.labels)


@dataclasses.dataclass(frozen=True)
class DigitData:
    train: Split
    validation: Split
    test: Split
    source: str

    @property
    def image_size(self) -> int:
        return int(self.train.images.shape[-1])


def read_idx(path: str | os.PathLike[str], expected_ndim: int) -> np.ndarray:
    """Read an unsigned-byte IDX file (raw or gzip) into an array, validating its header."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            content = handle.read()
    except FileNotFoundError:
        raise DataError(f"IDX file not found: {path}") from None
    except (OSError, EOFError) as error:
        raise DataError(f"cannot read {path}: {error}") from None
    if len(content) < 4:
        raise DataError(f"{path} is truncated: {len(content)} bytes, no IDX header.")
    zero, dtype, ndim = struct.unpack(">HBB", content[:4])
    expected_magic = (IDX_UBYTE << 8) | expected_ndim
    if zero != 0 or dtype != IDX_UBYTE or ndim != expected_ndim:
        raise DataError(
            f"{path} has magic number 0x{content[:4].hex()}, expected 0x{expected_magic:08x} "
            f"(unsigned-byte IDX with {expected_ndim} dimension(s))."
        )
    header_size = 4 + 4 * ndim
    if len(content) < header_size:
        raise DataError(f"{path} is truncated inside its header.")
    shape = struct.unpack(f">{ndim}I", content[4:header_size])
    expected_bytes = int(np.prod(shape))
    actual_bytes = len(content) - header_size
    if actual_bytes != expected_bytes:
        state = "truncated" if actual_bytes < expected_bytes else "longer than its header says"
        raise DataError(
            f"{path} is {state}: header shape {shape} needs {expected_bytes} bytes of data, "
            f"found {actual_bytes}."
        )
    return np.frombuffer(content, dtype=np.uint8, offset=header_size).reshape(shape)


def _find_idx_file(directory: Path, stem: str) -> Path:
    for name in (stem, f"{stem}.gz"):
        if (directory / name).exists():
            return directory / name
    raise DataError(
        f"{directory} has no {stem} (or {stem}.gz); MNIST needs {sorted(MNIST_FILES.values())}."
    )


def _idx_split(directory: Path, images_stem: str, labels_stem: str) -> Split:
    images = read_idx(_find_idx_file(directory, images_stem), expected_ndim=3)
    labels = read_idx(_find_idx_file(directory, labels_stem), expected_ndim=1)
    if len(images) != len(labels):
        raise DataError(
            f"{images_stem} has {len(images)} images but {labels_stem} has {len(labels)} labels."
        )
    return Split(images.astype(np.float32) / 255.0, labels.astype(np.int64))


def _split_off_validation(train: Split, fraction: float, seed: int) -> tuple[Split, Split]:
    classes = len(np.unique(train.labels))
    if len(train) < 2 * classes:
        raise DataError(
            f"{len(train)} training examples are too few to split off a validation set "
            f"for {classes} classes."
        )
    # A stratified split needs at least one validation example per class.
    validation_size = max(classes, round(fraction * len(train)))
    train_idx, val_idx = train_test_split(
        np.arange(len(train)), test_size=validation_size, random_state=seed, stratify=train.labels
    )
    return (
        Split(train.images[train_idx], train.labels[train_idx]),
        Split(train.images[val_idx], train.labels[val_idx]),
    )


def load_mnist_idx(
    directory: str | os.PathLike[str], *, validation_fraction: float = 0.1, seed: int = 0
) -> DigitData:
    """Load the four MNIST IDX files from ``directory`` (raw or ``.gz``)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"MNIST data directory does not exist: {directory}")
    full_train = _idx_split(directory, MNIST_FILES["train_images"], MNIST_FILES["train_labels"])
    test = _idx_split(directory, MNIST_FILES["test_images"], MNIST_FILES["test_labels"])
    train, validation = _split_off_validation(full_train, validation_fraction, seed)
    return DigitData(train, validation, test, source=str(directory))


def load_sklearn_digits(
    *, test_fraction: float = 0.2, validation_fraction: float = 0.1, seed: int = 0
) -> DigitData:
    """Scikit-learn's 1,797 real 8x8 handwritten digits, shipped inside the package."""
    bunch = load_digits()
    images = (bunch.images / 16.0).astype(np.float32)
    labels = bunch.target.astype(np.int64)
    train_idx, test_idx = train_test_split(
        np.arange(len(labels)), test_size=test_fraction, random_state=seed, stratify=labels
    )
    train, validation = _split_off_validation(
        Split(images[train_idx], labels[train_idx]), validation_fraction, seed
    )
    return DigitData(
        train, validation, Split(images[test_idx], labels[test_idx]), source="sklearn-digits"
    )


def load_data(source: str | None = None, *, seed: int = 0) -> DigitData:
    """Load ``source``: a directory of MNIST IDX files, or ``digits`` for the offline default.

    Without ``source``, ``$MNIST_DATA_DIR`` is used when set, else the bundled digits.
    """
    chosen = source or os.environ.get(DATA_DIR_ENV_VAR) or "digits"
    if chosen == "digits":
        return load_sklearn_digits(seed=seed)
    return load_mnist_idx(chosen, seed=seed)


def write_idx(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """Write an unsigned-byte IDX file (gzip when the name ends in .gz); used to make test data."""
    data = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">HBB", 0, IDX_UBYTE, data.ndim) + struct.pack(
        f">{data.ndim}I", *data.shape
    )
    payload = header + data.tobytes()
    path = Path(path)
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(payload))
    else:
        path.write_bytes(payload)
