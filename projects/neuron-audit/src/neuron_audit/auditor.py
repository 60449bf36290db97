"""Forward hooks that feed :class:`~neuron_audit.stats.NeuronStats`, with padding masked out."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle
from tqdm import tqdm

from neuron_audit.hooks import KINDS, CapturePoint, Kind, find_capture_points, flatten_tokens
from neuron_audit.stats import NeuronStats, StatsConfig, summarise

Batch = Mapping[str, torch.Tensor]

#: Capture points that are linear projections, not activation outputs: a negative value carries as
#: much signal as a positive one, so "fires" always means ``|act| > threshold`` there (the signed
#: rule would call a channel that is always negative "dead").
ABS_ONLY_KINDS: frozenset[str] = frozenset({"attn_out"})


def fire_rule(kind: str, use_abs: bool) -> str:
    """The firing rule a capture point of ``kind`` is judged by."""
    return "|act| > threshold" if use_abs or kind in ABS_ONLY_KINDS else "act > threshold"


class NeuronAuditor:
    """Registers hooks on ``points`` and accumulates statistics while
    enabled.

    Use as a context manager (hooks are removed on exit). Before each
    forward pass call :meth:`set_mask` with the batch's attention mask
    (``1`` = real token); activations shaped ``(batch, seq, width)``
    are then reduced to the real tokens. Without a mask every token
    counts. With ``training_only`` only forward passes in training mode
    count, so a training loop's evaluation passes are left out.
    """

    def __init__(
        self,
        model: nn.Module,
        points: list[CapturePoint] | None = None,
        config: StatsConfig = StatsConfig(),
        kinds: tuple[Kind, ...] = KINDS,
        training_only: bool = False,
    ) -> None:
        self.model = model
        self.training_only = training_only
        self.points = points if points is not None else find_capture_points(model, kinds)
        self.config = config
        self.stats: dict[str, NeuronStats] = {}
        self._kind = {point.key: point.kind for point in self.points}
        self.enabled = True
        self._mask_shape: torch.Size | None = None
        self._token_index: torch.Tensor | None = None
        self._handles: list[RemovableHandle] = []

    def __enter__(self) -> NeuronAuditor:
        self.attach()
        return self

    def __exit__(self, *exc: object) -> None:
        self.detach()

    def attach(self) -> None:
        if self._handles:
            return
        for point in self.points:
            self._handles.append(self._register(point))

    def detach(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def _register(self, point: CapturePoint) -> RemovableHandle:
        key = point.key
        if point.side == "input":

            def pre_hook(module: nn.Module, args: tuple[Any, ...]) -> None:
                if args and isinstance(args[0], torch.Tensor):
                    self.observe(key, args[0])

            return point.module.register_forward_pre_hook(pre_hook)

        def hook(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
            if isinstance(output, torch.Tensor):
                self.observe(key, output)

        return point.module.register_forward_hook(hook)

    def set_mask(self, attention_mask: torch.Tensor | None) -> None:
        """The ``(batch, seq)`` mask of the next forward pass; ``None`` counts every token."""
        if attention_mask is None:
            self._mask_shape, self._token_index = None, None
            return
        mask = attention_mask.bool()
        self._mask_shape = mask.shape
        # Once per batch, not once per hook: the real tokens' flat positions (None = all real).
        self._token_index = None if bool(mask.all()) else mask.reshape(-1).nonzero().squeeze(1)

    def observe(self, key: str, activation: torch.Tensor) -> None:
        """Add one captured activation to the statistics of ``key``."""
        if not self.enabled or (self.training_only and not self.model.training):
            return
        values = flatten_tokens(activation.detach())
        index = self._token_index
        if index is not None and activation.shape[:-1] == self._mask_shape:
            values = values.index_select(0, index.to(values.device))
        stats = self.stats.get(key)
        if stats is None:
            config = self.config
            if self._kind.get(key) in ABS_ONLY_KINDS and not config.count_abs:
                config = dataclasses.replace(config, count_abs=True)
            stats = NeuronStats(values.shape[-1], config).to(values.device)
            self.stats[key] = stats
        stats.update(values)

    def reset(self) -> None:
        for stats in self.stats.values():
            stats.reset()

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Run forward passes that should not count (e.g. a training step)."""
        previous, self.enabled = self.enabled, False
        try:
            yield
        finally:
            self.enabled = previous

    def tokens(self) -> int:
        return max((s.tokens for s in self.stats.values()), default=0)

    def state_bytes(self) -> int:
        return sum(stats.state_bytes() for stats in self.stats.values())

    def layers(self, dead_fraction: float = 0.0, use_abs: bool = False) -> list[dict[str, Any]]:
        """Metrics of every capture point that saw activations, in point order.

        ``use_abs`` applies the ``|act|`` rule everywhere; ``attn_out`` always uses it (see
        :data:`ABS_ONLY_KINDS`). Each row names its ``fire_rule``.
        """
        rows: list[dict[str, Any]] = []
        for point in self.points:
            stats = self.stats.get(point.key)
            if stats is None:
                continue
            row = {"layer": point.layer, "kind": point.kind, "module": point.name}
            abs_rule = use_abs or point.kind in ABS_ONLY_KINDS
            row["fire_rule"] = fire_rule(point.kind, use_abs)
            row.update(summarise(stats, dead_fraction, abs_rule))
            rows.append(row)
        return rows


@dataclasses.dataclass(frozen=True)
class AuditSettings:
    """Thresholds of an audit: ``dead_fraction`` (dead = fires on fewer than
    this fraction of tokens, 0 = never fires) and whether ``|act|`` counts
    as firing."""

    stats: StatsConfig = StatsConfig()
    dead_fraction: float = 0.0
    use_abs: bool = False


def _model_device(model: nn.Module) -> torch.device:
    parameter = next(model.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


@torch.no_grad()
def run_audit(
    model: nn.Module,
    batches: Iterable[Batch],
    settings: AuditSettings = AuditSettings(),
    *,
    kinds: tuple[Kind, ...] = KINDS,
    progress: bool = False,
    total: int | None = None,
) -> list[dict[str, Any]]:
    """Audit ``model`` on ``batches`` of ``input_ids`` (+ ``attention_mask``); return per-layer
    metrics.

    The model is put in eval mode for the audit and restored after.
    """
    device = _model_device(model)
    was_training = model.training
    model.eval()
    try:
        with NeuronAuditor(model, config=settings.stats, kinds=kinds) as auditor:
            for batch in tqdm(
                batches, desc="audit", unit="batch", disable=not progress, total=total
            ):
                inputs = {name: tensor.to(device) for name, tensor in batch.items()}
                auditor.set_mask(inputs.get("attention_mask"))
                model(**inputs)
    finally:
        model.train(was_training)
    if auditor.tokens() == 0:
        raise ValueError("The audit saw no tokens: the data is empty or fully padded.")
    return auditor.layers(settings.dead_fraction, settings.use_abs)
