import json
import os
import stat
from pathlib import Path

import pytest

from ml_core.atomic import atomic_output, write_json_atomic


def test_write_json_atomic_round_trips(tmp_path: Path) -> None:
    path = write_json_atomic(tmp_path / "nested" / "metrics.json", {"accuracy": 0.5, "epoch": 3})
    assert json.loads(path.read_text()) == {"accuracy": 0.5, "epoch": 3}
    assert [p.name for p in path.parent.iterdir()] == ["metrics.json"]


def test_unserialisable_data_keeps_the_old_file(tmp_path: Path) -> None:
    path = write_json_atomic(tmp_path / "metrics.json", {"accuracy": 0.5})
    with pytest.raises(TypeError):
        write_json_atomic(path, {"accuracy": object()})
    assert json.loads(path.read_text()) == {"accuracy": 0.5}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_nan_is_rejected_rather_than_written_as_invalid_json(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_json_atomic(tmp_path / "metrics.json", {"loss": float("nan")})
    assert not (tmp_path / "metrics.json").exists()


def test_failure_inside_atomic_output_leaves_no_partial_file(tmp_path: Path) -> None:
    destination = tmp_path / "model.bin"
    destination.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_output(destination) as temporary:
            temporary.write_bytes(b"half-writ")
            raise RuntimeError("crash mid-write")
    assert destination.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.bin"]


def test_atomic_files_get_the_umask_mode_not_mkstemps_0600(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        written = write_json_atomic(tmp_path / "metrics.json", {"a": 1})
        assert stat.S_IMODE(written.stat().st_mode) == 0o644
        os.umask(0o077)
        private = write_json_atomic(tmp_path / "private.json", {"a": 1})
        assert stat.S_IMODE(private.stat().st_mode) == 0o600
    finally:
        os.umask(previous)
