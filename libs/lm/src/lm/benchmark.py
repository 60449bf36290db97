"""Benchmark: validation perplexity of a preset before and after a fixed-time CPU pretraining run.

./pants run libs/lm:benchmark -- --minutes 5 --out runs/lm-benchmark

Not a test: it takes minutes. It runs :mod:`lm.pretrain` with a time budget and a constant learning
rate (a cosine schedule needs a known step count), then writes ``benchmark.json`` and prints a
Markdown table for libs/lm/README.md.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import sys
from pathlib import Path
from typing import Any

import torch

from lm import pretrain
from lm.loading import ModelLoadError
from ml_core import write_json_atomic
from ml_core.cli import Command, config_to_dict, make_main, require_positive

# Far more steps than fit in the time budget: --max-seconds ends the run.
UNBOUNDED_STEPS = 10_000_000


class BenchmarkError(ValueError):
    """Bad input (e.g. an earlier run in ``out``): exit code 2."""


@dataclasses.dataclass(frozen=True)
class BenchmarkConfig:
    """Validation perplexity of a preset before and after a fixed-time pretraining run."""

    preset: str = "tiny"
    """Model preset to pretrain."""

    minutes: float = 5.0
    """Training time budget."""

    out: Path = Path("runs/lm-benchmark")
    """Output directory (the pretrained run and benchmark.json); must not hold a run."""

    batch_size: int = 16
    """Blocks per optimizer step."""

    block_size: int = 128
    """Tokens per block."""

    lr: float = 2e-3
    """Constant learning rate after warm-up."""

    device: str = "cpu"
    """Device: auto, cpu, cuda, cuda:N or mps."""

    seed: int = 0
    """Seed of the split, the initial weights and the batch order."""

    def __post_init__(self) -> None:
        require_positive(self, "minutes", "batch_size", "block_size", "lr")

    def pretrain_config(self) -> pretrain.PretrainConfig:
        """The pretraining run this benchmark times (constant schedule: a cosine one needs a known
        step count)."""
        return pretrain.PretrainConfig(
            out=self.out,
            preset=self.preset,
            steps=UNBOUNDED_STEPS,
            max_seconds=self.minutes * 60,
            schedule="constant",
            eval_every=500,
            batch_size=self.batch_size,
            block_size=self.block_size,
            lr=self.lr,
            device=self.device,
            seed=self.seed,
        )


def markdown_table(result: dict[str, Any]) -> str:
    rows = [
        ("validation perplexity before training", f"{result['initial_val_perplexity']:.1f}"),
        ("validation perplexity after training", f"{result['val_perplexity']:.1f}"),
        (
            "validation loss before / after",
            f"{result['initial_val_loss']:.3f} / {result['val_loss']:.3f}",
        ),
        ("optimizer steps", str(result["step"])),
        ("training time (s)", f"{result['train_seconds']:.0f}"),
        ("training throughput (tokens/s)", f"{result['train_tokens_per_second']:.0f}"),
        ("parameters", f"{result['parameters']:,}"),
        ("torch threads / CPUs", f"{result['torch_threads']} / {result['cpu_count']}"),
    ]
    lines = ["| metric | value |", "| --- | --- |"]
    lines.extend(f"| {name} | {value} |" for name, value in rows)
    return "\n".join(lines)


def run(config: BenchmarkConfig) -> dict[str, Any]:
    """Pretrain for ``config.minutes``, write ``benchmark.json`` into ``config.out`` and return its
    content."""
    if (config.out / pretrain.STATE_FILE).exists():
        raise BenchmarkError(f"{config.out} holds an earlier run; remove it or pick another --out")
    pretrain_config = config.pretrain_config()
    metrics = pretrain.run(pretrain_config)
    result = {
        **metrics,
        "preset": config.preset,
        "minutes": config.minutes,
        "command": " ".join(["./pants run libs/lm:benchmark --", *sys.argv[1:]]),
        "config": config_to_dict(config),
        "pretrain_config": config_to_dict(pretrain_config),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
    }
    write_json_atomic(config.out / "benchmark.json", result)
    return result


main = make_main(
    Command(BenchmarkConfig, run),
    prog="benchmark",
    description=__doc__,
    # BenchmarkError and PretrainError are ValueErrors.
    user_errors=(ValueError, ModelLoadError, FileNotFoundError),
    show=markdown_table,
)


if __name__ == "__main__":
    raise SystemExit(main(None))
