"""Alert rules on dead ratios, e.g. ``"mlp_post.dead_ratio > 0.2"``.

Grammar: ``[any|mean] KIND.METRIC OP VALUE`` where ``KIND`` is ``mlp_pre``, ``mlp_post``,
``attn_out`` or ``*`` (all kinds), ``METRIC`` is ``dead_ratio``, ``mean_fire_frequency`` or
``nan_count``, ``OP`` one of ``> >= < <=`` and ``VALUE`` a number or a percentage (``20%``). ``any``
(the default) fires when any single layer breaks the rule, ``mean`` when the mean over layers does.
"""

from __future__ import annotations

import dataclasses
import json
import operator
import os
import re
import warnings
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from neuron_audit.hooks import KINDS

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
METRICS = ("dead_ratio", "mean_fire_frequency", "nan_count")
_RULE = re.compile(
    r"^\s*(?:(?P<scope>any|mean)\s+)?(?P<kind>[a-z_*]+)\.(?P<metric>[a-z_]+)\s*"
    r"(?P<op>>=|<=|>|<)\s*(?P<value>[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)(?P<percent>%?)\s*$"
)


class AlertWarning(UserWarning):
    """Emitted once per alert that fires."""


@dataclasses.dataclass(frozen=True)
class AlertRule:
    kind: str
    metric: str
    op: str
    value: float
    scope: str = "any"
    text: str = ""

    @classmethod
    def parse(cls, text: str) -> AlertRule:
        """Parse a rule; ``ValueError`` explains what is wrong."""
        match = _RULE.match(text)
        if match is None:
            raise ValueError(
                f"Cannot parse alert rule {text!r}; expected e.g. 'mlp_post.dead_ratio > 0.2', "
                "'mean attn_out.dead_ratio >= 5%' or '*.dead_ratio > 0.5'."
            )
        kind, metric = match["kind"], match["metric"]
        if kind != "*" and kind not in KINDS:
            raise ValueError(f"Unknown kind {kind!r} in alert rule {text!r}; use {KINDS} or *.")
        if metric not in METRICS:
            raise ValueError(f"Unknown metric {metric!r} in alert rule {text!r}; use {METRICS}.")
        value = float(match["value"]) / (100.0 if match["percent"] else 1.0)
        return cls(kind, metric, match["op"], value, match["scope"] or "any", text.strip())

    def evaluate(self, layers: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Alert records for ``layers`` (empty when the rule holds)."""
        rows = [r for r in layers if self.kind == "*" or r["kind"] == self.kind]
        compare = OPERATORS[self.op]
        if self.scope == "mean":
            kinds = sorted({str(r["kind"]) for r in rows})
            records = []
            for kind in kinds:
                values = [float(r[self.metric]) for r in rows if r["kind"] == kind]
                mean = sum(values) / len(values)
                if compare(mean, self.value):
                    records.append(self._record(kind, None, mean))
            return records
        return [
            self._record(str(r["kind"]), int(r["layer"]), float(r[self.metric]))
            for r in rows
            if compare(float(r[self.metric]), self.value)
        ]

    def _record(self, kind: str, layer: int | None, observed: float) -> dict[str, Any]:
        where = f"layer {layer}" if layer is not None else "mean over layers"
        return {
            "rule": self.text or f"{self.kind}.{self.metric} {self.op} {self.value}",
            "kind": kind,
            "layer": layer,
            "metric": self.metric,
            "observed": observed,
            "threshold": self.value,
            "message": f"{kind} {self.metric} {observed:.4f} ({where}) {self.op} {self.value:g}",
        }


def parse_rules(texts: Iterable[str]) -> list[AlertRule]:
    return [AlertRule.parse(text) for text in texts]


def check_alerts(
    rules: Sequence[AlertRule],
    layers: Sequence[dict[str, Any]],
    *,
    log_path: str | os.PathLike[str] | None = None,
    step: int | None = None,
) -> list[dict[str, Any]]:
    """Evaluate ``rules``; warn (:class:`AlertWarning`) and append a JSON line to ``log_path`` per
    alert."""
    alerts = [record for rule in rules for record in rule.evaluate(layers)]
    stamp = datetime.now(timezone.utc).isoformat()
    for record in alerts:
        record["time_utc"] = stamp
        if step is not None:
            record["step"] = step
        warnings.warn(f"neuron-audit alert: {record['message']}", AlertWarning, stacklevel=2)
    if alerts and log_path is not None:
        path = Path(log_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as handle:
            handle.writelines(json.dumps(record, sort_keys=True) + "\n" for record in alerts)
    return alerts
