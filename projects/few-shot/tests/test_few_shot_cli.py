import json
from pathlib import Path

import pytest

from few_shot.cli import Config, main, run


def test_a_preset_completes_the_prompt_and_writes_metrics(tmp_path: Path) -> None:
    metrics = run(Config(out=tmp_path, model="tiny", max_new_tokens=4))
    assert metrics["model"] == "preset:tiny"
    assert metrics["completion"]
    assert json.loads((tmp_path / "metrics.json").read_text())["config"]["max_new_tokens"] == 4


def test_a_missing_model_directory_is_a_clear_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--model", str(tmp_path / "missing"), "--out", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert "does not exist" in error
    assert "Traceback" not in error
