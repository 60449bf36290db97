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

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, cast

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
from lm.presets import build_model, count_parameters, get_preset, preset_names
from lm.tokenizer import train_tokenizer
from lm.training import batch_indices, collate, evaluate_loss, perplexity, train_step
from ml_core import Timer, atomic_output, collect_run_metadata, seed_everything, write_json_atomic
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
    """Something that watches :func:`run`'s training loop (e.g. a dead-neuron
    audit).

    ``on_train_begin`` gets the model once it is on its device,
    ``on_step_end`` runs after every optimizer step (before any
    evaluation of that step) and ``on_train_end`` always runs, even when
    training fails, so hooks can be removed.
    """

    def on_train_begin(self, model: PreTrainedModel) -> None: ...

    def on_step_end(self, step: int) -> object: ...

    def on_train_end(self) -> None: ...


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pretrain", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", default="tiny", help=f"one of {', '.join(preset_names())}")
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    parser.add_argument(
        "--steps", type=_positive_int, default=200, help="total optimizer steps (including resumed)"
    )
    parser.add_argument("--resume", type=Path, help="output directory of a run to continue")
    parser.add_argument(
        "--corpus",
        default=STDLIB_SOURCE,
        help="'stdlib' (default), a .txt file or directory of them, or a save_to_disk dataset",
    )
    parser.add_argument("--text-column", default="text", help="text column of a saved dataset")
    parser.add_argument("--max-chars", type=_positive_int, help="cap on corpus characters")
    parser.add_argument("--validation-fraction", type=float, default=0.05)
    parser.add_argument(
        "--tokenizer", help="use this tokenizer (directory or Hub id) instead of training one"
    )
    parser.add_argument("--vocab-size", type=_positive_int, help="default: the preset's")
    parser.add_argument("--block-size", type=_positive_int, default=128)
    parser.add_argument("--batch-size", type=_positive_int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--weight-decay", type=float, default=0.1)
    parser.add_argument("--warmup-steps", type=int, help="default: min(100, steps // 10)")
    parser.add_argument("--schedule", choices=("cosine", "constant"), default="cosine")
    parser.add_argument("--max-grad-norm", type=float, default=1.0)
    parser.add_argument("--eval-every", type=_positive_int, default=50)
    parser.add_argument("--eval-batches", type=_positive_int, default=50)
    parser.add_argument("--save-every", type=int, default=0, help="checkpoint every N steps")
    parser.add_argument("--max-seconds", type=float, help="stop training after this much time")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps (default: $ML_DEVICE)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or log lines")
    return parser


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
    args: argparse.Namespace,
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
                "args": {key: _jsonable(value) for key, value in vars(args).items()},
            },
            temporary,
        )


def _jsonable(value: object) -> object:
    return os.fspath(value) if isinstance(value, Path) else value


def _load_or_build(
    args: argparse.Namespace, corpus: Corpus
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, dict[str, Any] | None]:
    if args.resume is not None:
        state_path = args.resume / STATE_FILE
        if not state_path.is_file():
            raise PretrainError(f"--resume {args.resume}: no {STATE_FILE} there to resume from.")
        state: dict[str, Any] = torch.load(state_path, map_location="cpu", weights_only=True)
        return load_model(args.resume), load_tokenizer(args.resume), state
    preset = get_preset(args.preset)
    if args.tokenizer is not None:
        tokenizer = load_tokenizer(args.tokenizer)
    else:
        tokenizer = train_tokenizer(
            corpus.train,
            args.vocab_size or preset.vocab_size,
            model_max_length=preset.context_length,
        )
    if tokenizer.eos_token is None:
        raise PretrainError("The tokenizer has no eos token to separate documents with.")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return build_model(preset, tokenizer=tokenizer, seed=args.seed), tokenizer, None


