import json
from pathlib import Path

import pytest

from neuron_audit.benchmark import (
    BenchmarkConfig,
    check_targets,
    effective,
    main,
    measure_memory,
    run,
    table,
)


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
    assert saved["complete"] is True and len(saved["load_average"]) == 3
    assert [t["target"].split(",")[-1] for t in saved["targets"]] == [
        " median wall seconds",
        " median CPU seconds",
    ]
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
    assert main([*argv, "--rounds", "1", "--skip-memory", "--quiet", "--max-overhead", "50"]) == 0
    out = capsys.readouterr().out
    assert "| measurement |" in out and "load average at start:" in out
    assert "target: streaming audit overhead per forward, median wall seconds <= +5000%" in out
    # an impossible target (100x faster with the audit than without) is missed: exit 1, named
    assert (
        main([*argv, "--rounds", "1", "--skip-memory", "--quiet", "--max-overhead", "-0.99"]) == 1
    )
    captured = capsys.readouterr()
    assert "MISSED" in captured.out
    assert "benchmark: check failed: missed target(s): streaming audit overhead" in captured.err
    assert json.loads((tmp_path / "benchmark.json").read_text())["complete"] is True
    assert main(["--out", str(tmp_path), "--memory-tokens", "100", "0"]) == 2
    assert "benchmark: error: --memory-tokens: must all be positive, got [100, 0]" in (
        capsys.readouterr().err
    )
    assert main(["--rounds", "0"]) == 2
    assert "--rounds: must be positive, got 0" in capsys.readouterr().err


def test_quick_mode_is_small_and_memory_targets_are_checked() -> None:
    quick = effective(BenchmarkConfig(quick=True))
    assert quick.rounds < BenchmarkConfig().rounds
    assert max(quick.memory_tokens) < max(BenchmarkConfig().memory_tokens)
    runs = [
        {"mode": "streaming", "tokens": 1000, "state_bytes": 10, "peak_rss_mib": 500.0},
        {"mode": "streaming", "tokens": 9000, "state_bytes": 10, "peak_rss_mib": 580.0},
        {"mode": "store_all", "tokens": 1000, "state_bytes": None, "peak_rss_mib": 900.0},
    ]
    targets = check_targets({"memory": {"runs": runs}}, BenchmarkConfig())
    assert [(t["measured"], t["met"]) for t in targets] == [("10", True), ("+80.0 MiB", False)]
