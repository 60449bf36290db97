"""Activation swap: the same weights and data with another MLP activation."""

from __future__ import annotations

import copy
import typing
from collections.abc import Callable, Sequence
from typing import Any, Literal

from torch import nn
from tqdm import tqdm

from neuron_audit.auditor import AuditSettings, Batch, run_audit
from neuron_audit.hooks import find_capture_points
from neuron_audit.metrics import dead_ratios

Activation = Literal["relu", "leaky_relu", "elu", "gelu", "silu", "selu", "mish"]
ACTIVATION_NAMES: tuple[Activation, ...] = typing.get_args(Activation)
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.01),
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,  # Swish with beta = 1
    "selu": nn.SELU,
    "mish": nn.Mish,
}
assert tuple(ACTIVATIONS) == ACTIVATION_NAMES, "one name per activation, in the same order"


def swap_activation(model: nn.Module, activation: str) -> int:
    """Replace every MLP activation module of ``model`` in place; return how many."""
    factory = ACTIVATIONS.get(activation)
    if factory is None:
        raise ValueError(f"Unknown activation {activation!r}; choose from {sorted(ACTIVATIONS)}.")
    names = sorted({p.name for p in find_capture_points(model, ("mlp_post",))})
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, factory())
    return len(names)


def run_swap_experiment(
    model: nn.Module,
    batches: Sequence[Batch],
    activations: Sequence[str] = tuple(ACTIVATIONS),
    settings: AuditSettings = AuditSettings(),
    *,
    progress: bool = False,
) -> dict[str, Any]:
    """Dead ratio of ``mlp_post`` per layer for the original activation and each swap.

    Every variant is a deep copy of ``model`` audited on the same ``batches``; nothing is retrained,
    so the comparison isolates the activation function.
    """
    original = type(find_capture_points(model, ("mlp_post",))[0].module).__name__
    results: dict[str, Any] = {}
    variants = [(f"original ({original})", None), *((name, name) for name in activations)]
    for label, activation in tqdm(variants, desc="swap", unit="activation", disable=not progress):
        variant = copy.deepcopy(model)
        if activation is not None:
            swap_activation(variant, activation)
        layers = run_audit(variant, batches, settings, kinds=("mlp_post",))
        abs_settings = AuditSettings(settings.stats, settings.dead_fraction, use_abs=True)
        abs_layers = run_audit(variant, batches, abs_settings, kinds=("mlp_post",))
        results[label] = {
            "dead_ratio": dead_ratios(layers)["mlp_post"],
            "dead_ratio_abs": dead_ratios(abs_layers)["mlp_post"],
            "mean_fire_frequency": [float(r["mean_fire_frequency"]) for r in layers],
        }
    return results
