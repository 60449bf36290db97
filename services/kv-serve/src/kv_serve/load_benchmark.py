"""Throughput and latency of kv-serve under concurrent clients (continuous batching), optionally
side by side with ``transformers serve``.

``./pants run services/kv-serve:load-benchmark -- --out runs/kv-serve-load`` (from Python:
``run(LoadConfig(...))``). The preset (random weights) is saved to ``OUT/model`` and a real uvicorn
server on 127.0.0.1 serves that directory; for each concurrency level N, N client threads each
stream one ``/v1/completions`` request of ``--new-tokens`` tokens (EOS ignored, greedy, distinct
prompts so that no prefix is shared) and record time to first token and the gaps between tokens.
Then one client holds a ``--session-turns``-turn chat and records each turn's time to first token.

``--peer transformers-serve`` repeats both with ``transformers serve --continuous-batching`` serving
the same directory (same tokenizer, same chat template, same torch threads), in the same process as
kv-serve was, so both share the client threads' overhead.

Written as it goes: ``load.json`` (every level, machine load averages, the targets) and ``load.png``
(throughput and p99 latency against concurrency, one line per server). Exit 1 when a target is
missed: ``--min-speedup`` (aggregate tokens/s at 16 clients over 1 client), 0 failed requests, and
with a peer ``--min-peer-ratio`` (kv-serve's tokens/s at 16 clients over the peer's) and ``--min-
session-ttft-speedup`` (the peer's last-turn TTFT over kv-serve's).

``--max-batch 1`` serves one sequence at a time, the behaviour before continuous batching.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import platform
import shutil
import socket
import statistics
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import httpx
import torch
import uvicorn

from kv_serve.app import Limits, create_app
from kv_serve.cache import CacheManager
from kv_serve.config import Settings, default_torch_threads, load, preset_tokenizer
from kv_serve.engine import Engine
from kv_serve.openai_api import DEFAULT_CHAT_TEMPLATE
from lm import build_model, load_corpus
from ml_core import write_json_atomic
from ml_core.cli import (
    CheckFailed,
    Command,
    ConfigError,
    config_to_dict,
    make_main,
    require_positive,
)

KV_SERVE = "kv-serve"
TRANSFORMERS_SERVE = "transformers-serve"
QUICK_LEVELS = (1, 4)


@dataclasses.dataclass(frozen=True)
class LoadConfig:
    """Aggregate tokens/s, TTFT and inter-token latency at several concurrency levels."""

    preset: Literal["tiny", "small"] = "tiny"
    """Model shape (random weights: weights change no timing)."""

    out: Path = Path("runs/kv-serve-load")
    """Directory for load.json, load.png and the saved model both servers load."""

    clients: tuple[int, ...] = (1, 4, 16, 64)
    """Concurrency levels (clients streaming at once)."""

    new_tokens: int = 64
    """Tokens each request generates."""

    prompt_tokens: int = 32
    """Prompt length of each request."""

    max_batch: int = 64
    """Kv-serve's sequences decoded per forward pass (1: no batching)."""

    threads: int = 0
    """Torch intra-op threads (0: one fewer than the cores, at least 1)."""

    prefill_chunk: int = 256
    """Kv-serve's prompt tokens per decode step while others decode (0: whole prompts)."""

    peer: Literal["none", "transformers-serve"] = "none"
    """A second server to load the same way, side by side."""

    session_turns: int = 5
    """Turns of the multi-turn chat whose time to first token is measured (0: skip it)."""

    session_user_tokens: int = 32
    """Tokens of each user message in that chat (scaled down with the replies to fit the
    context)."""

    session_reply_tokens: int = 96
    """Tokens of each assistant reply in that chat (replies longer than questions, as in chats)."""

    session_repeats: int = 3
    """Chats per server; the median of their last-turn TTFTs is reported."""

    min_speedup: float = 3.0
    """Target: kv-serve's tokens/s at 16 clients over 1 client (0: off)."""

    min_peer_ratio: float = 1.0
    """Target with a peer: kv-serve's tokens/s at 16 clients over the peer's (0: off)."""

    min_session_ttft_speedup: float = 3.0
    """Target with a peer: the peer's last-turn TTFT over kv-serve's (0: off)."""

    quick: bool = False
    """A smoke run: levels 1 and 4, 8 new tokens, 3-turn chats of 4-token replies, one each."""

    def __post_init__(self) -> None:
        require_positive(self, "new_tokens", "prompt_tokens", "max_batch", "session_reply_tokens")
        require_positive(self, "session_user_tokens", "session_repeats")
        if not self.clients or min(self.clients) < 1:
            raise ConfigError("clients", f"must be one or more positive counts, got {self.clients}")
        for name in (
            "min_speedup",
            "threads",
            "prefill_chunk",
            "session_turns",
            "min_peer_ratio",
            "min_session_ttft_speedup",
        ):
            if getattr(self, name) < 0:
                raise ConfigError(name, "must be zero or more")

    def levels(self) -> tuple[int, ...]:
        return QUICK_LEVELS if self.quick else self.clients

    def tokens(self) -> int:
        return min(self.new_tokens, 8) if self.quick else self.new_tokens

    def turns(self) -> int:
        return min(self.session_turns, 3) if self.quick else self.session_turns

    def reply_tokens(self) -> int:
        return min(self.session_reply_tokens, 4) if self.quick else self.session_reply_tokens

    def user_tokens(self) -> int:
        return min(self.session_user_tokens, 16) if self.quick else self.session_user_tokens

    def repeats(self) -> int:
        return 1 if self.quick else self.session_repeats


