"""Continuous batching: concurrent sequences share forward passes and get the tokens they would get
alone."""

from __future__ import annotations

import threading

from kv_serve_testing import TEXTS, make_engine

from kv_serve.engine import GenerationParams, GenerationResult, generate_tokens


def test_concurrent_requests_share_steps_and_match_solo_runs() -> None:
    engine = make_engine()
    prompts = [engine.encode(" ".join(TEXTS[i : i + 1 + i % 3])) for i in range(8)]
    lengths = [3 + 2 * i for i in range(8)]  # different lengths: sequences leave at different steps
    expected = [
        generate_tokens(engine.model, ids, n, use_cache=True) for ids, n in zip(prompts, lengths)
    ]
    results: list[GenerationResult | None] = [None] * len(prompts)
    barrier = threading.Barrier(len(prompts))

    def worker(index: int) -> None:
        barrier.wait()
        params = GenerationParams(max_new_tokens=lengths[index], stop_at_eos=False)
        results[index] = engine.generate(prompts[index], params, use_prefix_cache=False)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(prompts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.token_ids if r else None for r in results] == expected
    scheduler = engine.scheduler
    assert scheduler.max_batch_seen >= 2, "sequences never shared a forward pass"
    # Fewer forward passes than tokens: decode steps were shared.
    assert scheduler.steps < sum(lengths)
    assert engine.inflight == 0 and scheduler.active == 0


def test_a_closed_generation_leaves_the_batch_and_others_finish() -> None:
    engine = make_engine()
    ids = engine.encode(TEXTS[0])
    expected = generate_tokens(engine.model, ids, 20, use_cache=True)
    params = GenerationParams(max_new_tokens=100, stop_at_eos=False)
    abandoned = engine.start(ids, params, use_prefix_cache=False)
    next(iter(abandoned))
    finished: list[int] = []

    def worker() -> None:
        result = engine.generate(
            ids, GenerationParams(max_new_tokens=20, stop_at_eos=False), use_prefix_cache=False
        )
        finished.extend(result.token_ids)

    thread = threading.Thread(target=worker)
    thread.start()
    abandoned.close()  # the client went away
    thread.join(timeout=60)
    assert finished == expected
    assert abandoned.result is None
    assert engine.scheduler.call(lambda: engine.scheduler.active) == 0


def test_batched_sessions_keep_their_caches() -> None:
    engine = make_engine()
    params = GenerationParams(max_new_tokens=4, stop_at_eos=False)
    results: dict[str, list[GenerationResult]] = {}

    def chat(session: str, text: str) -> None:
        first = engine.generate(engine.encode(text), params, session_id=session)
        second = engine.generate(engine.encode(" and then?"), params, session_id=session)
        results[session] = [first, second]

    threads = [threading.Thread(target=chat, args=(f"s{i}", TEXTS[i])) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for i in range(4):
        first, second = results[f"s{i}"]
        assert second.session_hit and second.reused_tokens > first.prompt_tokens
        history = engine.encode(TEXTS[i]) + first.token_ids + engine.encode(" and then?")
        assert second.token_ids == generate_tokens(engine.model, history, 4, use_cache=False)
