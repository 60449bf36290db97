"""``audit``: measure, plot and alert on dead neurons; ``audit swap`` and
``audit strip`` run the experiments.

./pants run projects/neuron-audit:audit -- --model PATH_OR_ID --out DIR
./pants run projects/neuron-audit:audit -- swap --out DIR
./pants run projects/neuron-audit:audit -- strip --out DIR
./pants run projects/neuron-audit:audit -- monitor --out DIR -- [lm pretrain options]

Exit status: 0 = done, 1 = an alert rule fired, 2 = bad input.
"""

from __future__ import annotations

import argparse
import math
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

import torch
from transformers import PreTrainedModel

from lm import ModelLoadError
from lm import pretrain as lm_pretrain
from ml_core import collect_run_metadata, seed_everything, write_json_atomic
from ml_core.device import select_device
from neuron_audit.alerts import AlertWarning, check_alerts, parse_rules
from neuron_audit.auditor import AuditSettings, run_audit
from neuron_audit.data import (
    LoadedModel,
    count_tokens,
    default_model,
    load_model_and_tokenizer,
    padded_batches,
    read_corpus,
)
from neuron_audit.hooks import KINDS, Kind, detect_family
from neuron_audit.metrics import build_report
from neuron_audit.monitor import AuditCallback
from neuron_audit.plots import (
    plot_dead_ratios,
    plot_frequency_heatmap,
    plot_histograms,
    plot_monitor,
    plot_strip_curves,
)
from neuron_audit.report import write_report
from neuron_audit.stats import StatsConfig
from neuron_audit.swap import ACTIVATIONS, run_swap_experiment
from neuron_audit.train import StripConfig, run_strip_experiment

PROG = "audit"
PACKAGES = ("torch", "transformers", "tokenizers", "numpy", "matplotlib", "jinja2")
EXIT_ALERT = 1
EXIT_ERROR = 2


class AuditError(ValueError):
    """Bad input, reported as ``audit: error: ...`` with exit status 2."""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {value}")
    return value


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {value}")
    return value


def _add_common(parser: argparse.ArgumentParser, out: str) -> None:
    parser.add_argument("--out", type=Path, default=Path(out), help=f"output dir ({out})")
    parser.add_argument(
        "--corpus",
        default=None,
        help="text to audit on: a .txt file or directory, a saved dataset, or 'stdlib' "
        "(default: the embedded standard-library docstrings)",
    )
    parser.add_argument(
        "--max-chars", type=_positive_int, default=None, help="cap on corpus characters"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None, help="cpu, cuda, mps (default: best)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _add_data(parser: argparse.ArgumentParser, max_tokens: int) -> None:
    parser.add_argument(
        "--split", choices=("validation", "train"), default="validation", help="corpus split"
    )
    parser.add_argument("--max-tokens", type=_positive_int, default=max_tokens)
    parser.add_argument("--batch-size", type=_positive_int, default=8)
    parser.add_argument("--max-length", type=_positive_int, default=128, help="tokens per row")


def _add_stats(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--threshold", type=_non_negative, default=1e-3, help="fires when act > this (0.001)"
    )
    parser.add_argument("--abs", action="store_true", help="fire rule |act| > threshold")
    parser.add_argument(
        "--dead-fraction",
        type=_fraction,
        default=0.0,
        help="dead = fires on fewer than this fraction of tokens (default 0: never fires)",
    )
    parser.add_argument("--bins", type=_positive_int, default=64, help="histogram bins")
    parser.add_argument(
        "--hist-range", type=float, nargs=2, default=(-5.0, 5.0), metavar=("LOW", "HIGH")
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Audit a transformer for dead neurons: metrics.json, PNG plots, report.html. "
        "Sub-commands: 'swap' (activation swap experiment), 'strip' (Synaptic Stripping), "
        "'monitor' (pretrain with an audit callback).",
        epilog="Exit status: 0 ok, 1 an --alert rule fired, 2 bad input.",
    )
    parser.add_argument(
        "--model",
        default=None,
        help="save_pretrained directory, Hub id or lm preset (tiny, small, llama-tiny); "
        "default: runs/lm-tiny if pretrained, else the tiny preset",
    )
    _add_common(parser, "runs/neuron-audit")
    _add_data(parser, 20_000)
    _add_stats(parser)
    _add_kinds_and_alerts(parser)
    return parser


def _add_kinds_and_alerts(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--kinds", nargs="+", choices=KINDS, default=list(KINDS), help="what to capture"
    )
    parser.add_argument(
        "--alert",
        action="append",
        default=[],
        metavar="RULE",
        help="e.g. 'mlp_post.dead_ratio > 0.2' or 'mean attn_out.dead_ratio >= 5%%' "
        "(repeatable); exit 1 when one fires",
    )


def build_swap_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"{PROG} swap",
        description="Swap the MLP activation (same weights, same data) and compare dead ratios.",
    )
    parser.add_argument("--model", default=None, help="as for audit")
    _add_common(parser, "runs/neuron-audit-swap")
    _add_data(parser, 10_000)
    _add_stats(parser)
    parser.add_argument(
        "--activations", nargs="+", choices=sorted(ACTIVATIONS), default=list(ACTIVATIONS)
    )
    return parser


