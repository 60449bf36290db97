"""Run metadata that ties a saved model or metrics file to the code that produced it."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import platform
import subprocess
import sys
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

# Set by CI or a Docker build (ARG GIT_COMMIT) where there is no .git to ask.
GIT_COMMIT_ENV_VAR = "GIT_COMMIT"
DEFAULT_PACKAGES = ("numpy", "torch", "scikit-learn", "transformers")


@dataclasses.dataclass(frozen=True)
class RunMetadata:
    """Where, when and from which commit a run came."""

    git_sha: str | None
    git_dirty: bool | None
    timestamp_utc: str
    python_version: str
    platform: str
    argv: list[str]
    package_versions: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        completed = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return completed.stdout.strip() if completed.returncode == 0 else None


def git_state(cwd: str | os.PathLike[str] | None = None) -> tuple[str | None, bool | None]:
    """Return (commit SHA, dirty flag) of the repository containing ``cwd``.

    Falls back to ``$GIT_COMMIT`` (dirty unknown) outside a repository, and to (None, None) when
    neither is available.
    """
    directory = Path(cwd) if cwd is not None else Path.cwd()
    sha = _git(["rev-parse", "HEAD"], directory)
    if sha is None:
        return os.environ.get(GIT_COMMIT_ENV_VAR) or None, None
    status = _git(["status", "--porcelain", "--untracked-files=no"], directory)
    return sha, (None if status is None else bool(status))


def package_versions(packages: Iterable[str]) -> dict[str, str]:
    """Installed versions of ``packages``; packages that are not installed are left out."""
    versions = {}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def collect_run_metadata(
    packages: Iterable[str] = DEFAULT_PACKAGES, cwd: str | os.PathLike[str] | None = None
) -> RunMetadata:
    """Collect the metadata of the current run."""
    sha, dirty = git_state(cwd)
    return RunMetadata(
        git_sha=sha,
        git_dirty=dirty,
        timestamp_utc=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        python_version=platform.python_version(),
        platform=platform.platform(),
        argv=list(sys.argv),
        package_versions=package_versions(packages),
    )
