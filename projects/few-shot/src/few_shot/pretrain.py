"""Pretrain a small Llama (or GPT-2) on the synthetic in-context-learning mixture (see
:mod:`synthetic`).

Writes a ``save_pretrained`` directory loadable by ``lm.load_model_spec(path)`` (model, word-level
tokenizer), ``few_shot_format.json`` (the prompt format it was trained on), ``metrics.json``,
``loss_curve.png`` and ``tasks/`` (held-out evaluation tasks as JSONL).
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Literal

import torch
from matplotlib.figure import Figure
from tqdm import tqdm
from transformers import (
    AutoModelForCausalLM,
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
)

from few_shot import synthetic
from few_shot.prompts import FORMAT_FILE
from few_shot.tasks import Example, Task, write_task
from lm import count_parameters
from ml_core import collect_run_metadata, seed_everything, write_json_atomic
from ml_core.cli import (
    config_to_dict,
    require,
    require_fraction,
    require_non_negative,
    require_positive,
)
from ml_core.plotting import save_figure


@dataclasses.dataclass(frozen=True)
class PretrainConfig:
    """Pretrain the in-context-learning model on fresh synthetic mappings."""

    out: Path = Path("runs/few-shot/icl-model")
    """Model directory to write (replaced atomically at the end)."""

    steps: int = 16000
    batch_size: int = 32
    block_size: int = 64
    """Tokens per training sequence (episodes are cut or padded to it)."""

    family: Literal["gpt2", "llama"] = "llama"
    """Layout: GPT-2 (learned positions) or Llama (rotary positions, as lm's llama presets)."""

    layers: int = 2
    width: int = 128
    heads: int = 4
    positional_heads: int = 2
    """Layer-0 heads that start as fixed-offset heads (Llama only): head i looks i + 1 tokens back.

    An induction head needs a layer-0 head that moves the previous tokens into each position;
    learning that head from random weights is what delays the in-context phase change (Olsson et
    al., 2022). Starting two heads at offsets 1 and 2 (the key word sits two tokens before its
    answer in ``x = y``) gives it from step 0; the weights stay trainable, and what to match and
    copy is still learned. In one run the phase change came at ~3,250 steps instead of 6,000-7,500.
    0 starts every head random.
    """
    restart_after: int = 1500
    """If in-context lookup on fresh training mappings is still below --restart-below at this step,
    start again from a new initialisation (the next seed); 0 never restarts.

    When the phase change comes depends on the seed far more than on the recipe: of seeds 0-3,
    seeds 1 and 3 left the plateau at ~1,000 steps, seed 0 at ~3,250 and seed 2 not by 2,647
    (see the README). A run still on the plateau at 1,500 steps is likely to stay there past the
    time cap, so starting again is cheaper than waiting. The probe uses training pairs, never the
    held-out ones.
    """

    restart_below: float = 0.5
    """Lookup accuracy on training pairs a run needs by --restart-after to go on (the plateau is
    0.25-0.35: guessing among the answers already seen)."""

    max_restarts: int = 3
    """At most this many restarts; the last attempt trains to the step or time cap."""

    lr: float = 3e-3
    warmup: int = 100
    decay_fraction: float = 0.2
    """Share of the run (by steps or time) over which the rate anneals to zero.

    Before it the rate stays at --lr, so it is still full when the induction head forms (after
    6,000-7,500 steps here).
    """

    eval_every: int = 100
    max_seconds: float = 840.0
    """Stop early after this much training time (the target is <= 15 minutes on 2 cores)."""

    init: Path | None = None
    """Continue from this model directory (from an earlier `pretrain`) instead of random weights."""

    threads: int = 1
    """Torch threads (one thread is fastest for a model this small on a shared machine)."""

    precision: Literal["auto", "bf16", "fp32"] = "auto"
    """Forward passes under bfloat16 autocast (weights and optimizer stay float32) or in float32.

    bf16 ran 1.3x the steps per second of float32 on a CPU with AVX-512 BF16, but 9x slower on an
    AVX2-only CPU, which emulates it; ``auto`` picks bf16 only where the CPU has it natively.
    """

    seed: int = 0

    def __post_init__(self) -> None:
        require_positive(
            self,
            "threads",
            "steps",
            "batch_size",
            "block_size",
            "layers",
            "width",
            "heads",
            "lr",
            "eval_every",
            "max_seconds",
        )
        require_fraction(self, "decay_fraction")
        require_fraction(self, "restart_below", allow_zero=True)
        require_non_negative(self, "restart_after", "max_restarts")
        require_non_negative(self, "positional_heads")
        require(self.positional_heads <= self.heads, "positional_heads", "must be at most --heads")
        require(
            self.positional_heads == 0 or self.family == "llama",
            "positional_heads",
            "needs --family llama (rotary positions); use 0 with gpt2",
        )
        require(self.width % self.heads == 0, "width", "must be divisible by --heads")
        require(self.block_size >= 16, "block_size", "must be at least 16")


def as_task(data: dict[str, Any]) -> Task:
    """A task dict from :mod:`synthetic` as a :class:`Task`."""
    return Task(
        name=data["name"],
        instruction=data["instruction"],
        options=tuple(data["options"]),
        demonstrations=tuple(Example(**d) for d in data["demonstrations"]),
        queries=tuple(Example(**q) for q in data["queries"]),
    )


def evaluation_tasks(seed: int = 100) -> dict[str, Task]:
    """The held-out tasks written beside the model."""
    return {
        "invented-language": as_task(synthetic.invented_language_task(seed)),
        "inverted-sentiment": as_task(synthetic.inverted_sentiment_task(seed)),
        "odd-sum": as_task(synthetic.odd_sum_task(seed)),
    }


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX-512 BF16 or AMX), from torch's own probes.

    They are private, so a torch without them counts as no.
    """
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probes)


def use_bf16(precision: str) -> bool:
    """Whether a run with ``precision`` autocasts to bfloat16."""
    return precision == "bf16" or (precision == "auto" and cpu_has_native_bf16())


def _batch(
    rng: random.Random, vocab: dict[str, int], batch_size: int, block_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    # The synthetic text is space-separated words and punctuation, so a lookup in the
    # word-level tokenizer's vocabulary gives its ids at a twentieth of a tokenizer call's cost.
    pad, unknown = vocab[synthetic.PAD], vocab[synthetic.UNK]
    ids = torch.full((batch_size, block_size), pad, dtype=torch.long)
    mask = torch.zeros((batch_size, block_size), dtype=torch.long)
    for row in range(batch_size):
        words = synthetic.episode_text(rng).split()[:block_size]
        tokens = [vocab.get(word, unknown) for word in words]
        ids[row, : len(tokens)] = torch.tensor(tokens)
        mask[row, : len(tokens)] = 1
    return ids, mask


def _loss(model: PreTrainedModel, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]
    labels = ids[:, 1:].masked_fill(mask[:, 1:] == 0, -100)
    return torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.size(-1)), labels.reshape(-1), ignore_index=-100
    )


@torch.no_grad()
def lookup_accuracy(
    model: PreTrainedModel,
    tokenizer: Any,
    *,
    evaluation: bool,
    episodes: int = 64,
    seed: int = 999,
) -> float:
    """Greedy next-token accuracy on translation pairs whose word already appeared in the same
    sequence (so the answer is in the context): held-out pairs when ``evaluation``, else fresh
    mappings of training pairs."""
    rng = random.Random(seed)
    model.train(False)
    hits = total = 0
    equals = tokenizer.convert_tokens_to_ids("=")
    for _ in range(episodes):
        mapping = synthetic._sample_mapping(rng, rng.randint(3, 6), evaluation=evaluation)
        keys = list(mapping)
        pairs = [(key, mapping[key]) for key in (rng.choice(keys) for _ in range(16))]
        text = " ".join(f"{x} = {y} ;" for x, y in pairs)
        ids = torch.tensor([tokenizer(text)["input_ids"]])
        predicted = model(input_ids=ids).logits[0].argmax(-1)
        seen: set[int] = set()
        tokens = ids[0].tolist()
        for position in range(1, len(tokens) - 1):
            if tokens[position] == equals:
                key = tokens[position - 1]
                if key in seen:
                    total += 1
                    hits += int(predicted[position] == tokens[position + 1])
                seen.add(key)
    model.train()
    return hits / max(1, total)


def heldout_lookup_accuracy(model: PreTrainedModel, tokenizer: Any) -> float:
    """:func:`lookup_accuracy` on held-out pairs (what the history and metrics report)."""
    return lookup_accuracy(model, tokenizer, evaluation=True)


def training_lookup_accuracy(model: PreTrainedModel, tokenizer: Any) -> float:
    """:func:`lookup_accuracy` on training pairs: the restart decision never sees held-out pairs."""
    return lookup_accuracy(model, tokenizer, evaluation=False, seed=998)


def learning_rate_factor(step: int, warmup: int, done: float, decay_fraction: float) -> float:
    """Warm-up, stable, decay: linear warm-up over ``warmup`` steps, then the full rate until the
    last ``decay_fraction`` of the run, then a cosine to 0.

    ``done`` is the fraction of the run completed, by steps or by the time cap, whichever is further
    along, so a run the time cap stops still ends on a fully decayed rate.
    """
    if step < warmup:
        return (step + 1) / warmup
    decay_from = 1.0 - decay_fraction
    if done <= decay_from:
        return 1.0
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (done - decay_from) / decay_fraction)))


def _plot(history: list[dict[str, float]], path: Path) -> None:
    figure = Figure(figsize=(7, 3.5))
    left, right = figure.subplots(1, 2)
    # One line per attempt: a restart begins again at step 1 with the next seed.
    for seed in sorted({int(h["seed"]) for h in history}):
        attempt = [h for h in history if h["seed"] == seed]
        steps = [h["step"] for h in attempt]
        left.plot(steps, [h["train_loss"] for h in attempt], label=f"seed {seed}")
        right.plot(steps, [h["heldout_lookup_accuracy"] for h in attempt], label=f"seed {seed}")
    left.set(xlabel="step", ylabel="train loss (nats/token)", title="Loss")
    right.set(xlabel="step", ylabel="accuracy", title="Held-out in-context lookup", ylim=(0, 1))
    right.legend()
    figure.tight_layout()
    save_figure(figure, path)


# Rotary positions turn a constant query q and key k into a score that depends only on the
# distance n between the two tokens: sum over rotation pairs f of q_f k_f cos(n theta_f - phase_f).
# Giving the key each pair's phase at the wanted offset makes that distance score highest;
# the fastest-rotating pairs separate neighbouring distances best, and at this magnitude
# softmax puts >= 99.8% of the weight on the offset over 256 positions (checked in the tests).
POSITIONAL_PAIRS = 6
POSITIONAL_PAIR_SCORE = 60.0


def fixed_offset_biases(
    offset: int, frequencies: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Query and key biases of a head whose rotary scores peak ``offset`` tokens back, for the
    rotation ``frequencies`` of its pairs (HF's layout: pair f is dimensions f and f + half)."""
    half = frequencies.numel()
    frequencies = frequencies.double()
    magnitude = torch.zeros(half, dtype=torch.float64)
    magnitude[: min(POSITIONAL_PAIRS, half)] = math.sqrt(POSITIONAL_PAIR_SCORE)
    query = torch.cat([magnitude, torch.zeros(half, dtype=torch.float64)])
    phase = offset * frequencies
    key = torch.cat([magnitude * torch.cos(phase), magnitude * torch.sin(phase)])
    return query.float(), key.float()


