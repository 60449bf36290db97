"""The Synaptic Stripping experiment: train twice from the same start, with and without
stripping."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable
from typing import Any, cast

import torch
from tqdm import tqdm
from transformers import PreTrainedModel

from lm import TokenBlockDataset, build_model, evaluate_loss, train_step, train_tokenizer
from lm.corpus import Corpus
from lm.presets import name_causal_lm_loss, require_preset
from lm.training import batch_indices, collate
from ml_core.cli import config_to_dict, require_fraction, require_positive
from neuron_audit.auditor import AuditSettings, NeuronAuditor
from neuron_audit.stripping import SynapticStripping
from neuron_audit.swap import Activation, swap_activation


@dataclasses.dataclass(frozen=True)
class StripConfig:
    """A small transformer with ReLU MLPs trained at a high learning rate, which kills neurons."""

    preset: str = "tiny"
    """Lm preset to train."""

    activation: Activation = "relu"
    """MLP activation swapped into the preset before training."""

    epochs: int = 5
    """Epochs; dead ratio and validation loss are measured (and stripping done) after each."""

    steps_per_epoch: int = 40
    """Optimizer steps per epoch."""

    lr: float = 2e-2
    """AdamW learning rate (deliberately high: it kills neurons)"""

    batch_size: int = 16
    """Blocks per step."""

    block_size: int = 64
    """Tokens per block."""

    fraction: float = 0.05
    """Share of a dead neuron's incoming weights to zero (the most negative), in (0, 1]"""

    val_blocks: int = 32
    """Validation blocks the dead ratio and loss are measured on."""

    vocab_size: int = 1024
    """Vocabulary of the BPE tokenizer trained on the corpus."""

    seed: int = 0
    """Seed of the initial weights and the batch order."""

    def __post_init__(self) -> None:
        require_preset(self, "preset")
        require_positive(
            self,
            "epochs",
            "steps_per_epoch",
            "lr",
            "batch_size",
            "block_size",
            "val_blocks",
            "vocab_size",
        )
        require_fraction(self, "fraction")


def _validation(dataset: TokenBlockDataset, blocks: int) -> TokenBlockDataset:
    kept = dataset.blocks[:blocks]
    return TokenBlockDataset(kept.flatten(), dataset.block_size)


def quiet_loss_type(model: PreTrainedModel) -> PreTrainedModel:
    """Name the causal-LM loss explicitly (see :func:`lm.presets.name_causal_lm_loss`); for a model
    built elsewhere than :func:`lm.build_model`."""
    return name_causal_lm_loss(model)


class _LossTypeNoneFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "`loss_type=None` was set in the config" not in record.getMessage()


def silence_loss_type_warning() -> None:
    """Filter transformers' loss_type=None warning out of its log.

    It is logged for models this project does not build itself (``monitor`` pretrains through
    ``libs/lm``, which evaluates before any callback sees the model). The default loss it falls back
    to is the right one for these causal LMs, so the line reports nothing wrong; see
    :func:`quiet_loss_type`.
    """
    logger = logging.getLogger("transformers.modeling_utils")
    if not any(isinstance(f, _LossTypeNoneFilter) for f in logger.filters):
        logger.addFilter(_LossTypeNoneFilter())


@torch.no_grad()
def measure_dead(
    model: PreTrainedModel,
    batches: list[dict[str, torch.Tensor]],
    settings: AuditSettings = AuditSettings(),
) -> dict[str, Any]:
    """``mlp_post`` dead ratios of ``model`` on ``batches``, one forward pass each.

    ``dead_ratio`` follows ``settings``; ``dead_ratio_signed`` always uses ``act > threshold`` (dead
    = never positive) and ``dead_ratio_abs`` ``|act| > threshold`` (dead = outputs about zero on
    every token). For ReLU the two agree; for activations with a negative side they differ.
    """
    was_training = model.training
    model.train(False)
    try:
        with NeuronAuditor(model, config=settings.stats, kinds=("mlp_post",)) as auditor:
            for batch in batches:
                model(**batch)
    finally:
        model.train(was_training)
    rows = {
        rule: auditor.layers(settings.dead_fraction, use_abs=rule == "abs")
        for rule in ("signed", "abs")
    }
    width = sum(int(r["width"]) for r in rows["signed"])
    ratio = {rule: sum(int(r["dead_count"]) for r in rows[rule]) / width for rule in rows}
    chosen = rows["abs" if settings.use_abs else "signed"]
    return {
        "dead_ratio": ratio["abs" if settings.use_abs else "signed"],
        "dead_ratio_signed": ratio["signed"],
        "dead_ratio_abs": ratio["abs"],
        "dead_ratio_per_layer": [float(r["dead_ratio"]) for r in chosen],
        "mean_fire_frequency_per_layer": [float(r["mean_fire_frequency"]) for r in chosen],
    }


