"""The benchmark script end to end on the tiny preset with tiny sizes (a smoke run)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kv_serve.benchmark import main


def test_benchmark_smoke_run(tmp_path: Path) -> None:
    exit_code = main(
        [
            "--preset=tiny",
            f"--out={tmp_path}",
            "--new-tokens=8",
            "--prefix-tokens=64",
            "--prefix-repeats=1",
            "--turns=3",
            "--turn-tokens=8",
            "--memory-tokens=32",
            "--clients=4",
            "--requests-per-client=2",
            "--http-prompt-tokens=16",
            "--http-new-tokens=2",
            "--min-cache-speedup=0",  # tiny sizes: no speed-up targets
            "--min-prefix-speedup=0",
        ]
    )
    assert exit_code == 0
    results = json.loads((tmp_path / "benchmark.json").read_text())
    assert results["cache"]["same_tokens"]
    assert results["prefix"]["reused_tokens"] == 64
    assert results["session"]["same_replies"]
    assert results["session"]["tokens_ratio"] > 1
    memory = results["memory"]
    for dtype in ("float32", "float16"):
        assert (
            memory[dtype]["formula_bytes_per_token"]
            == memory[dtype]["tensor_bytes_per_token"]
            == memory[dtype]["accounted_bytes_per_token"]
        )
    assert results["http"]["errors"] == 0 and results["http"]["requests"] == 8
    assert results["config"]["prefix_tokens"] == 64 and results["missed_targets"] == []


def test_missed_target_exits_1_after_writing_results(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--preset", "tiny", "--out", str(tmp_path), "--only", "prefix"]
    argv += ["--prefix-tokens", "32", "--prefix-repeats", "1", "--min-prefix-speedup", "1000"]
    assert main(argv) == 1
    results = json.loads((tmp_path / "benchmark.json").read_text())
    measured = results["prefix"]["speedup"]
    assert set(results) >= {"prefix", "missed_targets"} and "cache" not in results
    error = capsys.readouterr().err
    assert "kv-serve-benchmark: check failed: prefix TTFT speed-up" in error
    assert f"{measured:.2f}x is below the target --min-prefix-speedup 1000x" in error


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--turns", "0"], "--turns: must be positive, got 0"),
        (["--min-prefix-speedup", "-1"], "--min-prefix-speedup: must be zero or more, got -1.0"),
        (["--only", "prefix", "disk"], "argument --only: invalid choice: 'disk'"),
        (["--preset", "huge"], "argument --preset: invalid choice: 'huge'"),
    ],
)
def test_bad_values_exit_2_naming_the_flag(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert f"kv-serve-benchmark: error: {message}" in capsys.readouterr().err
