import subprocess
from pathlib import Path

import pytest

from ml_core.run_metadata import collect_run_metadata, git_state, package_versions


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def test_git_state_reports_sha_and_dirty_flag(tmp_path: Path) -> None:
    _git(tmp_path, "init", "-q")
    (tmp_path / "file.txt").write_text("one")
    _git(tmp_path, "add", "file.txt")
    _git(tmp_path, "commit", "-q", "-m", "first")
    head = _git(tmp_path, "rev-parse", "HEAD")

    assert git_state(tmp_path) == (head, False)
    (tmp_path / "file.txt").write_text("two")
    assert git_state(tmp_path) == (head, True)


def test_git_state_outside_a_repository_uses_env_var(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    monkeypatch.delenv("GIT_COMMIT", raising=False)
    assert git_state(tmp_path) == (None, None)
    monkeypatch.setenv("GIT_COMMIT", "abc123")
    assert git_state(tmp_path) == ("abc123", None)


def test_package_versions_skips_missing_packages() -> None:
    versions = package_versions(["numpy", "surely-not-an-installed-package"])
    assert set(versions) == {"numpy"}
    assert versions["numpy"][0].isdigit()


def test_collect_run_metadata_is_json_ready(tmp_path: Path) -> None:
    metadata = collect_run_metadata(packages=["numpy"], cwd=tmp_path).to_dict()
    assert metadata["timestamp_utc"].endswith("+00:00")
    assert metadata["python_version"].startswith("3.11")
    assert "numpy" in metadata["package_versions"]