@dataclasses.dataclass(frozen=True)
class ServerUnderTest:
    """A running server and how to ask it for a fixed number of greedy tokens."""

    name: str
    base_url: str
    model: str

    @property
    def holds_sessions(self) -> bool:
        """Kv-serve keeps a chat's history (and its KV cache) server side; a peer is sent it all."""
        return self.name == KV_SERVE

    def _fixed_length(self, new_tokens: int) -> dict[str, Any]:
        common: dict[str, Any] = {
            "model": self.model,
            "max_tokens": new_tokens,
            "temperature": 0,
            "stream": True,
        }
        if self.name == KV_SERVE:
            return {**common, "ignore_eos": True, "stream_options": {"include_usage": True}}
        # transformers serve takes a GenerationConfig as JSON; without eos_token_id it never stops
        # early, like kv-serve's ignore_eos.
        config = {"max_new_tokens": new_tokens, "min_new_tokens": new_tokens, "do_sample": False}
        return {**common, "generation_config": json.dumps(config)}

    def completion_body(self, prompt: str, new_tokens: int) -> dict[str, Any]:
        body = {**self._fixed_length(new_tokens), "prompt": prompt}
        if self.name == KV_SERVE:
            body["use_prefix_cache"] = False
        return body

    def chat_body(
        self, history: list[dict[str, str]], new_tokens: int, session_id: str
    ) -> dict[str, Any]:
        if self.holds_sessions:
            return {
                **self._fixed_length(new_tokens),
                "messages": history[-1:],
                "session_id": session_id,
            }
        return {**self._fixed_length(new_tokens), "messages": history}


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _events(response: httpx.Response) -> Iterator[dict[str, Any]]:
    for line in response.iter_lines():
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        payload = json.loads(line[6:])
        if "error" in payload:
            raise RuntimeError(f"error in the stream: {payload['error']}")
        yield payload


def _stream_one(client: httpx.Client, body: dict[str, Any], new_tokens: int) -> dict[str, Any]:
    started = time.perf_counter()
    stamps: list[float] = []
    tokens = 0
    with client.stream("POST", "/v1/completions", json=body) as response:
        if response.status_code != 200:
            response.read()
            return {"ok": False, "error": f"{response.status_code} {response.text[:200]}"}
        for payload in _events(response):
            if payload.get("usage"):
                tokens = int(payload["usage"]["completion_tokens"])
            elif payload.get("choices") and payload["choices"][0].get("text"):
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


def measure_level(server: ServerUnderTest, prompts: list[str], new_tokens: int) -> dict[str, Any]:
    """``len(prompts)`` clients at once, one streamed request each."""
    results: list[dict[str, Any]] = [{} for _ in prompts]
    barrier = threading.Barrier(len(prompts))

    def worker(index: int) -> None:
        with httpx.Client(base_url=server.base_url, timeout=900) as client:
            barrier.wait()
            try:
                body = server.completion_body(prompts[index], new_tokens)
                results[index] = _stream_one(client, body, new_tokens)
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


