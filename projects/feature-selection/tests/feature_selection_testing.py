"""Small tables with a known answer, shared by the feature-selection tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

SIGNAL = ["s0", "s1"]


def classification_table(n_rows: int = 200, n_noise: int = 4, seed: int = 0) -> pd.DataFrame:
    """S0 and s1 decide the binary target ``y``; n0..

    are independent noise.
    """
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {name: rng.normal(size=n_rows) for name in [*SIGNAL, *[f"n{i}" for i in range(n_noise)]]}
    )
    logit = 2.5 * frame["s0"] - 2.5 * frame["s1"] + 0.3 * rng.normal(size=n_rows)
    frame["y"] = (logit > 0).astype(int)
    return frame


def regression_table(n_rows: int = 200, n_noise: int = 4, seed: int = 0) -> pd.DataFrame:
    """``y`` = 3 s0 - 2 s1 + small noise; n0.. are independent noise."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {name: rng.normal(size=n_rows) for name in [*SIGNAL, *[f"n{i}" for i in range(n_noise)]]}
    )
    frame["y"] = 3 * frame["s0"] - 2 * frame["s1"] + 0.3 * rng.normal(size=n_rows)
    return frame


def split(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    return frame.drop(columns=["y"]), frame["y"]
