from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import tiny_cnn

from adversarial.models import DigitMLP
from adversarial.poisoning import BackdoorConfig, add_trigger, attack_success_rate, poison
from adversarial.privacy import agreement, extract, membership_inference
from ml_core.cli import ConfigError
from vision.data import DigitData, Split
from vision.model import DigitCNN
from vision.training import FitConfig, fit


def test_poison_triggers_and_relabels_exactly_the_asked_fraction(digits: DigitData) -> None:
    config = BackdoorConfig(fraction=0.05, target=3, patch=2, seed=0)
    poisoned, indices = poison(digits.train, config)
    assert len(indices) == int(0.05 * len(digits.train))
    assert (digits.train.labels[indices] != 3).all()  # only other classes are relabelled
    assert (poisoned.labels[indices] == 3).all()
    assert (poisoned.images[indices][:, -2:, -2:] == 1.0).all()
    untouched = np.setdiff1d(np.arange(len(digits.train)), indices)
    assert np.array_equal(poisoned.images[untouched], digits.train.images[untouched])
    assert np.array_equal(poisoned.labels[untouched], digits.train.labels[untouched])
    assert add_trigger(digits.test.images, config).max() <= 1.0


def test_a_backdoored_model_obeys_the_trigger(digits: DigitData, trained_cnn: DigitCNN) -> None:
    config = BackdoorConfig(fraction=0.05, seed=0)
    poisoned, _ = poison(digits.train, config)
    model = tiny_cnn()
    fit(model, poisoned, digits.validation, FitConfig(epochs=4, seed=0), progress=False)
    assert attack_success_rate(model, digits.test, config) > 0.5
    assert attack_success_rate(trained_cnn, digits.test, config) < 0.3


def test_bad_backdoor_settings_name_the_field() -> None:
    with pytest.raises(ConfigError, match="fraction: must be in"):
        BackdoorConfig(fraction=0.0)
    with pytest.raises(ConfigError, match="target: must be a class"):
        BackdoorConfig(target=10)


def test_membership_inference_auc(digits: DigitData, trained_cnn: DigitCNN) -> None:
    # The same examples as members and non-members: no signal, AUC exactly 0.5.
    same = membership_inference(trained_cnn, digits.test, digits.test)
    assert same.auc == pytest.approx(0.5)
    assert same.advantage == pytest.approx(0.0)
    # A model that memorised 60 examples separates them from unseen ones.
    members = Split(digits.train.images[:60], digits.train.labels[:60])
    overfit = tiny_cnn()
    config = FitConfig(
        epochs=30, batch_size=16, weight_decay=0.0, shift_pixels=0, early_stopping=False, seed=0
    )
    fit(overfit, members, members, config, progress=False)
    leak = membership_inference(overfit, members, digits.test)
    assert leak.auc > 0.6
    assert leak.member_loss < leak.nonmember_loss


def test_extraction_agreement_grows_with_queries(digits: DigitData, trained_cnn: DigitCNN) -> None:
    torch.manual_seed(0)
    rows = extract(
        trained_cnn,
        digits.train.images,
        [20, 600],
        digits.test.images,
        lambda: DigitMLP(),
        FitConfig(epochs=15, batch_size=32, seed=0),
    )
    assert [row["queries"] for row in rows] == [20, 600]
    assert rows[1]["agreement"] > rows[0]["agreement"]
    assert rows[1]["agreement"] > 0.6
    assert agreement(trained_cnn, trained_cnn, digits.test.images) == 1.0
    with pytest.raises(ValueError, match="pool holds"):
        extract(
            trained_cnn, digits.test.images[:5], [10], digits.test.images, DigitMLP, FitConfig()
        )
