"""``eval``: a k-shot curve of one task on one model, with error bars over demonstration draws."""

from __future__ import annotations

import dataclasses
import json
import random
import shutil
import statistics
import tempfile
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from tqdm import tqdm

from few_shot.backends import Backend, open_backend
from few_shot.prompts import SELECTIONS, Ordering, PromptBuilder, Selection, format_for_model
from few_shot.scoring import DrawResult, check_request, score_draw
from few_shot.tasks import Task, load_task
from ml_core import collect_run_metadata, write_json_atomic
from ml_core.cli import ConfigError, config_to_dict, require, require_positive
from ml_core.plotting import save_figure


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """Evaluate a task at several k (zero-, one-, k-shot) on a model directory or an endpoint."""

    task: Path
    """Task file (.jsonl or .csv)."""

    model: str
    """Model directory (or lm preset / Hub id) or the URL of an OpenAI-compatible server."""

    out: Path = Path("runs/few-shot/eval")
    shots: str = "0,1,4,8"
    """Numbers of demonstrations, comma separated."""

    draws: int = 5
    """Demonstration draws per k (error bars)."""

    selection: Selection = "random"
    ordering: Ordering = "as-selected"
    prompt_format: str | None = None
    """Prompt format (icl, qa); default: the one the model directory names, else qa."""

    generation: bool = False
    """Also score greedy generation (exact / normalised match)."""

    sensitivity: bool = True
    """Also report the spread over selections and orderings at the largest k."""

    seed: int = 0

    def __post_init__(self) -> None:
        try:
            ks = self.ks
        except ValueError:
            raise ConfigError("shots", f"must be comma-separated integers, got {self.shots!r}")
        require(bool(ks), "shots", "give at least one k")
        require(min(ks) >= 0, "shots", f"k must be zero or more, got {min(ks)}")
        require_positive(self, "draws")

    @property
    def ks(self) -> tuple[int, ...]:
        """The values of ``shots``, sorted, without repeats."""
        return tuple(sorted({int(part) for part in self.shots.split(",") if part.strip()}))


