"""The benchmark script end to end on the tiny preset with tiny sizes (a smoke
run)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kv_serve.benchmark import main


@pytest.mark.slow
def test_benchmark_smoke_run(tmp_path: Path) -> None:
    main(
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
        ]
    )
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
