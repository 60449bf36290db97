import pytest
import torch

from ml_core.device import available_devices, select_device
from ml_core.seeding import seed_everything


def test_auto_picks_the_best_available_device(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ML_DEVICE", raising=False)
    assert select_device().type == available_devices()[0]
    assert available_devices()[-1] == "cpu"


def test_env_var_and_argument_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ML_DEVICE", "cpu")
    assert select_device() == torch.device("cpu")
    assert select_device("CPU") == torch.device("cpu")


def test_unavailable_or_unknown_device_gives_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="not available here; available: .*cpu"):
        select_device("cuda")
    with pytest.raises(ValueError, match="Unknown device 'tpu'"):
        select_device("tpu")


def test_seed_everything_seeds_torch() -> None:
    seed_everything(3)
    first = torch.rand(4)
    seed_everything(3)
    assert torch.equal(first, torch.rand(4))
