"""Benchmark: the audit's time overhead and its peak memory against the store- every-activation
approach.

./pants run projects/neuron-audit:benchmark -- --out runs/neuron-audit-benchmark          # full
./pants run projects/neuron-audit:benchmark -- --quick --out runs/neuron-audit-benchmark  # <= 2 min

1. Overhead: forward passes of a GPT-2-small-shaped model (``small``
   preset, random weights), plain, with the streaming audit, and with
   hooks that keep every activation (the article's approach), interleaved
   over rounds; medians are reported.
2. Memory: for each token count, a fresh process audits the ``tiny``
   preset either way and reports its peak RSS (``VmHWM``, reset after
   one warm-up batch; tracemalloc does not see torch's allocations and
   ``ru_maxrss`` survives fork+exec).

``benchmark.json`` is rewritten after every finished part (``"complete": false`` until the end).
Targets checked at the end, each printed with its measured value and verdict; a missed one exits
1 (``ml_core.cli.CheckFailed``) after every output is written:

* the streaming audit's overhead on a forward pass, median wall and median CPU seconds, at most
  ``--max-overhead`` (25%);
* the audit's statistics state the same size for every token count, and the streaming peak RSS of
  the largest run at most ``--max-memory-growth-mib`` (64 MiB) above the smallest.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import math
import multiprocessing
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle
from tqdm import tqdm

from lm import build_model, count_parameters
from ml_core import collect_run_metadata, write_json_atomic
from ml_core.cli import (
    CheckFailed,
    Command,
    make_main,
    require,
    require_non_negative,
    require_positive,
)
from neuron_audit.auditor import NeuronAuditor
from neuron_audit.hooks import find_capture_points
from neuron_audit.plots import plot_memory

MODES = ("plain", "streaming", "store_all")


class StoreAll:
    """The naive approach: keep a copy of every captured activation, compute metrics at the end."""

    def __init__(self, model: nn.Module) -> None:
        self.points = find_capture_points(model)
        self.stored: dict[str, list[torch.Tensor]] = {p.key: [] for p in self.points}
        self.handles: list[RemovableHandle] = []
        for point in self.points:
            self.handles.append(self._register(point.key, point.module, point.side))

    def _register(self, key: str, module: nn.Module, side: str) -> RemovableHandle:
        def keep(tensor: torch.Tensor) -> None:
            self.stored[key].append(tensor.detach().reshape(-1, tensor.shape[-1]).clone())

        if side == "input":
            return module.register_forward_pre_hook(lambda m, args: keep(args[0]))
        return module.register_forward_hook(lambda m, args, out: keep(out))

    def dead_ratios(self, threshold: float = 1e-3) -> dict[str, float]:
        return {
            key: float(((torch.cat(chunks) > threshold).sum(0) == 0).double().mean())
            for key, chunks in self.stored.items()
        }

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()


def _status_mib(field: str) -> float:
    """``VmRSS`` / ``VmHWM`` of this process from ``/proc`` (Linux), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"/proc/self/status has no {field}; this benchmark needs Linux.")


