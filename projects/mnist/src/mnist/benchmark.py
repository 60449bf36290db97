"""Benchmark: held-out accuracy and wall time of the default training run, over seeds.

Target (projects/mnist/README.md): >= 98% test accuracy on scikit-learn's digits within 60 s of wall
time on a 2-core CPU. ``benchmark.json`` is rewritten after every seed, so an interrupted run keeps
the finished seeds; a missed target exits 1 after it is written, naming the target.

./pants run projects/mnist:benchmark -- --quick --out /tmp/mnist-benchmark   # one seed ./pants run
projects/mnist:benchmark                                         # seeds 0, 1, 2
"""

from __future__ import annotations

import dataclasses
import statistics
import sys
from pathlib import Path
from typing import Any

from ml_core import Timer, collect_run_metadata, write_json_atomic
from ml_core.cli import (
    CheckFailed,
    Command,
    ConfigError,
    config_to_dict,
    make_main,
    require,
    require_fraction,
    require_positive,
)
from mnist.train import PACKAGES, TrainConfig, train
from vision.data import DataError

ACCURACY_TARGET = 0.98
SECONDS_TARGET = 60.0


@dataclasses.dataclass(frozen=True)
class BenchmarkConfig:
    """Train once per seed on the defaults and check the accuracy and time targets."""

    seeds: tuple[int, ...] = (0, 1, 2)
    """One training run per seed."""

    out: Path = Path("runs/mnist-benchmark")
    """benchmark.json here, each run's outputs in seedN/ (the default is inside the repository,
    under the git-ignored runs/, because `./pants run` starts in the repository root)."""

    quick: bool = False
    """Seed 0 only (about a third of the full run's time)."""

    epochs: int = TrainConfig.epochs
    """Maximum epochs of each run (lower it only for smoke runs)."""

    max_steps_per_epoch: int | None = None
    """Cap on optimiser steps per epoch (smoke runs)."""

    accuracy_target: float = ACCURACY_TARGET
    """Every seed's test accuracy must reach this."""

    seconds_target: float = SECONDS_TARGET
    """Every seed's wall time must stay within this."""

    def __post_init__(self) -> None:
        require(len(self.seeds) > 0, "seeds", "needs at least one seed")
        require_positive(self, "epochs", "max_steps_per_epoch", "seconds_target")
        require_fraction(self, "accuracy_target")


def _summarise(
    config: BenchmarkConfig, runs: list[dict[str, Any]], *, done: bool
) -> dict[str, Any]:
    accuracies = [run["test_accuracy"] for run in runs]
    seconds = [run["wall_seconds"] for run in runs]
    checks = [
        {
            "target": "min test accuracy",
            "measured": min(accuracies),
            "threshold": f">= {config.accuracy_target:.4f}",
            "met": min(accuracies) >= config.accuracy_target,
        },
        {
            "target": "max wall seconds per run",
            "measured": max(seconds),
            "threshold": f"<= {config.seconds_target:.1f}",
            "met": max(seconds) <= config.seconds_target,
        },
    ]
    return {
        "config": config_to_dict(config),
        "complete": done,
        "runs": runs,
        "mean_test_accuracy": statistics.mean(accuracies),
        "min_test_accuracy": min(accuracies),
        "max_wall_seconds": max(seconds),
        "checks": checks,
        "meets_targets": all(check["met"] for check in checks),
        "missed_targets": [
            f"{check['target']} {check['measured']:.4f} misses target {check['threshold']}"
            for check in checks
            if not check["met"]
        ],
        "run": collect_run_metadata(PACKAGES).to_dict(),
    }


def run_benchmark(config: BenchmarkConfig) -> dict[str, Any]:
    """Train per seed, write ``benchmark.json`` after each, and raise :class:`CheckFailed` naming
    each missed target."""
    runs: list[dict[str, Any]] = []
    seeds = config.seeds[:1] if config.quick else config.seeds
    for index, seed in enumerate(seeds):
        train_config = TrainConfig(
            out=config.out / f"seed{seed}",
            seed=seed,
            epochs=config.epochs,
            max_steps_per_epoch=config.max_steps_per_epoch,
        )
        with Timer() as timer:
            metrics = train(train_config)
        runs.append(
            {
                "seed": seed,
                "test_accuracy": metrics["test_accuracy"],
                "wall_seconds": timer.elapsed,
                "epochs_run": metrics["epochs_run"],
            }
        )
        print(
            f"seed {seed}: test accuracy {metrics['test_accuracy']:.4f}, "
            f"{timer.elapsed:.1f}s wall, {metrics['epochs_run']} epochs"
        )
        done = index == len(seeds) - 1
        summary = _summarise(config, runs, done=done)
        write_json_atomic(config.out / "benchmark.json", summary)
    for check in summary["checks"]:
        verdict = "met" if check["met"] else "MISSED"
        print(
            f"target {check['target']} {check['threshold']}: "
            f"measured {check['measured']:.4f} -> {verdict}"
        )
    print(
        f"mean test accuracy {summary['mean_test_accuracy']:.4f}; wrote {config.out}/benchmark.json"
    )
    if summary["missed_targets"]:
        raise CheckFailed("; ".join(summary["missed_targets"]))
    return summary


main = make_main(
    Command(BenchmarkConfig, run_benchmark),
    prog="benchmark",
    description=__doc__,
    user_errors=(DataError, ConfigError),
)

if __name__ == "__main__":
    sys.exit(main(None))
