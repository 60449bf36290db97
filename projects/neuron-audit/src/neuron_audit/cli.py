"""``audit``: measure, plot and alert on dead neurons; ``audit swap``,
``audit strip`` and ``audit monitor`` run the experiments.

./pants run projects/neuron-audit:audit -- --model PATH_OR_ID --out DIR
./pants run projects/neuron-audit:audit -- swap --out DIR
./pants run projects/neuron-audit:audit -- strip --out DIR
./pants run projects/neuron-audit:audit -- compare --out DIR
./pants run projects/neuron-audit:audit -- runs DIR DIR ... --out DIR
./pants run projects/neuron-audit:audit -- monitor --out DIR --preset tiny --steps 200

Each command is a config (:mod:`neuron_audit.config`) and a function
usable from Python (``run_audit_command(AuditConfig(...))`` ...);
``main`` is made by ``ml_core.cli.make_main``.

Exit status: 0 = done, 1 = an alert rule fired, 2 = bad input.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

import torch
from transformers import PreTrainedModel

from lm import LoadedModel, ModelLoadError, preset_names
from lm import pretrain as lm_pretrain
from lm import resolve_model_spec
from ml_core import atomic_output, collect_run_metadata, seed_everything, write_json_atomic
from ml_core.cli import CheckFailed, Command, config_to_dict, make_main
from ml_core.device import select_device
from neuron_audit.alerts import AlertWarning, check_alerts
from neuron_audit.auditor import run_audit
from neuron_audit.compare import CompareSettings, run_compare_experiment, write_partial
from neuron_audit.config import (
    AuditConfig,
    CompareConfig,
    DataOptions,
    MonitorConfig,
    RunsConfig,
    StripCommandConfig,
    SwapConfig,
)
from neuron_audit.data import count_tokens, load_audit_model, padded_batches, read_corpus
from neuron_audit.hooks import detect_family
from neuron_audit.metrics import build_report, model_note
from neuron_audit.monitor import AuditCallback
from neuron_audit.plots import (
    plot_activation_shapes,
    plot_compare,
    plot_dead_ratios,
    plot_frequency_heatmap,
    plot_histograms,
    plot_monitor,
    plot_runs,
    plot_strip_curves,
)
from neuron_audit.report import write_report
from neuron_audit.runs import RunReadError, markdown_table, read_run
from neuron_audit.swap import ACTIVATIONS, run_swap_experiment
from neuron_audit.train import run_strip_experiment, silence_loss_type_warning

PROG = "audit"
PACKAGES = ("torch", "transformers", "tokenizers", "numpy", "matplotlib", "jinja2")


class AuditError(ValueError):
    """Bad input, reported as ``audit: error: ...`` with exit status 2."""


def _to_device(model: PreTrainedModel, device: torch.device) -> None:
    # transformers wraps Module.to in a way mypy cannot bind; the cast restores its signature.
    cast(Callable[[torch.device], PreTrainedModel], model.to)(device)


def is_random_preset(spec: str | None) -> bool:
    """Whether ``--model`` (``None``: the default) resolves to a preset with random weights."""
    name = resolve_model_spec(spec)
    return name in preset_names() and not Path(name).is_dir()


def _prepare(config: DataOptions) -> tuple[LoadedModel, list[dict[str, torch.Tensor]], Any]:
    seed_everything(config.seed)
    if is_random_preset(config.model):
        # Said before the work starts, and again in metrics.json / report.html.
        name = resolve_model_spec(config.model)
        print(f"{PROG}: note: {model_note(f'preset:{name}', True)}", file=sys.stderr)
    corpus = read_corpus(config.corpus, config.max_chars)
    loaded = load_audit_model(config.model, corpus, seed=config.seed)
    _to_device(loaded.model, select_device(config.device))
    documents = corpus.validation if config.split == "validation" else corpus.train
    limit = getattr(loaded.model.config, "max_position_embeddings", None) or getattr(
        loaded.model.config, "n_positions", None
    )
    if isinstance(limit, int) and config.max_length > limit:
        raise AuditError(
            f"--max-length {config.max_length} exceeds the model's context of {limit}."
        )
    batches = list(
        padded_batches(
            documents,
            loaded.tokenizer,
            batch_size=config.batch_size,
            max_length=config.max_length,
            max_tokens=config.max_tokens,
        )
    )
    if not batches:
        raise AuditError(f"The {config.split} split of the corpus has no tokens to audit.")
    data = {
        **corpus.stats(),
        "split": config.split,
        "tokens": count_tokens(batches),
        "batches": len(batches),
        "max_length": config.max_length,
    }
    return loaded, batches, data


def _metadata(config: Any, command: str) -> dict[str, Any]:
    metadata = collect_run_metadata(packages=PACKAGES).to_dict()
    metadata["command"] = command
    metadata["args"] = config_to_dict(config)
    return metadata


def run_audit_command(config: AuditConfig) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The default command; returns the report and the alerts that fired."""
    settings = config.settings()
    loaded, batches, data = _prepare(config)
    layers = run_audit(
        loaded.model,
        batches,
        settings,
        kinds=config.kinds,
        progress=not config.quiet,
        total=len(batches),
    )
    family = detect_family(loaded.model)
    report = build_report(
        layers,
        settings,
        model=loaded.source,
        family=family,
        data=data,
        random_weights=loaded.source.startswith("preset:"),
    )
    out = config.out
    out.mkdir(parents=True, exist_ok=True)
    alerts_path = out / "alerts.jsonl"
    alerts_path.unlink(missing_ok=True)
    alerts = check_alerts(config.rules(), layers, log_path=alerts_path)
    report["alerts"] = alerts
    report["alert_rules"] = list(config.alert)
    images = [plot_dead_ratios(report["dead_ratio"], out / "dead_ratio.png")]
    for kind in report["dead_ratio"]:
        images.append(plot_frequency_heatmap(layers, kind, out / f"frequency_heatmap_{kind}.png"))
        images.append(plot_histograms(layers, kind, out / f"histogram_{kind}.png"))
    write_json_atomic(out / "metrics.json", report)
    write_json_atomic(out / "run_metadata.json", _metadata(config, "audit"))
    write_report(out / "report.html", report, images, alerts)
    return report, alerts


