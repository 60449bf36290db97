"""The KV cache manager: session caches and a block-hashed prefix cache under one byte budget.

Two kinds of entries share one LRU order and one byte budget:

* **Session caches** keep a conversation's keys and values between turns,
  so the next turn only runs the new tokens. A session expires after an
  idle TTL; a request whose ``context_key`` differs from the session's
  drops the old cache (a context switch). While a request uses a session,
  the session is pinned and cannot be evicted.
* **Prefix blocks** follow vLLM's automatic prefix caching: a token
  sequence is cut into fixed-size blocks, and block ``i`` is keyed by a
  hash of (the hash of block ``i - 1``, the tokens of block ``i``). A
  hash therefore names the whole prefix up to the end of its block, so
  any request starting with the same tokens finds the same blocks,
  whatever text follows. Blocks form a tree (SGLang's radix tree with
  block-sized edges): each knows its parent and children. A block in use
  has a reference count above zero; only leaf blocks with no references
  are evicted, least recently used first, so a cached prefix never loses
  its middle.

Three parts: :class:`BlockPool` (hash -> block -> reference count, parent/child links, as vLLM's
``BlockPool``), :class:`SessionStore` (conversations, their pins and locks) and
:class:`CacheManager`, which owns the one byte budget and the one LRU order over both and is
the thread-safe API the engine uses.

Bytes are those of the stored tensors, which equal the formula
``2 x layers x kv_heads x head_dim x tokens x dtype size``.
Stored tensors can be kept in float16 (half the bytes) and are cast
back to the model's dtype, and copied, when a request takes them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal

import torch

from kv_serve.kv import KV, kv_concat, kv_copy, kv_length, kv_nbytes

Clock = Callable[[], float]
EntryKey = tuple[Literal["session", "block"], str]


def block_hashes(tokens: Sequence[int], block_size: int) -> list[str]:
    """Hashes of the full ``block_size`` blocks of ``tokens``, each chained to its parent's."""
    hashes: list[str] = []
    parent = b""
    for start in range(0, len(tokens) - block_size + 1, block_size):
        digest = hashlib.blake2b(parent, digest_size=16)
        digest.update(b"|".join(str(t).encode() for t in tokens[start : start + block_size]))
        parent = digest.digest()
        hashes.append(parent.hex())
    return hashes


@dataclasses.dataclass
class _Block:
    key: str
    parent: str | None
    kv: KV
    nbytes: int
    last_used: float
    refs: int = 0
    children: set[str] = dataclasses.field(default_factory=set)


@dataclasses.dataclass
class _Session:
    session_id: str
    context_key: str | None
    tokens: list[int]
    kv: KV | None
    nbytes: int
    last_used: float
    pins: int = 0
    turns: int = 0


@dataclasses.dataclass(frozen=True)
class SessionCheckout:
    """What a request gets from its session: the history and a private copy of its cache."""

    tokens: list[int]
    kv: KV | None
    created: bool
    context_switched: bool


@dataclasses.dataclass(frozen=True)
class PrefixMatch:
    """Cached keys/values (a private copy) for the first ``tokens`` tokens."""

    tokens: int
    kv: KV | None


@dataclasses.dataclass
class CacheCounters:
    prefix_hits: int = 0
    prefix_misses: int = 0
    prefix_hit_tokens: int = 0
    session_hits: int = 0
    session_misses: int = 0
    evictions: int = 0
    evicted_bytes: int = 0
    expirations: int = 0
    context_switches: int = 0
    rejected: int = 0


class BlockPool:
    """Prefix blocks keyed by chained hash, with reference counts and parent/child links.

    Not thread-safe and not budget-aware on its own: :class:`CacheManager` calls it under its lock
    and does the byte accounting.
    """

    def __init__(self, block_size: int) -> None:
        if block_size < 1:
            raise ValueError(f"block_size must be >= 1, got {block_size}.")
        self.block_size = block_size
        self._blocks: dict[str, _Block] = {}

    def __len__(self) -> int:
        return len(self._blocks)

    def __contains__(self, key: object) -> bool:
        return key in self._blocks

    @property
    def nbytes(self) -> int:
        return sum(block.nbytes for block in self._blocks.values())

    def get(self, key: str) -> _Block | None:
        return self._blocks.get(key)

    def longest_cached(self, hashes: Sequence[str]) -> list[_Block]:
        """The cached blocks of the longest run of ``hashes`` from the start."""
        matched: list[_Block] = []
        for key in hashes:
            block = self._blocks.get(key)
            if block is None:
                break
            matched.append(block)
        return matched

    def add(self, key: str, parent: str | None, kv: KV, nbytes: int, now: float) -> _Block:
        block = _Block(key, parent, kv, nbytes, now)
        self._blocks[key] = block
        if parent is not None:
            self._blocks[parent].children.add(key)
        return block

    def evictable(self, key: str) -> bool:
        """Only unreferenced leaves go: a cached prefix never loses its middle."""
        block = self._blocks[key]
        return block.refs == 0 and not block.children

    def remove(self, key: str) -> list[_Block]:
        """Remove ``key`` and its descendants (unreachable without it); returns them all."""
        block = self._blocks.pop(key)
        removed = [block]
        for child in list(block.children):
            if child in self._blocks:
                removed += self.remove(child)
        if block.parent is not None and block.parent in self._blocks:
            self._blocks[block.parent].children.discard(block.key)
        return removed

    def idle(self, now: float, ttl_s: float) -> list[str]:
        """Unreferenced blocks unused for ``ttl_s`` seconds."""
        return [
            block.key
            for block in self._blocks.values()
            if block.refs == 0 and now - block.last_used >= ttl_s
        ]


