import gzip
from pathlib import Path

import numpy as np
import pytest

from vision.data import DataError, load_data, load_mnist_idx, read_idx, write_idx


def _write_fake_mnist(directory: Path, *, gz: bool, train: int = 30, test: int = 10) -> None:
    rng = np.random.default_rng(0)
    suffix = ".gz" if gz else ""
    write_idx(directory / f"train-images-idx3-ubyte{suffix}", rng.integers(0, 256, (train, 28, 28)))
    write_idx(directory / f"train-labels-idx1-ubyte{suffix}", np.arange(train) % 10)
    write_idx(directory / f"t10k-images-idx3-ubyte{suffix}", rng.integers(0, 256, (test, 28, 28)))
    write_idx(directory / f"t10k-labels-idx1-ubyte{suffix}", np.arange(test) % 10)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip(tmp_path: Path, gz: bool) -> None:
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / ("images.gz" if gz else "images")
    write_idx(path, array)
    assert np.array_equal(read_idx(path, expected_ndim=3), array)


@pytest.mark.parametrize("gz", [False, True])
def test_load_mnist_directory(tmp_path: Path, gz: bool) -> None:
    _write_fake_mnist(tmp_path, gz=gz)
    data = load_mnist_idx(tmp_path)
    assert data.image_size == 28
    assert len(data.train) + len(data.validation) == 30
    assert len(data.test) == 10
    assert data.train.images.dtype == np.float32
    assert 0.0 <= data.train.images.min() and data.train.images.max() <= 1.0


def test_env_var_selects_the_data_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_fake_mnist(tmp_path, gz=True)
    monkeypatch.setenv("MNIST_DATA_DIR", str(tmp_path))
    assert load_data().source == str(tmp_path)


def test_default_is_bundled_sklearn_digits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MNIST_DATA_DIR", raising=False)
    data = load_data()
    assert data.source == "sklearn-digits"
    assert data.image_size == 8
    assert len(data.train) + len(data.validation) + len(data.test) == 1797
    assert set(np.unique(data.test.labels)) == set(range(10))
    # The split is deterministic for a seed and differs across seeds.
    assert np.array_equal(load_data(seed=0).test.labels, data.test.labels)
    assert not np.array_equal(load_data(seed=1).test.labels, data.test.labels)


def test_missing_file_names_what_is_needed(tmp_path: Path) -> None:
    _write_fake_mnist(tmp_path, gz=False)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match="has no t10k-labels-idx1-ubyte"):
        load_mnist_idx(tmp_path)


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_data(str(tmp_path / "nowhere"))


def test_wrong_magic_number(tmp_path: Path) -> None:
    path = tmp_path / "labels"
    write_idx(path, np.zeros(5))
    with pytest.raises(DataError, match="magic number 0x00000801, expected 0x00000803"):
        read_idx(path, expected_ndim=3)


def test_truncated_file(tmp_path: Path) -> None:
    path = tmp_path / "images.gz"
    write_idx(path, np.zeros((4, 28, 28)))
    payload = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(payload[:-100]))
    with pytest.raises(DataError, match="truncated: header shape \\(4, 28, 28\\) needs 3136 bytes"):
        read_idx(path, expected_ndim=3)


def test_not_gzip_despite_the_name(tmp_path: Path) -> None:
    path = tmp_path / "images.gz"
    path.write_bytes(b"plain bytes")
    with pytest.raises(DataError, match="cannot read"):
        read_idx(path, expected_ndim=3)


def test_label_count_mismatch(tmp_path: Path) -> None:
    _write_fake_mnist(tmp_path, gz=False)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(3))
    with pytest.raises(DataError, match="10 images but t10k-labels-idx1-ubyte has 3 labels"):
        load_mnist_idx(tmp_path)
