import json
from pathlib import Path

from neuron_audit.benchmark import build_parser, measure_memory, run, table


def test_benchmark_writes_interleaved_overhead_timings(tmp_path: Path) -> None:
    args = build_parser().parse_args(
        ["--out", str(tmp_path), "--overhead-preset", "tiny", "--overhead-length", "16"]
        + ["--rounds", "2", "--skip-memory", "--quiet"]
    )
    result = run(args)

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
