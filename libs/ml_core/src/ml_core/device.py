"""Choose the torch device: an explicit choice, else $ML_DEVICE, else cuda > mps > cpu."""

from __future__ import annotations

import os

import torch

DEVICE_ENV_VAR = "ML_DEVICE"


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def available_devices() -> list[str]:
    """Device types usable here, best first."""
    devices = []
    if torch.cuda.is_available():
        devices.append("cuda")
    if _mps_available():
        devices.append("mps")
    devices.append("cpu")
    return devices


def select_device(preference: str | None = None) -> torch.device:
    """Return the device to run on.

    ``preference`` (or the ``ML_DEVICE`` environment variable) may be ``auto``, ``cpu``, ``cuda``,
    ``cuda:N`` or ``mps``. Asking for a device that is not available raises a ``ValueError`` that
    lists what is, instead of failing later inside a kernel.
    """
    choice = (preference or os.environ.get(DEVICE_ENV_VAR) or "auto").strip().lower()
    available = available_devices()
    if choice == "auto":
        return torch.device(available[0])
    try:
        device = torch.device(choice)
    except RuntimeError as error:
        raise ValueError(
            f"Unknown device {choice!r}; use auto, cpu, cuda, cuda:N or mps."
        ) from error
    if device.type not in available:
        raise ValueError(
            f"Device {choice!r} was requested but is not available here; "
            f"available: {', '.join(available)}."
        )
    if device.type == "cuda" and device.index is not None:
        count = torch.cuda.device_count()
        if device.index >= count:
            raise ValueError(
                f"Device {choice!r} was requested but only {count} CUDA device(s) exist."
            )
    return device
