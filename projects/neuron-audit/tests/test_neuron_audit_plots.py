from pathlib import Path

import numpy as np
import pytest
from transformers import GPT2Config, GPT2LMHeadModel

from neuron_audit.plots import dead_ratio_figure, plot_dead_ratios, series_style
from neuron_audit.swap import ACTIVATION_NAMES
from neuron_audit.train import quiet_loss_type

PNG = b"\x89PNG\r\n\x1a\n"


def test_every_series_gets_its_own_marker_line_style_and_offset() -> None:
    styles = [series_style(i, 7) for i in range(7)]
    assert len({(s["marker"], s["linestyle"]) for s in styles}) == 7
    offsets = [s["offset"] for s in styles]
    assert offsets == sorted(offsets) and len(set(offsets)) == 7
    assert offsets[0] == pytest.approx(-offsets[-1]) and max(abs(o) for o in offsets) < 0.5
    assert series_style(0, 1)["offset"] == 0.0


def test_identical_series_are_all_drawn_with_whole_layer_ticks(tmp_path: Path) -> None:
    series: dict[str, list[float]] = {name: [0.0, 0.1] for name in ACTIVATION_NAMES}
    axes = dead_ratio_figure(series).axes[0]
    lines = axes.get_lines()
    assert len(lines) == 7
    xs = {np.asarray(line.get_xdata(), dtype=float).tobytes() for line in lines}
    assert len(xs) == 7  # no series drawn on top of another
    assert [float(tick) for tick in axes.get_xticks()] == [0.0, 1.0]  # whole layers only
    assert plot_dead_ratios(series, tmp_path / "dead.png").read_bytes()[:8] == PNG


def test_the_causal_lm_loss_is_named_so_transformers_does_not_warn() -> None:
    # A model built outside lm.build_model (which names the loss itself).
    model = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=8, n_head=2, vocab_size=16))
    assert getattr(model, "loss_type", None) is None  # what triggers the loss_type=None warning
    quiet_loss_type(model)
    assert getattr(model, "loss_type") == "ForCausalLM"
