"""Measure what the KV caches buy on a GPT-2-small-shaped model on the CPU.

``./pants run services/kv-serve:benchmark -- --out runs/kv-serve-benchmark``
(from Python: ``run(BenchmarkConfig(...))``). Exit code 1 when a measured
speed-up misses its target (``--min-cache-speedup``,
``--min-prefix-speedup``; ``benchmark.json`` is written first).

1. ``use_cache=False`` vs ``True`` for 256 new tokens (greedy);
2. time to first token of a request sharing a 1,024-token prefix, cold vs
   reused from the prefix cache;
3. a 10-turn session: tokens run through the model and time, with and
   without the session cache;
4. bytes per cached token, measured vs the formula (float32 and float16
   storage);
5. 32 concurrent HTTP clients against a real uvicorn server: p50/p99
   latency, errors.

The model is the ``small`` preset (12 layers, width 768, 12 heads, GPT-2's
50,257-token vocabulary) with random weights; its position table is
widened to 2,048 so that a 1,024-token prefix plus a question fits.
Random weights change no timing. Prompts are stdlib docstrings encoded
by the preset tokenizer.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import httpx
import torch
import uvicorn
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedModel

from kv_serve.app import create_app
from kv_serve.cache import CacheManager
from kv_serve.config import preset_tokenizer
from kv_serve.engine import Engine, GenerationParams, generate_tokens
from kv_serve.kv import from_dynamic_cache, kv_copy, kv_nbytes, to_dynamic_cache
from lm import load_corpus
from lm.presets import build_config
from ml_core import write_json_atomic
from ml_core.cli import (
    CheckFailed,
    Command,
    config_to_dict,
    make_main,
    require_non_negative,
    require_positive,
)

Section = Literal["cache", "prefix", "session", "memory", "http"]
SECTIONS: tuple[Section, ...] = ("cache", "prefix", "session", "memory", "http")


@dataclasses.dataclass(frozen=True)
class BenchmarkConfig:
    """Measure what the KV caches buy on a GPT-2-small-shaped model on the CPU."""

    preset: Literal["small", "tiny"] = "small"
    """Model shape: small (GPT-2 small) or tiny (a smoke run)."""

    out: Path = Path("runs/kv-serve-benchmark")
    """Directory for benchmark.json."""

    only: tuple[Section, ...] = ()
    """Sections to run (none given: all)."""

    new_tokens: int = 256
    """Cache: new tokens generated with and without use_cache."""

    prompt_tokens: int = 16
    """Cache: prompt tokens."""

    cache_repeats: int = 1
    """Cache: repetitions (median taken)."""

    prefix_tokens: int = 1024
    """Prefix: tokens of the shared prefix."""

    suffix_tokens: int = 16
    """Prefix: tokens of the question after the prefix."""

    prefix_repeats: int = 3
    """Prefix: repetitions (median taken)."""

    turns: int = 10
    """Session: turns of the conversation."""

    turn_tokens: int = 32
    """Session: user and reply tokens a turn."""

    memory_tokens: int = 512
    """Memory: tokens of the measured prefill."""

    clients: int = 32
    """http: concurrent client threads."""

    requests_per_client: int = 2
    """http: requests each client sends."""

    http_prompt_tokens: int = 64
    """http: tokens of the shared system prompt."""

    http_new_tokens: int = 8
    """http: new tokens a request."""

    min_cache_speedup: float = 3.0
    """Target: use_cache=True at least this many times faster than False (0: no target)."""

    min_prefix_speedup: float = 5.0
    """Target: reused-prefix TTFT at least this many times below cold (0: no target)."""

    def __post_init__(self) -> None:
        require_positive(
            self,
            "new_tokens",
            "prompt_tokens",
            "cache_repeats",
            "prefix_tokens",
            "suffix_tokens",
            "prefix_repeats",
            "turns",
            "turn_tokens",
            "memory_tokens",
            "clients",
            "requests_per_client",
            "http_prompt_tokens",
            "http_new_tokens",
        )
        require_non_negative(self, "min_cache_speedup", "min_prefix_speedup")

    @property
    def sections(self) -> tuple[Section, ...]:
        return self.only or SECTIONS


def build_benchmark_model(preset: str, context: int, seed: int = 0) -> PreTrainedModel:
    config = build_config(preset)
    if not isinstance(config, GPT2Config):
        raise ValueError(f"The benchmark needs a GPT-2 preset, got {preset!r}.")
    config.n_positions = max(context, int(getattr(config, "n_positions", context)))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = GPT2LMHeadModel(config)
    model.train(False)
    return model


_STREAM: list[int] = []


def corpus_tokens(engine: Engine, count: int, offset: int = 0) -> list[int]:
    """``count`` token ids of real text (stdlib docstrings), from ``offset``."""
    if len(_STREAM) < offset + count:
        _STREAM.clear()
        for text in load_corpus(max_chars=400_000).train:
            _STREAM.extend(engine.encode(text + "\n"))
        while len(_STREAM) < offset + count:  # a tiny corpus: repeat it
            _STREAM.extend(list(_STREAM))
    return _STREAM[offset : offset + count]


def timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def bench_use_cache(
    engine: Engine, new_tokens: int, prompt_len: int, repeats: int
) -> dict[str, Any]:
    prompt = corpus_tokens(engine, prompt_len)
    generate_tokens(engine.model, prompt, 4, use_cache=True)  # warm-up
    with_cache, without_cache = [], []
    same = True
    for _ in range(repeats):
        cached, t_cached = timed(generate_tokens, engine.model, prompt, new_tokens, use_cache=True)
        plain, t_plain = timed(generate_tokens, engine.model, prompt, new_tokens, use_cache=False)
        with_cache.append(t_cached)
        without_cache.append(t_plain)
        same = same and cached == plain
    t_with, t_without = statistics.median(with_cache), statistics.median(without_cache)
    return {
        "prompt_tokens": prompt_len,
        "new_tokens": new_tokens,
        "repeats": repeats,
        "use_cache_false_s": t_without,
        "use_cache_true_s": t_with,
        "speedup": t_without / t_with,
        "same_tokens": same,
    }


def bench_prefix_ttft(
    engine: Engine, prefix_len: int, suffix_len: int, repeats: int
) -> dict[str, Any]:
    prefix = corpus_tokens(engine, prefix_len)
    params = GenerationParams(max_new_tokens=1, stop_at_eos=False)
    cold, warm, reused = [], [], []
    for rep in range(repeats):
        engine.cache.clear()
        suffix_a = corpus_tokens(engine, suffix_len, offset=prefix_len + 2 * rep * suffix_len)
        suffix_b = corpus_tokens(engine, suffix_len, offset=prefix_len + (2 * rep + 1) * suffix_len)
        first = engine.generate(prefix + suffix_a, params)
        second = engine.generate(prefix + suffix_b, params)
        cold.append(first.ttft_s)
        warm.append(second.ttft_s)
        reused.append(second.reused_tokens)
    t_cold, t_warm = statistics.median(cold), statistics.median(warm)
    return {
        "prefix_tokens": prefix_len,
        "suffix_tokens": suffix_len,
        "repeats": repeats,
        "ttft_cold_s": t_cold,
        "ttft_reused_s": t_warm,
        "speedup": t_cold / t_warm,
        "reused_tokens": min(reused),
    }


def bench_session(engine: Engine, turns: int, user_len: int, reply_len: int) -> dict[str, Any]:
    params = GenerationParams(max_new_tokens=reply_len, stop_at_eos=False)
    messages = [corpus_tokens(engine, user_len, offset=i * user_len) for i in range(turns)]
    out: dict[str, Any] = {"turns": turns, "user_tokens": user_len, "reply_tokens": reply_len}
    # With the session cache: each turn sends only its new message.
    engine.cache.clear()
    processed, start = 0, time.perf_counter()
    replies = []
    for message in messages:
        result = engine.generate(message, params, session_id="bench", use_prefix_cache=False)
        processed += result.processed_tokens
        replies.append(result.token_ids)
    out["with_session"] = {"processed_tokens": processed, "time_s": time.perf_counter() - start}
    engine.cache.delete_session("bench")
    # Without: the client resends the whole conversation each turn and nothing is cached.
    history: list[int] = []
    processed, start = 0, time.perf_counter()
    same = True
    for message, reply in zip(messages, replies):
        history += message
        result = engine.generate(history, params, use_prefix_cache=False)
        processed += result.processed_tokens
        same = same and result.token_ids == reply
        history += result.token_ids
    out["without_session"] = {"processed_tokens": processed, "time_s": time.perf_counter() - start}
    out["same_replies"] = same
    out["speedup"] = out["without_session"]["time_s"] / out["with_session"]["time_s"]
    out["tokens_ratio"] = (
        out["without_session"]["processed_tokens"] / out["with_session"]["processed_tokens"]
    )
    return out


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def bench_memory(engine: Engine, tokens: int) -> dict[str, Any]:
    ids = corpus_tokens(engine, tokens)
    cache = to_dynamic_cache(None)
    with torch.inference_mode():
        engine.model(input_ids=torch.tensor([ids]), cache=cache, use_cache=True, logits_to_keep=1)
    kv = from_dynamic_cache(cache)
    out: dict[str, Any] = {"tokens": tokens, "shape": vars(engine.kv_shape)}
    for name, dtype in (("float32", torch.float32), ("float16", torch.float16)):
        manager = CacheManager(budget_bytes=1 << 34, block_size=16, storage_dtype=dtype)
        before = _rss_bytes()
        manager.insert_prefix(ids, kv)
        rss = _rss_bytes() - before
        out[name] = {
            "formula_bytes_per_token": engine.kv_shape.bytes_per_token(dtype),
            "tensor_bytes_per_token": kv_nbytes(kv_copy(kv, dtype)) / tokens,
            "accounted_bytes_per_token": manager.total_bytes / tokens,
            "rss_growth_bytes_per_token": rss / tokens,
        }
        del manager
    return out


def bench_http(
    engine: Engine, clients: int, requests_per_client: int, prompt_len: int, new_tokens: int
) -> dict[str, Any]:
    engine.cache.clear()
    system = corpus_tokens(engine, prompt_len)  # a shared "system prompt"
    config = uvicorn.Config(create_app(engine), host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def client(index: int) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=600) as http:
            for turn in range(requests_per_client):
                question = corpus_tokens(engine, 8, offset=prompt_len + index * 8)
                body = {
                    "token_ids": system + question if turn == 0 else question,
                    "max_new_tokens": new_tokens,
                    "stop_at_eos": False,
                    "session_id": f"client-{index}",
                }
                start = time.perf_counter()
                try:
                    response = http.post("/v1/generate", json=body)
                    ok = (
                        response.status_code == 200
                        and len(response.json()["token_ids"]) == new_tokens
                    )
                    error = None if ok else f"{response.status_code}: {response.text[:200]}"
                except httpx.HTTPError as exc:
                    error = repr(exc)
                elapsed = time.perf_counter() - start
                with lock:
                    latencies.append(elapsed)
                    if error:
                        errors.append(error)

    start = time.perf_counter()
    workers = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    wall = time.perf_counter() - start
    stats = engine.cache.stats()
    server.should_exit = True
    thread.join(timeout=30)
    ordered = sorted(latencies)

    def percentile(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]

    return {
        "clients": clients,
        "requests": len(latencies),
        "errors": len(errors),
        "error_samples": errors[:3],
        "prompt_tokens": prompt_len + 8,
        "new_tokens": new_tokens,
        "p50_s": percentile(0.50),
        "p99_s": percentile(0.99),
        "max_s": ordered[-1],
        "wall_s": wall,
        "generated_tokens_per_s": len(latencies) * new_tokens / wall,
        "prefix_hits": stats["prefix_hits"],
        "session_hits": stats["session_hits"],
    }


def missed_targets(config: BenchmarkConfig, results: dict[str, Any]) -> list[str]:
    """One line for each speed-up target that a section run here missed."""
    missed = []
    for section, what, flag, target in (
        ("cache", "use_cache speed-up", "--min-cache-speedup", config.min_cache_speedup),
        ("prefix", "prefix TTFT speed-up", "--min-prefix-speedup", config.min_prefix_speedup),
    ):
        if target > 0 and section in results and results[section]["speedup"] < target:
            measured = results[section]["speedup"]
            missed.append(f"{what} {measured:.2f}x is below the target {flag} {target:g}x")
    return missed


def run(config: BenchmarkConfig) -> dict[str, Any]:
    """Run the sections ``config`` asks for, printing each as it finishes and writing
    ``benchmark.json`` after each; raise :class:`CheckFailed` (after writing) when a speed-up misses
    its target."""
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    tokenizer = preset_tokenizer(400_000)
    context = max(2048, config.prefix_tokens + config.suffix_tokens + 8)
    model = build_benchmark_model(config.preset, context)
    cache = CacheManager(budget_bytes=4 << 30, block_size=16)
    engine = Engine(model, tokenizer, cache, model_name=f"preset:{config.preset}")
    results: dict[str, Any] = {
        "config": config_to_dict(config),
        "preset": config.preset,
        "parameters": sum(p.numel() for p in model.parameters()),
        "context_length": engine.context_length,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "load_average_start": os.getloadavg(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    steps: dict[Section, Callable[[], dict[str, Any]]] = {
        "cache": lambda: bench_use_cache(
            engine, config.new_tokens, config.prompt_tokens, config.cache_repeats
        ),
        "prefix": lambda: bench_prefix_ttft(
            engine, config.prefix_tokens, config.suffix_tokens, config.prefix_repeats
        ),
        "session": lambda: bench_session(
            engine, config.turns, config.turn_tokens, config.turn_tokens
        ),
        "memory": lambda: bench_memory(engine, config.memory_tokens),
        "http": lambda: bench_http(
            engine,
            config.clients,
            config.requests_per_client,
            config.http_prompt_tokens,
            config.http_new_tokens,
        ),
    }
    config.out.mkdir(parents=True, exist_ok=True)
    path = config.out / "benchmark.json"
    for name in SECTIONS:
        if name not in config.sections:
            continue
        start = time.perf_counter()
        results[name] = steps[name]()
        results[name]["section_s"] = time.perf_counter() - start
        print(f"{name}: {json.dumps(results[name], indent=1)}", flush=True)
        results["load_average_end"] = os.getloadavg()
        write_json_atomic(path, results)
    missed = missed_targets(config, results)
    results["missed_targets"] = missed
    write_json_atomic(path, results)
    print(f"wrote {path}")
    if missed:
        raise CheckFailed("; ".join(missed))
    return results


main = make_main(Command(BenchmarkConfig, run), prog="kv-serve-benchmark")


if __name__ == "__main__":
    raise SystemExit(main(None))