def _reset_peak_rss() -> bool:
    """Reset ``VmHWM`` to the current RSS (Linux >= 4.0); False where not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


@torch.no_grad()
def measure_memory(mode: str, preset: str, tokens: int, batch: int, length: int) -> dict[str, Any]:
    """Run in a fresh process: peak RSS growth of auditing ``tokens`` tokens in ``mode``."""
    torch.manual_seed(0)
    model = build_model(preset, seed=0)
    model.train(False)
    vocab = int(model.config.vocab_size)
    auditor = NeuronAuditor(model) if mode == "streaming" else None
    store = StoreAll(model) if mode == "store_all" else None
    if auditor is not None:
        auditor.attach()
    ids = torch.randint(0, vocab, (batch, length))
    model(input_ids=ids)  # warm-up: allocator pools and the stats tensors exist from here on
    if auditor is not None:
        auditor.reset()
    # ru_maxrss survives fork+exec (it would report the parent's peak); VmHWM is per process.
    reset = _reset_peak_rss()
    baseline = _status_mib("VmRSS") if reset else _status_mib("VmHWM")
    seen = 0
    while seen < tokens:
        model(input_ids=torch.randint(0, vocab, (batch, length)))
        seen += batch * length
    result: dict[str, Any] = {"mode": mode, "tokens": seen}
    if store is not None:
        result["dead_ratio_example"] = next(iter(store.dead_ratios().values()))
    result["peak_rss_growth_mib"] = _status_mib("VmHWM") - baseline
    result["peak_rss_mib"] = _status_mib("VmHWM")
    result["peak_reset"] = reset
    result["state_bytes"] = auditor.state_bytes() if auditor is not None else None
    return result


@torch.no_grad()
def measure_overhead(
    preset: str, batch: int, length: int, rounds: int, progress: bool
) -> dict[str, Any]:
    """Median seconds per forward pass for each mode, interleaved over ``rounds``."""
    torch.manual_seed(0)
    model = build_model(preset, seed=0)
    model.train(False)
    ids = torch.randint(0, int(model.config.vocab_size), (batch, length))
    model(input_ids=ids)  # warm-up
    times: dict[str, list[float]] = {mode: [] for mode in MODES}
    cpu_times: dict[str, list[float]] = {mode: [] for mode in MODES}

    def timed(mode: str, setup: Callable[[], Callable[[], None]]) -> None:
        teardown = setup()
        start, cpu_start = time.perf_counter(), time.process_time()
        model(input_ids=ids)
        times[mode].append(time.perf_counter() - start)
        cpu_times[mode].append(time.process_time() - cpu_start)
        teardown()

    def streaming() -> Callable[[], None]:
        auditor = NeuronAuditor(model)
        auditor.attach()
        return auditor.detach

    def store_all() -> Callable[[], None]:
        return StoreAll(model).close

    setups: dict[str, Callable[[], Callable[[], None]]] = {
        "plain": lambda: (lambda: None),
        "streaming": streaming,
        "store_all": store_all,
    }
    for _ in tqdm(range(rounds), desc="overhead", unit="round", disable=not progress):
        for mode in MODES:
            timed(mode, setups[mode])
    median = {mode: statistics.median(values) for mode, values in times.items()}
    cpu = {mode: statistics.median(values) for mode, values in cpu_times.items()}
    return {
        "preset": preset,
        "parameters": count_parameters(model),
        "tokens_per_forward": batch * length,
        "rounds": rounds,
        "seconds_per_forward": median,
        "all_seconds": times,
        "overhead": {mode: median[mode] / median["plain"] - 1 for mode in MODES[1:]},
        # CPU seconds of this process: less sensitive than wall time to other load on the machine.
        "cpu_seconds_per_forward": cpu,
        "all_cpu_seconds": cpu_times,
        "cpu_overhead": {mode: cpu[mode] / cpu["plain"] - 1 for mode in MODES[1:]},
    }


@dataclasses.dataclass(frozen=True)
class BenchmarkConfig:
    """The audit's time overhead and its peak memory against the store-every- activation
    approach."""

    out: Path = Path("runs/neuron-audit-benchmark")
    """Output directory (benchmark.json, memory.png)"""

    overhead_preset: str = "small"
    """Lm preset timed for the overhead (small: GPT-2-small shape)"""

    overhead_batch: int = 2
    """Rows per timed forward pass."""

    overhead_length: int = 256
    """Tokens per row of a timed forward pass."""

    rounds: int = 10
    """Interleaved rounds of plain / streaming / store-all forward passes."""

    memory_preset: str = "tiny"
    """Lm preset audited for the memory runs."""

    memory_tokens: tuple[int, ...] = (10_000, 100_000, 1_000_000)
    """Token counts of the memory runs (one fresh process per count and mode)"""

    store_all_max_tokens: int = 100_000
    """Skip store_all above this many tokens."""

    memory_batch: int = 32
    """Rows per forward pass of a memory run."""

    memory_length: int = 128
    """Tokens per row of a memory run."""

    quick: bool = False
    """Quick mode (about 1-2 min on 2 cores): 4 rounds, memory runs of 10k and 40k tokens; the other
    options are ignored where quick mode sets them."""

    max_overhead: float = 0.25
    """Target: streaming overhead per forward (median wall and median CPU) at most this."""

    max_memory_growth_mib: float = 64.0
    """Target: streaming peak RSS of the largest memory run at most this above the smallest."""

    skip_overhead: bool = False
    """No overhead timings."""

    skip_memory: bool = False
    """No memory runs."""

    quiet: bool = False
    """No progress bars."""

    def __post_init__(self) -> None:
        require_positive(
            self, "overhead_batch", "overhead_length", "rounds", "memory_batch", "memory_length"
        )
        require_non_negative(self, "store_all_max_tokens", "max_memory_growth_mib")
        require(
            math.isfinite(self.max_overhead) and self.max_overhead > -1.0,
            "max_overhead",
            f"must be a fraction above -1 (e.g. 0.25 for +25%), got {self.max_overhead!r}",
        )
        require(
            all(tokens > 0 for tokens in self.memory_tokens),
            "memory_tokens",
            f"must all be positive, got {list(self.memory_tokens)}",
        )


def effective(config: BenchmarkConfig) -> BenchmarkConfig:
    """``config`` with quick mode's sizes applied."""
    if not config.quick:
        return config
    return dataclasses.replace(
        config, rounds=4, memory_tokens=(10_000, 40_000), store_all_max_tokens=40_000
    )