class SessionStore:
    """Conversations: history, context key, cache, pins and the lock that serialises each one.

    Not thread-safe on its own, and does no byte accounting: :class:`CacheManager` does both.
    """

    def __init__(self) -> None:
        self._sessions: dict[str, _Session] = {}
        self._locks: dict[str, threading.Lock] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def __iter__(self) -> Iterator[_Session]:
        return iter(list(self._sessions.values()))

    def get(self, session_id: str) -> _Session | None:
        return self._sessions.get(session_id)

    def create(self, session_id: str, context_key: str | None, now: float) -> _Session:
        session = _Session(session_id, context_key, [], None, 0, now)
        self._sessions[session_id] = session
        return session

    def lock(self, session_id: str) -> threading.Lock:
        return self._locks.setdefault(session_id, threading.Lock())

    def evictable(self, session_id: str) -> bool:
        return self._sessions[session_id].pins == 0

    def drop_cache(self, session_id: str) -> int:
        """Free the session's cache (it keeps its history and context); returns the bytes."""
        session = self._sessions[session_id]
        freed = session.nbytes
        session.kv, session.nbytes = None, 0
        return freed

    def remove(self, session_id: str) -> None:
        del self._sessions[session_id]
        lock = self._locks.get(session_id)
        if lock is not None and not lock.locked():
            del self._locks[session_id]

    def idle(self, now: float, ttl_s: float) -> list[str]:
        """Unpinned sessions idle for ``ttl_s`` seconds."""
        return [
            session.session_id
            for session in self._sessions.values()
            if session.pins == 0 and now - session.last_used >= ttl_s
        ]


