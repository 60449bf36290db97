from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from ml_core.cli import Command, make_main
from ml_core.threads import (
    THREADS_ENV,
    ThreadPolicy,
    available_cpus,
    default_threads,
    resolve_threads,
)


def test_the_flag_beats_the_environment_which_beats_the_default() -> None:
    env = {THREADS_ENV: "3", "OMP_NUM_THREADS": "5"}
    assert resolve_threads(2, env, cpus=8) == ThreadPolicy(2, "--threads", 8)
    assert resolve_threads(None, env, cpus=8) == ThreadPolicy(3, "ML_THREADS", 8)
    assert resolve_threads(None, {"OMP_NUM_THREADS": "5"}, cpus=8).source == "OMP_NUM_THREADS"
    assert resolve_threads(None, {}, cpus=8) == ThreadPolicy(4, "default", 8)


@pytest.mark.parametrize(("cpus", "threads"), [(1, 1), (2, 1), (3, 1), (8, 4)])
def test_the_default_leaves_half_the_cpus_to_other_work(cpus: int, threads: int) -> None:
    assert default_threads(cpus) == threads


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_a_bad_environment_value_is_named(value: str) -> None:
    with pytest.raises(ValueError, match=f"ML_THREADS={value!r}"):
        resolve_threads(None, {THREADS_ENV: value}, cpus=2)


def test_a_cgroup_quota_caps_the_usable_cpus(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert available_cpus(tmp_path) <= 2
    (tmp_path / "cpu.max").write_text("50000 100000\n")
    assert available_cpus(tmp_path) == 1
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert available_cpus(tmp_path) >= 1


@dataclasses.dataclass(frozen=True)
class Probe:
    """Report the thread count a command runs with."""

    label: str = "x"


def _torch_threads(config: Probe) -> int:
    return torch.get_num_threads()


def test_every_generated_main_applies_the_policy(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[int] = []
    main = make_main(
        Command(Probe, lambda config: seen.append(_torch_threads(config))), prog="probe"
    )
    monkeypatch.setenv(THREADS_ENV, "2")
    assert main([]) == 0 and seen[-1] == 2
    assert main(["--threads", "1"]) == 0 and seen[-1] == 1
    assert main(["--help"]) == 0 and "--threads N" in capsys.readouterr().out
    monkeypatch.setenv(THREADS_ENV, "none")
    assert main([]) == 2
    assert "ML_THREADS='none' is not a whole number" in capsys.readouterr().err
