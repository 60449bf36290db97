"""Kv-serve: text generation over HTTP with managed key/value caches.

Sessions keep a conversation's cache between turns, idle sessions and unused prefix blocks expire, a
new ``context_key`` drops a session's cache, shared prompt prefixes are cached once in hashed token
blocks (vLLM's automatic prefix caching) and reused as copies, and every cache counts against one
byte budget with LRU eviction.
"""

from kv_serve.cache import CacheManager, block_hashes
from kv_serve.engine import BadRequest, Engine, GenerationParams, GenerationResult
from kv_serve.kv import KVShape

__all__ = [
    "BadRequest",
    "CacheManager",
    "Engine",
    "GenerationParams",
    "GenerationResult",
    "KVShape",
    "block_hashes",
]
