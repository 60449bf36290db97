"""Benchmark: greedy generation with the KV cache on and off (the article's ``use_cache`` timing).

./pants run libs/lm:cache-benchmark -- --out runs/lm-cache-benchmark ./pants run libs/lm:cache-
benchmark -- --quick --out /tmp/cache-bench

Times :func:`lm.attention.generate` on :class:`lm.attention.CachedGPT2` (the hand-written KV-cache
attention inside a GPT-2-small-shaped model with RANDOM weights: the timing does not depend on the
weights, the text would be meaningless) with the cache on and off, the mean and standard deviation
of ``--runs`` runs each (10, as the article does), after an untimed warm-up. Writes ``results.json``
(after each measured part, so an interrupted run keeps what it measured) and ``cache_benchmark.png``
into ``--out``, checks that both settings chose the same tokens and that the cache is at least
``--min-speedup`` times faster, and exits 1 when either check fails.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import torch
from tqdm import tqdm
from transformers import GPT2LMHeadModel

from lm.attention import CachedGPT2, generate
from lm.presets import build_model, count_parameters, get_preset
from ml_core import write_json_atomic
from ml_core.cli import CheckFailed, Command, config_to_dict, make_main, require_positive
from ml_core.device import select_device

# Importing ml_core.plotting selects the Agg backend before any figure is made.
from ml_core.plotting import save_figure

RESULTS_FILE = "results.json"
FIGURE_FILE = "cache_benchmark.png"


@dataclasses.dataclass(frozen=True)
class CacheBenchmarkConfig:
    """Greedy generation time with the KV cache on and off."""

    out: Path = Path("runs/lm-cache-benchmark")
    """Output directory for results.json and cache_benchmark.png (created if missing)."""

    quick: bool = False
    """Smoke run (seconds): the tiny preset and 128 new tokens unless given explicitly."""

    preset: str | None = None
    """Model shape, random weights (default: small, i.e. GPT-2 small; tiny with --quick)."""

    new_tokens: int | None = None
    """Tokens generated per run (default: 64; 128 with --quick)."""

    prompt_tokens: int = 8
    """Length of the random prompt."""

    runs: int = 10
    """Timed runs per setting; the mean and standard deviation are reported."""

    warmup: int = 1
    """Untimed runs per setting before the timed ones (allocator and kernel warm-up)."""

    min_speedup: float = 1.5
    """Target: mean time without the cache / mean time with it must be at least this."""

    device: str = "cpu"
    """Device: auto, cpu, cuda, cuda:N or mps."""

    seed: int = 0
    """Seed of the random weights and the prompt."""

    def __post_init__(self) -> None:
        require_positive(self, "new_tokens", "prompt_tokens", "runs", "min_speedup")
        if self.warmup < 0:
            raise ValueError(f"warmup: must be zero or more, got {self.warmup}")

    @property
    def model_preset(self) -> str:
        return self.preset or ("tiny" if self.quick else "small")

    @property
    def tokens(self) -> int:
        return self.new_tokens or (128 if self.quick else 64)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_generation(
    model: CachedGPT2,
    prompt: torch.Tensor,
    config: CacheBenchmarkConfig,
    *,
    use_cache: bool,
) -> tuple[list[float], torch.Tensor]:
    """Seconds of each timed run of greedy generation, and the tokens the last run produced."""
    label = "with cache" if use_cache else "without cache"
    output = prompt
    for _ in range(config.warmup):
        generate(model, prompt, config.tokens, use_cache=use_cache)
    seconds: list[float] = []
    for _ in tqdm(range(config.runs), desc=label, unit="run", file=sys.stderr):
        _synchronize(prompt.device)
        start = time.perf_counter()
        output = generate(model, prompt, config.tokens, use_cache=use_cache)
        _synchronize(prompt.device)
        seconds.append(time.perf_counter() - start)
    return seconds, output


def summarize(seconds: list[float], new_tokens: int) -> dict[str, Any]:
    mean = statistics.fmean(seconds)
    return {
        "seconds": seconds,
        "mean_seconds": mean,
        "std_seconds": statistics.stdev(seconds) if len(seconds) > 1 else 0.0,
        "tokens_per_second": new_tokens / mean,
    }


def plot(result: dict[str, Any], path: Path) -> Path:
    """A bar per setting: mean seconds per generation with a one-standard-deviation error bar."""
    parts = [
        (key, label)
        for key, label in (("with_cache", "use_cache=True"), ("without_cache", "use_cache=False"))
        if key in result
    ]
    figure, axes = plt.subplots(figsize=(5, 4))
    means = [result[key]["mean_seconds"] for key, _ in parts]
    stds = [result[key]["std_seconds"] for key, _ in parts]
    axes.bar(
        [label for _, label in parts], means, yerr=stds, capsize=6, color=["C0", "C1"][: len(parts)]
    )
    axes.set_ylabel(f"seconds per generation (mean of {result['config']['runs']} runs)")
    title = f"{result['model']['preset']} (random weights), {result['new_tokens']} new tokens"
    if "speedup" in result:
        title += f"\nKV-cache speedup {result['speedup']:.2f}x"
    axes.set_title(title)
    axes.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    return save_figure(figure, path)


def markdown_table(result: dict[str, Any]) -> str:
    rows = [
        (
            label,
            f"{part['mean_seconds']:.3f} ± {part['std_seconds']:.3f}",
            f"{part['tokens_per_second']:.1f}",
        )
        for label, part in (
            ("use_cache=True", result["with_cache"]),
            ("use_cache=False", result["without_cache"]),
        )
    ]
    lines = ["| setting | seconds (mean ± std) | new tokens/s |", "| --- | --- | --- |"]
    lines.extend(f"| {name} | {mean} | {rate} |" for name, mean, rate in rows)
    lines.append(f"| speedup | {result['speedup']:.2f}x | |")
    return "\n".join(lines)


def run(config: CacheBenchmarkConfig) -> dict[str, Any]:
    """Time both settings, write ``results.json`` and the figure into ``config.out``, print the
    verdict, and raise :class:`CheckFailed` when the speedup target is missed or the two settings
    generate different tokens."""
    device = select_device(config.device)
    preset = get_preset(config.model_preset)
    if config.prompt_tokens + config.tokens > preset.context_length:
        raise ValueError(
            f"--prompt-tokens + --new-tokens = {config.prompt_tokens + config.tokens} exceeds the "
            f"{preset.name} context length {preset.context_length}"
        )
    hf_model = build_model(preset, seed=config.seed)
    if not isinstance(hf_model, GPT2LMHeadModel):
        raise ValueError(
            f"--preset {preset.name} is a {preset.family} model; the hand-written attention "
            "mirrors GPT-2, so pick a GPT-2 preset (tiny or small)"
        )
    model = CachedGPT2(hf_model).to(device).eval()
    generator = torch.Generator().manual_seed(config.seed)
    prompt = torch.randint(0, preset.vocab_size, (1, config.prompt_tokens), generator=generator)
    prompt = prompt.to(device)
    parameters = count_parameters(hf_model)
    print(
        f"model: preset {preset.name} ({parameters / 1e6:.1f}M parameters) with RANDOM weights "
        f"(seed {config.seed}); timing only, the generated text is meaningless",
        file=sys.stderr,
    )
    config.out.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {
        "model": {"preset": preset.name, "parameters": parameters, "random_weights": True},
        "new_tokens": config.tokens,
        "prompt_tokens": config.prompt_tokens,
        "device": str(device),
        "command": " ".join(["./pants run libs/lm:cache-benchmark --", *sys.argv[1:]]),
        "config": config_to_dict(config),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_average_before": list(os.getloadavg()),
        "processor": platform.processor() or platform.machine(),
        "complete": False,
    }
    results_path = config.out / RESULTS_FILE
    seconds, cached_tokens = time_generation(model, prompt, config, use_cache=True)
    result["with_cache"] = summarize(seconds, config.tokens)
    write_json_atomic(results_path, result)
    seconds, uncached_tokens = time_generation(model, prompt, config, use_cache=False)
    result["without_cache"] = summarize(seconds, config.tokens)
    speedup = result["without_cache"]["mean_seconds"] / result["with_cache"]["mean_seconds"]
    tokens_match = bool(torch.equal(cached_tokens, uncached_tokens))
    passed = speedup >= config.min_speedup and tokens_match
    result.update(
        speedup=speedup,
        tokens_match=tokens_match,
        target={"min_speedup": config.min_speedup, "passed": passed},
        load_average_after=list(os.getloadavg()),
        complete=True,
    )
    write_json_atomic(results_path, result)
    plot(result, config.out / FIGURE_FILE)

    print(
        f"target: KV-cache speedup (mean without / mean with, {config.runs} runs each) >= "
        f"{config.min_speedup:g}x, and identical greedy tokens\n"
        f"measured: {speedup:.2f}x ({result['without_cache']['mean_seconds']:.3f} s / "
        f"{result['with_cache']['mean_seconds']:.3f} s), tokens identical: {tokens_match}\n"
        f"verdict: {'PASS' if passed else 'FAIL'}  (results: {results_path})",
        file=sys.stderr,
    )
    if not passed:
        reason = (
            f"speedup {speedup:.2f}x is below the target {config.min_speedup:g}x"
            if tokens_match
            else "generation with and without the cache chose different tokens"
        )
        raise CheckFailed(reason)
    return result


main = make_main(
    Command(CacheBenchmarkConfig, run),
    prog="cache-benchmark",
    description=__doc__,
    user_errors=(ValueError,),
    show=markdown_table,
)


if __name__ == "__main__":
    raise SystemExit(main(None))
