"""PNG plots of an audit: activation-frequency heatmaps, histograms, dead ratios."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

# Importing ml_core.plotting selects the Agg backend before any figure is made.
from ml_core.plotting import save_figure


def _save(figure: Figure, path: str | os.PathLike[str]) -> Path:
    figure.tight_layout()
    return save_figure(figure, path, dpi=110)


def _by_kind(layers: Sequence[Mapping[str, Any]], kind: str) -> list[Mapping[str, Any]]:
    return sorted((r for r in layers if r["kind"] == kind), key=lambda r: int(r["layer"]))


def frequency_matrix(rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """One row per layer: its neurons' fire frequencies sorted high to low (NaN-padded)."""
    width = max(len(r["fire_frequency"]) for r in rows)
    matrix = np.full((len(rows), width), np.nan)
    for index, row in enumerate(rows):
        values = np.sort(np.asarray(row["fire_frequency"], dtype=float))[::-1]
        matrix[index, : len(values)] = values
    return matrix


def plot_frequency_heatmap(
    layers: Sequence[Mapping[str, Any]], kind: str, path: str | os.PathLike[str]
) -> Path:
    """Sorted activation-frequency heatmap: layers by neurons (rank)."""
    rows = _by_kind(layers, kind)
    if not rows:
        raise ValueError(f"No layers of kind {kind!r} to plot.")
    figure, axes = plt.subplots(figsize=(8, 1.2 + 0.35 * len(rows)))
    image = axes.imshow(
        frequency_matrix(rows),
        aspect="auto",
        cmap="viridis",
        vmin=0.0,
        vmax=1.0,
        interpolation="nearest",
    )
    axes.set_yticks(range(len(rows)), [str(r["layer"]) for r in rows])
    axes.set_xlabel("neuron rank (sorted by activation frequency)")
    axes.set_ylabel("layer")
    axes.set_title(f"{kind}: fraction of tokens on which each neuron fires")
    figure.colorbar(image, ax=axes, label="activation frequency")
    return _save(figure, path)


def plot_histograms(
    layers: Sequence[Mapping[str, Any]], kind: str, path: str | os.PathLike[str]
) -> Path:
    """Per-layer activation histograms (fixed bins, log counts) of one kind."""
    rows = _by_kind(layers, kind)
    if not rows:
        raise ValueError(f"No layers of kind {kind!r} to plot.")
    figure, axes = plt.subplots(figsize=(7, 4))
    colors = plt.get_cmap("viridis")(np.linspace(0, 1, len(rows)))
    for color, row in zip(colors, rows):
        edges = np.asarray(row["histogram"]["edges"])
        counts = np.asarray(row["histogram"]["counts"], dtype=float)
        centres = (edges[:-1] + edges[1:]) / 2
        axes.plot(centres, np.maximum(counts, 0.5), color=color, label=f"layer {row['layer']}")
    axes.set_yscale("log")
    axes.set_xlabel(f"{kind} activation (edge bins include values beyond the range)")
    axes.set_ylabel("count")
    axes.set_title(f"{kind} activation histogram per layer")
    if len(rows) <= 12:
        axes.legend(fontsize="small", ncol=2)
    return _save(figure, path)


def plot_dead_ratios(
    series: Mapping[str, Sequence[float]],
    path: str | os.PathLike[str],
    *,
    title: str = "Dead-neuron ratio per layer",
) -> Path:
    """One line per series (a kind, or an activation function) against layer."""
    if not series:
        raise ValueError("No dead-ratio series to plot.")
    figure, axes = plt.subplots(figsize=(7, 4))
    for label, values in series.items():
        axes.plot(range(len(values)), [100 * v for v in values], marker="o", label=label)
    axes.set_xlabel("layer")
    axes.set_ylabel("dead neurons (%)")
    axes.set_ylim(bottom=0)
    axes.set_title(title)
    axes.legend()
    axes.grid(alpha=0.3)
    return _save(figure, path)


def plot_strip_curves(
    histories: Mapping[str, Sequence[Mapping[str, Any]]], path: str | os.PathLike[str]
) -> Path:
    """Dead ratio and validation loss per epoch, with and without stripping."""
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for label, history in histories.items():
        epochs = [int(r["epoch"]) for r in history]
        left.plot(epochs, [100 * float(r["dead_ratio"]) for r in history], marker="o", label=label)
        right.plot(epochs, [float(r["val_loss"]) for r in history], marker="o", label=label)
    left.set_xlabel("epoch")
    left.set_ylabel("dead neurons (%)")
    left.set_title("Dead-neuron ratio (validation data)")
    right.set_xlabel("epoch")
    right.set_ylabel("validation loss")
    right.set_title("Validation loss")
    for axes in (left, right):
        axes.legend()
        axes.grid(alpha=0.3)
    return _save(figure, path)


def plot_monitor(records: Sequence[Mapping[str, Any]], path: str | os.PathLike[str]) -> Path:
    """Dead ratio per layer against training step, one panel per kind (an ``AuditCallback`` log)."""
    if not records:
        raise ValueError("No monitoring records to plot.")
    kinds = list(records[0]["dead_ratio"])
    figure, panels = plt.subplots(1, len(kinds), figsize=(4.5 * len(kinds), 3.8), squeeze=False)
    steps = [int(r["step"]) for r in records]
    for axes, kind in zip(panels[0], kinds):
        layers = len(records[0]["dead_ratio"][kind])
        for layer in range(layers):
            values = [100 * float(r["dead_ratio"][kind][layer]) for r in records]
            axes.plot(steps, values, marker=".", label=f"layer {layer}")
        axes.set_xlabel("training step")
        axes.set_ylabel("dead neurons (%)")
        axes.set_ylim(0, max(1.0, axes.get_ylim()[1]))  # a flat 0% line reads as 0%, not noise
        axes.set_title(kind)
        axes.grid(alpha=0.3)
        if layers <= 12:
            axes.legend(fontsize="small")
    return _save(figure, path)


def plot_memory(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike[str]) -> Path:
    """Peak memory growth against tokens audited, streaming vs store-all."""
    figure, axes = plt.subplots(figsize=(7, 4))
    for mode in ("streaming", "store_all"):
        points = sorted((r["tokens"], r["peak_rss_growth_mib"]) for r in rows if r["mode"] == mode)
        if points:
            axes.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=mode)
    axes.set_xscale("log")
    axes.set_xlabel("tokens audited")
    axes.set_ylabel("peak RSS growth after warm-up (MiB)")
    axes.set_title("Audit memory: streaming statistics vs storing every activation")
    axes.legend()
    axes.grid(alpha=0.3)
    return _save(figure, path)
