"""Train the digit classifier: alone, or under ``torchrun --nproc_per_node=N`` with DDP."""

from __future__ import annotations

import copy
import dataclasses
import os
import sys
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler, Sampler, TensorDataset
from tqdm import tqdm

from ml_core import Timer, atomic_output, collect_run_metadata, seed_everything, write_json_atomic
from ml_core.cli import (
    Command,
    ConfigError,
    config_to_dict,
    make_main,
    require_non_negative,
    require_positive,
)
from ml_core.device import select_device
from mnist.distributed import DistributedContext, broadcast_buffers, init_distributed, shutdown
from mnist.plots import save_confusion_matrix, save_training_curves
from vision.checkpoint import CHECKPOINT_NAME, save_checkpoint
from vision.data import DataError, load_data
from vision.model import DigitCNN, ModelConfig
from vision.training import EarlyStopping, Evaluation, evaluate_model, random_shift, tensors

METRICS_NAME = "metrics.json"
PACKAGES = ("torch", "numpy", "scikit-learn", "matplotlib")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Train the digit CNN, alone or under torchrun (DistributedDataParallel)."""

    out: Path = Path("runs/mnist")
    """Output directory: model.pt, metrics.json and the PNG plots."""

    data: str | None = None
    """Directory with the MNIST IDX files (raw or .gz), or 'digits' for the 8x8 digits bundled with
    scikit-learn (unset: $MNIST_DATA_DIR, else digits)."""

    epochs: int = 40
    """Maximum passes over the training split."""

    batch_size: int = 64
    """Examples per optimiser step (per process under torchrun)."""

    learning_rate: float = 1e-3
    """AdamW's initial learning rate (cosine decay to zero over --epochs)."""

    weight_decay: float = 1e-4
    """AdamW's decoupled weight decay."""

    patience: int = 10
    """Epochs without a new best validation loss before stopping."""

    shift_pixels: int = 1
    """Random translation augmentation in pixels, 0 to disable."""

    seed: int = 0
    """Seeds the data split, the initial weights, shuffling and augmentation."""

    device: str | None = None
    """Device: auto, cpu, cuda, cuda:N or mps (unset: $ML_DEVICE, else auto)."""

    max_steps_per_epoch: int | None = None
    """Cap on optimiser steps per epoch (smoke runs)."""

    dump_rank_weights: bool = False
    """Every rank saves its final weights as weights_rankN.pt (for checks)."""

    def __post_init__(self) -> None:
        require_positive(self, "epochs", "batch_size", "patience", "learning_rate")
        require_positive(self, "max_steps_per_epoch")
        require_non_negative(self, "weight_decay", "shift_pixels")


def choose_device(name: str | None) -> torch.device:
    """``select_device(name)``, with an unknown or unavailable device reported as a bad
    ``--device``."""
    try:
        return select_device(name)
    except ValueError as error:
        raise ConfigError("device", str(error)) from None


def _sampler(
    dataset: TensorDataset, config: TrainConfig, context: DistributedContext
) -> Sampler[Any]:
    if context.enabled:
        return DistributedSampler(
            dataset,
            num_replicas=context.world_size,
            rank=context.rank,
            shuffle=True,
            seed=config.seed,
        )
    return RandomSampler(dataset, generator=torch.Generator().manual_seed(config.seed))


def _weights_checksum(model: nn.Module) -> float:
    return float(sum(parameter.detach().double().sum() for parameter in model.parameters()))


def train(config: TrainConfig) -> dict[str, Any]:
    """Train, early-stop on validation loss, and write checkpoint, metrics and plots to
    ``config.out``.

    Returns the metrics that were written. Under torchrun only rank 0 writes.
    """
    seed_everything(config.seed)
    device = choose_device(config.device)
    context = init_distributed(device)
    if device.type == "cuda" and context.enabled:
        device = torch.device("cuda", context.local_rank)
    try:
        return _train(config, device, context)
    finally:
        shutdown(context)


