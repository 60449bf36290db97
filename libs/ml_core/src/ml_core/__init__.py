"""Shared plumbing for every ML project in the monorepo.

Seeding, device choice, timing, run metadata and atomic outputs: the pieces that make a saved model
or metrics file reproducible and traceable to a commit.
"""

from ml_core.atomic import atomic_output, write_json_atomic
from ml_core.run_metadata import RunMetadata, collect_run_metadata
from ml_core.seeding import seed_everything
from ml_core.timer import Timer

__all__ = [
    "RunMetadata",
    "Timer",
    "atomic_output",
    "collect_run_metadata",
    "seed_everything",
    "write_json_atomic",
]
