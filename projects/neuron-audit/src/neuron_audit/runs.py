"""Neuron health beside loss across runs: one row per run folder written by this project.

A folder is read by what it holds:

* ``audit.jsonl`` (``audit monitor``, or any ``AuditCallback`` log): the last record's dead ratio
  per kind, and the validation loss from the pretraining ``metrics.json`` beside it;
* ``metrics.json`` with a ``summary`` (``audit``): the dead ratio per kind; the validation loss of
  the audited model when its folder has a pretraining ``metrics.json``;
* ``compare.json`` (``audit compare``): one row per learning rate and activation (most dead
  first), the mean over seeds after the last epoch;
* ``strip.json`` (``audit strip``): one row per arm (baseline, stripping) after the last epoch.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any


class RunReadError(ValueError):
    """A folder that holds none of the files this project writes, or an unreadable one."""


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise RunReadError(f"{path}: cannot read it as JSON ({error})") from None


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _pretrain_loss(directory: Path) -> float | None:
    path = directory / "metrics.json"
    if not path.is_file():
        return None
    metrics = _read_json(path)
    value = metrics.get("val_loss") if isinstance(metrics, dict) else None
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def _monitor_row(directory: Path) -> dict[str, Any]:
    lines = [line for line in (directory / "audit.jsonl").read_text().splitlines() if line.strip()]
    if not lines:
        raise RunReadError(f"{directory / 'audit.jsonl'} is empty")
    try:
        last = json.loads(lines[-1])
    except json.JSONDecodeError as error:
        raise RunReadError(
            f"{directory / 'audit.jsonl'}: last line is not JSON ({error})"
        ) from None
    return {
        "name": directory.name,
        "path": str(directory),
        "source": "audit.jsonl",
        "step": last.get("step"),
        "dead_ratio": {kind: _mean(list(v)) for kind, v in last["dead_ratio"].items()},
        "val_loss": _pretrain_loss(directory),
    }


def _audit_row(directory: Path, report: dict[str, Any]) -> dict[str, Any]:
    model = str(report.get("model", ""))
    model_dir = Path(model)
    return {
        "name": directory.name,
        "path": str(directory),
        "source": "metrics.json",
        "model": model,
        "random_weights": bool(report.get("random_weights", False)),
        "dead_ratio": {kind: float(s["dead_ratio"]) for kind, s in report["summary"].items()},
        "val_loss": _pretrain_loss(model_dir) if model_dir.is_dir() else None,
    }


def _compare_rows(directory: Path, result: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    summaries = sorted(result.get("summary", {}).values(), key=lambda r: float(r["lr"]))
    for lr_result in summaries:
        for activation in lr_result["ranking_most_dead_first"]:
            values = lr_result["activations"][activation]
            rows.append(
                {
                    "name": f"{directory.name}:{activation}@{lr_result['lr']:g}",
                    "path": str(directory),
                    "source": "compare.json",
                    "seeds": values["seeds"],
                    "dead_ratio": {"mlp_post": values["dead_ratio"]["mean"]},
                    "val_loss": values["val_loss"]["mean"],
                }
            )
    return rows


def _strip_rows(directory: Path, result: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "name": f"{directory.name}:{arm}",
            "path": str(directory),
            "source": "strip.json",
            "dead_ratio": {"mlp_post": float(final["dead_ratio"])},
            "val_loss": float(final["val_loss"]),
        }
        for arm, final in result["final"].items()
    ]


def read_run(directory: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The rows of one run folder (see the module docstring)."""
    path = Path(directory)
    if not path.is_dir():
        raise RunReadError(f"{path}: no such run folder")
    rows: list[dict[str, Any]] = []
    if (path / "audit.jsonl").is_file():
        rows.append(_monitor_row(path))
    metrics = path / "metrics.json"
    if metrics.is_file():
        report = _read_json(metrics)
        if isinstance(report, dict) and "summary" in report:
            rows.append(_audit_row(path, report))
    if (path / "compare.json").is_file():
        rows.extend(_compare_rows(path, _read_json(path / "compare.json")))
    if (path / "strip.json").is_file():
        rows.extend(_strip_rows(path, _read_json(path / "strip.json")))
    if not rows:
        raise RunReadError(
            f"{path}: holds no audit.jsonl, audit metrics.json, compare.json or strip.json"
        )
    return rows


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The rows as a Markdown table: dead ratio per kind beside validation loss."""
    kinds = [
        k for k in ("mlp_pre", "mlp_post", "attn_out") if any(k in r["dead_ratio"] for r in rows)
    ]

    def percent(value: float | None) -> str:
        return "-" if value is None else f"{100 * value:.1f}%"

    header = ["run", "source", *[f"{kind} dead" for kind in kinds], "val. loss"]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for row in rows:
        loss = row.get("val_loss")
        cells = [
            str(row["name"]) + (" (random weights)" if row.get("random_weights") else ""),
            str(row["source"]),
            *[percent(row["dead_ratio"].get(kind)) for kind in kinds],
            "-" if loss is None else f"{loss:.3f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
