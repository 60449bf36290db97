"""Named model shapes, built with random weights from a transformers config.

GPT-2 and Llama presets lay their modules out differently (``transformer.h[i].attn`` with a fused
``c_attn`` versus ``model.layers[i].self_attn`` with separate projections, LayerNorm versus RMSNorm,
learned versus rotary positions), so code built on this library can be tested on both.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import torch
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    PretrainedConfig,
    PreTrainedModel,
)
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from ml_core.cli import require

Family = Literal["gpt2", "llama"]


@dataclasses.dataclass(frozen=True)
class ModelPreset:
    """A named architecture: the model family and the config arguments that fix its shape."""

    name: str
    family: Family
    description: str
    vocab_size: int
    context_length: int
    config_kwargs: dict[str, Any]


# Dropout is off everywhere: short pretraining runs gain nothing from it, and a deterministic
# forward pass makes resumed runs and round-trip tests exact.
_NO_DROPOUT_GPT2 = {"resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0}

PRESETS: dict[str, ModelPreset] = {
    preset.name: preset
    for preset in (
        ModelPreset(
            name="tiny",
            family="gpt2",
            description="GPT-2 layout, 2 layers, width 64, 4 heads: for tests and CPU smoke runs",
            vocab_size=4096,
            context_length=256,
            config_kwargs={"n_layer": 2, "n_embd": 64, "n_head": 4, **_NO_DROPOUT_GPT2},
        ),
        ModelPreset(
            name="small",
            family="gpt2",
            description="GPT-2 small's shape (12 layers, width 768, 12 heads, 124M parameters)",
            vocab_size=50257,
            context_length=1024,
            config_kwargs={"n_layer": 12, "n_embd": 768, "n_head": 12, **_NO_DROPOUT_GPT2},
        ),
        ModelPreset(
            name="llama-tiny",
            family="llama",
            description="Llama layout (RMSNorm, rotary, SwiGLU, grouped-query attention), "
            "2 layers, width 64: for tests",
            vocab_size=4096,
            context_length=256,
            config_kwargs={
                "hidden_size": 64,
                "intermediate_size": 176,
                "num_hidden_layers": 2,
                "num_attention_heads": 4,
                "num_key_value_heads": 2,
                "tie_word_embeddings": True,
            },
        ),
    )
}


def preset_names() -> list[str]:
    """Names accepted by :func:`get_preset` and :func:`build_model`."""
    return sorted(PRESETS)


def require_preset(config: Any, field: str) -> None:
    """Raise ``ml_core.cli.ConfigError`` for ``field`` of ``config`` unless it names a preset (for a
    config's ``__post_init__``: the error names the flag)."""
    name = getattr(config, field)
    require(
        name in PRESETS,
        field,
        f"unknown preset {name!r}; available presets: {', '.join(preset_names())}",
    )


def get_preset(name: str) -> ModelPreset:
    """Return the preset called ``name``; an unknown name raises ``ValueError`` listing them."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(
            f"Unknown model preset {name!r}; available presets: {', '.join(preset_names())}."
        ) from None


def build_config(
    preset: str | ModelPreset,
    *,
    vocab_size: int | None = None,
    tokenizer: PreTrainedTokenizerBase | None = None,
) -> PretrainedConfig:
    """Build the transformers config of ``preset``.

    The vocabulary size is, in order of precedence, ``vocab_size``, ``len(tokenizer)``, or the
    preset's default; special token ids come from ``tokenizer`` when one is given.
    """
    spec = get_preset(preset) if isinstance(preset, str) else preset
    if vocab_size is None:
        vocab_size = len(tokenizer) if tokenizer is not None else spec.vocab_size
    if vocab_size < 1:
        raise ValueError(f"vocab_size must be positive, got {vocab_size}.")
    bos = eos = pad = None
    if tokenizer is not None:
        bos = _token_id(tokenizer.bos_token_id)
        eos = _token_id(tokenizer.eos_token_id)
        pad = _token_id(tokenizer.pad_token_id)
    if spec.family == "gpt2":
        return GPT2Config(
            vocab_size=vocab_size,
            n_positions=spec.context_length,
            bos_token_id=bos,
            eos_token_id=eos,
            pad_token_id=pad,
            **spec.config_kwargs,
        )
    return LlamaConfig(
        vocab_size=vocab_size,
        max_position_embeddings=spec.context_length,
        bos_token_id=bos,
        eos_token_id=eos,
        pad_token_id=pad,
        **spec.config_kwargs,
    )


def _token_id(value: object) -> int | None:
    # PreTrainedTokenizerBase types these ids loosely; a single int is all a config accepts.
    return value if isinstance(value, int) else None


def build_model(
    preset: str | ModelPreset,
    *,
    vocab_size: int | None = None,
    tokenizer: PreTrainedTokenizerBase | None = None,
    seed: int | None = None,
) -> PreTrainedModel:
    """Build a causal language model of ``preset`` with random weights.

    ``seed``, when given, makes the initial weights reproducible without touching the global
    generator state of the caller.
    """
    config = build_config(preset, vocab_size=vocab_size, tokenizer=tokenizer)
    model_class: type[PreTrainedModel] = (
        GPT2LMHeadModel if isinstance(config, GPT2Config) else LlamaForCausalLM
    )
    if seed is None:
        return name_causal_lm_loss(model_class(config))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return name_causal_lm_loss(model_class(config))


def name_causal_lm_loss(model: PreTrainedModel) -> PreTrainedModel:
    """Name the causal-LM loss explicitly on a model whose class name does not imply it.

    transformers derives ``loss_type`` from the class name; ``GPT2LMHeadModel`` matches none, so
    the first training step logs "`loss_type=None` was set in the config but it is unrecognized.
    Using the default loss: `ForCausalLMLoss`". That default is the right loss: naming it keeps
    every training run's log free of a warning that reports nothing wrong.
    """
    if getattr(model, "loss_type", "") is None:
        setattr(model, "loss_type", "ForCausalLM")
    return model


def count_parameters(model: torch.nn.Module) -> int:
    """Number of distinct parameters (tied embeddings count once)."""
    return sum(parameter.numel() for parameter in model.parameters())
