"""Time per query over HTTP with the shared k-shot prefix cached vs not.

Every query of a k-shot evaluation with fixed demonstrations starts with the same instruction and
the same k demonstrations, so a server with prefix caching (kv-serve's blocks, vLLM's automatic
prefix caching) computes that prefix once. This module measures what that saves against a running
OpenAI-compatible server that takes kv-serve's ``use_prefix_cache`` extra body field, and reads
``usage.prompt_tokens_details.cached_tokens`` to show whether the cache was hit.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from tqdm import tqdm

from few_shot.backends import CompletionsBackend
from few_shot.prompts import PromptBuilder
from few_shot.tasks import Task, TaskError


def _cached_tokens(answer: dict[str, Any]) -> int:
    usage = answer.get("usage") or {}
    details = usage.get("prompt_tokens_details") or {}
    return int(details.get("cached_tokens") or 0)


def prefix_cache_latency(
    url: str,
    task: Task,
    builder: PromptBuilder,
    k: int,
    *,
    rounds: int = 3,
    max_tokens: int = 1,
) -> dict[str, Any]:
    """Seconds per query with ``use_prefix_cache`` on and off, interleaved query by query.

    The demonstrations are the pool's first ``k`` for every query, so all prompts share one prefix.
    Each round sends every query once per mode, alternating which mode goes first, so drift in the
    machine's load falls on both. Answers must not depend on the cache.
    """
    if k > len(task.demonstrations):
        raise TaskError(
            f"{k}-shot needs {k} demonstrations but the task {task.name!r} has only "
            f"{len(task.demonstrations)} in its pool"
        )
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}")
    demonstrations = task.demonstrations[:k]
    prompts = [builder.render(query, demonstrations).context for query in task.queries]
    modes = {"cached": True, "uncached": False}
    clients = {
        mode: CompletionsBackend(url, extra_body={"use_prefix_cache": flag})
        for mode, flag in modes.items()
    }
    seconds: dict[str, list[float]] = {mode: [] for mode in modes}
    cached: dict[str, list[int]] = {mode: [] for mode in modes}
    answers: dict[str, list[str]] = {mode: [] for mode in modes}
    prompt_tokens: list[int] = []
    # One request first, so the cached mode measures hits rather than the first miss.
    clients["cached"].complete(prompts[0], max_tokens)
    order = list(modes)
    total = rounds * len(prompts)
    with tqdm(total=total, desc=f"prefix cache, k={k}", unit="query") as progress:
        for round_index in range(rounds):
            for index, prompt in enumerate(prompts):
                flip = (round_index + index) % 2 == 1
                for mode in reversed(order) if flip else order:
                    started = time.perf_counter()
                    answer = clients[mode].complete(prompt, max_tokens)
                    seconds[mode].append(time.perf_counter() - started)
                    cached[mode].append(_cached_tokens(answer))
                    if round_index == 0:
                        answers[mode].append(str(answer["choices"][0]["text"]))
                    if round_index == 0 and mode == "uncached":
                        usage = answer.get("usage") or {}
                        prompt_tokens.append(int(usage.get("prompt_tokens") or 0))
                progress.update(1)
    result: dict[str, Any] = {
        "k": k,
        "queries": len(prompts),
        "rounds": rounds,
        "prompt_tokens_mean": statistics.fmean(prompt_tokens),
        "same_answers": answers["cached"] == answers["uncached"],
    }
    for mode in modes:
        result[mode] = {
            "seconds_per_query_median": statistics.median(seconds[mode]),
            "seconds_per_query_mean": statistics.fmean(seconds[mode]),
            "cached_tokens_mean": statistics.fmean(cached[mode]),
        }
    on, off = result["cached"], result["uncached"]
    result["prefix_hit"] = on["cached_tokens_mean"] > 0 and off["cached_tokens_mean"] == 0
    result["saved_seconds_per_query"] = (
        off["seconds_per_query_median"] - on["seconds_per_query_median"]
    )
    result["speedup"] = off["seconds_per_query_median"] / max(1e-9, on["seconds_per_query_median"])
    return result
