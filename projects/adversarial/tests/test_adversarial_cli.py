import json
from pathlib import Path

import pytest

from adversarial.cli import Config, main, run


def test_training_lowers_the_loss_and_writes_its_outputs(tmp_path: Path) -> None:
    metrics = run(Config(out=tmp_path, samples=64, steps=100))
    assert metrics["final_loss"] < metrics["first_loss"] / 10
    assert metrics["weight"] == pytest.approx(3.0, abs=0.3)
    assert json.loads((tmp_path / "metrics.json").read_text())["config"]["steps"] == 100
    assert (tmp_path / "loss.png").read_bytes()[:4] == b"\x89PNG"


def test_a_bad_value_names_its_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--learning-rate", "-1"]) == 2
    assert "--learning-rate: must be positive" in capsys.readouterr().err
