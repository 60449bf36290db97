import random
import time

import numpy as np
import pytest

from ml_core.seeding import seed_everything
from ml_core.timer import Timer


def test_same_seed_gives_same_python_and_numpy_draws() -> None:
    seed_everything(7)
    first = (random.random(), np.random.rand(3).tolist())
    seed_everything(7)
    second = (random.random(), np.random.rand(3).tolist())
    seed_everything(8)
    third = (random.random(), np.random.rand(3).tolist())
    assert first == second
    assert first != third


def test_seed_out_of_range_is_rejected() -> None:
    with pytest.raises(ValueError, match="seed must be"):
        seed_everything(-1)


def test_timer_measures_and_freezes_after_stop() -> None:
    with Timer() as timer:
        time.sleep(0.02)
    elapsed = timer.elapsed
    assert 0.015 < elapsed < 1.0
    time.sleep(0.01)
    assert timer.elapsed == elapsed


def test_timer_stop_before_start_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="before Timer.start"):
        Timer().stop()
