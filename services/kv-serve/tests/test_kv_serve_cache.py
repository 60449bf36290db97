"""The cache manager on its own: block hashing, prefix matching, sessions, TTLs, LRU, bytes."""

from __future__ import annotations

import threading

import pytest
import torch
from kv_serve_testing import FakeClock, synthetic_kv

from kv_serve.cache import BlockPool, CacheManager, SessionStore, block_hashes
from kv_serve.kv import KVShape, kv_length, kv_nbytes

# synthetic_kv defaults: 2 layers, 2 heads, head_dim 4, float32 -> 2*2*2*4*4 = 128 bytes/token.
BYTES_PER_TOKEN = KVShape(layers=2, kv_heads=2, head_dim=4).bytes_per_token()


def manager(clock: FakeClock | None = None, **kwargs: object) -> CacheManager:
    options: dict[str, object] = {"budget_bytes": 1 << 20, "block_size": 4}
    options.update(kwargs)
    if clock is not None:
        options["clock"] = clock
    return CacheManager(**options)  # type: ignore[arg-type]


def test_bytes_formula_matches_tensors() -> None:
    assert BYTES_PER_TOKEN == 128
    assert kv_nbytes(synthetic_kv(10)) == 10 * BYTES_PER_TOKEN
    shape = KVShape(layers=12, kv_heads=12, head_dim=64)  # GPT-2 small
    assert shape.bytes_per_token() == 2 * 12 * 12 * 64 * 4 == 73_728
    assert shape.bytes_per_token(torch.float16) == 36_864


def test_block_hashes_chain_on_the_prefix() -> None:
    a = block_hashes([1, 2, 3, 4, 5, 6, 7, 8, 9], 4)
    assert len(a) == 2  # the partial third block is not hashed
    b = block_hashes([1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0], 4)
    assert b[:2] == a
    # The same tokens after a different first block hash differently.
    c = block_hashes([0, 2, 3, 4, 5, 6, 7, 8], 4)
    assert c[0] != a[0] and c[1] != a[1]
    assert block_hashes([1, 2, 3], 4) == []


def test_prefix_match_by_blocks_returns_a_copy() -> None:
    cache = manager()
    tokens = list(range(100, 110))
    kv = synthetic_kv(10)
    assert cache.insert_prefix(tokens, kv) == 2  # two full blocks of 4
    assert cache.total_bytes == 8 * BYTES_PER_TOKEN
    # A request that shares the first 6 tokens reuses one block (4 tokens).
    match = cache.match_prefix(tokens[:6] + [1, 2, 3, 4])
    assert match.tokens == 4 and match.kv is not None
    assert kv_length(match.kv) == 4
    assert torch.equal(match.kv[1][0], kv[1][0][:, :, :4])
    # Mutating the copy does not touch the store.
    match.kv[0][0].fill_(-7)
    again = cache.match_prefix(tokens)
    assert again.tokens == 8 and again.kv is not None
    assert torch.equal(again.kv[0][0], kv[0][0][:, :, :8])
    # max_tokens leaves room for at least one token to run.
    assert cache.match_prefix(tokens[:8], max_tokens=7).tokens == 4
    miss = cache.match_prefix([9, 9, 9, 9, 9])
    assert miss.tokens == 0 and miss.kv is None
    stats = cache.stats()
    assert (stats["prefix_hits"], stats["prefix_misses"], stats["prefix_hit_tokens"]) == (3, 1, 16)
    # Inserting the same prefix again stores nothing new.
    assert cache.insert_prefix(tokens, kv) == 0
    assert cache.stats()["prefix_blocks"] == 2


def test_prefix_caching_off() -> None:
    cache = manager(prefix_caching=False)
    assert cache.insert_prefix(list(range(8)), synthetic_kv(8)) == 0
    assert cache.match_prefix(list(range(8))).tokens == 0


