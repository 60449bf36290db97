"""Benchmark: validation perplexity of a preset before and after a fixed-time
CPU pretraining run.

./pants run libs/lm:benchmark -- --minutes 5 --out runs/lm-benchmark

Not a test: it takes minutes. It runs :mod:`lm.pretrain` with a time
budget and a constant learning rate (a cosine schedule needs a known
step count), then writes ``benchmark.json`` and prints a Markdown table
for libs/lm/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from lm import pretrain
from ml_core import write_json_atomic

# Far more steps than fit in the time budget: --max-seconds ends the run.
UNBOUNDED_STEPS = 10_000_000


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="benchmark", description=__doc__)
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--minutes", type=float, default=5.0, help="training time budget")
    parser.add_argument("--out", type=Path, default=Path("runs/lm-benchmark"))
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--block-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    return parser


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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    pretrain_argv = [
        f"--preset={args.preset}",
        f"--out={args.out}",
        f"--steps={UNBOUNDED_STEPS}",
        f"--max-seconds={args.minutes * 60}",
        "--schedule=constant",
        "--eval-every=500",
        f"--batch-size={args.batch_size}",
        f"--block-size={args.block_size}",
        f"--lr={args.lr}",
        f"--device={args.device}",
        f"--seed={args.seed}",
    ]
    if (args.out / pretrain.STATE_FILE).exists():
        print(f"benchmark: error: {args.out} holds an earlier run; remove it or pick another --out")
        return 2
    status = pretrain.main(pretrain_argv)
    if status != 0:
        return status
    metrics = json.loads((args.out / pretrain.METRICS_FILE).read_text(encoding="utf-8"))
    result = {
        **metrics,
        "preset": args.preset,
        "minutes": args.minutes,
        "command": " ".join(
            ["./pants run libs/lm:benchmark --", *(sys.argv[1:] if argv is None else argv)]
        ),
        "pretrain_argv": pretrain_argv,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
    }
    write_json_atomic(args.out / "benchmark.json", result)
    print(markdown_table(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