def run_swap_command(config: SwapConfig) -> dict[str, Any]:
    settings = config.settings()
    loaded, batches, data = _prepare(config)
    results = run_swap_experiment(
        loaded.model, batches, config.activations, settings, progress=not config.quiet
    )
    out = config.out
    plot_dead_ratios(
        {label: r["dead_ratio"] for label, r in results.items()},
        out / "swap_dead_ratio.png",
        title="mlp_post dead-neuron ratio per layer, by activation (same weights and data)",
    )
    random_weights = loaded.source.startswith("preset:")
    report = {
        "model": loaded.source,
        "random_weights": random_weights,
        "model_note": model_note(loaded.source, random_weights),
        "data": data,
        "threshold": config.threshold,
        "results": results,
    }
    write_json_atomic(out / "swap.json", report)
    write_json_atomic(out / "run_metadata.json", _metadata(config, "swap"))
    return report


def run_strip_command(config: StripCommandConfig) -> dict[str, Any]:
    corpus = read_corpus(config.corpus, config.max_chars)
    result = run_strip_experiment(
        config, corpus, device=select_device(config.device), progress=not config.quiet
    )
    out = config.out
    plot_strip_curves(result["histories"], out / "strip.png")
    write_json_atomic(out / "strip.json", result)
    write_json_atomic(out / "run_metadata.json", _metadata(config, "strip"))
    return result


