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


def test_histogram_matches_torch_histc_with_out_of_range_values_clamped() -> None:
    generator = torch.Generator().manual_seed(0)
    values = torch.randn(300, 40, generator=generator) * 3  # many values beyond +-5
    config = StatsConfig(bins=64, hist_range=(-5.0, 5.0))
    stats = NeuronStats(40, config)
    stats.update(values[:100])
    stats.update(values[100:])
    expected = torch.histc(values.clamp(-5.0, 5.0), bins=64, min=-5.0, max=5.0)
    assert stats.histogram.tolist() == expected.to(torch.int64).tolist()


def test_nan_values_are_counted_and_kept_out_of_every_other_statistic() -> None:
    stats = NeuronStats(2, StatsConfig(threshold=0.5, bins=2, hist_range=(-1.0, 1.0)))
    stats.update(torch.tensor([[float("nan"), 1.0], [-2.0, float("nan")]]))
    stats.update(torch.tensor([[0.0, 0.75]]))

    assert stats.nan_count == 2
    assert stats.histogram.tolist() == [1, 3]  # -2 clamped low; 0, 0.75, 1.0 high
    assert stats.fire_count.tolist() == [0, 2]  # NaN > 0.5 is False
    # a batch holding a NaN does not move min/max; the NaN count says why they may be off
    assert stats.minimum == 0.0 and stats.maximum == 0.75
    assert stats.mean == pytest.approx((1.0 - 2.0 + 0.0 + 0.75) / 4)
    summary = summarise(stats)
    assert summary["nan_count"] == 2 and summary["min"] == 0.0


def test_abs_rule_needs_the_abs_counter() -> None:
    stats = NeuronStats(2, StatsConfig(count_abs=False))
    stats.update(torch.tensor([[-1.0, 1.0]]))
    assert summarise(stats)["dead_neurons"] == [0]
    with pytest.raises(ValueError, match="count_abs"):
        summarise(stats, use_abs=True)