def run(args: argparse.Namespace, callbacks: Sequence[PretrainCallback] = ()) -> dict[str, Any]:
    """Run pretraining as configured by parsed ``args``; return the final
    metrics.

    ``callbacks`` see the training loop (see :class:`PretrainCallback`).
    """
    out: Path = args.out
    if args.resume is None and (out / STATE_FILE).exists():
        raise PretrainError(
            f"{out} already holds a checkpoint; pass --resume {out} to continue it, "
            "or choose another --out."
        )
    if not 0.0 < args.validation_fraction < 1.0:
        raise PretrainError("--validation-fraction must be between 0 and 1.")
    seed_everything(args.seed)
    device = select_device(args.device)
    corpus = load_corpus(
        None if args.corpus == STDLIB_SOURCE else args.corpus,
        max_chars=args.max_chars,
        validation_fraction=args.validation_fraction,
        seed=args.seed,
        text_column=args.text_column,
    )
    model, tokenizer, state = _load_or_build(args, corpus)
    max_positions = _max_positions(model)
    if max_positions is not None and args.block_size > max_positions:
        raise PretrainError(
            f"--block-size {args.block_size} exceeds the model's context of {max_positions}."
        )
    train_set = TokenBlockDataset.from_texts(corpus.train, tokenizer, args.block_size)
    validation_set = TokenBlockDataset.from_texts(corpus.validation, tokenizer, args.block_size)
    # transformers wraps Module.to in a way mypy cannot bind; the cast restores its signature.
    cast(Callable[[torch.device], PreTrainedModel], model.to)(device)

    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": args.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=args.lr,
        betas=(0.9, 0.95),
    )
    warmup = args.warmup_steps if args.warmup_steps is not None else min(100, args.steps // 10)
    scheduler = (
        get_cosine_schedule_with_warmup(optimizer, warmup, args.steps)
        if args.schedule == "cosine"
        else get_constant_schedule_with_warmup(optimizer, warmup)
    )
    start_step = 0
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng_state"])
        start_step = int(state["step"])

    out.mkdir(parents=True, exist_ok=True)
    history = _read_log(args.resume / METRICS_LOG, start_step) if args.resume is not None else []
    log_path = out / METRICS_LOG
    with atomic_output(log_path) as temporary:
        temporary.write_text("".join(json.dumps(r) + "\n" for r in history), encoding="utf-8")

    def evaluate() -> float:
        return evaluate_loss(
            model,
            validation_set,
            batch_size=args.batch_size,
            device=device,
            max_batches=args.eval_batches,
        )

    def log(record: dict[str, Any]) -> None:
        history.append(record)
        with open(log_path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        if not args.quiet:
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
            total=args.steps if args.max_seconds is None else None,
            initial=start_step,
            desc="pretrain",
            unit="step",
            disable=args.quiet,
        ) as progress:
            while step < args.steps:
                indices = batch_indices(len(train_set), args.batch_size, step, args.seed)
                batch = collate(train_set, indices).to(device)
                train_timer.start()
                window.append(
                    train_step(
                        model,
                        optimizer,
                        batch,
                        max_grad_norm=args.max_grad_norm,
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
                out_of_time = args.max_seconds is not None and train_seconds >= args.max_seconds
                if step % args.eval_every == 0 or step == args.steps or out_of_time:
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
                if args.save_every > 0 and step % args.save_every == 0 and step < args.steps:
                    _save_checkpoint(out, model, tokenizer, optimizer, scheduler, step, args)
                if out_of_time:
                    stopped_early = step < args.steps
                    break

    finally:
        for callback in callbacks:
            callback.on_train_end()

    _save_checkpoint(out, model, tokenizer, optimizer, scheduler, step, args)
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
        "block_size": args.block_size,
        "batch_size": args.batch_size,
        "train_blocks": len(train_set),
        "validation_blocks": len(validation_set),
        "vocab_size": len(tokenizer),
    }
    metadata = collect_run_metadata(packages=METADATA_PACKAGES).to_dict()
    metadata.update(
        {
            "preset": args.preset if args.resume is None else None,
            "resumed_from": None if args.resume is None else os.fspath(args.resume),
            "resumed_at_step": start_step,
            "args": {key: _jsonable(value) for key, value in vars(args).items()},
            "corpus": corpus.stats(),
        }
    )
    write_json_atomic(out / METADATA_FILE, metadata)
    write_json_atomic(out / METRICS_FILE, metrics)
    plot_loss_curve(history, out / LOSS_CURVE)
    return metrics


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        metrics = run(args)
    except (PretrainError, ModelLoadError, FileNotFoundError, ValueError) as error:
        print(f"pretrain: error: {error}", file=sys.stderr)
        return 2
    if not args.quiet:
        print(json.dumps(metrics, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
