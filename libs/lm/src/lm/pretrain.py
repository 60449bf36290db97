"""Pretrain a causal language model from a preset and save it as a
``save_pretrained`` directory.

./pants run libs/lm:pretrain -- --preset tiny --out runs/lm

The output directory holds the model and tokenizer (load both with
``lm.load_model`` / ``lm.load_tokenizer``), ``run_metadata.json``,
``metrics.jsonl`` (one JSON line per evaluation), ``metrics.json``
(final metrics), ``loss_curve.png`` and ``training_state.pt``
(optimizer, scheduler and step, for ``--resume``).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol, cast

import torch
from tqdm import tqdm
from transformers import (
    PreTrainedModel,
    get_constant_schedule_with_warmup,
    get_cosine_schedule_with_warmup,
)
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from lm.corpus import STDLIB_SOURCE, Corpus, load_corpus
from lm.data import TokenBlockDataset
from lm.loading import ModelLoadError, load_model, load_tokenizer
from lm.plotting import plot_loss_curve
from lm.presets import build_model, count_parameters, get_preset, require_preset
from lm.tokenizer import train_tokenizer
from lm.training import batch_indices, collate, evaluate_loss, perplexity, train_step
from ml_core import Timer, atomic_output, collect_run_metadata, seed_everything, write_json_atomic
from ml_core.cli import (
    Command,
    config_to_dict,
    make_main,
    require,
    require_non_negative,
    require_positive,
    show_json,
)
from ml_core.device import select_device

STATE_FILE = "training_state.pt"
METRICS_LOG = "metrics.jsonl"
METRICS_FILE = "metrics.json"
METADATA_FILE = "run_metadata.json"
LOSS_CURVE = "loss_curve.png"
METADATA_PACKAGES = ("torch", "transformers", "tokenizers", "datasets", "numpy")


class PretrainError(ValueError):
    """Bad arguments or inputs, reported to the user without a traceback."""


class PretrainCallback(Protocol):
    """Something that watches :func:`run`'s training loop (e.g. a dead-neuron audit).

    ``on_train_begin`` gets the model once it is on its device, ``on_step_end`` runs after every
    optimizer step (before any evaluation of that step) and ``on_train_end`` always runs, even when
    training fails, so hooks can be removed.
    """

    def on_train_begin(self, model: PreTrainedModel) -> None: ...

    def on_step_end(self, step: int) -> object: ...

    def on_train_end(self) -> None: ...


@dataclasses.dataclass(frozen=True)
class PretrainConfig:
    """Pretrain a causal language model from a preset (or continue a run with ``resume``) and save
    it, its tokenizer, metrics and a loss curve in ``out``."""

    out: Path
    """Output directory."""

    preset: str = "tiny"
    """Model preset: tiny, small or llama-tiny (ignored with --resume)"""

    steps: int = 200
    """Total optimizer steps (including resumed)"""

    resume: Path | None = None
    """Output directory of a run to continue."""

    corpus: str = STDLIB_SOURCE
    """'stdlib' (the embedded standard-library docstrings), a .txt file or directory of them, or a
    save_to_disk dataset."""

    text_column: str = "text"
    """Text column of a saved dataset."""

    max_chars: int | None = None
    """Cap on corpus characters."""

    validation_fraction: float = 0.05
    """Share of the documents held out for validation, in (0, 1)"""

    tokenizer: str | None = None
    """Use this tokenizer (directory or Hub id) instead of training one."""

    vocab_size: int | None = None
    """Size of the trained tokenizer's vocabulary (default: the preset's)"""

    block_size: int = 128
    """Tokens per training block."""

    batch_size: int = 16
    """Blocks per optimizer step."""

    lr: float = 1e-3
    """Peak AdamW learning rate."""

    weight_decay: float = 0.1
    """AdamW weight decay of the matrices (not of biases and norms)"""

    warmup_steps: int | None = None
    """Learning-rate warm-up steps (default: min(100, steps // 10))"""

    schedule: Literal["cosine", "constant"] = "cosine"
    """Learning rate after warm-up."""

    max_grad_norm: float = 1.0
    """Gradient clipping norm."""

    eval_every: int = 50
    """Evaluate on the validation blocks every N steps."""

    eval_batches: int = 50
    """Validation batches per evaluation."""

    save_every: int = 0
    """Checkpoint every N steps (0: only at the end)"""

    max_seconds: float | None = None
    """Stop training after this much training time."""

    seed: int = 0
    """Seed of the corpus split, the initial weights and the batch order."""

    device: str | None = None
    """Device: auto, cpu, cuda, cuda:N or mps (default: $ML_DEVICE, else the best available)."""

    quiet: bool = False
    """No progress bar, log lines or final metrics on stdout."""

    def __post_init__(self) -> None:
        require_preset(self, "preset")
        require_positive(
            self,
            "steps",
            "max_chars",
            "vocab_size",
            "block_size",
            "batch_size",
            "lr",
            "max_grad_norm",
            "eval_every",
            "eval_batches",
            "max_seconds",
        )
        require_non_negative(self, "weight_decay", "warmup_steps", "save_every")
        require(
            0.0 < self.validation_fraction < 1.0,
            "validation_fraction",
            f"must be between 0 and 1, got {self.validation_fraction!r}",
        )


def _read_log(path: Path, up_to_step: int) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return [record for record in records if record["step"] <= up_to_step]


def _max_positions(model: PreTrainedModel) -> int | None:
    value = getattr(model.config, "max_position_embeddings", None)
    return value if isinstance(value, int) else None


def _save_checkpoint(
    out: Path,
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    step: int,
    config: PretrainConfig,
) -> None:
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    # Written last and atomically: its step always matches complete weights beside it.
    with atomic_output(out / STATE_FILE) as temporary:
        torch.save(
            {
                "step": step,
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "torch_rng_state": torch.get_rng_state(),
                "args": config_to_dict(config),
            },
            temporary,
        )


def _load_or_build(
    config: PretrainConfig, corpus: Corpus
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, dict[str, Any] | None]:
    if config.resume is not None:
        state_path = config.resume / STATE_FILE
        if not state_path.is_file():
            raise PretrainError(f"--resume {config.resume}: no {STATE_FILE} there to resume from.")
        state: dict[str, Any] = torch.load(state_path, map_location="cpu", weights_only=True)
        return load_model(config.resume), load_tokenizer(config.resume), state
    preset = get_preset(config.preset)
    if config.tokenizer is not None:
        tokenizer = load_tokenizer(config.tokenizer)
    else:
        tokenizer = train_tokenizer(
            corpus.train,
            config.vocab_size or preset.vocab_size,
            model_max_length=preset.context_length,
        )
    if tokenizer.eos_token is None:
        raise PretrainError("The tokenizer has no eos token to separate documents with.")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return build_model(preset, tokenizer=tokenizer, seed=config.seed), tokenizer, None


def run(config: PretrainConfig, callbacks: Sequence[PretrainCallback] = ()) -> dict[str, Any]:
    """Run pretraining as ``config`` says; return the final metrics.

    ``callbacks`` see the training loop (see :class:`PretrainCallback`). Bad inputs found on the way
    (a checkpoint in ``out``, a block size beyond the model's context) raise :class:`PretrainError`.
    """
    out: Path = config.out
    if config.resume is None and (out / STATE_FILE).exists():
        raise PretrainError(
            f"{out} already holds a checkpoint; pass --resume {out} to continue it, "
            "or choose another --out."
        )
    seed_everything(config.seed)
    device = select_device(config.device)
    corpus = load_corpus(
        None if config.corpus == STDLIB_SOURCE else config.corpus,
        max_chars=config.max_chars,
        validation_fraction=config.validation_fraction,
        seed=config.seed,
        text_column=config.text_column,
    )
    model, tokenizer, state = _load_or_build(config, corpus)
    max_positions = _max_positions(model)
    if max_positions is not None and config.block_size > max_positions:
        raise PretrainError(
            f"--block-size {config.block_size} exceeds the model's context of {max_positions}."
        )
    train_set = TokenBlockDataset.from_texts(corpus.train, tokenizer, config.block_size)
    validation_set = TokenBlockDataset.from_texts(corpus.validation, tokenizer, config.block_size)
    # transformers wraps Module.to in a way mypy cannot bind; the cast restores its signature.
    cast(Callable[[torch.device], PreTrainedModel], model.to)(device)

    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": config.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=config.lr,
        betas=(0.9, 0.95),
    )
    warmup = (
        config.warmup_steps if config.warmup_steps is not None else min(100, config.steps // 10)
    )
    scheduler = (
        get_cosine_schedule_with_warmup(optimizer, warmup, config.steps)
        if config.schedule == "cosine"
        else get_constant_schedule_with_warmup(optimizer, warmup)
    )
    start_step = 0
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng_state"])
        start_step = int(state["step"])

    out.mkdir(parents=True, exist_ok=True)
    history = (
        _read_log(config.resume / METRICS_LOG, start_step) if config.resume is not None else []
    )
    log_path = out / METRICS_LOG
    with atomic_output(log_path) as temporary:
        temporary.write_text("".join(json.dumps(r) + "\n" for r in history), encoding="utf-8")

    def evaluate() -> float:
        return evaluate_loss(
            model,
            validation_set,
            batch_size=config.batch_size,
            device=device,
            max_batches=config.eval_batches,
        )

    def log(record: dict[str, Any]) -> None:
        history.append(record)
        with open(log_path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        if not config.quiet:
            tqdm.write(json.dumps(record))

    train_timer = Timer()
    train_seconds = 0.0
    tokens_seen = 0
    if start_step == 0:
        loss = evaluate()
        log({"step": 0, "val_loss": loss, "val_perplexity": perplexity(loss), "train_loss": None})

    step = start_step
    window: list[float] = []
    stopped_early = False
    for callback in callbacks:
        callback.on_train_begin(model)
    try:
        with tqdm(
            # A time budget usually ends the run long before --steps: no misleading ETA then.
            total=config.steps if config.max_seconds is None else None,
            initial=start_step,
            desc="pretrain",
            unit="step",
            disable=config.quiet,
        ) as progress:
            while step < config.steps:
                indices = batch_indices(len(train_set), config.batch_size, step, config.seed)
                batch = collate(train_set, indices).to(device)
                train_timer.start()
                window.append(
                    train_step(
                        model,
                        optimizer,
                        batch,
                        max_grad_norm=config.max_grad_norm,
                        scheduler=scheduler,
                    )
                )
                train_seconds += train_timer.stop()
                tokens_seen += batch.numel()
                step += 1
                progress.update(1)
                progress.set_postfix(loss=f"{window[-1]:.3f}")
                for callback in callbacks:
                    callback.on_step_end(step)
                out_of_time = config.max_seconds is not None and train_seconds >= config.max_seconds
                if step % config.eval_every == 0 or step == config.steps or out_of_time:
                    loss = evaluate()
                    log(
                        {
                            "step": step,
                            "val_loss": loss,
                            "val_perplexity": perplexity(loss),
                            "train_loss": sum(window) / len(window),
                            "lr": scheduler.get_last_lr()[0],
                            "train_seconds": train_seconds,
                        }
                    )
                    window = []
                if config.save_every > 0 and step % config.save_every == 0 and step < config.steps:
                    _save_checkpoint(out, model, tokenizer, optimizer, scheduler, step, config)
                if out_of_time:
                    stopped_early = step < config.steps
                    break

    finally:
        for callback in callbacks:
            callback.on_train_end()

    _save_checkpoint(out, model, tokenizer, optimizer, scheduler, step, config)
    last = history[-1] if history else {"val_loss": evaluate()}
    first = history[0] if history else last
    metrics = {
        "step": step,
        "val_loss": last["val_loss"],
        "val_perplexity": perplexity(last["val_loss"]),
        "initial_step": first["step"] if "step" in first else step,
        "initial_val_loss": first["val_loss"],
        "initial_val_perplexity": perplexity(first["val_loss"]),
        "train_seconds": train_seconds,
        "train_tokens": tokens_seen,
        "train_tokens_per_second": tokens_seen / train_seconds if train_seconds > 0 else None,
        "stopped_early": stopped_early,
        "parameters": count_parameters(model),
        "model_type": model.config.model_type,
        "device": str(device),
        "block_size": config.block_size,
        "batch_size": config.batch_size,
        "train_blocks": len(train_set),
        "validation_blocks": len(validation_set),
        "vocab_size": len(tokenizer),
    }
    metadata = collect_run_metadata(packages=METADATA_PACKAGES).to_dict()
    metadata.update(
        {
            "preset": config.preset if config.resume is None else None,
            "resumed_from": None if config.resume is None else os.fspath(config.resume),
            "resumed_at_step": start_step,
            "args": config_to_dict(config),
            "corpus": corpus.stats(),
        }
    )
    write_json_atomic(out / METADATA_FILE, metadata)
    write_json_atomic(out / METRICS_FILE, metrics)
    plot_loss_curve(history, out / LOSS_CURVE)
    return metrics


def _run_command(config: PretrainConfig) -> dict[str, Any] | None:
    metrics = run(config)
    return None if config.quiet else metrics


main = make_main(
    Command(PretrainConfig, _run_command),
    prog="pretrain",
    description=__doc__,
    user_errors=(PretrainError, ModelLoadError, FileNotFoundError, ValueError),
    show=show_json,
)


if __name__ == "__main__":
    raise SystemExit(main(None))