def test_lru_eviction_under_budget_evicts_leaves_first() -> None:
    clock = FakeClock()
    cache = manager(clock, budget_bytes=12 * BYTES_PER_TOKEN)  # room for three blocks
    a = [1] * 8
    cache.insert_prefix(a, synthetic_kv(8))  # blocks a0 <- a1
    clock.advance(1)
    b = [2] * 4
    cache.insert_prefix(b, synthetic_kv(4))  # block b0
    assert cache.stats()["prefix_blocks"] == 3
    clock.advance(1)
    cache.match_prefix(b)  # b0 is now the most recently used
    clock.advance(1)
    c = [3] * 4
    cache.insert_prefix(c, synthetic_kv(4))  # needs room: evicts a leaf (a1), not a0
    stats = cache.stats()
    assert stats["evictions"] == 1 and stats["bytes"] <= cache.budget_bytes
    assert cache.match_prefix(a).tokens == 4  # a0 survived, a1 went
    assert cache.match_prefix(b).tokens == 4
    assert cache.match_prefix(c).tokens == 4


def test_entry_larger_than_budget_is_rejected() -> None:
    cache = manager(FakeClock(), budget_bytes=3 * BYTES_PER_TOKEN)
    assert cache.insert_prefix([1] * 8, synthetic_kv(8)) == 0
    assert cache.total_bytes == 0 and cache.stats()["rejected"] == 1
    cache.checkout_session("s", None)
    assert not cache.checkin_session("s", [1] * 8, synthetic_kv(8))
    assert cache.session_info("s") == {
        "session_id": "s",
        "context_key": None,
        "tokens": 8,
        "cached_tokens": 0,
        "bytes": 0,
        "turns": 1,
        "idle_s": 0.0,
    }


def test_sessions_keep_history_and_cache_copies() -> None:
    clock = FakeClock()
    cache = manager(clock)
    first = cache.checkout_session("s1", "ctx")
    assert first.created and first.tokens == [] and first.kv is None
    kv = synthetic_kv(6)
    assert cache.checkin_session("s1", [5] * 7, kv)
    kv[0][0].fill_(99)  # the caller's tensors are not the stored ones
    second = cache.checkout_session("s1", "ctx")
    assert not second.created and second.tokens == [5] * 7
    assert second.kv is not None and kv_length(second.kv) == 6
    assert torch.equal(second.kv[0][0], synthetic_kv(6)[0][0])
    cache.release_session("s1")
    assert cache.stats()["session_hits"] == 1
    assert cache.total_bytes == 6 * BYTES_PER_TOKEN
    assert cache.delete_session("s1")
    assert not cache.delete_session("s1")
    assert cache.total_bytes == 0 and cache.session_info("s1") is None


def test_context_switch_drops_the_session_cache() -> None:
    cache = manager()
    cache.checkout_session("s", "product-a")
    cache.checkin_session("s", [1] * 5, synthetic_kv(4))
    same = cache.checkout_session("s", "product-a")
    assert same.kv is not None and not same.context_switched
    cache.release_session("s")
    # No key means "same conversation".
    assert cache.checkout_session("s", None).kv is not None
    cache.release_session("s")
    switched = cache.checkout_session("s", "product-b")
    assert switched.context_switched and switched.kv is None and switched.tokens == []
    assert cache.total_bytes == 0
    assert cache.stats()["context_switches"] == 1
    cache.release_session("s")


def test_ttl_expiry_with_injected_clock() -> None:
    clock = FakeClock()
    cache = manager(clock, session_ttl_s=60, prefix_ttl_s=30)
    cache.checkout_session("s", None)
    cache.checkin_session("s", [1] * 5, synthetic_kv(4))
    cache.insert_prefix([7] * 8, synthetic_kv(8))
    clock.advance(29)
    assert cache.match_prefix([7] * 8).tokens == 8  # a use resets the prefix TTL
    clock.advance(29)
    assert cache.stats()["prefix_blocks"] == 2
    clock.advance(2)  # 31 s since the last use of the blocks, 60 s since the session's
    stats = cache.stats()
    assert stats["prefix_blocks"] == 0 and stats["sessions"] == 0
    assert stats["expirations"] == 3 and stats["bytes"] == 0
    assert cache.session_info("s") is None


def test_pinned_session_is_neither_evicted_nor_expired() -> None:
    clock = FakeClock()
    cache = manager(clock, budget_bytes=8 * BYTES_PER_TOKEN, session_ttl_s=10)
    cache.checkout_session("busy", None)
    cache.checkin_session("busy", [1] * 8, synthetic_kv(8))
    cache.checkout_session("busy", None)  # a request is using it now
    clock.advance(100)
    assert cache.expire() == 0
    cache.checkout_session("other", None)
    assert not cache.checkin_session("other", [2] * 4, synthetic_kv(4))  # nothing evictable
    assert cache.session_info("busy")["cached_tokens"] == 8  # type: ignore[index]
    cache.checkin_session("busy", [1] * 8, synthetic_kv(8))
    cache.checkout_session("other", None)
    assert cache.checkin_session("other", [2] * 4, synthetic_kv(4))  # now evicts "busy"
    assert cache.stats()["evictions"] == 1
    assert cache.session_info("busy")["cached_tokens"] == 0  # type: ignore[index]


