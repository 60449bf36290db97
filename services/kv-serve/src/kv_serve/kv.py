"""Key/value tensors of a causal language model, outside any cache object.

A :data:`KV` is one tuple ``(keys, values)`` per layer, each of shape
``(1, kv_heads, tokens, head_dim)``. The cache manager stores these
plain tensors; :func:`to_dynamic_cache` and :func:`from_dynamic_cache`
convert to and from the ``DynamicCache`` object that transformers 5.x
models take and return. Every conversion copies, so a stored cache is
never mutated by a later forward pass.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch
from transformers import DynamicCache, PretrainedConfig

KV = tuple[tuple[torch.Tensor, torch.Tensor], ...]


@dataclasses.dataclass(frozen=True)
class KVShape:
    """The per-token shape of a model's key/value cache."""

    layers: int
    kv_heads: int
    head_dim: int

    def bytes_per_token(self, dtype: torch.dtype = torch.float32) -> int:
        """2 (keys and values) x layers x kv_heads x head_dim x dtype size."""
        element = torch.empty((), dtype=dtype).element_size()
        return 2 * self.layers * self.kv_heads * self.head_dim * element

    def nbytes(self, tokens: int, dtype: torch.dtype = torch.float32) -> int:
        """The formula's bytes for ``tokens`` cached tokens."""
        return tokens * self.bytes_per_token(dtype)

    @classmethod
    def from_config(cls, config: PretrainedConfig) -> KVShape:
        """Read layers, key/value heads and head size from a GPT-2 or Llama config."""
        layers = _first_int(config, "num_hidden_layers", "n_layer")
        heads = _first_int(config, "num_attention_heads", "n_head")
        hidden = _first_int(config, "hidden_size", "n_embd")
        kv_heads = getattr(config, "num_key_value_heads", None) or heads
        head_dim = getattr(config, "head_dim", None) or hidden // heads
        return cls(layers=layers, kv_heads=int(kv_heads), head_dim=int(head_dim))


def _first_int(config: PretrainedConfig, *names: str) -> int:
    for name in names:
        value = getattr(config, name, None)
        if isinstance(value, int):
            return value
    raise ValueError(f"The model config has none of {', '.join(names)}.")


def kv_length(kv: KV) -> int:
    """Number of cached tokens."""
    return int(kv[0][0].shape[-2]) if kv else 0


def kv_nbytes(kv: KV) -> int:
    """Bytes held by the tensors of ``kv``."""
    return sum(k.numel() * k.element_size() + v.numel() * v.element_size() for k, v in kv)


def kv_copy(kv: KV, dtype: torch.dtype | None = None, start: int = 0, end: int | None = None) -> KV:
    """An owned copy of tokens ``start:end`` of ``kv``, optionally cast to ``dtype``.

    Slices are cloned, so the copy never keeps a larger tensor alive and byte accounting stays
    exact.
    """
    out = []
    for keys, values in kv:
        k = keys[:, :, start:end]
        v = values[:, :, start:end]
        if dtype is not None and k.dtype != dtype:
            out.append((k.to(dtype).contiguous(), v.to(dtype).contiguous()))
        else:
            out.append((k.clone(), v.clone()))
    return tuple(out)


def kv_concat(parts: Sequence[KV], dtype: torch.dtype | None = None) -> KV:
    """Concatenate ``parts`` along the token axis (a new tensor per layer)."""
    if not parts:
        return ()
    layers = len(parts[0])
    out = []
    for layer in range(layers):
        keys = torch.cat([part[layer][0] for part in parts], dim=-2)
        values = torch.cat([part[layer][1] for part in parts], dim=-2)
        if dtype is not None:
            keys, values = keys.to(dtype), values.to(dtype)
        out.append((keys, values))
    return tuple(out)


def to_dynamic_cache(
    kv: KV | None, dtype: torch.dtype | None = None, *, copy: bool = True
) -> DynamicCache:
    """A fresh ``DynamicCache`` holding ``kv`` (empty when ``None``).

    ``copy=False`` hands over tensors the caller already owns (e.g. what the cache manager returns,
    which is a private copy) instead of cloning them a second time; the model may then extend them.
    """
    cache = DynamicCache()
    if kv:
        tensors = kv_copy(kv, dtype) if copy or dtype is not None else kv
        for layer, (keys, values) in enumerate(tensors):
            cache.update(keys, values, layer)
    return cache


def from_dynamic_cache(cache: DynamicCache) -> KV:
    """The tensors inside ``cache`` (not copied: the caller owns the cache)."""
    out = []
    for layer in cache.layers:
        keys = getattr(layer, "keys", None)
        values = getattr(layer, "values", None)
        if keys is None or values is None:
            raise ValueError("The cache has an uninitialised layer.")
        out.append((keys, values))
    return tuple(out)
