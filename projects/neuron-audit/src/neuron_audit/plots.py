"""PNG plots of an audit: activation-frequency heatmaps, histograms, dead ratios."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

# Importing ml_core.plotting selects the Agg backend before any figure is made.
from ml_core.plotting import save_figure


def _save(figure: Figure, path: str | os.PathLike[str]) -> Path:
    figure.tight_layout()
    return save_figure(figure, path, dpi=110)


MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")
LINESTYLES = ("-", "--", "-.", ":")


def series_style(index: int, count: int, spread: float = 0.24) -> dict[str, Any]:
    """Marker, line style and a small horizontal offset for series ``index`` of ``count``, so series
    with identical values stay visible side by side instead of hiding each other."""
    offset = 0.0 if count < 2 else spread * (index / (count - 1) - 0.5)
    return {
        "marker": MARKERS[index % len(MARKERS)],
        "linestyle": LINESTYLES[index % len(LINESTYLES)],
        "offset": offset,
    }


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
    """:func:`dead_ratio_figure` saved as a PNG at ``path``."""
    return _save(dead_ratio_figure(series, title=title), path)


def dead_ratio_figure(
    series: Mapping[str, Sequence[float]], *, title: str = "Dead-neuron ratio per layer"
) -> Figure:
    """One line per series (a kind, or an activation function) against layer.

    Each series has its own marker and line style and is shifted by a small offset along the layer
    axis (the ticks stay on whole layers), so equal series do not hide each other.
    """
    if not series:
        raise ValueError("No dead-ratio series to plot.")
    figure, axes = plt.subplots(figsize=(7, 4))
    for index, (label, values) in enumerate(series.items()):
        style = series_style(index, len(series))
        axes.plot(
            [layer + style["offset"] for layer in range(len(values))],
            [100 * v for v in values],
            marker=style["marker"],
            linestyle=style["linestyle"],
            markersize=6,
            alpha=0.85,
            label=label,
        )
    layers = max(len(values) for values in series.values())
    axes.set_xticks(range(layers))  # whole layers only
    axes.set_xlim(-0.5, layers - 0.5)
    axes.set_xlabel("layer (series offset slightly for visibility)")
    axes.set_ylabel("dead neurons (%)")
    axes.set_ylim(bottom=0, top=max(1.0, axes.get_ylim()[1]))
    axes.set_title(title, fontsize="medium")
    axes.legend(fontsize="small")
    axes.grid(alpha=0.3)
    return figure


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


def _over_seeds(
    runs: Sequence[Mapping[str, Any]], activation: str, lr: float, field: str
) -> tuple[list[int], np.ndarray]:
    """Epochs and a (seeds, epochs) array of ``field`` for one activation and learning rate."""
    chosen = [r for r in runs if r["activation"] == activation and float(r["lr"]) == lr]
    if not chosen:
        return [], np.zeros((0, 0))
    epochs = [int(record["epoch"]) for record in chosen[0]["history"]]
    values = np.asarray([[float(rec[field]) for rec in r["history"]] for r in chosen], dtype=float)
    return epochs, values


def plot_compare(
    runs: Sequence[Mapping[str, Any]],
    activations: Sequence[str],
    lrs: Sequence[float],
    field: str,
    path: str | os.PathLike[str],
    *,
    ylabel: str,
    title: str,
    percent: bool = False,
) -> Path:
    """``field`` per epoch, one panel per learning rate, one line per activation: the mean over
    seeds, with a band from the lowest to the highest seed."""
    if not runs:
        raise ValueError("No runs to plot.")
    figure, panels = plt.subplots(
        1, len(lrs), figsize=(5.5 * len(lrs), 4.2), squeeze=False, sharey=True
    )
    scale = 100.0 if percent else 1.0
    for axes, lr in zip(panels[0], lrs):
        for index, activation in enumerate(activations):
            epochs, values = _over_seeds(runs, activation, lr, field)
            if not epochs:
                continue
            style = series_style(index, len(activations), spread=0.3)
            x = [epoch + style["offset"] for epoch in epochs]
            line = axes.plot(
                x,
                scale * values.mean(axis=0),
                marker=style["marker"],
                linestyle=style["linestyle"],
                label=f"{activation} (n={values.shape[0]})",
            )[0]
            if values.shape[0] > 1:
                axes.fill_between(
                    x,
                    scale * values.min(axis=0),
                    scale * values.max(axis=0),
                    color=line.get_color(),
                    alpha=0.12,
                )
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_xlabel("epoch (0 = initial weights)")
        axes.set_title(f"lr {lr:g}", fontsize="medium")
        axes.grid(alpha=0.3)
    panels[0][0].set_ylabel(ylabel)
    panels[0][-1].legend(fontsize="small")
    figure.suptitle(title + " (line: mean over seeds; band: min to max)", fontsize="medium")
    return _save(figure, path)


def plot_activation_shapes(
    activations: Mapping[str, Any],
    path: str | os.PathLike[str],
    low: float = -4.0,
    high: float = 4.0,
) -> Path:
    """Each activation ``f(x)`` and its derivative on ``[low, high]`` (``activations``: name ->
    ``torch.nn.Module``)."""
    import torch

    x = torch.linspace(low, high, 401, requires_grad=True)
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for index, (name, module) in enumerate(activations.items()):
        y = module(x)
        (gradient,) = torch.autograd.grad(y.sum(), x)
        style = series_style(index, len(activations), spread=0.0)
        kwargs = {"linestyle": style["linestyle"], "label": name}
        left.plot(x.detach().numpy(), y.detach().numpy(), **kwargs)
        right.plot(x.detach().numpy(), gradient.numpy(), **kwargs)
    left.set_title("activation f(x)", fontsize="medium")
    right.set_title(
        "derivative f'(x): zero on x < 0 means no gradient to revive a unit", fontsize="medium"
    )
    for axes in (left, right):
        axes.axhline(0, color="black", linewidth=0.6)
        axes.axvline(0, color="black", linewidth=0.6)
        axes.set_xlabel("x (pre-activation)")
        axes.grid(alpha=0.3)
        axes.legend(fontsize="small")
    left.set_ylim(-2.0, high)
    return _save(figure, path)


def plot_runs(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike[str]) -> Path:
    """Several runs side by side: ``mlp_post`` dead ratio (bars) beside validation loss (dots)."""
    if not rows:
        raise ValueError("No runs to plot.")
    figure, axes = plt.subplots(figsize=(max(6.0, 0.7 * len(rows) + 2), 4.5))
    positions = np.arange(len(rows))
    dead = [100 * float(r["dead_ratio"].get("mlp_post") or 0.0) for r in rows]
    axes.bar(positions, dead, color="tab:red", alpha=0.6, label="mlp_post dead (%)")
    axes.set_ylabel("mlp_post dead neurons (%)")
    axes.set_ylim(0, max(1.0, max(dead) * 1.2))
    axes.set_xticks(
        positions, [str(r["name"]) for r in rows], rotation=30, ha="right", fontsize="small"
    )
    loss_axes = axes.twinx()
    losses = [r.get("val_loss") for r in rows]
    known = [(p, float(v)) for p, v in zip(positions, losses) if v is not None]
    if known:
        loss_axes.plot(
            [p for p, _ in known],
            [v for _, v in known],
            "o",
            color="tab:blue",
            label="validation loss",
        )
    loss_axes.set_ylabel("validation loss (blank: not recorded)")
    axes.set_title("Neuron health beside validation loss, per run", fontsize="medium")
    handles = axes.get_legend_handles_labels()
    more = loss_axes.get_legend_handles_labels()
    axes.legend(handles[0] + more[0], handles[1] + more[1], fontsize="small", loc="upper left")
    return _save(figure, path)