class CacheManager:
    """Thread-safe store of session caches and prefix blocks under a byte budget.

    ``clock`` returns seconds (``time.monotonic`` by default); tests inject a fake one to move time
    forward. ``storage_dtype`` (e.g. ``torch.float16``) is the dtype of stored tensors; ``None``
    keeps the model's. TTLs of ``0`` or less never expire.
    """

    def __init__(
        self,
        *,
        budget_bytes: int,
        block_size: int = 16,
        session_ttl_s: float = 600.0,
        prefix_ttl_s: float = 600.0,
        storage_dtype: torch.dtype | None = None,
        prefix_caching: bool = True,
        clock: Clock = time.monotonic,
    ) -> None:
        if budget_bytes < 0:
            raise ValueError(f"budget_bytes must be >= 0, got {budget_bytes}.")
        self.blocks = BlockPool(block_size)
        self.sessions = SessionStore()
        self.budget_bytes = budget_bytes
        self.block_size = block_size
        self.session_ttl_s = session_ttl_s
        self.prefix_ttl_s = prefix_ttl_s
        self.storage_dtype = storage_dtype
        self.prefix_caching = prefix_caching
        self.clock = clock
        self.counters = CacheCounters()
        self._lock = threading.RLock()
        # Least recently used first; holds every entry of either kind that has bytes.
        self._lru: OrderedDict[EntryKey, None] = OrderedDict()
        self._bytes = 0

    # ------------------------------------------------------------------ accounting

    @property
    def total_bytes(self) -> int:
        return self._bytes

    def _touch(self, key: EntryKey, now: float) -> None:
        self._lru[key] = None
        self._lru.move_to_end(key)
        entry = self.sessions.get(key[1]) if key[0] == "session" else self.blocks.get(key[1])
        assert entry is not None
        entry.last_used = now

    def _evictable(self, key: EntryKey) -> bool:
        if key[0] == "session":
            return self.sessions.evictable(key[1])
        return self.blocks.evictable(key[1])

    def _make_room(self, needed: int) -> bool:
        """Evict least recently used unpinned entries until ``needed`` more bytes fit."""
        if needed > self.budget_bytes:
            return False
        while self._bytes + needed > self.budget_bytes:
            victim = next((key for key in self._lru if self._evictable(key)), None)
            if victim is None:
                return False
            freed = self._drop(victim)
            self.counters.evictions += 1
            self.counters.evicted_bytes += freed
        return True

    def _drop(self, key: EntryKey) -> int:
        """Free the bytes of ``key`` (a session keeps its history and context; a block goes with its
        descendants)."""
        if key[0] == "session":
            self._lru.pop(key, None)
            freed = self.sessions.drop_cache(key[1])
        else:
            freed = 0
            for block in self.blocks.remove(key[1]):
                self._lru.pop(("block", block.key), None)
                freed += block.nbytes
        self._bytes -= freed
        return freed

    def expire(self) -> int:
        """Remove idle sessions and unused prefix blocks past their TTL; returns how many."""
        with self._lock:
            now = self.clock()
            removed = 0
            if self.session_ttl_s > 0:
                for session_id in self.sessions.idle(now, self.session_ttl_s):
                    self._remove_session(session_id)
                    removed += 1
            if self.prefix_ttl_s > 0:
                before = len(self.blocks)
                for key in self.blocks.idle(now, self.prefix_ttl_s):
                    if key in self.blocks:  # not already gone with an expired ancestor
                        self._drop(("block", key))
                removed += before - len(self.blocks)
            self.counters.expirations += removed
            return removed

    # ------------------------------------------------------------------ sessions

    def session_lock(self, session_id: str) -> threading.Lock:
        """The lock that serialises requests on ``session_id``."""
        with self._lock:
            return self.sessions.lock(session_id)

    def _remove_session(self, session_id: str) -> bool:
        if self.sessions.get(session_id) is None:
            return False
        self._drop(("session", session_id))
        self.sessions.remove(session_id)
        return True

    def checkout_session(
        self, session_id: str, context_key: str | None, dtype: torch.dtype | None = None
    ) -> SessionCheckout:
        """Pin ``session_id`` (creating it) and return its history and a copy of its cache.

        A ``context_key`` that differs from the session's drops the history and the cache first.
        Call :meth:`checkin_session` (or :meth:`release_session`) afterwards.
        """
        self.expire()
        with self._lock:
            now = self.clock()
            session = self.sessions.get(session_id)
            created = session is None
            switched = False
            if session is None:
                session = self.sessions.create(session_id, context_key, now)
            elif context_key is not None and context_key != session.context_key:
                self._drop(("session", session_id))
                session.tokens, session.context_key, session.turns = [], context_key, 0
                switched = True
                self.counters.context_switches += 1
            session.pins += 1
            session.last_used = now
            kv = None
            if session.kv is not None:
                self._touch(("session", session_id), now)
                kv = kv_copy(session.kv, dtype)
                self.counters.session_hits += 1
            elif session.tokens:
                self.counters.session_misses += 1
            return SessionCheckout(list(session.tokens), kv, created, switched)

    def checkin_session(self, session_id: str, tokens: Sequence[int], kv: KV | None) -> bool:
        """Store the session's new history and cache (copied) and unpin it.

        ``kv`` covers the first ``kv_length(kv)`` of ``tokens``. Returns whether the cache fit in
        the budget (the history is kept either way).
        """
        with self._lock:
            now = self.clock()
            session = self.sessions.get(session_id)
            if session is None:  # deleted while the request ran: the delete wins
                return False
            session.pins = max(0, session.pins - 1)
            session.tokens = list(tokens)
            session.turns += 1
            session.last_used = now
            self._drop(("session", session_id))
            if kv is None or kv_length(kv) == 0:
                return True
            stored = kv_copy(kv, self.storage_dtype)
            nbytes = kv_nbytes(stored)
            # Pin while making room so the session cannot evict itself.
            session.pins += 1
            fits = self._make_room(nbytes)
            session.pins -= 1
            if not fits:
                self.counters.rejected += 1
                return False
            session.kv, session.nbytes = stored, nbytes
            self._bytes += nbytes
            self._touch(("session", session_id), now)
            return True

    def release_session(self, session_id: str) -> None:
        """Unpin ``session_id`` without changing it (a failed request)."""
        with self._lock:
            session = self.sessions.get(session_id)
            if session is not None:
                session.pins = max(0, session.pins - 1)

    def delete_session(self, session_id: str) -> bool:
        """Forget ``session_id`` and free its cache; False if unknown."""
        self.expire()
        with self._lock:
            return self._remove_session(session_id)

    def session_info(self, session_id: str) -> dict[str, Any] | None:
        """A JSON-able summary of ``session_id``, or None if unknown (expired)."""
        self.expire()
        with self._lock:
            session = self.sessions.get(session_id)
            if session is None:
                return None
            return {
                "session_id": session_id,
                "context_key": session.context_key,
                "tokens": len(session.tokens),
                "cached_tokens": kv_length(session.kv) if session.kv else 0,
                "bytes": session.nbytes,
                "turns": session.turns,
                "idle_s": self.clock() - session.last_used,
            }

    # ------------------------------------------------------------------ prefix blocks

    def match_prefix(
        self,
        tokens: Sequence[int],
        dtype: torch.dtype | None = None,
        *,
        max_tokens: int | None = None,
    ) -> PrefixMatch:
        """The longest cached block prefix of ``tokens[:max_tokens]``, as a private copy."""
        if not self.prefix_caching:
            return PrefixMatch(0, None)
        self.expire()
        limit = len(tokens) if max_tokens is None else min(max_tokens, len(tokens))
        hashes = block_hashes(tokens[:limit], self.block_size)
        with self._lock:
            now = self.clock()
            matched = self.blocks.longest_cached(hashes)
            if not matched:
                self.counters.prefix_misses += 1
                return PrefixMatch(0, None)
            for block in matched:  # reference the blocks while they are copied
                block.refs += 1
                self._touch(("block", block.key), now)
            # The deepest block is the most recently used, so leaves go before their parents.
            try:
                kv = kv_concat([block.kv for block in matched], dtype)
            finally:
                for block in matched:
                    block.refs -= 1
            self.counters.prefix_hits += 1
            n_tokens = len(matched) * self.block_size
            self.counters.prefix_hit_tokens += n_tokens
            return PrefixMatch(n_tokens, kv)

    def insert_prefix(self, tokens: Sequence[int], kv: KV) -> int:
        """Store the full blocks of ``kv`` (which covers the first tokens of ``tokens``).

        Blocks already cached are only touched. Returns the number of new blocks stored; stops at
        the first block that does not fit.
        """
        if not self.prefix_caching:
            return 0
        length = min(kv_length(kv), len(tokens))
        hashes = block_hashes(tokens[:length], self.block_size)
        added = 0
        with self._lock:
            now = self.clock()
            parent: str | None = None
            path: list[_Block] = []
            try:
                for index, key in enumerate(hashes):
                    block = self.blocks.get(key)
                    if block is None:
                        start = index * self.block_size
                        stored = kv_copy(kv, self.storage_dtype, start, start + self.block_size)
                        nbytes = kv_nbytes(stored)
                        if not self._make_room(nbytes):
                            self.counters.rejected += 1
                            break
                        if parent is not None and parent not in self.blocks:
                            break  # evicted while making room (cannot happen: it is referenced)
                        block = self.blocks.add(key, parent, stored, nbytes, now)
                        self._bytes += nbytes
                        added += 1
                    block.refs += 1
                    path.append(block)
                    self._touch(("block", key), now)
                    parent = key
            finally:
                for block in path:
                    block.refs -= 1
        return added

    # ------------------------------------------------------------------ introspection

    def clear(self) -> None:
        """Drop every unpinned cache (sessions keep their history) and reset the counters."""
        with self._lock:
            for key in list(self._lru):
                if key in self._lru and (key[0] == "block" or self._evictable(key)):
                    self._drop(key)
            self.counters = CacheCounters()

    def stats(self) -> dict[str, Any]:
        """Entries, bytes, hits, misses, evictions and expirations."""
        self.expire()
        with self._lock:
            session_bytes = sum(session.nbytes for session in self.sessions)
            prefix_bytes = self.blocks.nbytes
            counters = dataclasses.asdict(self.counters)
            lookups = self.counters.prefix_hits + self.counters.prefix_misses
            return {
                "entries": len(self._lru),
                "sessions": len(self.sessions),
                "session_caches": sum(1 for session in self.sessions if session.kv is not None),
                "prefix_blocks": len(self.blocks),
                "block_size": self.block_size,
                "bytes": self._bytes,
                "session_bytes": session_bytes,
                "prefix_bytes": prefix_bytes,
                "budget_bytes": self.budget_bytes,
                "storage_dtype": str(self.storage_dtype or "model").replace("torch.", ""),
                "prefix_caching": self.prefix_caching,
                "session_ttl_s": self.session_ttl_s,
                "prefix_ttl_s": self.prefix_ttl_s,
                "hits": self.counters.prefix_hits + self.counters.session_hits,
                "misses": self.counters.prefix_misses + self.counters.session_misses,
                "prefix_hit_rate": self.counters.prefix_hits / lookups if lookups else 0.0,
                **counters,
            }
