"""Causal multi-head self-attention with an explicit key/value cache, as the KV-cache article writes
it by hand.

A decoder produces one token per forward pass, and each new token's query must attend to the keys
and values of every earlier token. Those keys and values depend only on the earlier tokens, so
recomputing them at every step repeats work that grows with the sequence: generating ``n`` tokens
without a cache costs O(n^2) projections, with a cache O(n). The cache trades memory (two tensors of
``[batch, heads, seq, head_dim]`` per layer) for that time.

:class:`CausalSelfAttention` mirrors Hugging Face's ``GPT2Attention`` weight for weight (the fused
``c_attn`` projection stored ``[d_model, 3 * d_model]`` as GPT-2's ``Conv1D`` does, then
``c_proj``), so loaded weights give the same outputs; :class:`CachedGPT2` wraps the rest of a
``GPT2LMHeadModel`` around it, and :func:`generate` decodes greedily with the cache on or off so the
two can be timed against each other (``lm.cache_benchmark``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import cast

import torch
from torch import Tensor, nn
from transformers import GPT2LMHeadModel
from transformers.models.gpt2.modeling_gpt2 import GPT2Attention, GPT2Block


@dataclasses.dataclass(frozen=True)
class KVCache:
    """The keys and values one attention layer has computed so far, each ``[batch, heads, seq,
    head_dim]``.

    Immutable: :meth:`append` returns a new cache, so a caller can keep an earlier one (e.g. to
    branch a generation) without it changing underneath.
    """

    key: Tensor
    value: Tensor

    def __post_init__(self) -> None:
        if self.key.dim() != 4 or self.key.shape != self.value.shape:
            raise ValueError(
                "KVCache key and value must both be [batch, heads, seq, head_dim]; got key "
                f"{tuple(self.key.shape)} and value {tuple(self.value.shape)}"
            )

    @property
    def length(self) -> int:
        """How many positions are cached (the position the next token takes)."""
        return int(self.key.shape[2])

    def append(self, key: Tensor, value: Tensor) -> KVCache:
        """This cache with ``key`` and ``value`` (``[batch, heads, new, head_dim]``) added after the
        cached positions."""
        if key.shape[:2] != self.key.shape[:2] or key.shape[3] != self.key.shape[3]:
            raise ValueError(
                f"cannot append keys of shape {tuple(key.shape)} to a cache of shape "
                f"{tuple(self.key.shape)}: batch, heads and head_dim must match"
            )
        return KVCache(torch.cat((self.key, key), dim=2), torch.cat((self.value, value), dim=2))


class CausalSelfAttention(nn.Module):
    """GPT-2's masked multi-head self-attention, with the cache passed in and returned explicitly.

    ``forward(x, past)`` projects only the new positions ``x`` to queries, keys and values, appends
    the new keys and values to ``past`` and lets the new queries attend to every cached position
    plus the new ones up to themselves. With ``past=None`` it is ordinary full-sequence causal
    attention, so the cached and uncached paths share every line but the concatenation.
    """

    def __init__(self, d_model: int, n_head: int, *, scale: float | None = None) -> None:
        super().__init__()
        if d_model <= 0 or n_head <= 0:
            raise ValueError(f"d_model and n_head must be positive, got {d_model} and {n_head}")
        if d_model % n_head != 0:
            raise ValueError(
                f"d_model ({d_model}) must be divisible by n_head ({n_head}): each head takes an "
                "equal slice of the width"
            )
        self.d_model = d_model
        self.n_head = n_head
        self.head_dim = d_model // n_head
        # Dot products of head_dim-sized vectors grow like sqrt(head_dim); dividing keeps the
        # softmax out of its saturated, vanishing-gradient range (Vaswani et al., and GPT-2).
        self.scale = 1.0 / math.sqrt(self.head_dim) if scale is None else scale
        # Stored [in, out] like GPT-2's Conv1D, so HF weights copy over without a transpose.
        self.c_attn_weight = nn.Parameter(torch.empty(d_model, 3 * d_model))
        self.c_attn_bias = nn.Parameter(torch.zeros(3 * d_model))
        self.c_proj_weight = nn.Parameter(torch.empty(d_model, d_model))
        self.c_proj_bias = nn.Parameter(torch.zeros(d_model))
        nn.init.normal_(self.c_attn_weight, std=0.02)
        nn.init.normal_(self.c_proj_weight, std=0.02)

    @classmethod
    def from_hf(cls, attention: GPT2Attention) -> CausalSelfAttention:
        """A copy of a Hugging Face ``GPT2Attention`` (e.g. ``model.transformer.h[i].attn``), with
        its weights and its scaling (which includes ``scale_attn_by_inverse_layer_idx``)."""
        if getattr(attention, "is_cross_attention", False):
            raise ValueError("cannot mirror a cross-attention GPT2Attention: it is not causal")
        if getattr(attention, "reorder_and_upcast_attn", False):
            raise ValueError("reorder_and_upcast_attn is not supported (it only changes precision)")
        module = cls(int(attention.embed_dim), int(attention.num_heads), scale=attention.scaling)
        module.load_hf_weights(
            attention.c_attn.weight,
            attention.c_attn.bias,
            attention.c_proj.weight,
            attention.c_proj.bias,
        )
        return module

    @torch.no_grad()
    def load_hf_weights(
        self, c_attn_weight: Tensor, c_attn_bias: Tensor, c_proj_weight: Tensor, c_proj_bias: Tensor
    ) -> None:
        """Copy GPT-2's attention weights, in its ``Conv1D`` layout; a wrong shape raises
        ``ValueError`` naming the tensor, what it got and what this module's config expects."""
        d = self.d_model
        expected = {
            "c_attn.weight": (c_attn_weight, (d, 3 * d)),
            "c_attn.bias": (c_attn_bias, (3 * d,)),
            "c_proj.weight": (c_proj_weight, (d, d)),
            "c_proj.bias": (c_proj_bias, (d,)),
        }
        for name, (tensor, shape) in expected.items():
            if tuple(tensor.shape) != shape:
                raise ValueError(
                    f"{name} has shape {list(tensor.shape)}, but d_model={d} needs {list(shape)} "
                    "(GPT-2 Conv1D layout: [in_features, out_features]); does the config match "
                    "the weights?"
                )
        self.c_attn_weight.copy_(c_attn_weight)
        self.c_attn_bias.copy_(c_attn_bias)
        self.c_proj_weight.copy_(c_proj_weight)
        self.c_proj_bias.copy_(c_proj_bias)

    def _split_heads(self, x: Tensor) -> Tensor:
        batch, seq, _ = x.shape
        return x.view(batch, seq, self.n_head, self.head_dim).transpose(1, 2)

    def forward(self, x: Tensor, past: KVCache | None = None) -> tuple[Tensor, KVCache]:
        """Attend from the new positions ``x`` (``[batch, new, d_model]``) to ``past`` and
        themselves; return the output (``[batch, new, d_model]``) and the cache extended by the new
        positions."""
        if x.dim() != 3 or x.shape[-1] != self.d_model:
            raise ValueError(f"x must be [batch, seq, {self.d_model}], got {list(x.shape)}")
        # One fused matmul makes q, k and v for every new position: the only projection work a
        # decoding step does, which is why caching k and v makes a step O(1) in projections.
        qkv = torch.addmm(self.c_attn_bias, x.reshape(-1, self.d_model), self.c_attn_weight)
        query, key, value = qkv.view(*x.shape[:2], 3 * self.d_model).split(self.d_model, dim=2)
        query, key, value = map(self._split_heads, (query, key, value))

        cache = KVCache(key, value) if past is None else past.append(key, value)
        offset = 0 if past is None else past.length
        new, total = query.shape[2], cache.length

        scores = torch.matmul(query, cache.key.transpose(-1, -2)) * self.scale
        # New query i sits at position offset + i and may see keys 0 .. offset + i; with one new
        # token (a cached decoding step) nothing is masked: every cached key is in its past.
        if new > 1:
            future = torch.ones(new, total, dtype=torch.bool, device=x.device).triu(offset + 1)
            scores = scores.masked_fill(future, torch.finfo(scores.dtype).min)
        weights = torch.softmax(scores, dim=-1)
        context = torch.matmul(weights, cache.value)  # [batch, heads, new, head_dim]
        merged = context.transpose(1, 2).reshape(-1, self.d_model)
        out = torch.addmm(self.c_proj_bias, merged, self.c_proj_weight)
        return out.view(*x.shape[:2], self.d_model), cache