def build_strip_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"{PROG} strip",
        description="Train a model that develops dead neurons (ReLU MLP, high learning rate) "
        "with and without Synaptic Stripping; compare dead ratio and validation loss.",
    )
    defaults = StripConfig()
    parser.add_argument("--model", default=defaults.preset, help="lm preset to train")
    _add_common(parser, "runs/neuron-audit-strip")
    parser.add_argument("--activation", choices=sorted(ACTIVATIONS), default=defaults.activation)
    parser.add_argument("--epochs", type=_positive_int, default=defaults.epochs)
    parser.add_argument("--steps-per-epoch", type=_positive_int, default=defaults.steps_per_epoch)
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--batch-size", type=_positive_int, default=defaults.batch_size)
    parser.add_argument("--block-size", type=_positive_int, default=defaults.block_size)
    parser.add_argument("--fraction", type=float, default=defaults.fraction)
    parser.add_argument("--val-blocks", type=_positive_int, default=defaults.val_blocks)
    return parser


def build_monitor_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"{PROG} monitor",
        description="Pretrain a model with libs/lm's pretrain command while an audit callback "
        "logs dead ratios every N steps (audit.jsonl, monitor.png) and checks --alert rules. "
        "Options after '--' go to the pretrain command (see: ./pants run libs/lm:pretrain -- "
        "--help); --out is shared.",
        epilog="Exit status: 0 ok, 1 an --alert rule fired, 2 bad input.",
    )
    parser.add_argument("--out", type=Path, default=Path("runs/neuron-audit-monitor"))
    parser.add_argument(
        "--every", type=_positive_int, default=50, help="log dead ratios every N steps (50)"
    )
    _add_stats(parser)
    _add_kinds_and_alerts(parser)
    return parser


def _settings(args: argparse.Namespace) -> AuditSettings:
    low, high = args.hist_range
    try:
        stats = StatsConfig(threshold=args.threshold, bins=args.bins, hist_range=(low, high))
    except ValueError as error:
        raise AuditError(str(error)) from None
    return AuditSettings(stats=stats, dead_fraction=args.dead_fraction, use_abs=args.abs)


def _to_device(model: PreTrainedModel, device: torch.device) -> None:
    # transformers wraps Module.to in a way mypy cannot bind; the cast restores its signature.
    cast(Callable[[torch.device], PreTrainedModel], model.to)(device)


