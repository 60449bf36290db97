"""Synaptic Stripping (Whitaker & Whitley, 2023): revive dead neurons by cutting their most negative
incoming weights.

After each epoch, :class:`SynapticStripping` audits the model on validation data, finds the
``mlp_post`` neurons that never fire, and zeroes ``fraction`` (default 5%) of each dead neuron's
incoming weights, choosing the most negative ones (only negative weights are ever cut).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from neuron_audit.auditor import AuditSettings, Batch, run_audit
from neuron_audit.hooks import CapturePoint, find_capture_points


def strip_neurons(weight: torch.Tensor, neurons: Sequence[int], fraction: float, axis: int) -> int:
    """Zero the ``ceil(fraction * fan_in)`` most negative incoming weights of each of ``neurons``.

    ``axis`` indexes neurons in ``weight`` (0 for ``nn.Linear``, 1 for GPT-2's ``Conv1D``). Returns
    the number of weights set to zero.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}.")
    if not neurons:
        return 0
    with torch.no_grad():
        rows = weight if axis == 0 else weight.t()
        index = torch.as_tensor(list(neurons), dtype=torch.long, device=weight.device)
        selected = rows[index]
        k = max(1, math.ceil(fraction * selected.shape[1]))
        values, positions = torch.topk(-selected, k, dim=1)  # largest -w = most negative w
        cut = values > 0  # only weights that are actually negative
        selected.scatter_(1, positions, torch.where(cut, 0.0, -values).to(selected.dtype))
        rows[index] = selected
        return int(cut.sum())


class SynapticStripping:
    """A training callback: call :meth:`on_epoch_end` with validation batches after each epoch."""

    def __init__(
        self,
        model: nn.Module,
        fraction: float = 0.05,
        settings: AuditSettings = AuditSettings(),
    ) -> None:
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"fraction must be in (0, 1], got {fraction}.")
        self.model = model
        self.fraction = fraction
        self.settings = settings
        self.history: list[dict[str, Any]] = []

    def _points(self) -> list[CapturePoint]:
        points = [p for p in find_capture_points(self.model, ("mlp_post",)) if p.incoming]
        if not points:
            raise ValueError("No MLP activation with a known incoming linear layer to strip.")
        return points

    def on_epoch_end(self, epoch: int, validation: Sequence[Batch]) -> dict[str, Any]:
        """Audit on ``validation``, strip dead neurons, and return what was done."""
        layers = run_audit(self.model, validation, self.settings, kinds=("mlp_post",))
        by_layer = {int(r["layer"]): r for r in layers}
        zeroed = 0
        for point in self._points():
            dead = by_layer[point.layer]["dead_neurons"]
            weight = getattr(point.incoming, "weight")
            if not isinstance(weight, torch.Tensor):
                raise ValueError(f"{point.name}'s incoming layer has no weight tensor.")
            zeroed += strip_neurons(weight.data, dead, self.fraction, point.incoming_axis)
        dead_total = sum(int(r["dead_count"]) for r in layers)
        record = {
            "epoch": epoch,
            "dead_before_strip": dead_total,
            "dead_ratio_before_strip": dead_total / sum(int(r["width"]) for r in layers),
            "weights_zeroed": zeroed,
        }
        self.history.append(record)
        return record
