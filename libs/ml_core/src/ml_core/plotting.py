"""Figures saved as PNG files, atomically, on machines without a display."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on CI machines, servers or containers

from matplotlib.figure import Figure  # noqa: E402

from ml_core.atomic import atomic_output  # noqa: E402


def save_figure(figure: Figure, path: str | os.PathLike[str], *, dpi: int = 100) -> Path:
    """Write ``figure`` as a PNG at ``path`` atomically, close it, and return the path; a reader
    never sees half a PNG, and a failed render leaves any earlier file in place."""
    import matplotlib.pyplot as plt

    try:
        with atomic_output(path) as temporary:
            figure.savefig(temporary, format="png", dpi=dpi)
    finally:
        plt.close(figure)
    return Path(path)