def _prepare(args: argparse.Namespace) -> tuple[LoadedModel, list[dict[str, torch.Tensor]], Any]:
    seed_everything(args.seed)
    corpus = read_corpus(args.corpus, args.max_chars)
    loaded = load_model_and_tokenizer(args.model or default_model(), corpus, seed=args.seed)
    _to_device(loaded.model, select_device(args.device))
    documents = corpus.validation if args.split == "validation" else corpus.train
    limit = getattr(loaded.model.config, "max_position_embeddings", None) or getattr(
        loaded.model.config, "n_positions", None
    )
    if isinstance(limit, int) and args.max_length > limit:
        raise AuditError(f"--max-length {args.max_length} exceeds the model's context of {limit}.")
    batches = list(
        padded_batches(
            documents,
            loaded.tokenizer,
            batch_size=args.batch_size,
            max_length=args.max_length,
            max_tokens=args.max_tokens,
        )
    )
    if not batches:
        raise AuditError(f"The {args.split} split of the corpus has no tokens to audit.")
    data = {
        **corpus.stats(),
        "split": args.split,
        "tokens": count_tokens(batches),
        "batches": len(batches),
        "max_length": args.max_length,
    }
    return loaded, batches, data


def _metadata(args: argparse.Namespace, command: str) -> dict[str, Any]:
    metadata = collect_run_metadata(packages=PACKAGES).to_dict()
    metadata["command"] = command
    metadata["args"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    return metadata


def run_audit_command(args: argparse.Namespace) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The default command; returns the report and the alerts that fired."""
    rules = parse_rules(args.alert)
    settings = _settings(args)
    loaded, batches, data = _prepare(args)
    kinds = cast(tuple[Kind, ...], tuple(args.kinds))
    layers = run_audit(
        loaded.model, batches, settings, kinds=kinds, progress=not args.quiet, total=len(batches)
    )
    family = detect_family(loaded.model)
    report = build_report(layers, settings, model=loaded.source, family=family, data=data)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    alerts_path = out / "alerts.jsonl"
    alerts_path.unlink(missing_ok=True)
    alerts = check_alerts(rules, layers, log_path=alerts_path)
    report["alerts"] = alerts
    report["alert_rules"] = list(args.alert)
    images = [plot_dead_ratios(report["dead_ratio"], out / "dead_ratio.png")]
    for kind in report["dead_ratio"]:
        images.append(plot_frequency_heatmap(layers, kind, out / f"frequency_heatmap_{kind}.png"))
        images.append(plot_histograms(layers, kind, out / f"histogram_{kind}.png"))
    write_json_atomic(out / "metrics.json", report)
    write_json_atomic(out / "run_metadata.json", _metadata(args, "audit"))
    write_report(out / "report.html", report, images, alerts)
    return report, alerts


def run_swap_command(args: argparse.Namespace) -> dict[str, Any]:
    settings = _settings(args)
    loaded, batches, data = _prepare(args)
    results = run_swap_experiment(
        loaded.model, batches, args.activations, settings, progress=not args.quiet
    )
    out: Path = args.out
    plot_dead_ratios(
        {label: r["dead_ratio"] for label, r in results.items()},
        out / "swap_dead_ratio.png",
        title="mlp_post dead-neuron ratio per layer, by activation (same weights and data)",
    )
    report = {"model": loaded.source, "data": data, "threshold": args.threshold, "results": results}
    write_json_atomic(out / "swap.json", report)
    write_json_atomic(out / "run_metadata.json", _metadata(args, "swap"))
    return report


def run_strip_command(args: argparse.Namespace) -> dict[str, Any]:
    if not 0.0 < args.fraction <= 1.0:
        raise AuditError(f"--fraction must be in (0, 1], got {args.fraction}.")
    if args.lr <= 0:
        raise AuditError(f"--lr must be positive, got {args.lr}.")
    config = StripConfig(
        preset=args.model,
        activation=args.activation,
        epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        lr=args.lr,
        batch_size=args.batch_size,
        block_size=args.block_size,
        fraction=args.fraction,
        val_blocks=args.val_blocks,
        seed=args.seed,
    )
    corpus = read_corpus(args.corpus, args.max_chars)
    result = run_strip_experiment(
        config, corpus, device=select_device(args.device), progress=not args.quiet
    )
    out: Path = args.out
    plot_strip_curves(result["histories"], out / "strip.png")
    write_json_atomic(out / "strip.json", result)
    write_json_atomic(out / "run_metadata.json", _metadata(args, "strip"))
    return result


def run_monitor_command(
    args: argparse.Namespace, pretrain_argv: Sequence[str]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Pretrain with an :class:`AuditCallback`; return the pretrain metrics and
    the alerts."""
    if any(a == "--out" or a.startswith("--out=") for a in pretrain_argv):
        raise AuditError("Give --out before '--': the audit and the pretraining share it.")
    rules = parse_rules(args.alert)
    settings = _settings(args)
    out: Path = args.out
    pretrain_args = lm_pretrain.build_parser().parse_args([*pretrain_argv, "--out", str(out)])
    out.mkdir(parents=True, exist_ok=True)
    log_path, alerts_path = out / "audit.jsonl", out / "alerts.jsonl"
    if pretrain_args.resume is None:  # a resumed run keeps appending to its logs
        log_path.unlink(missing_ok=True)
        alerts_path.unlink(missing_ok=True)
    callback = AuditCallback(
        None,
        log_path,
        every_n_steps=args.every,
        rules=rules,
        alerts_path=alerts_path,
        settings=settings,
        kinds=cast(tuple[Kind, ...], tuple(args.kinds)),
    )
    try:
        metrics = lm_pretrain.run(pretrain_args, callbacks=[callback])
    except lm_pretrain.PretrainError as error:
        raise AuditError(str(error)) from None
    if callback.records:
        plot_monitor(callback.records, out / "monitor.png")
    write_json_atomic(out / "audit_run_metadata.json", _metadata(args, "monitor"))
    return metrics, callback.alerts


def _report_alerts(alerts: Sequence[dict[str, Any]], path: Path) -> int:
    for alert in alerts:
        print(f"{PROG}: warning: alert {alert['rule']!r}: {alert['message']}", file=sys.stderr)
    if alerts:
        print(f"{PROG}: {len(alerts)} alert(s) fired; see {path}", file=sys.stderr)
        return EXIT_ALERT
    return 0


def _run(argv: list[str]) -> int:
    if argv[:1] == ["monitor"]:
        own, rest = argv[1:], []
        if "--" in own:  # what follows goes to lm's pretrain command
            split = own.index("--")
            own, rest = own[:split], own[split + 1 :]
        monitor_args = build_monitor_parser().parse_args(own)
        metrics, alerts = run_monitor_command(monitor_args, rest)
        print(
            f"pretrained {metrics['step']} steps: validation perplexity "
            f"{metrics['initial_val_perplexity']:.1f} -> {metrics['val_perplexity']:.1f}; "
            f"dead ratios in {monitor_args.out / 'audit.jsonl'}"
        )
        return _report_alerts(alerts, monitor_args.out / "alerts.jsonl")
    if argv[:1] == ["swap"]:
        swap = run_swap_command(build_swap_parser().parse_args(argv[1:]))
        for label, result in swap["results"].items():
            ratios = ", ".join(f"{100 * r:.1f}%" for r in result["dead_ratio"])
            print(f"{label:>22}: mlp_post dead per layer {ratios}")
        return 0
    if argv[:1] == ["strip"]:
        strip = run_strip_command(build_strip_parser().parse_args(argv[1:]))
        for label, final in strip["final"].items():
            print(
                f"{label:>16}: dead ratio {100 * final['dead_ratio']:.1f}%, "
                f"validation loss {final['val_loss']:.3f}"
            )
        return 0
    args = build_parser().parse_args(argv)
    report, alerts = run_audit_command(args)
    for kind, summary in report["summary"].items():
        print(
            f"{kind:>9}: {summary['dead_count']}/{summary['neurons']} dead "
            f"({100 * summary['dead_ratio']:.2f}%), worst layer {summary['max_layer']} "
            f"({100 * summary['max_layer_dead_ratio']:.2f}%)"
        )
    print(f"report: {args.out / 'report.html'}")
    return _report_alerts(alerts, args.out / "alerts.jsonl")


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        with warnings.catch_warnings():
            # Alerts are reported once, below, not also as Python warnings on stderr.
            warnings.simplefilter("ignore", AlertWarning)
            return _run(arguments)
    except (AuditError, ModelLoadError, FileNotFoundError, ValueError) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    raise SystemExit(main())
