"""Throughput and latency of kv-serve under concurrent clients (continuous batching).

``./pants run services/kv-serve:load-benchmark -- --out runs/kv-serve-load`` (from Python:
``run(LoadConfig(...))``). A real uvicorn server on 127.0.0.1 serves a preset; for each concurrency
level N, N client threads each stream one ``/v1/completions`` request of ``--new-tokens`` tokens
(``ignore_eos``, greedy, distinct prompts so that no prefix is shared) and record time to first
token and the gaps between tokens. Written as it goes: ``load.json`` (every level, machine load
averages, the targets) and ``load.png`` (throughput and p99 latency against concurrency). Exit 1
when ``--min-speedup`` (aggregate tokens/s at 16 clients over 1 client) is missed or a request
failed at any level.

``--max-batch 1`` serves one sequence at a time, the behaviour before continuous batching.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import threading
import time
from pathlib import Path
from typing import Any, Literal

import httpx
import torch
import uvicorn

from kv_serve.app import Limits, create_app
from kv_serve.cache import CacheManager
from kv_serve.config import default_torch_threads, preset_tokenizer
from kv_serve.engine import Engine
from lm import build_model, load_corpus
from ml_core import write_json_atomic
from ml_core.cli import CheckFailed, Command, config_to_dict, make_main, require_positive

QUICK_LEVELS = (1, 4)


@dataclasses.dataclass(frozen=True)
class LoadConfig:
    """Aggregate tokens/s, TTFT and inter-token latency at several concurrency levels."""

    preset: Literal["tiny", "small"] = "tiny"
    """Model shape (random weights: weights change no timing)."""

    out: Path = Path("runs/kv-serve-load")
    """Directory for load.json and load.png."""

    clients: tuple[int, ...] = (1, 4, 16, 64)
    """Concurrency levels (clients streaming at once)."""

    new_tokens: int = 64
    """Tokens each request generates."""

    prompt_tokens: int = 32
    """Prompt length of each request."""

    max_batch: int = 64
    """Sequences decoded per forward pass (1: no batching)."""

    threads: int = 0
    """Torch intra-op threads (0: one fewer than the cores, at least 1)."""

    min_speedup: float = 3.0
    """Target: tokens/s at 16 clients over 1 client (0: off)."""

    quick: bool = False
    """A smoke run: levels 1 and 4, 8 new tokens."""

    def __post_init__(self) -> None:
        require_positive(self, "new_tokens", "prompt_tokens", "max_batch")
        if not self.clients or min(self.clients) < 1:
            from ml_core.cli import ConfigError

            raise ConfigError("clients", f"must be one or more positive counts, got {self.clients}")
        if self.min_speedup < 0 or self.threads < 0:
            from ml_core.cli import ConfigError

            raise ConfigError(
                "min_speedup" if self.min_speedup < 0 else "threads", "must be zero or more"
            )

    def levels(self) -> tuple[int, ...]:
        return QUICK_LEVELS if self.quick else self.clients

    def tokens(self) -> int:
        return min(self.new_tokens, 8) if self.quick else self.new_tokens


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _stream_one(
    client: httpx.Client, model: str, prompt: list[int], new_tokens: int
) -> dict[str, Any]:
    body = {
        "model": model,
        "prompt": prompt,
        "max_tokens": new_tokens,
        "temperature": 0,
        "stream": True,
        "ignore_eos": True,
        "use_prefix_cache": False,
        "stream_options": {"include_usage": True},
    }
    started = time.perf_counter()
    stamps: list[float] = []
    tokens = 0
    with client.stream("POST", "/v1/completions", json=body) as response:
        if response.status_code != 200:
            response.read()
            return {"ok": False, "error": f"{response.status_code} {response.text[:200]}"}
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            payload = json.loads(line[6:])
            if "error" in payload:
                return {"ok": False, "error": str(payload["error"])}
            if payload.get("usage"):
                tokens = int(payload["usage"]["completion_tokens"])
            elif payload["choices"] and payload["choices"][0]["text"]:
                stamps.append(time.perf_counter())
    end = time.perf_counter()
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    return {
        "ok": tokens == new_tokens,
        "error": None if tokens == new_tokens else f"got {tokens} tokens",
        "ttft_s": (stamps[0] - started) if stamps else end - started,
        "gaps_s": gaps,
        "tokens": tokens,
        "total_s": end - started,
    }


def measure_level(
    base_url: str, model: str, prompts: list[list[int]], new_tokens: int
) -> dict[str, Any]:
    """``len(prompts)`` clients at once, one streamed request each."""
    results: list[dict[str, Any]] = [{} for _ in prompts]
    barrier = threading.Barrier(len(prompts))

    def worker(index: int) -> None:
        with httpx.Client(base_url=base_url, timeout=600) as client:
            barrier.wait()
            try:
                results[index] = _stream_one(client, model, prompts[index], new_tokens)
            except Exception as error:  # counted as an error of this level
                results[index] = {"ok": False, "error": repr(error)}

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(prompts))]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    ok = [r for r in results if r.get("ok")]
    ttfts = [r["ttft_s"] for r in ok]
    gaps = [g for r in ok for g in r["gaps_s"]]
    tokens = sum(r["tokens"] for r in ok)
    return {
        "clients": len(prompts),
        "requests": len(prompts),
        "errors": len(prompts) - len(ok),
        "error_samples": [r.get("error") for r in results if not r.get("ok")][:3],
        "wall_s": wall,
        "tokens": tokens,
        "tokens_per_s": tokens / wall if wall > 0 else 0.0,
        "ttft_p50_s": _percentile(ttfts, 0.5),
        "ttft_p99_s": _percentile(ttfts, 0.99),
        "itl_p50_s": _percentile(gaps, 0.5),
        "itl_p99_s": _percentile(gaps, 0.99),
        "latency_p50_s": _percentile([r["total_s"] for r in ok], 0.5),
        "latency_p99_s": _percentile([r["total_s"] for r in ok], 0.99),
    }


def plot(levels: list[dict[str, Any]], path: Path, title: str) -> None:
    """Throughput and p99 latency against concurrency (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    clients = [lvl["clients"] for lvl in levels]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(clients, [lvl["tokens_per_s"] for lvl in levels], marker="o")
    left.set_xscale("log", base=2)
    left.set_xlabel("concurrent clients")
    left.set_ylabel("aggregate tokens/s")
    left.set_title("throughput")
    for key, label in (("ttft_p99_s", "TTFT p99"), ("itl_p99_s", "inter-token p99")):
        right.plot(clients, [lvl[key] for lvl in levels], marker="o", label=label)
    right.set_xscale("log", base=2)
    right.set_yscale("log")
    right.set_xlabel("concurrent clients")
    right.set_ylabel("seconds")
    right.set_title("p99 latency")
    right.legend()
    fig.suptitle(title)
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)


