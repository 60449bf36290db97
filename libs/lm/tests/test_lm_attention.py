"""The hand-written KV-cache attention gives Hugging Face GPT-2's outputs, with and without a cache
(random seeded weights, no download)."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from transformers import DynamicCache, GPT2Config, GPT2LMHeadModel
from transformers.models.gpt2.modeling_gpt2 import GPT2Attention

from lm.attention import CachedGPT2, CausalSelfAttention, KVCache, generate

BATCH, SEQ, D_MODEL, N_HEAD = 2, 7, 32, 4


def assert_close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=1e-5)


def tiny_config() -> GPT2Config:
    config = GPT2Config(
        vocab_size=97,
        n_positions=32,
        n_embd=D_MODEL,
        n_layer=2,
        n_head=N_HEAD,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )
    # Eager attention takes the explicit causal mask the test builds; sdpa would infer it.
    config._attn_implementation = "eager"
    return config


def hf_attention(seed: int = 0) -> GPT2Attention:
    torch.manual_seed(seed)
    attention = GPT2Attention(tiny_config(), layer_idx=0)  # type: ignore[no-untyped-call]
    attention.eval()
    with torch.no_grad():  # non-zero biases, so a dropped bias would show
        attention.c_attn.bias.normal_(std=0.1)
        attention.c_proj.bias.normal_(std=0.1)
    return attention


def causal_mask(seq: int) -> torch.Tensor:
    future = torch.ones(seq, seq, dtype=torch.bool).triu(1)
    mask = torch.zeros(seq, seq).masked_fill(future, torch.finfo(torch.float32).min)
    return mask[None, None]


def hidden(seed: int = 1) -> torch.Tensor:
    return torch.randn(BATCH, SEQ, D_MODEL, generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def test_full_sequence_matches_hf_attention() -> None:
    reference = hf_attention()
    mine = CausalSelfAttention.from_hf(reference)
    x = hidden()
    expected, _ = reference(x, attention_mask=causal_mask(SEQ))
    actual, cache = mine(x)
    assert_close(actual, expected)
    assert cache.key.shape == (BATCH, N_HEAD, SEQ, D_MODEL // N_HEAD)
    assert cache.length == SEQ


@torch.no_grad()
def test_step_by_step_cache_matches_full_sequence_and_hf_cache() -> None:
    reference = hf_attention()
    mine = CausalSelfAttention.from_hf(reference)
    x = hidden()
    full, _ = mine(x)
    hf_cache = DynamicCache()
    past: KVCache | None = None
    for position in range(SEQ):
        step = x[:, position : position + 1]
        actual, past = mine(step, past)
        assert past.length == position + 1
        expected_hf, _ = reference(step, cache=hf_cache)
        assert_close(actual, full[:, position : position + 1])
        assert_close(actual, expected_hf)
    assert past is not None
    hf_layer: Any = hf_cache.layers[0]
    assert_close(past.key, hf_layer.keys)
    assert_close(past.value, hf_layer.values)


@torch.no_grad()
def test_prefill_then_steps_matches_full_sequence() -> None:
    mine = CausalSelfAttention.from_hf(hf_attention())
    x = hidden()
    full, _ = mine(x)
    prefix, past = mine(x[:, :4])
    rest, _ = mine(x[:, 4:], past)
    assert_close(torch.cat((prefix, rest), dim=1), full)


def hf_model(seed: int = 0) -> GPT2LMHeadModel:
    torch.manual_seed(seed)
    config = tiny_config()
    config._attn_implementation = "sdpa"
    model = GPT2LMHeadModel(config)
    model.train(False)
    return model


@torch.no_grad()
def test_whole_model_logits_match_hf_with_and_without_cache() -> None:
    reference = hf_model()
    mine = CachedGPT2(reference)
    input_ids = torch.randint(0, 97, (BATCH, SEQ), generator=torch.Generator().manual_seed(2))

    expected = reference(input_ids, use_cache=False).logits
    actual, caches = mine(input_ids)
    assert_close(actual, expected)
    assert len(caches) == 2

    hf_cache = DynamicCache(config=reference.config)
    past: list[KVCache] | None = None
    for position in range(SEQ):
        step = input_ids[:, position : position + 1]
        step_logits, past = mine(step, past)
        hf_logits = reference(step, cache=hf_cache, use_cache=True).logits
        assert_close(step_logits, expected[:, position : position + 1])
        assert_close(step_logits, hf_logits)


@torch.no_grad()
def test_generate_with_and_without_cache_agree_with_hf() -> None:
    reference = hf_model()
    mine = CachedGPT2(reference)
    prompt = torch.randint(0, 97, (1, 5), generator=torch.Generator().manual_seed(3))
    cached = generate(mine, prompt, 8, use_cache=True)
    uncached = generate(mine, prompt, 8, use_cache=False)
    assert cached.shape == (1, 13)
    assert torch.equal(cached, uncached)
    expected = reference.generate(
        prompt, max_new_tokens=8, do_sample=False, attention_mask=torch.ones_like(prompt)
    )
    assert torch.equal(cached, expected)


def test_wrong_weight_shape_is_a_clear_error() -> None:
    reference = hf_attention()
    module = CausalSelfAttention(D_MODEL * 2, N_HEAD)
    with pytest.raises(ValueError, match=r"c_attn\.weight has shape \[32, 96\].*\[64, 192\]"):
        module.load_hf_weights(
            reference.c_attn.weight,
            reference.c_attn.bias,
            reference.c_proj.weight,
            reference.c_proj.bias,
        )


def test_mismatched_config_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"d_model \(30\) must be divisible by n_head \(4\)"):
        CausalSelfAttention(30, 4)
    module = CausalSelfAttention(D_MODEL, N_HEAD)
    with pytest.raises(ValueError, match=r"x must be \[batch, seq, 32\]"):
        module(torch.zeros(1, 3, 16))
    _, past = module(torch.zeros(1, 3, D_MODEL))
    other = CausalSelfAttention(D_MODEL, 2)
    with pytest.raises(ValueError, match="cannot append keys"):
        other(torch.zeros(1, 1, D_MODEL), past)
