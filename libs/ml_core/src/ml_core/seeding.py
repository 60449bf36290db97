"""Seed every random number generator a project may use."""

from __future__ import annotations

import importlib
import os
import random

import numpy as np


def seed_everything(seed: int, *, deterministic_torch: bool = False) -> None:
    """Seed Python, NumPy and (when installed) torch on every device.

    torch is imported lazily so that resolves without torch (feature selection) can share this
    module. ``deterministic_torch`` also asks torch for deterministic kernels, which is slower and
    raises for operations that have none.
    """
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed must be in [0, 2**32), got {seed}.")
    random.seed(seed)
    np.random.seed(seed)
    # Only affects subprocesses started from here; the current interpreter's hash seed is fixed.
    os.environ["PYTHONHASHSEED"] = str(seed)
    try:
        torch = importlib.import_module("torch")
    except ImportError:
        return
    torch.manual_seed(seed)  # seeds CPU and every CUDA device
    if deterministic_torch:
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
