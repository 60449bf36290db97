"""One threading policy for every entry point.

torch (and numpy's BLAS) start one compute thread per visible core. On a small machine that
other work shares, those threads wait on each other: training the repository's small models
with one thread was 2-4x faster than with torch's default while the two cores were busy. So
every command line made by :func:`ml_core.cli.make_main` applies this policy before it runs:

1. ``--threads N`` on the command line, else
2. ``$ML_THREADS``, else
3. ``$OMP_NUM_THREADS`` (the variable torch and BLAS already honour), else
4. the default: half the CPUs this process may use (at least 1), where "may use" respects the
   CPU affinity mask and the cgroup CPU quota a container runs under, which
   ``os.cpu_count()`` ignores.

Half, not all: small models gain little from a second intra-op thread and lose much when
another process wants the core (the measurement is in the README's threading section).
"""

from __future__ import annotations

import importlib.util
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

THREADS_ENV = "ML_THREADS"
# Read by OpenMP, MKL and OpenBLAS when a child process (torchrun, a DataLoader worker) starts.
_CHILD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")

Source = Literal["--threads", "ML_THREADS", "OMP_NUM_THREADS", "default"]

# Kept alive so threadpoolctl's limits stay applied for the life of the process.
_blas_limits: Any = None


@dataclass(frozen=True)
class ThreadPolicy:
    """How many compute threads a process uses, and why."""

    threads: int
    source: Source
    cpus: int


def _cgroup_cpu_limit(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """CPUs allowed by the cgroup quota (v2 ``cpu.max`` or v1 CFS files), None if unlimited."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return None if quota_us <= 0 or period_us <= 0 else quota_us / period_us
    except (OSError, ValueError):
        return None


def available_cpus(cgroup_root: Path = Path("/sys/fs/cgroup")) -> int:
    """The CPUs this process may really use: its affinity mask capped by the cgroup quota."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    limit = _cgroup_cpu_limit(cgroup_root)
    if limit is not None:
        cpus = min(cpus, max(1, math.ceil(limit)))
    return max(1, cpus)


def default_threads(cpus: int) -> int:
    """Half the usable CPUs, at least one."""
    return max(1, cpus // 2)


def _parse(value: str, name: str) -> int:
    try:
        threads = int(value)
    except ValueError:
        raise ValueError(f"{name}={value!r} is not a whole number of threads") from None
    if threads < 1:
        raise ValueError(f"{name}={value!r}: use at least 1 thread")
    return threads


def resolve_threads(
    requested: int | None = None,
    environ: dict[str, str] | None = None,
    cpus: int | None = None,
) -> ThreadPolicy:
    """Decide the thread count (see the module docstring for the order); a bad value raises
    ValueError naming where it came from."""
    env = os.environ if environ is None else environ
    usable = available_cpus() if cpus is None else cpus
    if requested is not None:
        if requested < 1:
            raise ValueError(f"--threads {requested}: use at least 1 thread")
        return ThreadPolicy(requested, "--threads", usable)
    for name in (THREADS_ENV, "OMP_NUM_THREADS"):
        value = env.get(name, "").strip()
        if value:
            source: Source = "ML_THREADS" if name == THREADS_ENV else "OMP_NUM_THREADS"
            return ThreadPolicy(_parse(value, name), source, usable)
    return ThreadPolicy(default_threads(usable), "default", usable)


def apply_threads(policy: ThreadPolicy) -> ThreadPolicy:
    """Make torch (when this environment has it), BLAS and future child processes use
    ``policy.threads``."""
    global _blas_limits
    # Also THREADS_ENV, so a later configure_threads() in this process (or a child) agrees
    # with a --threads given on the command line.
    for name in (THREADS_ENV, *_CHILD_ENV):
        os.environ[name] = str(policy.threads)
    # Imported by name: ml_core is also built for resolves without torch or threadpoolctl, and
    # a plain import would make Pants require them there.
    if "torch" in sys.modules or importlib.util.find_spec("torch") is not None:
        torch = importlib.import_module("torch")
        torch.set_num_threads(policy.threads)
        try:
            torch.set_num_interop_threads(policy.threads)
        except RuntimeError:
            pass  # settable only before the first parallel op; intra-op threads matter most
    if importlib.util.find_spec("threadpoolctl") is not None:
        threadpoolctl = importlib.import_module("threadpoolctl")
        _blas_limits = threadpoolctl.threadpool_limits(limits=policy.threads)
    return policy


def configure_threads(requested: int | None = None) -> ThreadPolicy:
    """Resolve and apply the policy; what every generated ``main`` calls before ``run``."""
    return apply_threads(resolve_threads(requested))
