"""The report's figures (PNG, written atomically) and its HTML page."""

from __future__ import annotations

import html
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from ml_core.atomic import atomic_output
from ml_core.plotting import save_figure


def save_robustness_curves(
    eps_values: Sequence[float],
    curves: Mapping[str, Sequence[float]],
    path: str | os.PathLike[str],
    marked_eps: float,
) -> None:
    """Robust accuracy against the L-inf budget, one line per model and attack."""
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for name, values in curves.items():
        axes.plot([0.0, *eps_values], values, marker="o", label=name)
    axes.axvline(marked_eps, color="grey", linestyle=":", label=f"eps = {marked_eps}")
    axes.set_xlabel("L-inf epsilon (pixels in [0, 1])")
    axes.set_ylabel("accuracy")
    axes.set_ylim(-0.02, 1.02)
    axes.set_title("Robust accuracy vs epsilon (8x8 digits, test split)")
    axes.legend(fontsize=8)
    figure.tight_layout()
    save_figure(figure, path, dpi=110)


def save_examples(
    clean: np.ndarray,
    adversarial: np.ndarray,
    labels: Sequence[int],
    clean_predictions: Sequence[int],
    adversarial_predictions: Sequence[int],
    path: str | os.PathLike[str],
    title: str,
) -> None:
    """Three rows: clean images, perturbations (scaled to the budget), adversarial images; each
    titled with the true label and the model's prediction."""
    count = len(clean)
    figure, axes = plt.subplots(3, count, figsize=(1.5 * count, 5), squeeze=False)
    perturbation = adversarial - clean
    scale = float(np.abs(perturbation).max()) or 1.0
    for column in range(count):
        axes[0, column].imshow(clean[column], cmap="gray", vmin=0, vmax=1)
        axes[0, column].set_title(
            f"y={labels[column]} pred={clean_predictions[column]}", fontsize=8
        )
        axes[1, column].imshow(perturbation[column], cmap="seismic", vmin=-scale, vmax=scale)
        axes[1, column].set_title(f"max |d|={np.abs(perturbation[column]).max():.3f}", fontsize=7)
        axes[2, column].imshow(adversarial[column], cmap="gray", vmin=0, vmax=1)
        wrong = adversarial_predictions[column] != labels[column]
        axes[2, column].set_title(
            f"pred={adversarial_predictions[column]}", fontsize=8, color="red" if wrong else "black"
        )
        for row in range(3):
            axes[row, column].set_xticks([])
            axes[row, column].set_yticks([])
    axes[0, 0].set_ylabel("clean")
    axes[1, 0].set_ylabel("perturbation")
    axes[2, 0].set_ylabel("adversarial")
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    save_figure(figure, path, dpi=110)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return html.escape(str(value))


def _table(rows: Sequence[Mapping[str, Any]]) -> str:
    if not rows:
        return "<p>(none)</p>"
    columns = list(rows[0])
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_cell(row.get(c, ''))}</td>" for c in columns) + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def write_html(
    path: str | os.PathLike[str],
    title: str,
    sections: Sequence[tuple[str, str, Sequence[Mapping[str, Any]]]],
    images: Sequence[str],
    notes: Sequence[str],
) -> Path:
    """A self-contained page (images referenced beside it): one table per section."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}"
        "table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 8px}"
        ".fail{color:#b00}.ok{color:#070}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        "<ul>" + "".join(f"<li>{note}</li>" for note in notes) + "</ul>",
    ]
    for heading, text, rows in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2><p>{html.escape(text)}</p>{_table(rows)}")
    for image in images:
        parts.append(f"<p><img src='{html.escape(image)}' style='max-width:100%'></p>")
    parts.append("</body></html>")
    with atomic_output(path) as temporary:
        temporary.write_text("\n".join(parts), encoding="utf-8")
    return Path(path)
