"""An audit callback for any training loop: dead ratios every N steps as JSON lines, plus alerts."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import nn

from neuron_audit.alerts import AlertRule, check_alerts
from neuron_audit.auditor import AuditSettings, NeuronAuditor
from neuron_audit.hooks import KINDS, Kind
from neuron_audit.metrics import dead_ratios


class AuditCallback:
    """Watches the training forward passes of ``model`` through hooks.

    Call :meth:`on_step_end` after every optimiser step. Every ``every_n_steps`` steps it appends
    one JSON line to ``log_path`` with the dead ratio per layer and kind over the tokens seen since
    the last line, checks ``rules`` (alerts go to ``alerts_path``), and starts counting afresh.
    Memory stays constant. Forward passes in eval mode (a loop's validation) are not counted. Call
    :meth:`close` (or use it as a context manager) to remove the hooks.

    It is also an ``lm.pretrain.PretrainCallback``: pass ``model=None`` and hand it to
    ``lm.pretrain.run(args, callbacks=[...])``, which calls :meth:`on_train_begin` with the model
    and :meth:`on_train_end`.
    """

    def __init__(
        self,
        model: nn.Module | None,
        log_path: str | os.PathLike[str],
        *,
        every_n_steps: int = 100,
        rules: Sequence[AlertRule] = (),
        alerts_path: str | os.PathLike[str] | None = None,
        settings: AuditSettings = AuditSettings(),
        kinds: tuple[Kind, ...] = KINDS,
    ) -> None:
        if every_n_steps < 1:
            raise ValueError(f"every_n_steps must be at least 1, got {every_n_steps}.")
        self.log_path = Path(log_path)
        self.every_n_steps = every_n_steps
        self.rules = list(rules)
        self.alerts_path = Path(alerts_path) if alerts_path is not None else None
        self.settings = settings
        self.kinds = kinds
        self.alerts: list[dict[str, Any]] = []
        self.records: list[dict[str, Any]] = []
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._auditor: NeuronAuditor | None = None
        if model is not None:
            self.on_train_begin(model)

    @property
    def auditor(self) -> NeuronAuditor:
        if self._auditor is None:
            raise RuntimeError("AuditCallback has no model yet: call on_train_begin(model).")
        return self._auditor

    def on_train_begin(self, model: nn.Module) -> None:
        """Hook ``model`` (done by the constructor when it was given one)."""
        self.close()
        self._auditor = NeuronAuditor(
            model, config=self.settings.stats, kinds=self.kinds, training_only=True
        )
        self._auditor.attach()

    def on_train_end(self) -> None:
        self.close()

    def __enter__(self) -> AuditCallback:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._auditor is not None:
            self._auditor.detach()

    def set_mask(self, attention_mask: Any) -> None:
        """Pass the next batch's attention mask when batches are padded."""
        self.auditor.set_mask(attention_mask)

    def on_step_end(self, step: int) -> dict[str, Any] | None:
        """Log (and reset) every ``every_n_steps`` steps; return the record logged, if any."""
        if step % self.every_n_steps != 0 or self.auditor.tokens() == 0:
            return None
        layers = self.auditor.layers(self.settings.dead_fraction, self.settings.use_abs)
        alerts = check_alerts(self.rules, layers, log_path=self.alerts_path, step=step)
        self.alerts.extend(alerts)
        record = {
            "step": step,
            "tokens": self.auditor.tokens(),
            "dead_ratio": dead_ratios(layers),
            "alerts": len(alerts),
        }
        with open(self.log_path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, sort_keys=True) + "\n")
        self.records.append(record)
        self.auditor.reset()
        return record