def run_compare_command(config: CompareConfig) -> dict[str, Any]:
    """The trained activation comparison; ``compare.json`` is rewritten after every run."""
    corpus = read_corpus(config.corpus, config.max_chars)
    out = config.out
    out.mkdir(parents=True, exist_ok=True)
    plot_activation_shapes(
        {name: ACTIVATIONS[name]() for name in config.activations}, out / "activation_shapes.png"
    )
    settings = CompareSettings(
        preset=config.preset,
        activations=config.activations,
        lrs=config.lrs,
        seeds=config.seeds,
        epochs=config.epochs,
        steps_per_epoch=config.steps_per_epoch,
        batch_size=config.batch_size,
        block_size=config.block_size,
        val_blocks=config.val_blocks,
        vocab_size=config.vocab_size,
    )
    result = run_compare_experiment(
        settings,
        corpus,
        audit=config.settings(),
        device=select_device(config.device),
        progress=not config.quiet,
        on_run=write_partial(out / "compare.json"),
    )
    for field, name, label in (
        ("dead_ratio", "compare_dead_ratio.png", "mlp_post dead neurons (%)"),
        ("dead_ratio_signed", "compare_never_positive.png", "mlp_post never positive (%)"),
        ("val_loss", "compare_loss.png", "validation loss"),
    ):
        plot_compare(
            result["runs"],
            config.activations,
            config.lrs,
            field,
            out / name,
            ylabel=label,
            title=f"{config.preset}: {label} per epoch, same initial weights and batches",
            percent=field != "val_loss",
        )
    result["complete"] = True
    write_json_atomic(out / "compare.json", result)
    write_json_atomic(out / "run_metadata.json", _metadata(config, "compare"))
    return result


def run_runs_command(config: RunsConfig) -> dict[str, Any]:
    """Rows of every run folder, ``runs.json``, ``runs.png`` and ``runs.md``."""
    rows = [row for directory in config.runs for row in read_run(directory)]
    out = config.out
    out.mkdir(parents=True, exist_ok=True)
    table = markdown_table(rows)
    plot_runs(rows, out / "runs.png")
    result = {"runs": rows, "table": table}
    write_json_atomic(out / "runs.json", result)
    with atomic_output(out / "runs.md") as temporary:
        temporary.write_text(table + "\n", encoding="utf-8")
    return result