def run(config: LoadConfig) -> dict[str, Any]:
    """Serve the preset, load it at each level, write load.json and load.png; check targets."""
    threads = config.threads or default_torch_threads()
    torch.set_num_threads(threads)
    config.out.mkdir(parents=True, exist_ok=True)
    tokenizer = preset_tokenizer(200_000)
    model = build_model(config.preset, tokenizer=tokenizer, seed=0)
    engine = Engine(
        model,
        tokenizer,
        CacheManager(budget_bytes=256 * 1024 * 1024),
        model_name=f"preset:{config.preset}",
        max_new_tokens_limit=4096,
        max_batch=config.max_batch,
    )
    corpus = engine.encode("\n".join(load_corpus(max_chars=200_000).train))
    levels_wanted = config.levels()
    new_tokens = config.tokens()
    results: dict[str, Any] = {
        "config": config_to_dict(config),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "torch": torch.__version__,
            "torch_threads": threads,
            "load_avg_start": os.getloadavg(),
        },
        "levels": [],
    }
    path = config.out / "load.json"
    write_json_atomic(path, results)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(engine, Limits(max_queued=max(levels_wanted) + 8)),
            host="127.0.0.1",
            port=0,
            log_level="warning",
            lifespan="off",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    print(
        f"{'clients':>7} {'tok/s':>8} {'TTFT p50':>9} {'TTFT p99':>9} {'ITL p50':>8} "
        f"{'ITL p99':>8} {'errors':>6}"
    )
    try:
        measure_level(base, engine.model_name, [corpus[: config.prompt_tokens]], 4)  # warm-up
        offset = config.prompt_tokens
        for clients in levels_wanted:
            prompts = []
            for _ in range(clients):
                prompts.append(corpus[offset : offset + config.prompt_tokens])
                offset = (offset + config.prompt_tokens) % max(
                    1, len(corpus) - config.prompt_tokens
                )
            level = measure_level(base, engine.model_name, prompts, new_tokens)
            level["load_avg"] = os.getloadavg()
            results["levels"].append(level)
            print(
                f"{clients:>7} {level['tokens_per_s']:>8.1f} {level['ttft_p50_s']:>9.3f} "
                f"{level['ttft_p99_s']:>9.3f} {level['itl_p50_s']:>8.3f} "
                f"{level['itl_p99_s']:>8.3f} {level['errors']:>6}",
                flush=True,
            )
            write_json_atomic(path, results)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        engine.scheduler.stop()
    results["machine"]["load_avg_end"] = os.getloadavg()
    results["scheduler"] = {
        "steps": engine.scheduler.steps,
        "max_batch_seen": engine.scheduler.max_batch_seen,
        "mean_batch": engine.scheduler.batched_tokens / max(1, engine.scheduler.steps),
    }
    by_clients = {lvl["clients"]: lvl for lvl in results["levels"]}
    missed = []
    if 1 in by_clients and 16 in by_clients and config.min_speedup > 0:
        speedup = by_clients[16]["tokens_per_s"] / max(1e-9, by_clients[1]["tokens_per_s"])
        results["speedup_16_over_1"] = speedup
        verdict = "met" if speedup >= config.min_speedup else "MISSED"
        print(
            f"target: 16 clients >= {config.min_speedup:g}x 1 client; measured {speedup:.2f}x: "
            f"{verdict}"
        )
        if speedup < config.min_speedup:
            missed.append(
                f"16-client throughput is {speedup:.2f}x the single-client throughput, below the "
                f"target --min-speedup {config.min_speedup:g}x"
            )
    errors = sum(lvl["errors"] for lvl in results["levels"])
    print(f"target: 0 errors; measured {errors}: {'met' if errors == 0 else 'MISSED'}")
    if errors:
        missed.append(f"{errors} requests failed (target: 0 errors)")
    results["missed_targets"] = missed
    write_json_atomic(path, results)
    plot(
        results["levels"],
        config.out / "load.png",
        f"kv-serve, preset {config.preset}, {new_tokens} new tokens, max batch {config.max_batch}",
    )
    print(f"wrote {path} and {config.out / 'load.png'}")
    if missed:
        raise CheckFailed("; ".join(missed))
    return results


main = make_main(Command(LoadConfig, run), prog="kv-serve-load-benchmark")


if __name__ == "__main__":
    raise SystemExit(main(None))