def test_fp16_storage_halves_the_bytes() -> None:
    cache = manager(storage_dtype=torch.float16)
    cache.insert_prefix([1] * 8, synthetic_kv(8))
    assert cache.total_bytes == 8 * BYTES_PER_TOKEN // 2
    match = cache.match_prefix([1] * 8, dtype=torch.float32)
    assert match.kv is not None and match.kv[0][0].dtype == torch.float32
    assert torch.allclose(match.kv[0][0], synthetic_kv(8)[0][0])


def test_session_lock_is_per_session() -> None:
    cache = manager()
    assert cache.session_lock("a") is cache.session_lock("a")
    assert cache.session_lock("a") is not cache.session_lock("b")


def test_concurrent_inserts_keep_accounting_exact() -> None:
    cache = manager(budget_bytes=40 * BYTES_PER_TOKEN)

    def work(seed: int) -> None:
        for i in range(30):
            tokens = [seed, i % 5] * 6
            cache.insert_prefix(tokens, synthetic_kv(12))
            cache.match_prefix(tokens)

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats = cache.stats()
    assert stats["bytes"] == stats["prefix_blocks"] * 4 * BYTES_PER_TOKEN
    assert stats["bytes"] <= cache.budget_bytes


def test_invalid_settings() -> None:
    with pytest.raises(ValueError, match="block_size"):
        CacheManager(budget_bytes=10, block_size=0)
    with pytest.raises(ValueError, match="budget_bytes"):
        CacheManager(budget_bytes=-1)


def test_block_pool_removes_a_block_with_its_descendants_and_evicts_only_free_leaves() -> None:
    pool = BlockPool(block_size=4)
    root, middle, leaf = block_hashes(list(range(12)), 4)
    kv = synthetic_kv(4)
    for key, parent in ((root, None), (middle, root), (leaf, middle)):
        pool.add(key, parent, kv, kv_nbytes(kv), now=0.0)
    assert [block.key for block in pool.longest_cached([root, middle, "unknown", leaf])] == [
        root,
        middle,
    ]
    assert not pool.evictable(root) and not pool.evictable(middle) and pool.evictable(leaf)
    pool.get(leaf).refs += 1  # type: ignore[union-attr]
    assert not pool.evictable(leaf)  # referenced by a request
    assert {block.key for block in pool.remove(middle)} == {middle, leaf}
    assert len(pool) == 1 and pool.evictable(root)  # the root is a leaf again
    assert pool.nbytes == kv_nbytes(kv)


def test_session_store_drops_a_cache_but_keeps_the_history() -> None:
    store = SessionStore()
    session = store.create("chat", context_key=None, now=0.0)
    session.tokens, session.kv, session.nbytes = [1, 2, 3], synthetic_kv(3), 3 * BYTES_PER_TOKEN
    session.pins = 1
    assert not store.evictable("chat")
    assert store.drop_cache("chat") == 3 * BYTES_PER_TOKEN
    after = store.get("chat")
    assert after is not None and after.kv is None and after.tokens == [1, 2, 3]
    assert store.idle(now=1e6, ttl_s=1.0) == []  # pinned sessions never idle out
    session.pins = 0
    assert store.idle(now=1e6, ttl_s=1.0) == ["chat"]


def test_manager_bytes_equal_the_pool_and_the_sessions_after_mixed_traffic() -> None:
    cache = manager(budget_bytes=40 * BYTES_PER_TOKEN)
    for turn in range(6):
        tokens = list(range(turn, turn + 12))
        cache.insert_prefix(tokens, synthetic_kv(12))
        checkout = cache.checkout_session(f"s{turn % 2}", None)
        cache.checkin_session(f"s{turn % 2}", checkout.tokens + tokens, synthetic_kv(8))
        session_bytes = sum(session.nbytes for session in cache.sessions)
        assert cache.total_bytes == cache.blocks.nbytes + session_bytes <= cache.budget_bytes
