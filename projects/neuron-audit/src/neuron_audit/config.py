"""The options of the ``audit`` command and its sub-commands, as frozen config dataclasses
(``ml_core.cli`` makes the flags).

Option groups shared by several commands are base classes; a command's config inherits the groups it
takes and calls each group's validation in its ``__post_init__``. The docstring under a field is its
``--help``.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Literal

from lm.presets import require_preset
from lm.pretrain import PretrainConfig
from ml_core.cli import (
    ConfigError,
    positional,
    require,
    require_non_negative,
    require_positive,
)
from neuron_audit.alerts import AlertRule, parse_rules
from neuron_audit.auditor import AuditSettings
from neuron_audit.hooks import KINDS, Kind
from neuron_audit.stats import DEFAULT_BINS, DEFAULT_RANGE, DEFAULT_THRESHOLD, StatsConfig
from neuron_audit.swap import ACTIVATION_NAMES, Activation
from neuron_audit.train import StripConfig


@dataclasses.dataclass(frozen=True)
class CommonOptions:
    """Output, text and run options of audit, swap and strip."""

    out: Path = Path("runs/neuron-audit")
    """Output directory."""

    corpus: str | None = None
    """Text: a .txt file or directory, a saved dataset, or 'stdlib' (the default)."""

    max_chars: int | None = None
    """Cap on corpus characters."""

    seed: int = 0
    """Seed of the corpus split, random weights and batches."""

    device: str | None = None
    """Device: cpu, cuda, cuda:N or mps (default: $ML_DEVICE, else the best available)."""

    quiet: bool = False
    """No progress bars."""

    def __post_init__(self) -> None:
        require_positive(self, "max_chars")


@dataclasses.dataclass(frozen=True)
class DataOptions(CommonOptions):
    """Which model to audit and on which tokens."""

    model: str | None = None
    """A save_pretrained directory, an lm preset (tiny, small, llama-tiny) or a Hub id.

    Default: runs/lm-tiny if it holds a pretrained model, else the tiny preset.
    """

    split: Literal["validation", "train"] = "validation"
    """Corpus split to audit on."""

    max_tokens: int = 20_000
    """Real (unpadded) tokens to audit."""

    batch_size: int = 8
    """Documents per forward pass."""

    max_length: int = 128
    """Tokens per row (longer documents are truncated)"""

    def __post_init__(self) -> None:
        CommonOptions.__post_init__(self)
        require_positive(self, "max_tokens", "batch_size", "max_length")


@dataclasses.dataclass(frozen=True)
class StatsOptions:
    """When a neuron fires, when it is dead, and the histogram bins."""

    threshold: float = DEFAULT_THRESHOLD
    """A neuron fires on a token when its activation is above this."""

    abs: bool = False
    """Fire when |activation| > threshold instead."""

    dead_fraction: float = 0.0
    """dead = fires on fewer than this fraction of tokens, in [0, 1) (0: never fires)"""

    bins: int = DEFAULT_BINS
    """Histogram bins."""

    hist_range: tuple[float, float] = DEFAULT_RANGE
    """Histogram range: LOW HIGH (values outside go to the edge bins)"""

    def __post_init__(self) -> None:
        require_non_negative(self, "threshold")
        require_positive(self, "bins")
        require(
            0.0 <= self.dead_fraction < 1.0,
            "dead_fraction",
            f"must be in [0, 1), got {self.dead_fraction!r}",
        )
        require(
            len(self.hist_range) == 2
            and all(math.isfinite(value) for value in self.hist_range)
            and self.hist_range[0] < self.hist_range[1],
            "hist_range",
            f"must be two finite numbers LOW HIGH with LOW < HIGH, got {list(self.hist_range)}",
        )

    def settings(self) -> AuditSettings:
        low, high = self.hist_range
        stats = StatsConfig(threshold=self.threshold, bins=self.bins, hist_range=(low, high))
        return AuditSettings(stats=stats, dead_fraction=self.dead_fraction, use_abs=self.abs)


@dataclasses.dataclass(frozen=True)
class AlertOptions:
    """What to capture and which alert rules to check."""

    kinds: tuple[Kind, ...] = KINDS
    """Capture points to audit."""

    alert: tuple[str, ...] = ()
    """Alert rules, e.g. 'mlp_post.dead_ratio > 0.2' or 'mean attn_out.dead_ratio >= 5%'; several
    after one --alert, or --alert repeated; exit 1 when one fires."""

    def __post_init__(self) -> None:
        require(len(self.kinds) > 0, "kinds", "name at least one capture point")
        try:
            self.rules()
        except ValueError as error:
            raise ConfigError("alert", str(error)) from None

    def rules(self) -> list[AlertRule]:
        return parse_rules(self.alert)


@dataclasses.dataclass(frozen=True)
class AuditConfig(DataOptions, StatsOptions, AlertOptions):
    """Audit a transformer for dead neurons: metrics.json, PNG plots, report.html."""

    def __post_init__(self) -> None:
        DataOptions.__post_init__(self)
        StatsOptions.__post_init__(self)
        AlertOptions.__post_init__(self)


@dataclasses.dataclass(frozen=True)
class SwapConfig(DataOptions, StatsOptions):
    """Swap the MLP activation (same weights, same data) and compare dead ratios."""

    out: Path = Path("runs/neuron-audit-swap")
    max_tokens: int = 10_000
    activations: tuple[Activation, ...] = ACTIVATION_NAMES
    """Activations to swap in."""

    def __post_init__(self) -> None:
        DataOptions.__post_init__(self)
        StatsOptions.__post_init__(self)
        require(len(self.activations) > 0, "activations", "name at least one activation")


@dataclasses.dataclass(frozen=True)
class StripCommandConfig(StripConfig, CommonOptions):
    """Train a model that develops dead neurons (ReLU MLP, high learning rate) with and without
    Synaptic Stripping; compare dead ratio and validation loss."""

    out: Path = Path("runs/neuron-audit-strip")

    def __post_init__(self) -> None:
        StripConfig.__post_init__(self)
        CommonOptions.__post_init__(self)


@dataclasses.dataclass(frozen=True)
class MonitorConfig(PretrainConfig, StatsOptions, AlertOptions):
    """Pretrain a model with libs/lm's pretraining (every pretrain option is accepted) while an
    audit callback logs dead ratios every N steps (audit.jsonl, monitor.png) and checks --alert
    rules; the model, the pretraining outputs and the audit logs all go to --out."""

    out: Path = Path("runs/neuron-audit-monitor")
    every: int = 50
    """Log dead ratios every N steps."""

    def __post_init__(self) -> None:
        PretrainConfig.__post_init__(self)
        StatsOptions.__post_init__(self)
        AlertOptions.__post_init__(self)
        require_positive(self, "every")

    def pretrain_config(self) -> PretrainConfig:
        """The pretraining part of this config."""
        fields = dataclasses.fields(PretrainConfig)
        return PretrainConfig(**{field.name: getattr(self, field.name) for field in fields})


@dataclasses.dataclass(frozen=True)
class CompareConfig:
    """Train the same preset from the same initial weights on the same batches with each MLP
    activation (for each learning rate and seed); record the dead ratio and validation loss after
    every epoch (compare.json, compare_dead_ratio.png, compare_loss.png, activation_shapes.png)."""

    out: Path = Path("runs/neuron-audit-compare")
    """Output directory."""

    preset: str = "tiny"
    """Lm preset to train (random initial weights, shared by every activation of a seed)"""

    activations: tuple[Activation, ...] = ACTIVATION_NAMES
    """MLP activations to train with."""

    lrs: tuple[float, ...] = (2e-2,)
    """AdamW learning rates: the default is high (it is what kills ReLU units); add a low one, e.g.
    --lrs 0.001 0.02, to see the difference (twice the time)"""

    seeds: tuple[int, ...] = (0, 1, 2)
    """Seeds: initial weights and batch order (one run per seed, activation and rate)"""

    epochs: int = 4
    """Epochs; dead ratio and validation loss are measured after each."""

    steps_per_epoch: int = 25
    """Optimizer steps per epoch."""

    batch_size: int = 16
    """Blocks per step."""

    block_size: int = 64
    """Tokens per block."""

    val_blocks: int = 32
    """Validation blocks the dead ratio and loss are measured on."""

    vocab_size: int = 1024
    """Vocabulary of the BPE tokenizer trained on the corpus."""

    threshold: float = DEFAULT_THRESHOLD
    """A neuron fires on a token when its activation is above this."""

    dead_fraction: float = 0.0
    """dead = fires on fewer than this fraction of tokens, in [0, 1) (0, the article's definition:
    never fires)"""

    signed: bool = False
    """Fire = act > threshold (dead = never positive) instead of the article's |act| > threshold
    (dead = outputs about zero on every token); both are recorded either way"""

    corpus: str | None = None
    """Text: a .txt file or directory, a saved dataset, or 'stdlib' (the default)."""

    max_chars: int | None = None
    """Cap on corpus characters."""

    device: str | None = None
    """Device: cpu, cuda, cuda:N or mps (default: $ML_DEVICE, else the best available)."""

    quiet: bool = False
    """No progress bars."""

    def __post_init__(self) -> None:
        require_preset(self, "preset")
        require_positive(
            self,
            "epochs",
            "steps_per_epoch",
            "batch_size",
            "block_size",
            "val_blocks",
            "vocab_size",
            "max_chars",
        )
        require_non_negative(self, "threshold")
        require(len(self.activations) > 0, "activations", "name at least one activation")
        require(
            len(set(self.activations)) == len(self.activations),
            "activations",
            f"name each activation once, got {list(self.activations)}",
        )
        require(len(self.seeds) > 0, "seeds", "name at least one seed")
        require(
            len(set(self.seeds)) == len(self.seeds),
            "seeds",
            f"name each seed once, got {list(self.seeds)}",
        )
        require(
            len(self.lrs) > 0 and all(math.isfinite(lr) and lr > 0 for lr in self.lrs),
            "lrs",
            f"must be one or more positive numbers, got {list(self.lrs)}",
        )
        require(
            len(set(self.lrs)) == len(self.lrs), "lrs", f"name each rate once, got {list(self.lrs)}"
        )
        require(
            0.0 <= self.dead_fraction < 1.0,
            "dead_fraction",
            f"must be in [0, 1), got {self.dead_fraction!r}",
        )

    def settings(self) -> AuditSettings:
        return AuditSettings(
            stats=StatsConfig(threshold=self.threshold),
            dead_fraction=self.dead_fraction,
            use_abs=not self.signed,
        )


@dataclasses.dataclass(frozen=True)
class RunsConfig:
    """Compare several runs: neuron health (dead ratio per kind) beside validation loss, from the
    folders audit, monitor, compare and strip wrote (runs.json, runs.png, a Markdown table)."""

    runs: tuple[str, ...] = positional(help="run folders to compare")
    out: Path = Path("runs/neuron-audit-runs")
    """Output directory."""