def check_targets(result: dict[str, Any], config: BenchmarkConfig) -> list[dict[str, Any]]:
    """One record per target: what was checked, the measured value, the limit and the verdict."""
    targets: list[dict[str, Any]] = []
    if "overhead" in result:
        for key, label in (("overhead", "wall"), ("cpu_overhead", "CPU")):
            measured = float(result["overhead"][key]["streaming"])
            targets.append(
                {
                    "target": f"streaming audit overhead per forward, median {label} seconds",
                    "measured": f"{100 * measured:+.1f}%",
                    "limit": f"<= +{100 * config.max_overhead:.0f}%",
                    "met": measured <= config.max_overhead,
                }
            )
    streaming = sorted(
        (r for r in result["memory"]["runs"] if r["mode"] == "streaming"),
        key=lambda r: int(r["tokens"]),
    )
    if len(streaming) >= 2:
        sizes = {int(r["state_bytes"]) for r in streaming}
        targets.append(
            {
                "target": "audit statistics state, bytes, for every token count",
                "measured": ", ".join(f"{size:,}" for size in sorted(sizes)),
                "limit": "one size",
                "met": len(sizes) == 1,
            }
        )
        growth = float(streaming[-1]["peak_rss_mib"]) - float(streaming[0]["peak_rss_mib"])
        targets.append(
            {
                "target": (
                    f"streaming peak RSS, {int(streaming[-1]['tokens']):,} vs "
                    f"{int(streaming[0]['tokens']):,} tokens"
                ),
                "measured": f"{growth:+.1f} MiB",
                "limit": f"<= +{config.max_memory_growth_mib:g} MiB",
                "met": growth <= config.max_memory_growth_mib,
            }
        )
    return targets


