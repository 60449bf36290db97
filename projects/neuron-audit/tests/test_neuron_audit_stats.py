import math

import pytest
import torch

from neuron_audit.stats import NeuronStats, StatsConfig, dead_mask, summarise


def test_fire_counts_histogram_and_extremes_are_exact() -> None:
    stats = NeuronStats(3, StatsConfig(threshold=0.5, bins=4, hist_range=(-2.0, 2.0)))
    stats.update(torch.tensor([[1.0, -1.0, 0.0], [0.6, 0.5, -3.0]]))
    stats.update(torch.tensor([[0.0, 2.0, 0.4]]))

    assert stats.tokens == 3
    assert stats.fire_count.tolist() == [2, 1, 0]  # strictly above 0.5
    assert stats.abs_fire_count.tolist() == [2, 2, 1]  # |-1| and |-3| also count
    # bins [-2,-1) [-1,0) [0,1) [1,2]; -3 is clamped into the first bin, 2.0 into the last
    assert stats.histogram.tolist() == [1, 1, 5, 2]
    assert stats.minimum == -3.0 and stats.maximum == 2.0
    assert stats.mean == pytest.approx((1 - 1 + 0 + 0.6 + 0.5 - 3 + 0 + 2 + 0.4) / 9)
    assert stats.frequency().tolist() == pytest.approx([2 / 3, 1 / 3, 0.0])


def test_memory_is_constant_in_the_number_of_tokens() -> None:
    stats = NeuronStats(16)
    stats.update(torch.randn(10, 16))
    before = stats.state_bytes()
    for _ in range(50):
        stats.update(torch.randn(1000, 16))
    assert stats.tokens == 50_010
    assert stats.state_bytes() == before
    assert int(stats.histogram.sum()) == 50_010 * 16


def test_dead_mask_default_means_never_fired() -> None:
    frequency = torch.tensor([0.0, 0.005, 0.02, 1.0], dtype=torch.float64)
    assert dead_mask(frequency).tolist() == [True, False, False, False]
    assert dead_mask(frequency, 0.01).tolist() == [True, True, False, False]
    with pytest.raises(ValueError, match="dead_fraction"):
        dead_mask(frequency, 1.0)


def test_summarise_reports_dead_neurons_and_reset_clears() -> None:
    stats = NeuronStats(4)
    stats.update(torch.tensor([[1.0, 0.0, -1.0, 1.0], [1.0, 0.0, 0.0, 0.0]]))
    summary = summarise(stats)
    assert summary["dead_neurons"] == [1, 2]
    assert summary["dead_ratio"] == 0.5
    assert summary["fire_frequency"] == [1.0, 0.0, 0.0, 0.5]
    assert summarise(stats, use_abs=True)["dead_neurons"] == [1]
    stats.reset()
    assert stats.tokens == 0 and stats.mean is None and math.isinf(stats.minimum)


def test_bad_shapes_and_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"shape \(tokens, 3\)"):
        NeuronStats(3).update(torch.zeros(2, 4))
    with pytest.raises(ValueError, match="threshold"):
        StatsConfig(threshold=-1.0)
    with pytest.raises(ValueError, match="hist_range"):
        StatsConfig(hist_range=(1.0, 1.0))
