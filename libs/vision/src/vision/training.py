"""The reusable parts of a digit classifier's training loop: augmentation, early stopping,
evaluation, and a single-process ``fit`` whose per-batch loss can be replaced (adversarial training,
distillation)."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from tqdm import tqdm

from vision.data import Split

# (model, images, labels) -> scalar loss; the model is in training mode when it is called.
BatchLoss = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclasses.dataclass(frozen=True)
class Evaluation:
    loss: float
    accuracy: float
    confusion: np.ndarray


class EarlyStopping:
    """Stop after ``patience`` epochs without a new best validation loss."""

    def __init__(self, patience: int) -> None:
        self.patience = patience
        self.best_loss = float("inf")
        self.best_epoch = 0
        self.stale_epochs = 0

    def update(self, epoch: int, loss: float) -> bool:
        """Record an epoch's loss; return True when it is a new best."""
        if loss < self.best_loss:
            self.best_loss, self.best_epoch, self.stale_epochs = loss, epoch, 0
            return True
        self.stale_epochs += 1
        return False

    def should_stop(self) -> bool:
        return self.stale_epochs >= self.patience


def random_shift(images: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each (N, H, W) image by up to ``max_shift`` pixels, filling with zeros.

    Handwriting is not centred the same way twice; small shifts are the cheapest augmentation that
    teaches the CNN so, and they keep 8x8 digits legible.
    """
    if max_shift == 0:
        return images
    height, width = images.shape[-2:]
    padded = nn.functional.pad(images, (max_shift,) * 4)
    offsets = torch.randint(0, 2 * max_shift + 1, (len(images), 2), generator=generator)
    return torch.stack(
        [
            padded[i, dy : dy + height, dx : dx + width]
            for i, (dy, dx) in enumerate(offsets.tolist())
        ]
    )


def tensors(split: Split) -> TensorDataset:
    """A split as a TensorDataset of (images, labels)."""
    return TensorDataset(torch.from_numpy(split.images), torch.from_numpy(split.labels))


@torch.no_grad()
def evaluate_model(
    model: nn.Module,
    split: Split,
    device: torch.device | None = None,
    batch_size: int = 512,
    num_classes: int = 10,
) -> Evaluation:
    """Mean cross-entropy, accuracy and confusion matrix of ``model`` on ``split``."""
    device = device or torch.device("cpu")
    model.eval()
    total_loss = 0.0
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    for images, labels in DataLoader(tensors(split), batch_size=batch_size):
        logits = model(images.to(device))
        total_loss += float(nn.functional.cross_entropy(logits, labels.to(device), reduction="sum"))
        predictions = logits.argmax(dim=1).cpu().numpy()
        np.add.at(confusion, (labels.numpy(), predictions), 1)
    count = max(len(split), 1)
    return Evaluation(total_loss / count, float(np.trace(confusion)) / count, confusion)


def cross_entropy_loss(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor
) -> torch.Tensor:
    """The default :data:`BatchLoss`."""
    return nn.functional.cross_entropy(model(images), labels)


@dataclasses.dataclass(frozen=True)
class FitConfig:
    """How :func:`fit` trains: AdamW with cosine decay, shifts, early stopping."""

    epochs: int = 40
    batch_size: int = 64
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    patience: int = 10
    shift_pixels: int = 1
    seed: int = 0
    early_stopping: bool = True
    """Keep the weights of the best validation loss (off: the last epoch's, e.g. to overfit)."""

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "patience"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}.")
        if self.learning_rate <= 0 or self.weight_decay < 0 or self.shift_pixels < 0:
            raise ValueError(f"invalid optimiser or augmentation settings in {self}.")


def fit(
    model: nn.Module,
    train: Split,
    validation: Split,
    config: FitConfig,
    *,
    batch_loss: BatchLoss = cross_entropy_loss,
    device: torch.device | None = None,
    description: str = "epochs",
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Train ``model`` in place on one process and return the per-epoch history.

    ``batch_loss`` replaces the cross-entropy (adversarial training, distillation); with
    ``early_stopping`` the best-validation-loss weights are restored at the end.
    """
    device = device or torch.device("cpu")
    torch.manual_seed(config.seed)
    model.to(device)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    loader = DataLoader(
        tensors(train),
        batch_size=config.batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(config.seed),
    )
    augmentation = torch.Generator().manual_seed(config.seed)
    stopping = EarlyStopping(config.patience)
    best_state = copy.deepcopy(model.state_dict())
    history: list[dict[str, Any]] = []
    bar = tqdm(
        range(1, config.epochs + 1),
        desc=description,
        unit="epoch",
        disable=not progress,
        leave=False,
    )
    for epoch in bar:
        model.train()
        running, seen = 0.0, 0
        for images, labels in loader:
            images = random_shift(images, config.shift_pixels, augmentation).to(device)
            labels = labels.to(device)
            optimizer.zero_grad(set_to_none=True)
            loss = batch_loss(model, images, labels)
            model.train()  # a batch loss may have switched to eval mode to craft inputs
            loss.backward()
            optimizer.step()
            running += float(loss.detach()) * len(labels)
            seen += len(labels)
        scheduler.step()
        result = evaluate_model(model, validation, device)
        history.append(
            {
                "epoch": epoch,
                "train_loss": running / max(seen, 1),
                "val_loss": result.loss,
                "val_accuracy": result.accuracy,
            }
        )
        bar.set_postfix(val_loss=f"{result.loss:.4f}", val_acc=f"{result.accuracy:.4f}")
        if not config.early_stopping:
            continue
        if stopping.update(epoch, result.loss):
            best_state = copy.deepcopy(model.state_dict())
        elif stopping.should_stop():
            break
    bar.close()
    if config.early_stopping:
        model.load_state_dict(best_state)
    model.eval()
    return history
