"""The load benchmark end to end with tiny sizes: JSON and plot written, targets checked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kv_serve.load_benchmark import main


def test_quick_run_writes_results_and_plot(tmp_path: Path) -> None:
    out = tmp_path / "load"
    assert main(["--quick", "--out", str(out), "--prompt-tokens", "8"]) == 0
    results = json.loads((out / "load.json").read_text())
    assert [level["clients"] for level in results["levels"]] == [1, 4]
    assert all(level["errors"] == 0 and level["tokens"] > 0 for level in results["levels"])
    assert results["levels"][1]["tokens"] == 4 * 8
    assert (out / "load.png").stat().st_size > 1000
    assert results["missed_targets"] == []


def test_missed_target_exits_1_after_writing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "load"
    argv = ["--out", str(out), "--clients", "1", "16", "--new-tokens", "2", "--min-speedup", "1000"]
    assert main(argv) == 1
    assert "below the target --min-speedup 1000x" in capsys.readouterr().err
    results = json.loads((out / "load.json").read_text())
    assert results["missed_targets"] and len(results["levels"]) == 2


@pytest.mark.parametrize(
    ("argv", "message"),
    [(["--new-tokens", "0"], "--new-tokens"), (["--clients", "0"], "--clients")],
)
def test_bad_values_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err