def _chat_turn(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    started = time.perf_counter()
    first: float | None = None
    parts: list[str] = []
    usage: dict[str, Any] = {}
    with client.stream("POST", "/v1/chat/completions", json=body) as response:
        if response.status_code != 200:
            response.read()
            raise RuntimeError(f"chat turn: {response.status_code} {response.text[:200]}")
        for payload in _events(response):
            usage = payload.get("usage") or usage
            for choice in payload.get("choices") or []:
                text = (choice.get("delta") or {}).get("content")
                if text:
                    first = first if first is not None else time.perf_counter()
                    parts.append(text)
    end = time.perf_counter()
    details = usage.get("prompt_tokens_details") or {}
    return {
        "ttft_s": (first if first is not None else end) - started,
        "total_s": end - started,
        "reply": "".join(parts),
        "prompt_tokens": usage.get("prompt_tokens"),
        "cached_tokens": details.get("cached_tokens"),
    }


def measure_session(
    server: ServerUnderTest, user_messages: list[str], reply_tokens: int
) -> dict[str, Any]:
    """One multi-turn chat; each turn's time to first token.

    kv-serve is sent only the new message (its session holds the rest); a server without sessions is
    sent the whole history.
    """
    session_id = f"load-benchmark-{uuid.uuid4().hex[:12]}"
    history: list[dict[str, str]] = []
    turns = []
    with httpx.Client(base_url=server.base_url, timeout=900) as client:
        for message in user_messages:
            history.append({"role": "user", "content": message})
            turn = _chat_turn(client, server.chat_body(history, reply_tokens, session_id))
            history.append({"role": "assistant", "content": turn.pop("reply")})
            turns.append(turn)
    return {"turns": turns, "last_ttft_s": turns[-1]["ttft_s"]}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_healthy(url: str, timeout_s: float = 300.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=5).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer 200 within {timeout_s:.0f} s")


@contextlib.contextmanager
def serve_kv(engine: Engine, max_queued: int) -> Iterator[ServerUnderTest]:
    """Kv-serve's app under uvicorn on a free loopback port, in a thread of this process."""
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(engine, Limits(max_queued=max_queued)),
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
    try:
        yield ServerUnderTest(KV_SERVE, f"http://127.0.0.1:{port}", engine.model_name)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        engine.scheduler.stop()


@contextlib.contextmanager
def serve_transformers(model_dir: Path) -> Iterator[ServerUnderTest]:
    """``transformers serve MODEL_DIR --continuous-batching --device cpu`` on a free loopback port,
    in a thread of this process (its own non-blocking mode)."""
    from transformers.cli.serve import Serve

    port = _free_port()
    serve = Serve(
        force_model=str(model_dir),
        continuous_batching=True,
        device="cpu",
        host="127.0.0.1",
        port=port,
        log_level="error",
        non_blocking=True,
    )
    # It logs every request at warning level and its uvicorn at info; keep the table readable.
    for name in ("uvicorn.access", "uvicorn.error", "transformers"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        _wait_healthy(f"http://127.0.0.1:{port}/health")
        yield ServerUnderTest(TRANSFORMERS_SERVE, f"http://127.0.0.1:{port}", str(model_dir))
    finally:
        serve.kill_server()  # type: ignore[no-untyped-call]


def save_model(config: LoadConfig, directory: Path) -> Path:
    """The preset (random weights) and its tokenizer with a chat template, saved where both servers
    load it.

    Written beside and renamed, so a stopped run leaves no half model.
    """
    tokenizer = preset_tokenizer(200_000)
    tokenizer.chat_template = DEFAULT_CHAT_TEMPLATE
    model = build_model(config.preset, tokenizer=tokenizer, seed=0)
    partial = directory.with_name(directory.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    shutil.rmtree(directory, ignore_errors=True)
    os.replace(partial, directory)
    return directory


def plot(runs: dict[str, list[dict[str, Any]]], path: Path, title: str) -> None:
    """Throughput and p99 latency against concurrency (PNG), one colour per server."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for colour, (name, levels) in zip(("tab:blue", "tab:orange"), runs.items()):
        if not levels:
            continue
        clients = [lvl["clients"] for lvl in levels]
        left.plot(
            clients, [lvl["tokens_per_s"] for lvl in levels], marker="o", color=colour, label=name
        )
        right.plot(
            clients,
            [lvl["ttft_p99_s"] for lvl in levels],
            marker="o",
            color=colour,
            label=f"{name} TTFT p99",
        )
        right.plot(
            clients,
            [lvl["itl_p99_s"] for lvl in levels],
            marker="s",
            linestyle="--",
            color=colour,
            label=f"{name} inter-token p99",
        )
    left.set_xscale("log", base=2)
    left.set_xlabel("concurrent clients")
    left.set_ylabel("aggregate tokens/s")
    left.set_title("throughput")
    left.legend()
    right.set_xscale("log", base=2)
    right.set_yscale("log")
    right.set_xlabel("concurrent clients")
    right.set_ylabel("seconds")
    right.set_title("p99 latency")
    right.legend(fontsize="small")
    fig.suptitle(title)
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)


def _texts(tokenizer: Any, corpus: list[int], count: int, length: int, offset: int) -> list[str]:
    """``count`` distinct slices of the corpus, ``length`` tokens each, as text."""
    texts = []
    offset %= max(1, len(corpus) - length)
    for _ in range(count):
        texts.append(tokenizer.decode(corpus[offset : offset + length]))
        offset = (offset + length) % max(1, len(corpus) - length)
    return texts


def fit_chat(context_length: int, turns: int, user: int, reply: int) -> tuple[int, int]:
    """User-message and reply lengths, scaled down together so that the last turn (the whole
    history, the chat template's few tokens per message and the last reply) fills at most 3/4 of the
    context."""
    template = 16  # "### User:\n", "\n\n" and the assistant header, per turn
    needed = turns * (user + template + reply)
    room = (3 * context_length) // 4
    if needed <= room:
        return user, reply
    scale = room / needed
    return max(4, int(user * scale) - 1), max(1, int(reply * scale) - 1)


def _check_targets(config: LoadConfig, results: dict[str, Any]) -> list[str]:
    missed: list[str] = []

    def report(target: str, measured: str, met: bool) -> None:
        print(f"target: {target}; measured {measured}: {'met' if met else 'MISSED'}")

    def at_least(key: str, value: float, minimum: float, target: str, flag: str) -> None:
        """Record ``value`` under ``key``; a miss when it is below ``minimum``."""
        results[key] = value
        report(f"{target} >= {minimum:g}x", f"{value:.2f}x", value >= minimum)
        if value < minimum:
            missed.append(f"{target} is {value:.2f}x, below the target {flag} {minimum:g}x")

    ours = {lvl["clients"]: lvl for lvl in results["levels"]}
    if 1 in ours and 16 in ours and config.min_speedup > 0:
        at_least(
            "speedup_16_over_1",
            ours[16]["tokens_per_s"] / max(1e-9, ours[1]["tokens_per_s"]),
            config.min_speedup,
            "throughput at 16 clients over 1 client",
            "--min-speedup",
        )
    errors = sum(lvl["errors"] for lvl in results["levels"])
    report("0 errors", str(errors), errors == 0)
    if errors:
        missed.append(f"{errors} requests failed (target: 0 errors)")
    peer = results.get("peer")
    if not peer:
        return missed
    theirs = {lvl["clients"]: lvl for lvl in peer["levels"]}
    if 16 in ours and 16 in theirs and config.min_peer_ratio > 0:
        at_least(
            "throughput_16_over_peer",
            ours[16]["tokens_per_s"] / max(1e-9, theirs[16]["tokens_per_s"]),
            config.min_peer_ratio,
            f"kv-serve's throughput over {peer['name']}'s at 16 clients",
            "--min-peer-ratio",
        )
    ours_session, theirs_session = results.get("session"), peer.get("session")
    if ours_session and theirs_session and config.quick:
        print("target: session TTFT speed-up not checked with --quick (chats too short)")
    elif ours_session and theirs_session and config.min_session_ttft_speedup > 0:
        at_least(
            "session_ttft_speedup_over_peer",
            theirs_session["last_ttft_median_s"] / max(1e-9, ours_session["last_ttft_median_s"]),
            config.min_session_ttft_speedup,
            f"{peer['name']}'s turn-{config.turns()} time to first token over kv-serve's",
            "--min-session-ttft-speedup",
        )
    return missed


def run(config: LoadConfig) -> dict[str, Any]:
    """Serve the saved preset, load it at each level (and a multi-turn chat), with the peer too when
    asked; write load.json and load.png; check targets."""
    threads = config.threads or default_torch_threads()
    torch.set_num_threads(threads)
    config.out.mkdir(parents=True, exist_ok=True)
    model_dir = save_model(config, config.out / "model")
    loaded = load(Settings(model=str(model_dir)))
    engine = Engine(
        loaded.model,
        loaded.tokenizer,
        CacheManager(budget_bytes=256 * 1024 * 1024),
        model_name=f"preset:{config.preset}",
        max_new_tokens_limit=4096,
        max_batch=config.max_batch,
        prefill_chunk=config.prefill_chunk,
    )
    tokenizer = loaded.tokenizer
    corpus = engine.encode("\n".join(load_corpus(max_chars=200_000).train))
    levels_wanted = config.levels()
    new_tokens = config.tokens()
    context = int(loaded.model.config.max_position_embeddings)
    user_tokens, reply_tokens = fit_chat(
        context, config.turns(), config.user_tokens(), config.reply_tokens()
    )
    results: dict[str, Any] = {
        "config": config_to_dict(config),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "torch": torch.__version__,
            "torch_threads": threads,
            "load_avg_start": os.getloadavg(),
        },
        "model_dir": str(model_dir),
        "random_weights": True,
        "session_user_tokens": user_tokens,
        "session_reply_tokens": reply_tokens,
        "levels": [],
    }
    path = config.out / "load.json"
    write_json_atomic(path, results)
    # Every server gets the same prompts and the same chats.
    level_prompts = {
        clients: _texts(tokenizer, corpus, clients, config.prompt_tokens, 1000 + 97 * clients)
        for clients in levels_wanted
    }
    chats = [
        _texts(tokenizer, corpus, config.turns(), user_tokens, 50_000 + 7919 * repeat)
        for repeat in range(config.repeats())
    ]
    print(
        f"model: preset {config.preset} (random weights) saved in {model_dir}; "
        f"torch threads {threads}"
    )

    def load_server(server: ServerUnderTest, into: dict[str, Any]) -> None:
        print(f"--- {server.name}")
        measure_level(server, _texts(tokenizer, corpus, 1, config.prompt_tokens, 0), 4)  # warm-up
        print(
            f"{'clients':>7} {'tok/s':>8} {'TTFT p50':>9} {'TTFT p99':>9} {'ITL p50':>8} "
            f"{'ITL p99':>8} {'errors':>6}"
        )
        for clients in levels_wanted:
            level = measure_level(server, level_prompts[clients], new_tokens)
            level["load_avg"] = os.getloadavg()
            into["levels"].append(level)
            print(
                f"{clients:>7} {level['tokens_per_s']:>8.1f} {level['ttft_p50_s']:>9.3f} "
                f"{level['ttft_p99_s']:>9.3f} {level['itl_p50_s']:>8.3f} "
                f"{level['itl_p99_s']:>8.3f} {level['errors']:>6}",
                flush=True,
            )
            write_json_atomic(path, results)
        if config.turns() == 0:
            return
        chats_run = []
        for repeat, messages in enumerate(chats):
            chat = measure_session(server, messages, reply_tokens)
            chats_run.append(chat)
            ttfts = " ".join(f"{turn['ttft_s']:.3f}" for turn in chat["turns"])
            print(f"chat {repeat + 1}/{len(chats)}: TTFT per turn (s) {ttfts}", flush=True)
        into["session"] = {
            "turns": config.turns(),
            "user_tokens": user_tokens,
            "reply_tokens": reply_tokens,
            "chats": chats_run,
            "last_ttft_median_s": statistics.median(c["last_ttft_s"] for c in chats_run),
        }
        write_json_atomic(path, results)

    with serve_kv(engine, max_queued=max(levels_wanted) + 8) as server:
        load_server(server, results)
    results["scheduler"] = {
        "steps": engine.scheduler.steps,
        "max_batch_seen": engine.scheduler.max_batch_seen,
        "prefill_passes": engine.scheduler.prefill_passes,
        "mean_batch": engine.scheduler.batched_tokens / max(1, engine.scheduler.steps),
    }
    del engine, loaded
    if config.peer == TRANSFORMERS_SERVE:
        results["peer"] = {"name": TRANSFORMERS_SERVE, "levels": []}
        started = time.perf_counter()
        with serve_transformers(model_dir) as peer:
            results["peer"]["startup_s"] = time.perf_counter() - started
            load_server(peer, results["peer"])
    results["machine"]["load_avg_end"] = os.getloadavg()
    missed = _check_targets(config, results)
    results["missed_targets"] = missed
    write_json_atomic(path, results)
    runs = {KV_SERVE: results["levels"]}
    if "peer" in results:
        runs[results["peer"]["name"]] = results["peer"]["levels"]
    plot(
        runs,
        config.out / "load.png",
        f"preset {config.preset} (random weights), {new_tokens} new tokens, kv-serve max batch "
        f"{config.max_batch}, {threads} torch thread(s)",
    )
    print(f"wrote {path} and {config.out / 'load.png'}")
    if missed:
        raise CheckFailed("; ".join(missed))
    return results


main = make_main(Command(LoadConfig, run), prog="kv-serve-load-benchmark")


if __name__ == "__main__":
    raise SystemExit(main(None))
