"""PNG curves of a step's JSON-lines log, written atomically (``ml_core.plotting``)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt

from ml_core.plotting import save_figure


def save_curves(
    history: Sequence[dict[str, Any]],
    keys: Sequence[str],
    path: str | os.PathLike[str],
    title: str,
) -> None:
    """One panel per metric in ``keys`` against ``step``."""
    figure, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.2), squeeze=False)
    steps = [row["step"] for row in history]
    for axis, key in zip(axes[0], keys):
        axis.plot(steps, [row.get(key, float("nan")) for row in history])
        axis.set_xlabel("step")
        axis.set_title(key)
        axis.grid(alpha=0.3)
    figure.suptitle(title)
    figure.tight_layout()
    save_figure(figure, path, dpi=90)
