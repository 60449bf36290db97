import json
from pathlib import Path

import pytest

from neuron_audit.benchmark import BenchmarkConfig, main, measure_memory, run, table


def test_benchmark_writes_interleaved_overhead_timings(tmp_path: Path) -> None:
    config = BenchmarkConfig(
        out=tmp_path,
        overhead_preset="tiny",
        overhead_length=16,
        rounds=2,
        skip_memory=True,
        quiet=True,
    )
    result = run(config)

    saved = json.loads((tmp_path / "benchmark.json").read_text())
    assert set(saved["overhead"]["seconds_per_forward"]) == {"plain", "streaming", "store_all"}
    assert all(len(times) == 2 for times in saved["overhead"]["all_seconds"].values())
    assert "streaming audit" in table(result)


def test_memory_runs_report_constant_audit_state() -> None:
    small = measure_memory("streaming", "tiny", 64, batch=2, length=16)
    large = measure_memory("streaming", "tiny", 256, batch=2, length=16)
    assert (small["tokens"], large["tokens"]) == (64, 256)
    assert small["state_bytes"] == large["state_bytes"] > 0
    stored = measure_memory("store_all", "tiny", 64, batch=2, length=16)
    assert stored["state_bytes"] is None and 0.0 <= stored["dead_ratio_example"] <= 1.0


def test_the_command_line_prints_the_table_and_rejects_bad_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--out", str(tmp_path), "--overhead-preset", "tiny", "--overhead-length", "8"]
    assert main([*argv, "--rounds", "1", "--skip-memory", "--quiet"]) == 0
    assert "| measurement |" in capsys.readouterr().out
    assert main(["--out", str(tmp_path), "--memory-tokens", "100", "0"]) == 2
    assert "benchmark: error: --memory-tokens: must all be positive, got [100, 0]" in (
        capsys.readouterr().err
    )
    assert main(["--rounds", "0"]) == 2
    assert "--rounds: must be positive, got 0" in capsys.readouterr().err
