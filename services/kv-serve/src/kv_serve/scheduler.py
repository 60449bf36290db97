"""Continuous batching: one thread runs every forward pass; sequences join and leave between steps.

Requests hand the scheduler a :class:`BatchSequence` (the tokens still to run, the keys/values
reused from a session or prefix cache, sampling options) and read tokens from its queue. Each
loop:

1. run queued calls (scoring passes) so that only this thread ever runs the model;
2. admit waiting sequences (up to ``max_batch`` active or prefilling) and prefill them, each on
   its own cache (a prompt's forward pass is compute bound; batching it with others buys little
   on a CPU): every prompt at once when nothing is decoding, else at most ``prefill_chunk``
   prompt tokens per step (chunked prefill), so a long prompt delays everyone's next token by
   one chunk, not by its whole length. A finished prefill samples the sequence's first token;
3. rebuild the batch cache only when sequences joined or left: every active sequence's
   keys/values are one row of a left-padded tensor per layer, inside one ``DynamicCache``;
4. one decode step for all active sequences: input ``(B, 1)``, an attention mask that hides
   each row's left padding, and ``position_ids`` = each row's own length, so every row sees
   exactly what it would see alone.

A finished or cancelled sequence leaves at the next step; a finished one gets an owned copy of
its row (the keys/values of every token it fed) for the session and prefix caches.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

import torch
from transformers import DynamicCache, PreTrainedModel

from kv_serve.kv import KV, from_dynamic_cache, to_dynamic_cache

logger = logging.getLogger("kv_serve.scheduler")
T = TypeVar("T")

Sampler = Callable[[torch.Tensor], int]


@dataclasses.dataclass
class StepToken:
    """A sampled token and the logits it was sampled from (1-D)."""

    token_id: int
    logits: torch.Tensor


@dataclasses.dataclass
class Finished:
    """The sequence is done: why, its keys/values (every token it fed) and the tokens it ran."""

    reason: str
    kv: KV | None
    processed: int


@dataclasses.dataclass(eq=False)
class BatchSequence:
    """One generation inside the scheduler."""

    feed: list[int]  # tokens to prefill (after the reused ones)
    kv: KV | None  # reused keys/values (a private copy), or None
    max_new_tokens: int
    sample: Sampler
    eos_token_id: int | None
    # Greedy sequences take the batch's one argmax instead of calling ``sample`` row by row.
    greedy: bool = False
    out: queue.SimpleQueue[StepToken | Finished | BaseException] = dataclasses.field(
        default_factory=queue.SimpleQueue
    )
    cancelled: bool = False
    # Scheduler-side state.
    length: int = 0  # tokens in this sequence's cache
    next_token: int = -1  # the token to feed at the next decode step
    generated: int = 0
    processed: int = 0


@dataclasses.dataclass(eq=False)
class _Prefill:
    """A sequence whose prompt is part-way through the model."""

    sequence: BatchSequence
    cache: DynamicCache
    done: int = 0  # tokens of ``sequence.feed`` already run


class Scheduler:
    """Runs ``model`` for many sequences at once on one thread (started on first use)."""

    def __init__(
        self, model: PreTrainedModel, *, max_batch: int = 64, prefill_chunk: int = 0
    ) -> None:
        self.model = model
        self.max_batch = max_batch
        self.prefill_chunk = prefill_chunk
        self._pending: deque[BatchSequence] = deque()
        self._prefilling: deque[_Prefill] = deque()
        self._calls: deque[tuple[Callable[[], Any], Future[Any]]] = deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stop = False
        # The running batch.
        self._active: list[BatchSequence] = []
        self._cache: DynamicCache | None = None
        self._pads: list[int] = []
        # Counters (read by /metrics and the benchmark).
        self.steps = 0
        self.batched_tokens = 0
        self.max_batch_seen = 0
        self.prefill_passes = 0

    # ------------------------------------------------------------------ public

    @property
    def active(self) -> int:
        return len(self._active)

    @property
    def waiting(self) -> int:
        return len(self._pending) + len(self._prefilling)

    def submit(self, sequence: BatchSequence) -> None:
        with self._cond:
            self._ensure_thread()
            self._pending.append(sequence)
            self._cond.notify()

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the scheduler thread between steps and return its result."""
        if threading.current_thread() is self._thread:
            return fn()
        future: Future[T] = Future()
        with self._cond:
            self._ensure_thread()
            self._calls.append((fn, future))
            self._cond.notify()
        return future.result()

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout=10)

    # ------------------------------------------------------------------ the loop

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stop = False
            self._thread = threading.Thread(
                target=self._loop, name="kv-serve-scheduler", daemon=True
            )
            self._thread.start()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not (
                    self._stop or self._pending or self._calls or self._active or self._prefilling
                ):
                    self._cond.wait()
                if self._stop:
                    return
                calls = list(self._calls)
                self._calls.clear()
                room = self.max_batch - len(self._active) - len(self._prefilling)
                admitted = [self._pending.popleft() for _ in range(min(room, len(self._pending)))]
            for fn, future in calls:
                if future.set_running_or_notify_cancel():
                    try:
                        future.set_result(fn())
                    except BaseException as error:  # handed to the caller
                        future.set_exception(error)
            try:
                self._step(admitted)
            except Exception as error:  # a failed forward: fail the sequences, keep serving
                logger.exception("batch step failed")
                prefilling = [item.sequence for item in self._prefilling]
                # An admitted sequence may already be prefilling: tell each one once.
                for sequence in dict.fromkeys(self._active + prefilling + admitted):
                    sequence.out.put(error)
                self._active, self._pads, self._cache = [], [], None
                self._prefilling.clear()

    def _step(self, admitted: list[BatchSequence]) -> None:
        with torch.inference_mode():
            for sequence in admitted:
                if sequence.cancelled:
                    continue
                cache = to_dynamic_cache(sequence.kv, copy=False) if sequence.kv else DynamicCache()
                sequence.kv = None
                self._prefilling.append(_Prefill(sequence, cache))
            joiners = self._prefill()
            leaving = [i for i, s in enumerate(self._active) if s.cancelled]
            if leaving:
                self._remove(leaving)
            if joiners:
                self._join(joiners)
            if self._active:
                self._decode()

    def _emit(
        self, sequence: BatchSequence, logits: torch.Tensor, token: int | None = None
    ) -> bool:
        """Sample the next token from ``logits`` (unless ``token``, the argmax, is given); True when
        the sequence goes on."""
        if token is None:
            token = sequence.sample(logits)
        if sequence.eos_token_id is not None and token == sequence.eos_token_id:
            return False
        sequence.generated += 1
        sequence.out.put(StepToken(token, logits))
        sequence.next_token = token
        return sequence.generated < sequence.max_new_tokens

    def _prefill(self) -> list[tuple[BatchSequence, KV]]:
        """Run prompt tokens: all waiting prompts when nothing is decoding, else at most
        ``prefill_chunk`` tokens (0: no limit).

        Returns the sequences whose prompt is done and that go on, with their keys/values.
        """
        budget = self.prefill_chunk if self.prefill_chunk and self._active else None
        joiners: list[tuple[BatchSequence, KV]] = []
        while self._prefilling and (budget is None or budget > 0):
            item = self._prefilling[0]
            sequence = item.sequence
            if sequence.cancelled:
                self._prefilling.popleft()
                continue
            remaining = len(sequence.feed) - item.done
            count = remaining if budget is None else min(budget, remaining)
            chunk = sequence.feed[item.done : item.done + count]
            out = self.model(
                input_ids=torch.tensor([chunk], dtype=torch.long),
                cache=item.cache,
                use_cache=True,
                logits_to_keep=1,
            )
            self.prefill_passes += 1
            item.done += count
            sequence.processed += count
            if budget is not None:
                budget -= count
            if item.done < len(sequence.feed):
                continue  # the budget is spent; the rest of this prompt runs next step
            self._prefilling.popleft()
            kv = from_dynamic_cache(item.cache)
            sequence.length = int(kv[0][0].shape[-2])
            if self._emit(sequence, out.logits[0, -1]):
                joiners.append((sequence, kv))
            else:
                sequence.out.put(Finished(self._reason(sequence), kv, sequence.processed))
        return joiners

    @staticmethod
    def _reason(sequence: BatchSequence) -> str:
        return "length" if sequence.generated >= sequence.max_new_tokens else "stop"

    def _layers(self) -> KV:
        assert self._cache is not None
        return from_dynamic_cache(self._cache)

    def _set_cache(self, layers: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        cache = DynamicCache()
        for index, (keys, values) in enumerate(layers):
            cache.update(keys, values, index)
        self._cache = cache

    def _join(self, joiners: list[tuple[BatchSequence, KV]]) -> None:
        """Add rows for ``joiners`` (left-padded to a common length)."""
        old = self._layers() if self._active else ()
        width_old = int(old[0][0].shape[-2]) if old else 0
        width = max([width_old] + [int(kv[0][0].shape[-2]) for _, kv in joiners])
        rows = len(self._active) + len(joiners)
        template = joiners[0][1]
        layers = []
        for layer, (k0, v0) in enumerate(template):
            _, heads, _, head_dim = k0.shape
            keys = k0.new_zeros((rows, heads, width, head_dim))
            values = v0.new_zeros((rows, v0.shape[1], width, v0.shape[-1]))
            if old:
                keys[: len(self._active), :, width - width_old :] = old[layer][0]
                values[: len(self._active), :, width - width_old :] = old[layer][1]
            for j, (_, kv) in enumerate(joiners):
                length = int(kv[layer][0].shape[-2])
                keys[len(self._active) + j, :, width - length :] = kv[layer][0][0]
                values[len(self._active) + j, :, width - length :] = kv[layer][1][0]
            layers.append((keys, values))
        self._pads = [pad + width - width_old for pad in self._pads] + [
            width - int(kv[0][0].shape[-2]) for _, kv in joiners
        ]
        self._active += [sequence for sequence, _ in joiners]
        self._set_cache(layers)

    def _remove(self, indices: list[int]) -> None:
        """Drop the rows at ``indices`` (and padding columns no remaining row needs)."""
        gone = set(indices)
        keep = [i for i in range(len(self._active)) if i not in gone]
        if not keep:
            self._active, self._pads, self._cache = [], [], None
            return
        trim = min(self._pads[i] for i in keep)
        index = torch.tensor(keep, dtype=torch.long)
        layers = [
            (k.index_select(0, index)[:, :, trim:], v.index_select(0, index)[:, :, trim:])
            for k, v in self._layers()
        ]
        self._active = [self._active[i] for i in keep]
        self._pads = [self._pads[i] - trim for i in keep]
        self._set_cache(layers)

    def _decode(self) -> None:
        """One forward pass for every active sequence; finished ones leave."""
        assert self._cache is not None
        batch = len(self._active)
        width = self._cache.get_seq_length()
        ids = torch.tensor([[s.next_token] for s in self._active], dtype=torch.long)
        mask = torch.ones((batch, width + 1), dtype=torch.long)
        for row, pad in enumerate(self._pads):
            if pad:
                mask[row, :pad] = 0
        positions = torch.tensor([[s.length] for s in self._active], dtype=torch.long)
        out = self.model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            cache=self._cache,
            use_cache=True,
            logits_to_keep=1,
        )
        self.steps += 1
        self.batched_tokens += batch
        self.max_batch_seen = max(self.max_batch_seen, batch)
        last = out.logits[:, -1]
        # One argmax over the batch: per-row calls cost more than the step itself on small models.
        argmax = last.argmax(dim=-1).tolist() if any(s.greedy for s in self._active) else []
        done: list[int] = []
        for row, sequence in enumerate(self._active):
            sequence.length += 1
            sequence.processed += 1
            token = argmax[row] if sequence.greedy else None
            if sequence.cancelled or not self._emit(sequence, last[row], token):
                done.append(row)
        if done:
            layers = self._layers()
            for row in done:
                sequence = self._active[row]
                if sequence.cancelled:
                    continue
                pad = self._pads[row]
                kv = tuple(
                    (k[row : row + 1, :, pad:].clone(), v[row : row + 1, :, pad:].clone())
                    for k, v in layers
                )
                sequence.out.put(Finished(self._reason(sequence), kv, sequence.processed))
            self._remove(done)