def _measure(
    model: PreTrainedModel,
    validation: TokenBlockDataset,
    batch_size: int,
    device: torch.device,
    settings: AuditSettings = AuditSettings(),
) -> dict[str, Any]:
    batches = [
        {"input_ids": validation.blocks[i : i + batch_size].to(device)}
        for i in range(0, len(validation), batch_size)
    ]
    record = measure_dead(model, batches, settings)
    record["val_loss"] = evaluate_loss(model, validation, batch_size=batch_size, device=device)
    return record


def train_one(
    config: StripConfig,
    tokenizer_vocab: Any,
    train_set: TokenBlockDataset,
    validation: TokenBlockDataset,
    *,
    strip: bool,
    device: torch.device,
    progress: bool | tqdm[Any],
    settings: AuditSettings = AuditSettings(),
) -> list[dict[str, Any]]:
    """Train one model; return one record per epoch (epoch 0 = before training).

    ``progress`` is a flag (a bar of its own) or a shared bar to advance one step at a time.
    """
    model = build_model(config.preset, tokenizer=tokenizer_vocab, seed=config.seed)
    swap_activation(model, config.activation)
    quiet_loss_type(model)
    cast(Callable[[torch.device], PreTrainedModel], model.to)(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.0)
    stripper = SynapticStripping(model, config.fraction, AuditSettings()) if strip else None
    history = [{"epoch": 0, **_measure(model, validation, config.batch_size, device, settings)}]
    label = "stripping" if strip else "baseline"
    total = config.epochs * config.steps_per_epoch
    bar_context: contextlib.AbstractContextManager[tqdm[Any]] = (
        contextlib.nullcontext(progress)
        if isinstance(progress, tqdm)
        else tqdm(total=total, desc=f"strip: {label}", unit="step", disable=not progress)
    )
    with bar_context as bar:
        for epoch in range(1, config.epochs + 1):
            for offset in range(config.steps_per_epoch):
                step = (epoch - 1) * config.steps_per_epoch + offset
                indices = batch_indices(len(train_set), config.batch_size, step, config.seed)
                batch = collate(train_set, indices).to(device)
                train_step(model, optimizer, batch, max_grad_norm=None)
                bar.update(1)
            record: dict[str, Any] = {"epoch": epoch}
            record.update(_measure(model, validation, config.batch_size, device, settings))
            if stripper is not None:
                blocks = validation.blocks
                batches = [
                    {"input_ids": blocks[i : i + config.batch_size]}
                    for i in range(0, len(blocks), config.batch_size)
                ]
                record["weights_zeroed"] = stripper.on_epoch_end(epoch, batches)["weights_zeroed"]
            history.append(record)
    return history


def run_strip_experiment(
    config: StripConfig, corpus: Corpus, *, device: torch.device, progress: bool = False
) -> dict[str, Any]:
    """Baseline and stripping runs from the same initial weights and batches."""
    tokenizer = train_tokenizer(corpus.train, config.vocab_size)
    train_set = TokenBlockDataset.from_texts(corpus.train, tokenizer, config.block_size)
    validation = _validation(
        TokenBlockDataset.from_texts(corpus.validation, tokenizer, config.block_size),
        config.val_blocks,
    )
    histories = {
        label: train_one(
            config,
            tokenizer,
            train_set,
            validation,
            strip=strip,
            device=device,
            progress=progress,
        )
        for label, strip in (("baseline", False), ("stripping", True))
    }
    final = {
        label: {"dead_ratio": h[-1]["dead_ratio"], "val_loss": h[-1]["val_loss"]}
        for label, h in histories.items()
    }
    return {
        "config": config_to_dict(config),
        "validation_tokens": validation.num_tokens,
        "histories": histories,
        "final": final,
    }
