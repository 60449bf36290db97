"""Per-layer audit rows gathered into a JSON-ready report."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from neuron_audit.auditor import ABS_ONLY_KINDS, AuditSettings, fire_rule
from neuron_audit.hooks import KINDS


def dead_ratios(layers: Sequence[dict[str, Any]]) -> dict[str, list[float]]:
    """``{kind: [dead ratio of layer 0, layer 1, ...]}`` for the kinds present."""
    ratios: dict[str, list[float]] = {}
    for kind in KINDS:
        rows = sorted((r for r in layers if r["kind"] == kind), key=lambda r: int(r["layer"]))
        if rows:
            ratios[kind] = [float(r["dead_ratio"]) for r in rows]
    return ratios


def summary(layers: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Overall dead counts and ratios per kind (neuron-weighted) and the worst layer."""
    result: dict[str, Any] = {}
    for kind in KINDS:
        rows = [r for r in layers if r["kind"] == kind]
        if not rows:
            continue
        dead = sum(int(r["dead_count"]) for r in rows)
        width = sum(int(r["width"]) for r in rows)
        worst = max(rows, key=lambda r: float(r["dead_ratio"]))
        result[kind] = {
            "dead_count": dead,
            "neurons": width,
            "dead_ratio": dead / width,
            "max_layer_dead_ratio": float(worst["dead_ratio"]),
            "max_layer": int(worst["layer"]),
        }
    return result


def model_note(model: str, random_weights: bool) -> str:
    """One sentence on what was audited, printed at start and shown in the report."""
    if random_weights:
        return (
            f"{model} has RANDOM, untrained weights (--model named a preset, or was left out and "
            "runs/lm-tiny holds no pretrained model): its dead ratios describe an initialisation, "
            "not a trained network; pass --model DIR for a trained one (e.g. what ./pants run "
            "libs/lm:pretrain writes)."
        )
    return f"{model}: loaded weights."


def build_report(
    layers: Sequence[dict[str, Any]],
    settings: AuditSettings,
    *,
    model: str,
    family: str,
    data: dict[str, Any],
    random_weights: bool = False,
) -> dict[str, Any]:
    """Everything ``metrics.json`` holds; ``random_weights`` marks an untrained preset."""
    return {
        "model": model,
        "random_weights": random_weights,
        "model_note": model_note(model, random_weights),
        "family": family,
        "data": data,
        "settings": {
            "threshold": settings.stats.threshold,
            "fire_rule": fire_rule("mlp_post", settings.use_abs),
            "fire_rule_per_kind": {kind: fire_rule(kind, settings.use_abs) for kind in KINDS},
            "abs_only_kinds": sorted(ABS_ONLY_KINDS),
            "dead_fraction": settings.dead_fraction,
            "histogram_bins": settings.stats.bins,
            "histogram_range": list(settings.stats.hist_range),
        },
        "tokens": max((int(r["tokens"]) for r in layers), default=0),
        "summary": summary(layers),
        "dead_ratio": dead_ratios(layers),
        "layers": list(layers),
    }
