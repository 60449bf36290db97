"""The pieces of a causal-LM training loop: loss, batches, a step, evaluation."""

from __future__ import annotations

import math

import torch
from torch.utils.data import Dataset
from transformers import PreTrainedModel


def causal_lm_loss(model: PreTrainedModel, input_ids: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy of ``model`` on a batch of token blocks."""
    output = model(input_ids=input_ids, labels=input_ids)
    loss = output.loss
    if not isinstance(loss, torch.Tensor):
        raise RuntimeError(f"{type(model).__name__} returned no loss for labelled input.")
    return loss


def perplexity(loss: float) -> float:
    """``exp(loss)``, or infinity where that overflows."""
    try:
        return math.exp(loss)
    except OverflowError:
        return math.inf


def batch_indices(num_items: int, batch_size: int, step: int, seed: int) -> list[int]:
    """Item indices of training batch ``step``: epochs of seeded permutations, no replacement.

    A pure function of its arguments, so a resumed run continues with exactly the batches an
    uninterrupted one would have seen, without saving sampler state.
    """
    if num_items < 1 or batch_size < 1:
        raise ValueError("num_items and batch_size must be positive.")
    indices: list[int] = []
    position = step * batch_size
    while len(indices) < batch_size:
        epoch, offset = divmod(position, num_items)
        generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        permutation = torch.randperm(num_items, generator=generator)
        take = min(batch_size - len(indices), num_items - offset)
        indices.extend(int(i) for i in permutation[offset : offset + take])
        position += take
    return indices


def collate(dataset: Dataset[torch.Tensor], indices: list[int]) -> torch.Tensor:
    return torch.stack([dataset[i] for i in indices])


def train_step(
    model: PreTrainedModel,
    optimizer: torch.optim.Optimizer,
    input_ids: torch.Tensor,
    *,
    max_grad_norm: float | None = 1.0,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
) -> float:
    """One optimisation step on ``input_ids``; returns the loss before the update."""
    model.train()
    optimizer.zero_grad(set_to_none=True)
    loss = causal_lm_loss(model, input_ids)
    loss.backward()
    if max_grad_norm is not None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    if scheduler is not None:
        scheduler.step()
    return float(loss.detach())


@torch.no_grad()
def evaluate_loss(
    model: PreTrainedModel,
    dataset: Dataset[torch.Tensor],
    *,
    batch_size: int,
    device: torch.device,
    max_batches: int | None = None,
) -> float:
    """Mean loss over the first ``max_batches`` batches of ``dataset``, in order (deterministic)."""
    length = len(dataset)  # type: ignore[arg-type]
    if length == 0:
        raise ValueError("Cannot evaluate on an empty dataset.")
    was_training = model.training
    model.train(False)
    total, count = 0.0, 0
    for batch_number, start in enumerate(range(0, length, batch_size)):
        if max_batches is not None and batch_number >= max_batches:
            break
        indices = list(range(start, min(start + batch_size, length)))
        batch = collate(dataset, indices).to(device)
        total += float(causal_lm_loss(model, batch)) * len(indices)
        count += len(indices)
    model.train(was_training)
    return total / count
