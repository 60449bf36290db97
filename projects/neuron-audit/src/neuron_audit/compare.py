"""The activation comparison, trained: the same preset, the same initial weights and the same
batches with each MLP activation (and each learning rate and seed); dead ratio and validation loss
after every epoch.

``swap`` changes the activation of fixed weights; only training shows which activations leave
neurons dead, which is the comparison this module runs.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from lm import TokenBlockDataset, train_tokenizer
from lm.corpus import Corpus
from ml_core import write_json_atomic
from ml_core.cli import config_to_dict
from neuron_audit.auditor import AuditSettings
from neuron_audit.swap import Activation
from neuron_audit.train import StripConfig, _validation, train_one

#: What the comparison checks: ReLU, whose gradient is zero for every negative input, leaves the
#: most dead units, and every activation with a non-zero negative side leaves fewer.
CLAIM = "ReLU leaves the most dead neurons; each other activation leaves fewer"


def run_key(activation: str, lr: float, seed: int) -> str:
    return f"{activation}@lr={lr:g}/seed={seed}"


def summarise_runs(
    runs: Sequence[Mapping[str, Any]], activations: Sequence[str], lrs: Sequence[float]
) -> dict[str, Any]:
    """Per learning rate and activation: the final dead ratio and validation loss over seeds (mean,
    standard deviation, min, max), the ranking by mean final dead ratio, and the claim's verdict."""

    def spread(values: Sequence[float]) -> dict[str, float]:
        return {
            "mean": statistics.fmean(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values),
            "max": max(values),
        }

    result: dict[str, Any] = {}
    for lr in lrs:
        per_activation: dict[str, Any] = {}
        for activation in activations:
            finals = [
                r["history"][-1] for r in runs if r["activation"] == activation and r["lr"] == lr
            ]
            if not finals:
                continue
            per_activation[activation] = {
                "seeds": len(finals),
                "dead_ratio": spread([float(f["dead_ratio"]) for f in finals]),
                "dead_ratio_signed": spread([float(f["dead_ratio_signed"]) for f in finals]),
                "dead_ratio_abs": spread([float(f["dead_ratio_abs"]) for f in finals]),
                "val_loss": spread([float(f["val_loss"]) for f in finals]),
            }
        ranking = sorted(
            per_activation,
            key=lambda name: (-per_activation[name]["dead_ratio"]["mean"], name),
        )
        result[f"{lr:g}"] = {
            "lr": lr,
            "activations": per_activation,
            "ranking_most_dead_first": ranking,
            "ranking_lowest_loss_first": sorted(
                per_activation, key=lambda name: per_activation[name]["val_loss"]["mean"]
            ),
            "claim": CLAIM,
            "claim_holds": claim_holds(per_activation),
        }
    return result


def claim_holds(per_activation: Mapping[str, Any]) -> bool | None:
    """Whether ReLU's mean final dead ratio is above every other activation's (None without ReLU or
    without another activation to compare it with)."""
    if "relu" not in per_activation or len(per_activation) < 2:
        return None
    relu = float(per_activation["relu"]["dead_ratio"]["mean"])
    return all(
        relu > float(values["dead_ratio"]["mean"])
        for name, values in per_activation.items()
        if name != "relu"
    )


@dataclasses.dataclass(frozen=True)
class CompareSettings:
    """The experiment grid and the training recipe shared by every run."""

    preset: str = "tiny"
    activations: tuple[Activation, ...] = ()
    lrs: tuple[float, ...] = (2e-2,)
    seeds: tuple[int, ...] = (0, 1, 2)
    epochs: int = 4
    steps_per_epoch: int = 30
    batch_size: int = 16
    block_size: int = 64
    val_blocks: int = 32
    vocab_size: int = 1024


def run_compare_experiment(
    settings: CompareSettings,
    corpus: Corpus,
    *,
    audit: AuditSettings = AuditSettings(),
    device: torch.device = torch.device("cpu"),
    progress: bool = False,
    on_run: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train every (learning rate, seed, activation) run; ``on_run`` gets the partial result after
    each run (to save it incrementally).

    Runs of one seed share initial weights and batch order.
    """
    tokenizer = train_tokenizer(corpus.train, settings.vocab_size)
    train_set = TokenBlockDataset.from_texts(corpus.train, tokenizer, settings.block_size)
    validation = _validation(
        TokenBlockDataset.from_texts(corpus.validation, tokenizer, settings.block_size),
        settings.val_blocks,
    )
    if len(train_set) == 0 or len(validation) == 0:
        raise ValueError(
            f"The corpus is too small: {len(train_set)} training and {len(validation)} validation "
            f"blocks of {settings.block_size} tokens."
        )
    grid = [
        (lr, seed, activation)
        for lr in settings.lrs
        for seed in settings.seeds
        for activation in settings.activations
    ]
    result: dict[str, Any] = {
        "settings": config_to_dict(settings),
        "dead_definition": (
            f"an mlp_post neuron is dead when it never fires on any of the "
            f"{validation.num_tokens} validation tokens; fires = "
            + (
                f"|activation| > {audit.stats.threshold:g} (dead = outputs about zero everywhere)"
                if audit.use_abs
                else f"activation > {audit.stats.threshold:g} (dead = never positive)"
            )
            + (
                ""
                if audit.dead_fraction == 0
                else f", relaxed to: fires on fewer than {audit.dead_fraction:g} of them"
            )
        ),
        "validation_tokens": validation.num_tokens,
        "runs": [],
    }
    total = len(grid) * settings.epochs * settings.steps_per_epoch
    with tqdm(total=total, desc="compare", unit="step", disable=not progress) as bar:
        for lr, seed, activation in grid:
            bar.set_postfix_str(run_key(activation, lr, seed))
            config = StripConfig(
                preset=settings.preset,
                activation=activation,
                epochs=settings.epochs,
                steps_per_epoch=settings.steps_per_epoch,
                lr=lr,
                batch_size=settings.batch_size,
                block_size=settings.block_size,
                val_blocks=settings.val_blocks,
                vocab_size=settings.vocab_size,
                seed=seed,
            )
            history = train_one(
                config,
                tokenizer,
                train_set,
                validation,
                strip=False,
                device=device,
                progress=bar,
                settings=audit,
            )
            if not all(math.isfinite(float(r["val_loss"])) for r in history):
                bar.write(f"compare: {run_key(activation, lr, seed)} diverged (non-finite loss)")
            result["runs"].append(
                {"activation": activation, "lr": lr, "seed": seed, "history": history}
            )
            result["summary"] = summarise_runs(result["runs"], settings.activations, settings.lrs)
            if on_run is not None:
                on_run(result)
    return result


def write_partial(path: Path) -> Callable[[dict[str, Any]], None]:
    """An ``on_run`` that rewrites ``path`` atomically with the result so far."""

    def save(result: dict[str, Any]) -> None:
        write_json_atomic(path, {**result, "complete": False})

    return save