def run_monitor_command(config: MonitorConfig) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Pretrain with an :class:`AuditCallback` (``lm.pretrain.run``); return the pretrain metrics
    and the alerts."""
    out = config.out
    out.mkdir(parents=True, exist_ok=True)
    log_path, alerts_path = out / "audit.jsonl", out / "alerts.jsonl"
    if config.resume is None:  # a resumed run keeps appending to its logs
        log_path.unlink(missing_ok=True)
        alerts_path.unlink(missing_ok=True)
    callback = AuditCallback(
        None,
        log_path,
        every_n_steps=config.every,
        rules=config.rules(),
        alerts_path=alerts_path,
        settings=config.settings(),
        kinds=config.kinds,
    )
    metrics = lm_pretrain.run(config.pretrain_config(), callbacks=[callback])
    if callback.records:
        plot_monitor(callback.records, out / "monitor.png")
    write_json_atomic(out / "audit_run_metadata.json", _metadata(config, "monitor"))
    return metrics, callback.alerts


# --- the command line: print a summary, then fail the check when an alert fired ---------


def _check_alerts(alerts: Sequence[dict[str, Any]], path: Path) -> None:
    for alert in alerts:
        print(f"{PROG}: warning: alert {alert['rule']!r}: {alert['message']}", file=sys.stderr)
    if alerts:
        raise CheckFailed(f"{len(alerts)} alert(s) fired; see {path}")


def _audit(config: AuditConfig) -> None:
    report, alerts = run_audit_command(config)
    for kind, summary in report["summary"].items():
        print(
            f"{kind:>9}: {summary['dead_count']}/{summary['neurons']} dead "
            f"({100 * summary['dead_ratio']:.2f}%), worst layer {summary['max_layer']} "
            f"({100 * summary['max_layer_dead_ratio']:.2f}%)"
        )
    print(f"report: {config.out / 'report.html'}")
    _check_alerts(alerts, config.out / "alerts.jsonl")


def _swap(config: SwapConfig) -> None:
    swap = run_swap_command(config)
    for label, result in swap["results"].items():
        ratios = ", ".join(f"{100 * r:.1f}%" for r in result["dead_ratio"])
        print(f"{label:>22}: mlp_post dead per layer {ratios}")


def _strip(config: StripCommandConfig) -> None:
    strip = run_strip_command(config)
    for label, final in strip["final"].items():
        print(
            f"{label:>16}: dead ratio {100 * final['dead_ratio']:.1f}%, "
            f"validation loss {final['val_loss']:.3f}"
        )


def _compare(config: CompareConfig) -> None:
    result = run_compare_command(config)
    print(f"dead: {result['dead_definition']}")
    for lr_result in result["summary"].values():
        print(f"lr {lr_result['lr']:g} (final epoch, mean ± std over seeds):")
        for name in lr_result["ranking_most_dead_first"]:
            values = lr_result["activations"][name]
            dead, loss = values["dead_ratio"], values["val_loss"]
            signed = values["dead_ratio_signed"]
            print(
                f"  {name:>10}: dead {100 * dead['mean']:5.1f}% ± {100 * dead['std']:4.1f} "
                f"(seeds {100 * dead['min']:.1f}-{100 * dead['max']:.1f}%), "
                f"never positive {100 * signed['mean']:5.1f}%, "
                f"val. loss {loss['mean']:.3f} ± {loss['std']:.3f}"
            )
        verdict = {True: "holds", False: "does not hold", None: "not testable"}
        print(f"  claim '{lr_result['claim']}': {verdict[lr_result['claim_holds']]}")
    print(f"results: {config.out / 'compare.json'}")


def _runs(config: RunsConfig) -> None:
    print(run_runs_command(config)["table"])


def _monitor(config: MonitorConfig) -> None:
    metrics, alerts = run_monitor_command(config)
    print(
        f"pretrained {metrics['step']} steps: validation perplexity "
        f"{metrics['initial_val_perplexity']:.1f} -> {metrics['val_perplexity']:.1f}; "
        f"dead ratios in {config.out / 'audit.jsonl'}"
    )
    _check_alerts(alerts, config.out / "alerts.jsonl")


_main = make_main(
    {
        "audit": Command(AuditConfig, _audit, "audit a model (the default sub-command)"),
        "swap": Command(SwapConfig, _swap, "activation swap experiment"),
        "strip": Command(StripCommandConfig, _strip, "Synaptic Stripping experiment"),
        "compare": Command(CompareConfig, _compare, "trained activation comparison"),
        "runs": Command(RunsConfig, _runs, "neuron health beside loss across run folders"),
        "monitor": Command(MonitorConfig, _monitor, "pretrain with an audit callback"),
    },
    prog=PROG,
    description="Audit a transformer for dead neurons: metrics.json, PNG plots, report.html.\n"
    "Exit status: 0 ok, 1 an --alert rule fired, 2 bad input.",
    default="audit",
    user_errors=(AuditError, ModelLoadError, RunReadError, FileNotFoundError, ValueError),
)


def _compatible_argv(arguments: list[str]) -> list[str]:
    """Earlier command lines in today's form: monitor's ``--`` before the pretrain options (now
    monitor's own options) is dropped, and a repeated ``--alert`` becomes one ``--alert`` with every
    rule (a tuple option keeps only its last occurrence)."""
    if arguments[:1] == ["monitor"] and "--" in arguments:
        split = arguments.index("--")
        arguments = arguments[:split] + arguments[split + 1 :]
    if sum(word == "--alert" or word.startswith("--alert=") for word in arguments) < 2:
        return arguments
    rules: list[str] = []
    rest: list[str] = []
    index = 0
    while index < len(arguments):
        word = arguments[index]
        index += 1
        if word.startswith("--alert="):
            rules.append(word.partition("=")[2])
        elif word == "--alert":
            while index < len(arguments) and not arguments[index].startswith("-"):
                rules.append(arguments[index])
                index += 1
        else:
            rest.append(word)
    return [*rest, "--alert", *rules]


def main(argv: Sequence[str] | None = None) -> int:
    """``audit [SUB-COMMAND] [options]``; returns the exit status."""
    arguments = _compatible_argv(list(sys.argv[1:] if argv is None else argv))
    silence_loss_type_warning()
    if arguments[:1] in (["strip"], ["compare"]) and any(
        word == "--model" or word.startswith("--model=") for word in arguments
    ):
        # One meaning per flag: --model is a model to load (audit, swap); these train a preset.
        print(
            f"{PROG} {arguments[0]}: error: --model: {arguments[0]} trains an lm preset from "
            "scratch; name it with --preset (--model names a model to load, in audit and swap)",
            file=sys.stderr,
        )
        return 2
    with warnings.catch_warnings():
        # Alerts are reported once, as "audit: warning: ..." lines, not also as Python warnings.
        warnings.simplefilter("ignore", AlertWarning)
        return _main(arguments)


if __name__ == "__main__":
    raise SystemExit(main())
