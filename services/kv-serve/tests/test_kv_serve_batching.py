"""Continuous batching: concurrent sequences share forward passes and get the tokens they would get
alone."""

from __future__ import annotations

import threading

import torch
from kv_serve_testing import TEXTS, make_engine

from kv_serve.engine import GenerationParams, GenerationResult, generate_tokens
from kv_serve.scheduler import BatchSequence, Finished, Scheduler, StepToken


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


def _drain(sequence: BatchSequence) -> tuple[list[int], bool]:
    tokens, finished = [], False
    while not sequence.out.empty():
        item = sequence.out.get()
        if isinstance(item, StepToken):
            tokens.append(item.token_id)
        finished = finished or isinstance(item, Finished)
    return tokens, finished


def test_chunked_prefill_runs_a_long_prompt_between_decode_steps() -> None:
    engine = make_engine()
    short = engine.encode(TEXTS[5])
    long = engine.encode(" ".join(TEXTS[:4]))
    assert len(long) > 12
    # Steps are driven by hand (no scheduler thread), so the interleaving is deterministic.
    scheduler = Scheduler(engine.model, prefill_chunk=3)

    def sequence(ids: list[int], new_tokens: int) -> BatchSequence:
        return BatchSequence(
            feed=list(ids),
            kv=None,
            max_new_tokens=new_tokens,
            sample=lambda logits: int(torch.argmax(logits).item()),
            eos_token_id=None,
            greedy=True,
        )

    decoding, newcomer = sequence(short, 40), sequence(long, 5)
    with torch.inference_mode():
        scheduler._step([decoding])  # nothing else decodes: the whole prompt at once
        assert scheduler.prefill_passes == 1 and scheduler.active == 1
        scheduler._step([newcomer])
        chunks_needed = -(-len(long) // 3)
        for _ in range(chunks_needed - 1):
            # The newcomer's prompt is still part-way through; the other stream got a token.
            assert scheduler.waiting == 1 and scheduler.active == 1
            scheduler._step([])
        assert scheduler.waiting == 0 and scheduler.active == 2
        assert scheduler.prefill_passes == 1 + chunks_needed
        while scheduler.active:
            scheduler._step([])
    short_tokens, short_done = _drain(decoding)
    long_tokens, long_done = _drain(newcomer)
    assert short_done and long_done
    # Exactly the tokens each gets alone.
    assert short_tokens == generate_tokens(engine.model, short, 40, use_cache=True)
    assert long_tokens == generate_tokens(engine.model, long, 5, use_cache=True)