def _summary(draws: list[DrawResult], metric: str) -> dict[str, float] | None:
    values = [getattr(d, metric) for d in draws if getattr(d, metric) is not None]
    if not values:
        return None
    return {
        "mean": statistics.fmean(values),
        "std": statistics.pstdev(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def curve(
    backend: Backend,
    task: Task,
    builder: PromptBuilder,
    shots: tuple[int, ...],
    draws: int,
    *,
    selection: Selection,
    ordering: Ordering,
    generation: bool,
    seed: int,
    desc: str = "eval",
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Scores per k (mean/std/min/max over draws) and the prompts sent."""
    results: dict[str, Any] = {}
    prompts: list[dict[str, Any]] = []
    jobs = [(k, d) for k in shots for d in range(1 if k == 0 else draws)]
    by_k: dict[int, list[DrawResult]] = {}
    for k, draw in tqdm(jobs, desc=desc, unit="draw", leave=False):
        result = score_draw(
            backend,
            task,
            builder,
            k,
            draw,
            selection=selection,
            ordering=ordering,
            generation=generation,
            seed=seed,
        )
        by_k.setdefault(k, []).append(result)
        prompts.extend({"k": k, "draw": draw, **p} for p in result.prompts)
    for k, items in by_k.items():
        results[str(k)] = {
            metric: _summary(items, metric)
            for metric in ("acc", "acc_norm", "exact_match", "normalised_match")
            if _summary(items, metric) is not None
        }
        results[str(k)]["seconds"] = sum(d.seconds for d in items)
    return results, prompts


def chance(task: Task) -> float | None:
    return 1 / len(task.options) if task.options else None


def plot_curve(
    curves: dict[str, dict[str, Any]], path: Path, title: str, chance_level: float | None
) -> None:
    """Accuracy against k with error bars (one standard deviation over draws)."""
    figure = Figure(figsize=(6, 4))
    axes = figure.subplots()
    for label, results in curves.items():
        ks = sorted(int(k) for k in results)
        metric = "acc" if "acc" in results[str(ks[0])] else "exact_match"
        means = [results[str(k)][metric]["mean"] for k in ks]
        errors = [results[str(k)][metric]["std"] for k in ks]
        axes.errorbar(ks, means, yerr=errors, marker="o", capsize=4, label=f"{label} ({metric})")
    if chance_level is not None:
        axes.axhline(chance_level, color="gray", linestyle="--", label="chance")
    axes.set(xlabel="k (demonstrations in the prompt)", ylabel="accuracy", title=title)
    axes.set_ylim(0, 1.02)
    axes.set_xscale("symlog", linthresh=1)
    axes.legend(fontsize=8)
    figure.tight_layout()
    save_figure(figure, path)


def sensitivity(
    backend: Backend,
    task: Task,
    builder: PromptBuilder,
    k: int,
    draws: int,
    seed: int,
) -> dict[str, Any]:
    """Accuracy at ``k`` for each selection method and for reorderings of one fixed selection."""
    report: dict[str, Any] = {"k": k, "selection": {}, "ordering": {}}
    for selection in SELECTIONS:
        if selection == "first":
            continue
        results, _ = curve(
            backend,
            task,
            builder,
            (k,),
            draws,
            selection=selection,  # type: ignore[arg-type]
            ordering="as-selected",
            generation=False,
            seed=seed,
            desc=f"selection={selection}",
        )
        report["selection"][selection] = results[str(k)].get("acc")
    # One fixed set of demonstrations per query, shown in ``draws`` different orders.
    accuracies = []
    for draw in range(draws):
        rng = random.Random(seed)
        order_rng = random.Random(seed + 1 + draw)
        hits = 0
        for query in task.queries:
            chosen = builder.select(query, k, "random", rng)
            prompt = builder.render(query, order_rng.sample(chosen, len(chosen)))
            requests = [
                (prompt.context, builder.format.target_delimiter + option)
                for option in task.options
            ]
            scores = [r.logprob for r in backend.loglikelihood(requests)]
            best = task.options[max(range(len(scores)), key=scores.__getitem__)]
            hits += best == query.target
        accuracies.append(hits / len(task.queries))
    report["ordering"] = {
        "accuracies": accuracies,
        "mean": statistics.fmean(accuracies),
        "spread": max(accuracies) - min(accuracies),
    }
    return report


def evaluate(
    config: EvalConfig, backend: Backend | None = None, task: Task | None = None
) -> dict[str, Any]:
    """Everything ``eval`` computes, without writing."""
    task = task or load_task(config.task)
    backend = backend or open_backend(config.model)
    check_request(backend, task, config.ks)
    builder = PromptBuilder(task, format_for_model(config.model, config.prompt_format))
    results, prompts = curve(
        backend,
        task,
        builder,
        config.ks,
        config.draws,
        selection=config.selection,
        ordering=config.ordering,
        generation=config.generation,
        seed=config.seed,
    )
    report: dict[str, Any] = {
        "task": task.name,
        "model": backend.name,
        "prompt_format": builder.format.name,
        "chance": chance(task),
        "queries": len(task.queries),
        "pool": len(task.demonstrations),
        "shots": results,
    }
    largest = max(config.ks)
    if config.sensitivity and task.options and largest > 0:
        report["sensitivity"] = sensitivity(
            backend, task, builder, largest, config.draws, config.seed
        )
    return {"report": report, "prompts": prompts, "builder": builder, "task": task}


def run(config: EvalConfig) -> dict[str, Any]:
    """Evaluate, then write results.json, k_curve.png and prompts.jsonl into ``--out`` at once."""
    computed = evaluate(config)
    report: dict[str, Any] = computed["report"]
    report["config"] = config_to_dict(config)
    report["run"] = collect_run_metadata(packages=("torch", "transformers")).to_dict()
    config.out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{config.out.name}.", dir=config.out.parent))
    try:
        write_json_atomic(staging / "results.json", report)
        plot_curve(
            {config.selection: report["shots"]},
            staging / "k_curve.png",
            f"{report['task']} on {Path(report['model']).name}",
            report["chance"],
        )
        (staging / "prompts.jsonl").write_text(
            "".join(json.dumps(p) + "\n" for p in computed["prompts"]), encoding="utf-8"
        )
        config.out.mkdir(parents=True, exist_ok=True)
        for item in staging.iterdir():
            item.replace(config.out / item.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    for k, scores in report["shots"].items():
        metric = "acc" if "acc" in scores else "exact_match"
        print(
            f"{report['task']} k={k}: {metric} {scores[metric]['mean']:.3f} "
            f"± {scores[metric]['std']:.3f}"
        )
    return report
