from __future__ import annotations

import numpy as np
import pytest

from adversarial.art_compare import (
    art_copycat,
    art_membership_scores,
    art_poison,
    art_trigger,
    compare_backdoor,
    compare_membership_inference,
)
from adversarial.models import DigitMLP
from adversarial.poisoning import BackdoorConfig, add_trigger, poison
from vision.data import DigitData, Split
from vision.model import DigitCNN
from vision.training import FitConfig


def _head(split: Split, count: int) -> Split:
    return Split(split.images[:count], split.labels[:count])


def test_art_backdoor_stamps_our_patch_on_the_same_images(digits: DigitData) -> None:
    config = BackdoorConfig(fraction=0.05, target=3, patch=2, seed=0)
    images = digits.test.images[:40]
    ours, theirs = add_trigger(images, config), art_trigger(images, config)
    assert theirs.shape == ours.shape and theirs.dtype == np.float32
    # The patch is pixel for pixel the same; elsewhere ART only rounds down to 8 bits.
    assert np.array_equal(theirs[:, -2:, -2:], ours[:, -2:, -2:])
    assert (theirs[:, -2:, -2:] == 1.0).all()
    assert np.abs(theirs - ours).max() < 1 / 255
    poisoned, indices = poison(digits.train, config)
    art_poisoned = art_poison(digits.train, indices, config)
    assert np.array_equal(art_poisoned.labels, poisoned.labels)
    untouched = np.setdiff1d(np.arange(len(digits.train)), indices)
    assert np.array_equal(art_poisoned.images[untouched], digits.train.images[untouched])


def test_compare_backdoor_reports_both_models(digits: DigitData) -> None:
    config = BackdoorConfig(fraction=0.1, seed=0)
    train = _head(digits.train, 200)
    _, indices = poison(train, config)
    result = compare_backdoor(
        train,
        _head(digits.validation, 50),
        _head(digits.test, 50),
        indices,
        config,
        FitConfig(epochs=1, seed=0),
        (1.0, 0.9),
        description="test",
    )
    for value in (result.art_attack_success, result.art_clean_accuracy):
        assert 0.0 <= value <= 1.0
    assert 0.0 < result.max_off_patch_pixel_difference < 1 / 255
    assert result.agrees == (
        abs(result.art_attack_success - 1.0) <= result.tolerance
        and abs(result.art_clean_accuracy - 0.9) <= result.tolerance
    )


def test_art_membership_inference_gives_one_probability_per_record(
    digits: DigitData, trained_cnn: DigitCNN
) -> None:
    members, nonmembers = _head(digits.train, 40), _head(digits.test, 40)
    for input_type in ("loss", "prediction"):
        scores = art_membership_scores(
            trained_cnn,
            _head(members, 20),
            _head(nonmembers, 20),
            Split(members.images[20:], members.labels[20:]),
            Split(nonmembers.images[20:], nonmembers.labels[20:]),
            input_type,
        )
        assert scores.shape == (40,)
        assert ((scores >= 0.0) & (scores <= 1.0)).all()
    result = compare_membership_inference(trained_cnn, members, nonmembers)
    assert result["evaluated_members"] == result["evaluated_nonmembers"] == 20
    for name, value in result.items():
        if name.endswith("_auc"):
            assert 0.0 <= value <= 1.0


def test_art_copycat_agreement_grows_with_the_query_budget(
    digits: DigitData, trained_cnn: DigitCNN
) -> None:
    victim = trained_cnn
    rows = art_copycat(
        victim,
        digits.train.images,
        [20, 400],
        digits.test.images,
        lambda: DigitMLP(8),
        FitConfig(epochs=10, seed=0),
    )
    assert [row["queries"] for row in rows] == [20, 400]
    assert all(0.0 <= row["agreement"] <= 1.0 for row in rows)
    assert rows[1]["agreement"] >= rows[0]["agreement"]
    with pytest.raises(ValueError, match="pool holds"):
        art_copycat(
            victim, digits.train.images[:5], [10], digits.test.images, DigitMLP, FitConfig()
        )
