"""Benchmark: held-out accuracy and wall time of the default training run, over
seeds.

Target (projects/mnist/README.md): >= 98% test accuracy on scikit-
learn's digits within 60 s of wall time on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

from ml_core import Timer, collect_run_metadata, write_json_atomic
from mnist.train import PACKAGES, TrainConfig, train

ACCURACY_TARGET = 0.98
SECONDS_TARGET = 60.0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmark", description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=Path("runs/mnist-benchmark"))
    args = parser.parse_args(argv)

    runs = []
    for seed in args.seeds:
        with Timer() as timer:
            metrics = train(TrainConfig(out=args.out / f"seed{seed}", seed=seed))
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
    accuracies = [run["test_accuracy"] for run in runs]
    seconds = [run["wall_seconds"] for run in runs]
    summary = {
        "runs": runs,
        "mean_test_accuracy": statistics.mean(accuracies),
        "min_test_accuracy": min(accuracies),
        "max_wall_seconds": max(seconds),
        "meets_targets": min(accuracies) >= ACCURACY_TARGET and max(seconds) <= SECONDS_TARGET,
        "run": collect_run_metadata(PACKAGES).to_dict(),
    }
    write_json_atomic(args.out / "benchmark.json", summary)
    print(
        f"mean accuracy {summary['mean_test_accuracy']:.4f} "
        f"(min {summary['min_test_accuracy']:.4f}), "
        f"max wall {summary['max_wall_seconds']:.1f}s; targets met: {summary['meets_targets']}"
    )
    return 0 if summary["meets_targets"] else 1


if __name__ == "__main__":
    sys.exit(main())