def _train(
    config: TrainConfig, device: torch.device, context: DistributedContext
) -> dict[str, Any]:
    data = load_data(config.data, seed=config.seed)
    model_config = ModelConfig(image_size=data.image_size)
    model = DigitCNN(model_config).to(device)
    trained: nn.Module = (
        DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
        if context.enabled
        else model
    )
    optimizer = torch.optim.AdamW(
        trained.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    train_set = tensors(data.train)
    sampler = _sampler(train_set, config, context)
    loader = DataLoader(train_set, batch_size=config.batch_size, sampler=sampler)

    augmentation_generator = torch.Generator().manual_seed(config.seed + context.rank)
    history: list[dict[str, float]] = []
    stopping = EarlyStopping(config.patience)
    best_state = copy.deepcopy(model.state_dict())
    timer = Timer().start()
    progress = tqdm(
        range(1, config.epochs + 1), desc="epochs", unit="epoch", disable=not context.is_main
    )
    for epoch in progress:
        if isinstance(sampler, DistributedSampler):
            sampler.set_epoch(epoch)
        trained.train()
        running_loss, seen = 0.0, 0
        for step, (images, labels) in enumerate(loader):
            if config.max_steps_per_epoch is not None and step >= config.max_steps_per_epoch:
                break
            images = random_shift(images, config.shift_pixels, augmentation_generator)
            images, labels = images.to(device), labels.to(device)
            optimizer.zero_grad(set_to_none=True)
            loss = nn.functional.cross_entropy(trained(images), labels)
            loss.backward()
            optimizer.step()
            running_loss += loss.item() * len(labels)
            seen += len(labels)
        scheduler.step()
        broadcast_buffers(model, context)
        # Every rank holds identical weights after DDP's gradient all-reduce, so each one
        # evaluates the (small) validation set itself and all reach the same stopping decision.
        validation = evaluate_model(model, data.validation, device)
        row = {
            "epoch": epoch,
            "train_loss": running_loss / max(seen, 1),
            "val_loss": validation.loss,
            "val_accuracy": validation.accuracy,
            "seconds": timer.elapsed,
        }
        history.append(row)
        progress.set_postfix(
            val_loss=f"{validation.loss:.4f}", val_acc=f"{validation.accuracy:.4f}"
        )
        if stopping.update(epoch, validation.loss):
            best_state = copy.deepcopy(model.state_dict())
        elif stopping.should_stop():
            break
    train_seconds = timer.stop()
    progress.close()

    model.load_state_dict(best_state)
    test = evaluate_model(model, data.test, device)
    ranks_agree = _ranks_agree(model, context)
    if config.dump_rank_weights:
        config.out.mkdir(parents=True, exist_ok=True)
        with atomic_output(config.out / f"weights_rank{context.rank}.pt") as temporary:
            torch.save({k: v.cpu() for k, v in model.state_dict().items()}, temporary)

    metadata = collect_run_metadata(PACKAGES).to_dict()
    metrics: dict[str, Any] = {
        "config": config_to_dict(config),
        "model_config": model_config.to_dict(),
        "data": {
            "source": data.source,
            "image_size": data.image_size,
            "train": len(data.train),
            "validation": len(data.validation),
            "test": len(data.test),
        },
        "history": history,
        "best_epoch": stopping.best_epoch,
        "epochs_run": len(history),
        "stopped_early": len(history) < config.epochs,
        "best_val_loss": stopping.best_loss,
        "test_loss": test.loss,
        "test_accuracy": test.accuracy,
        "train_seconds": train_seconds,
        "world_size": context.world_size,
        "ranks_agree": ranks_agree,
        "device": str(device),
        "run": metadata,
    }
    if context.is_main:
        _write_outputs(config.out, model, model_config, metrics, test)
    return metrics


def _ranks_agree(model: nn.Module, context: DistributedContext) -> bool:
    if not context.enabled:
        return True
    checksums: list[float] = [0.0] * context.world_size
    dist.all_gather_object(checksums, _weights_checksum(model))
    return all(
        abs(value - checksums[0]) <= 1e-9 * max(1.0, abs(checksums[0])) for value in checksums
    )


def _write_outputs(
    out: Path, model: DigitCNN, model_config: ModelConfig, metrics: dict[str, Any], test: Evaluation
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    save_checkpoint(
        out / CHECKPOINT_NAME,
        model,
        best_epoch=metrics["best_epoch"],
        test_accuracy=metrics["test_accuracy"],
        run=metrics["run"],
    )
    save_confusion_matrix(
        test.confusion, out / "confusion_matrix.png", f"test accuracy {test.accuracy:.4f}"
    )
    save_training_curves(metrics["history"], out / "training_curves.png")
    write_json_atomic(out / METRICS_NAME, metrics)


def _show(metrics: dict[str, Any]) -> str | None:
    """The closing line: rank 0 only, so torchrun prints it once."""
    if os.environ.get("RANK", "0") != "0":
        return None
    return (
        f"test accuracy {metrics['test_accuracy']:.4f} after {metrics['epochs_run']} epochs "
        f"({metrics['train_seconds']:.1f}s); outputs in {metrics['config']['out']}"
    )


main = make_main(
    Command(TrainConfig, train),
    prog="train",
    user_errors=(DataError, ConfigError),
    show=_show,
)

if __name__ == "__main__":
    sys.exit(main(None))