class CachedGPT2(nn.Module):
    """A ``GPT2LMHeadModel`` whose attention layers are :class:`CausalSelfAttention` copies.

    The embeddings, layer norms, MLPs and head are the HF model's own modules (shared, not copied):
    only attention changes, so any difference from HF's logits is the attention's, and the cache is
    a plain list of :class:`KVCache`, one per layer, that the caller can inspect.
    """

    def __init__(self, model: GPT2LMHeadModel) -> None:
        super().__init__()
        transformer = model.transformer
        blocks = [cast(GPT2Block, block) for block in transformer.h]
        self.wte = transformer.wte
        self.wpe = transformer.wpe
        self.ln_1 = nn.ModuleList(block.ln_1 for block in blocks)
        self.attn = nn.ModuleList(CausalSelfAttention.from_hf(block.attn) for block in blocks)
        self.ln_2 = nn.ModuleList(block.ln_2 for block in blocks)
        self.mlp = nn.ModuleList(block.mlp for block in blocks)
        self.ln_f = transformer.ln_f
        self.lm_head = model.lm_head
        self.context_length = int(model.config.n_positions)

    def forward(
        self, input_ids: Tensor, past: Sequence[KVCache] | None = None
    ) -> tuple[Tensor, list[KVCache]]:
        """Logits (``[batch, new, vocab]``) for the new tokens ``input_ids`` (``[batch, new]``)
        after the cached ones, and the per-layer caches extended by them."""
        if past is not None and len(past) != len(self.attn):
            raise ValueError(f"past has {len(past)} layer caches, the model {len(self.attn)}")
        offset = 0 if not past else past[0].length
        if offset + input_ids.shape[1] > self.context_length:
            raise ValueError(
                f"{offset + input_ids.shape[1]} positions exceed the context length "
                f"{self.context_length}"
            )
        positions = torch.arange(offset, offset + input_ids.shape[1], device=input_ids.device)
        hidden = self.wte(input_ids) + self.wpe(positions)
        caches: list[KVCache] = []
        for index, attention in enumerate(self.attn):
            attended, cache = attention(
                self.ln_1[index](hidden), None if past is None else past[index]
            )
            hidden = hidden + attended
            hidden = hidden + self.mlp[index](self.ln_2[index](hidden))
            caches.append(cache)
        return self.lm_head(self.ln_f(hidden)), caches


@torch.no_grad()
def generate(
    model: CachedGPT2, input_ids: Tensor, max_new_tokens: int, *, use_cache: bool = True
) -> Tensor:
    """Greedy decoding of ``max_new_tokens`` after ``input_ids`` (``[batch, prompt]``); returns
    ``[batch, prompt + max_new_tokens]``.

    With ``use_cache=False`` every step re-runs the whole sequence, as a model without a KV cache
    must; with ``use_cache=True`` the prompt is run once (the "prefill") and each later step feeds
    only the token just chosen. Both choose the same tokens: the cache changes the cost, not the
    result.
    """
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be zero or more, got {max_new_tokens}")
    sequence = input_ids
    past: list[KVCache] | None = None
    step_input = input_ids
    for _ in range(max_new_tokens):
        if use_cache:
            logits, past = model(step_input, past)
        else:
            logits, _ = model(sequence)
        next_token = logits[:, -1, :].argmax(dim=-1, keepdim=True)
        sequence = torch.cat((sequence, next_token), dim=1)
        step_input = next_token
    return sequence