@torch.no_grad()
def init_positional_heads(model: LlamaForCausalLM, heads: int) -> None:
    """Make the first ``heads`` heads of layer 0 fixed-offset heads (offsets 1, 2, ...)."""
    attention = model.model.layers[0].self_attn
    head_dim = attention.head_dim
    # The model's own rotary frequencies, so the offsets hold for whatever rope settings it has.
    frequencies = model.model.rotary_emb.inv_freq
    for head in range(heads):
        rows = slice(head * head_dim, (head + 1) * head_dim)
        query, key = fixed_offset_biases(head + 1, frequencies)
        attention.q_proj.weight[rows] = 0.0
        attention.k_proj.weight[rows] = 0.0
        attention.q_proj.bias[rows] = query
        attention.k_proj.bias[rows] = key


def _fresh_model(config: PretrainConfig, tokenizer: Any) -> PreTrainedModel:
    torch.manual_seed(config.seed)
    if config.family == "llama":
        model = LlamaForCausalLM(
            LlamaConfig(
                vocab_size=len(tokenizer),
                max_position_embeddings=max(256, config.block_size),
                hidden_size=config.width,
                intermediate_size=config.width * 8 // 3,
                num_hidden_layers=config.layers,
                num_attention_heads=config.heads,
                num_key_value_heads=config.heads,
                tie_word_embeddings=True,
                bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
                attention_bias=config.positional_heads > 0,
            )
        )
        if config.positional_heads:
            init_positional_heads(model, config.positional_heads)
        return model
    return GPT2LMHeadModel(
        GPT2Config(
            vocab_size=len(tokenizer),
            n_positions=max(256, config.block_size),
            n_layer=config.layers,
            n_embd=config.width,
            n_head=config.heads,
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )


def run(config: PretrainConfig) -> dict[str, Any]:
    """Pretrain and write the model directory; returns the metrics."""
    seed_everything(config.seed)
    torch.set_num_threads(config.threads)
    tokenizer = synthetic.build_tokenizer()
    bf16 = use_bf16(config.precision)
    vocab = tokenizer.get_vocab()
    history: list[dict[str, float]] = []
    restarts: list[dict[str, float]] = []
    started = time.perf_counter()
    seed = config.seed
    while True:
        model = (
            AutoModelForCausalLM.from_pretrained(config.init)
            if config.init is not None
            else _fresh_model(dataclasses.replace(config, seed=seed), tokenizer)
        )
        optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.01)
        rng = random.Random(seed)
        running = 0.0
        step = 0
        may_restart = config.init is None and config.restart_after > 0
        may_restart = may_restart and len(restarts) < config.max_restarts
        restarting = False
        model.train()
        label = f"pretrain (seed {seed})" if restarts else "pretrain"
        progress = tqdm(range(1, config.steps + 1), desc=label, unit="step")
        for step in progress:
            elapsed = time.perf_counter() - started
            done = max((step - 1) / config.steps, elapsed / config.max_seconds)
            for group in optimizer.param_groups:
                group["lr"] = config.lr * learning_rate_factor(
                    step - 1, config.warmup, done, config.decay_fraction
                )
            ids, mask = _batch(rng, vocab, config.batch_size, config.block_size)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = _loss(model, ids, mask)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            value = loss.item()
            running = 0.9 * running + 0.1 * value if step > 1 else value
            out_of_time = time.perf_counter() - started > config.max_seconds
            if step % config.eval_every == 0 or step == config.steps or out_of_time:
                accuracy = heldout_lookup_accuracy(model, tokenizer)
                history.append(
                    {
                        "seed": seed,
                        "step": step,
                        "train_loss": running,
                        "heldout_lookup_accuracy": accuracy,
                        "learning_rate": optimizer.param_groups[0]["lr"],
                        "seconds": time.perf_counter() - started,
                    }
                )
                progress.set_postfix(loss=f"{running:.3f}", icl=f"{accuracy:.2f}")
            if out_of_time:
                break
            if may_restart and step == config.restart_after:
                probe = training_lookup_accuracy(model, tokenizer)
                if probe < config.restart_below:
                    restarts.append(
                        {
                            "seed": seed,
                            "step": step,
                            "training_lookup_accuracy": probe,
                            "seconds": time.perf_counter() - started,
                        }
                    )
                    progress.write(
                        f"pretrain: seed {seed} is still on the plateau at step {step} "
                        f"(lookup {probe:.2f} < {config.restart_below}); restarting with seed "
                        f"{seed + 1}"
                    )
                    restarting = True
                    break
        progress.close()
        if not restarting:
            break
        seed += 1
    seconds = time.perf_counter() - started
    metrics = {
        "steps": step,
        "seed": seed,
        "restarts": restarts,
        "train_seconds": seconds,
        "parameters": count_parameters(model),
        "bf16_autocast": bf16,
        "final_train_loss": running,
        "heldout_lookup_accuracy": history[-1]["heldout_lookup_accuracy"] if history else 0.0,
        "history": history,
        "config": config_to_dict(config),
        "run": collect_run_metadata(packages=("torch", "transformers", "tokenizers")).to_dict(),
    }
    # Write everything into a temporary sibling, then swap it in: never a half-written model.
    config.out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{config.out.name}.", dir=config.out.parent))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / FORMAT_FILE).write_text(json.dumps({"format": "icl"}) + "\n")
        for name, task in evaluation_tasks().items():
            write_task(task, staging / "tasks" / f"{name}.jsonl")
        write_json_atomic(staging / "metrics.json", metrics)
        _plot(history, staging / "loss_curve.png")
        if config.out.exists():
            shutil.rmtree(config.out)
        staging.rename(config.out)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    print(
        f"pretrained {metrics['parameters']:,} parameters for {step} steps in {seconds:.0f}s; "
        f"held-out lookup accuracy {metrics['heldout_lookup_accuracy']:.3f} -> {config.out}"
    )
    return metrics
