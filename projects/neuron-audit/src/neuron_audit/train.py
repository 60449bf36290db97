"""The Synaptic Stripping experiment: train twice from the same start, with and without
stripping."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, cast

import torch
from tqdm import tqdm
from transformers import PreTrainedModel

from lm import TokenBlockDataset, build_model, evaluate_loss, train_step, train_tokenizer
from lm.corpus import Corpus
from lm.presets import require_preset
from lm.training import batch_indices, collate
from ml_core.cli import config_to_dict, require_fraction, require_positive
from neuron_audit.auditor import AuditSettings, run_audit
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


def _measure(
    model: PreTrainedModel, validation: TokenBlockDataset, batch_size: int, device: torch.device
) -> dict[str, Any]:
    batches = [
        {"input_ids": validation.blocks[i : i + batch_size]}
        for i in range(0, len(validation), batch_size)
    ]
    layers = run_audit(model, batches, kinds=("mlp_post",))
    dead = sum(int(r["dead_count"]) for r in layers)
    return {
        "dead_ratio": dead / sum(int(r["width"]) for r in layers),
        "dead_ratio_per_layer": [float(r["dead_ratio"]) for r in layers],
        "val_loss": evaluate_loss(model, validation, batch_size=batch_size, device=device),
    }


def train_one(
    config: StripConfig,
    tokenizer_vocab: Any,
    train_set: TokenBlockDataset,
    validation: TokenBlockDataset,
    *,
    strip: bool,
    device: torch.device,
    progress: bool,
) -> list[dict[str, Any]]:
    """Train one model; return one record per epoch (epoch 0 = before
    training)."""
    model = build_model(config.preset, tokenizer=tokenizer_vocab, seed=config.seed)
    swap_activation(model, config.activation)
    cast(Callable[[torch.device], PreTrainedModel], model.to)(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.0)
    stripper = SynapticStripping(model, config.fraction, AuditSettings()) if strip else None
    history = [{"epoch": 0, **_measure(model, validation, config.batch_size, device)}]
    label = "stripping" if strip else "baseline"
    total = config.epochs * config.steps_per_epoch
    with tqdm(total=total, desc=f"strip: {label}", unit="step", disable=not progress) as bar:
        for epoch in range(1, config.epochs + 1):
            for offset in range(config.steps_per_epoch):
                step = (epoch - 1) * config.steps_per_epoch + offset
                indices = batch_indices(len(train_set), config.batch_size, step, config.seed)
                batch = collate(train_set, indices).to(device)
                train_step(model, optimizer, batch, max_grad_norm=None)
                bar.update(1)
            record: dict[str, Any] = {"epoch": epoch}
            record.update(_measure(model, validation, config.batch_size, device))
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