def run(config: BenchmarkConfig) -> dict[str, Any]:
    """Measure as ``config`` says; write ``benchmark.json`` (after every part) and ``memory.png``
    into ``config.out`` and return the result; missed targets are in ``result["targets"]``."""
    config = effective(config)
    config.out.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {
        "complete": False,
        "quick": config.quick,
        "torch_threads": torch.get_num_threads(),
        "load_average": list(os.getloadavg()),
        "cpu_count": os.cpu_count(),
    }

    def save() -> None:
        write_json_atomic(config.out / "benchmark.json", result)

    jobs = [
        (mode, tokens)
        for tokens in ([] if config.skip_memory else config.memory_tokens)
        for mode in ("streaming", "store_all")
        if mode == "streaming" or tokens <= config.store_all_max_tokens
    ]
    rows: list[dict[str, Any]] = []
    result["memory"] = {"preset": config.memory_preset, "runs": rows}
    context = multiprocessing.get_context("spawn")
    for mode, tokens in tqdm(jobs, desc="memory", unit="run", disable=config.quiet):
        with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
            rows.append(
                pool.submit(
                    measure_memory,
                    mode,
                    config.memory_preset,
                    tokens,
                    config.memory_batch,
                    config.memory_length,
                ).result()
            )
            save()
    if not config.skip_overhead:
        result["overhead"] = measure_overhead(
            config.overhead_preset,
            config.overhead_batch,
            config.overhead_length,
            config.rounds,
            not config.quiet,
        )
        save()
    result["run"] = collect_run_metadata(packages=("torch", "transformers")).to_dict()
    result["targets"] = check_targets(result, config)
    result["load_average_end"] = list(os.getloadavg())
    result["complete"] = True
    if rows:
        plot_memory(rows, config.out / "memory.png")
    save()
    return result


def verdicts(result: dict[str, Any]) -> str:
    """One line per target: target, measured, limit, verdict."""
    return "\n".join(
        f"target: {t['target']} {t['limit']}; measured {t['measured']}: "
        + ("met" if t["met"] else "MISSED")
        for t in result.get("targets", [])
    )


def run_and_check(config: BenchmarkConfig) -> dict[str, Any]:
    """:func:`run`, then print the table and the verdicts and raise ``CheckFailed`` naming every
    missed target (exit 1, after the outputs are written)."""
    result = run(config)
    print(table(result))
    load = ", ".join(f"{value:.2f}" for value in result["load_average"])
    print(f"load average at start: {load} ({result['cpu_count']} CPUs)")
    print(verdicts(result))
    missed = [t for t in result["targets"] if not t["met"]]
    if missed:
        raise CheckFailed(
            "missed target(s): "
            + "; ".join(f"{t['target']} {t['measured']} (limit {t['limit']})" for t in missed)
        )
    return result


def table(result: dict[str, Any]) -> str:
    lines = [
        "| measurement | plain | streaming audit | store every activation |",
        "|---|---|---|---|",
    ]
    if "overhead" in result:
        o = result["overhead"]
        s = o["seconds_per_forward"]
        lines.append(
            f"| {o['preset']} forward, {o['tokens_per_forward']} tokens (median s) | "
            f"{s['plain']:.3f} | {s['streaming']:.3f} (+{100 * o['overhead']['streaming']:.1f}%) "
            f"| {s['store_all']:.3f} (+{100 * o['overhead']['store_all']:.1f}%) |"
        )
        c = o["cpu_seconds_per_forward"]
        lines.append(
            f"| {o['preset']} forward, {o['tokens_per_forward']} tokens (median CPU s) | "
            f"{c['plain']:.3f} | {c['streaming']:.3f} "
            f"(+{100 * o['cpu_overhead']['streaming']:.1f}%) "
            f"| {c['store_all']:.3f} (+{100 * o['cpu_overhead']['store_all']:.1f}%) |"
        )
    by_tokens: dict[int, dict[str, float]] = {}
    for row in result["memory"]["runs"]:
        by_tokens.setdefault(int(row["tokens"]), {})[row["mode"]] = row["peak_rss_growth_mib"]
    for tokens, modes in sorted(by_tokens.items()):
        store = f"{modes['store_all']:.1f}" if "store_all" in modes else "not run"
        lines.append(
            f"| {result['memory']['preset']}: peak RSS growth, {tokens:,} tokens (MiB) | - | "
            f"{modes['streaming']:.1f} | {store} |"
        )
    return "\n".join(lines)


main = make_main(
    Command(BenchmarkConfig, run_and_check),
    prog="benchmark",
    description=__doc__,
    user_errors=(ValueError,),  # an unknown preset
)


if __name__ == "__main__":
    raise SystemExit(main(None))
