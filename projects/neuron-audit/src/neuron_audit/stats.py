"""Streaming per-neuron statistics whose memory does not grow with the number
of tokens.

For one capture point of width ``W`` the state is a few ``W``-long
counters, a fixed-bin histogram and three scalars, whatever the number
of tokens seen.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch

DEFAULT_THRESHOLD = 1e-3
DEFAULT_BINS = 64
DEFAULT_RANGE = (-5.0, 5.0)


@dataclasses.dataclass(frozen=True)
class StatsConfig:
    """How a neuron "fires" and how histograms are binned.

    A neuron fires on a token when its activation is above
    ``threshold`` (the signed rule: a ReLU output of 0 never fires);
    the ``|act|`` variant counts ``|activation| > threshold`` instead,
    which suits activations such as tanh or SiLU that are useful when
    negative. Histograms have ``bins`` equal bins over
    ``hist_range``; values outside it are counted in the edge bins
    (min and max keep the true extremes).
    """

    threshold: float = DEFAULT_THRESHOLD
    bins: int = DEFAULT_BINS
    hist_range: tuple[float, float] = DEFAULT_RANGE

    def __post_init__(self) -> None:
        if not math.isfinite(self.threshold) or self.threshold < 0:
            raise ValueError(f"threshold must be a finite number >= 0, got {self.threshold}.")
        if self.bins < 1:
            raise ValueError(f"bins must be at least 1, got {self.bins}.")
        low, high = self.hist_range
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ValueError(f"hist_range must be finite with low < high, got {self.hist_range}.")


class NeuronStats:
    """Fire counts, a histogram, min, max and mean of one activation tensor,
    updated in place."""

    def __init__(self, width: int, config: StatsConfig = StatsConfig()) -> None:
        if width < 1:
            raise ValueError(f"width must be positive, got {width}.")
        self.width = width
        self.config = config
        self.fire_count = torch.zeros(width, dtype=torch.int64)
        self.abs_fire_count = torch.zeros(width, dtype=torch.int64)
        self.histogram = torch.zeros(config.bins, dtype=torch.int64)
        self.tokens = 0
        self.minimum = math.inf
        self.maximum = -math.inf
        self.total = 0.0

    def update(self, activations: torch.Tensor) -> None:
        """Add a ``(tokens, width)`` batch of activations (padding already
        removed)."""
        if activations.dim() != 2 or activations.shape[1] != self.width:
            raise ValueError(
                f"Expected activations of shape (tokens, {self.width}), got "
                f"{tuple(activations.shape)}."
            )
        if activations.shape[0] == 0:
            return
        values = activations.detach()
        if values.dtype != torch.float32:
            values = values.float()
        threshold = self.config.threshold
        # int32 partial sums are exact for any batch (< 2**31 tokens) and cheaper than int64.
        fired = (values > threshold).sum(dim=0, dtype=torch.int32)
        negative = (values < -threshold).sum(dim=0, dtype=torch.int32)  # disjoint from fired
        self.fire_count += fired.to(self.fire_count.device)
        self.abs_fire_count += (fired + negative).to(self.fire_count.device)
        extremes = torch.aminmax(values)
        batch_min, batch_max = float(extremes.min), float(extremes.max)
        self.minimum = min(self.minimum, batch_min)
        self.maximum = max(self.maximum, batch_max)
        low, high = self.config.hist_range
        if batch_min < low or batch_max > high:  # clamp only when needed: one pass less
            values_in_range = values.clamp(low, high)
        else:
            values_in_range = values
        counts = torch.histc(values_in_range, bins=self.config.bins, min=low, max=high)
        self.histogram += counts.to(torch.int64).to(self.histogram.device)
        self.total += float(values.sum())  # float32 within a batch, float64 across batches
        self.tokens += int(values.shape[0])

    def to(self, device: torch.device) -> NeuronStats:
        """Keep the counters on ``device`` (where the activations live)."""
        self.fire_count = self.fire_count.to(device)
        self.abs_fire_count = self.abs_fire_count.to(device)
        self.histogram = self.histogram.to(device)
        return self

    def reset(self) -> None:
        self.fire_count.zero_()
        self.abs_fire_count.zero_()
        self.histogram.zero_()
        self.tokens = 0
        self.minimum, self.maximum, self.total = math.inf, -math.inf, 0.0

    @property
    def mean(self) -> float | None:
        """Mean activation over all neurons and tokens, or ``None`` before any
        token."""
        return self.total / (self.tokens * self.width) if self.tokens else None

    def frequency(self, use_abs: bool = False) -> torch.Tensor:
        """Fraction of tokens on which each neuron fired (zeros before any
        token)."""
        counts = self.abs_fire_count if use_abs else self.fire_count
        return counts.double().cpu() / max(self.tokens, 1)

    def state_bytes(self) -> int:
        """Bytes held by the tensors of this object: constant in the token
        count."""
        tensors = (self.fire_count, self.abs_fire_count, self.histogram)
        return sum(t.numel() * t.element_size() for t in tensors)

    def bin_edges(self) -> list[float]:
        low, high = self.config.hist_range
        step = (high - low) / self.config.bins
        return [low + step * i for i in range(self.config.bins + 1)]


def dead_mask(frequency: torch.Tensor, dead_fraction: float = 0.0) -> torch.Tensor:
    """Neurons that fire on fewer than ``dead_fraction`` of tokens.

    With the default ``0.0`` a neuron is dead when it never fired.
    """
    if not 0.0 <= dead_fraction < 1.0:
        raise ValueError(f"dead_fraction must be in [0, 1), got {dead_fraction}.")
    if dead_fraction == 0.0:
        return frequency == 0
    return frequency < dead_fraction


def summarise(
    stats: NeuronStats, dead_fraction: float = 0.0, use_abs: bool = False
) -> dict[str, Any]:
    """JSON-ready metrics of one capture point."""
    frequency = stats.frequency(use_abs)
    dead = dead_mask(frequency, dead_fraction)
    return {
        "width": stats.width,
        "tokens": stats.tokens,
        "dead_count": int(dead.sum()),
        "dead_ratio": float(dead.double().mean()),
        "dead_neurons": [int(i) for i in torch.nonzero(dead).flatten()],
        "fire_frequency": [round(float(f), 6) for f in frequency],
        "mean_fire_frequency": float(frequency.mean()),
        "min": stats.minimum if stats.tokens else None,
        "max": stats.maximum if stats.tokens else None,
        "mean": stats.mean,
        "histogram": {"counts": [int(c) for c in stats.histogram], "edges": stats.bin_edges()},
    }
