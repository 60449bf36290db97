import json
from pathlib import Path

import pytest
from neuron_audit_testing import write_corpus

from lm.pretrain import PretrainConfig
from neuron_audit.cli import _compatible_argv, main
from neuron_audit.config import MonitorConfig

PNG = b"\x89PNG\r\n\x1a\n"
FAST = ["--max-tokens", "400", "--batch-size", "4", "--max-length", "32", "--quiet"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(write_corpus(tmp_path_factory.mktemp("corpus")))


def test_audit_writes_metrics_plots_and_one_html_report(corpus: str, tmp_path: Path) -> None:
    out = tmp_path / "audit"
    args = ["--model", "llama-tiny", "--corpus", corpus, "--out", str(out), *FAST]
    assert main(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["family"] == "llama" and metrics["alerts"] == []
    assert 0 < metrics["tokens"] <= 400
    assert set(metrics["dead_ratio"]) == {"mlp_pre", "mlp_post", "attn_out"}
    assert [len(v) for v in metrics["dead_ratio"].values()] == [2, 2, 2]
    assert metrics["data"]["tokens"] == metrics["tokens"]
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert len(pngs) == 7 and all((out / p).read_bytes()[:8] == PNG for p in pngs)
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 7
    assert json.loads((out / "run_metadata.json").read_text())["command"] == "audit"
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_a_random_weight_preset_is_announced_and_recorded(
    corpus: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "random"
    args = ["--model", "tiny", "--corpus", corpus, "--out", str(out), *FAST]
    assert main([*args, "--kinds", "mlp_post"]) == 0
    err = capsys.readouterr().err
    assert "audit: note: preset:tiny has RANDOM, untrained weights" in err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["random_weights"] is True and "RANDOM" in metrics["model_note"]
    assert "RANDOM, untrained weights" in (out / "report.html").read_text()


def test_a_firing_alert_makes_the_cli_exit_non_zero(
    corpus: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "alerting"
    args = ["--model", "tiny", "--corpus", corpus, "--out", str(out), *FAST, "--kinds", "mlp_post"]
    assert main([*args, "--alert", "mlp_post.dead_ratio >= 0%"]) == 1
    err = capsys.readouterr().err
    assert "2 alert(s) fired" in err
    assert "audit: warning: alert 'mlp_post.dead_ratio >= 0%': mlp_post dead_ratio" in err
    records = [json.loads(line) for line in (out / "alerts.jsonl").read_text().splitlines()]
    assert [r["layer"] for r in records] == [0, 1]
    assert "alerts" in (out / "report.html").read_text().lower()
    never = ["mlp_post.dead_ratio > 100%", "mean mlp_post.dead_ratio > 100%"]
    assert main([*args, "--alert", never[0], "--alert", never[1]]) == 0  # repeatable
    assert not (out / "alerts.jsonl").exists()
    assert json.loads((out / "metrics.json").read_text())["alert_rules"] == never


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--model", "/no/such/model"], "does not exist"),
        (["--max-length", "1000"], "exceeds the model's context of 256"),
        (["--corpus", "/no/such/corpus"], "does not exist"),
    ],
)
def test_bad_input_exits_2_with_a_clear_error(
    extra: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--model", "tiny", "--corpus", str(write_corpus(tmp_path / "c")), *FAST]
    assert main([*args, "--out", str(tmp_path / "out"), *extra]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith("audit: error: ") and message in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--threshold", "-1"], "audit: error: --threshold: must be zero or more, got -1.0"),
        (["--dead-fraction", "1"], "audit: error: --dead-fraction: must be in [0, 1), got 1.0"),
        (["--hist-range", "5", "-5"], "audit: error: --hist-range: must be two finite numbers"),
        (["--max-tokens", "0"], "audit: error: --max-tokens: must be positive, got 0"),
        (["--kinds", "mlp"], "audit: error: argument --kinds: invalid choice: 'mlp'"),
        (["--alert", "dead > 1"], "audit: error: --alert: Cannot parse alert rule"),
        (["swap", "--activations", "tanh"], "audit swap: error: argument --activations"),
        (["strip", "--fraction", "0"], "audit strip: error: --fraction: must be in (0, 1]"),
        (["strip", "--preset", "huge"], "audit strip: error: --preset: unknown preset 'huge'"),
        (["strip", "--model", "tiny"], "audit strip: error: --model: strip trains an lm preset"),
        (["compare", "--model", "tiny"], "audit compare: error: --model: compare trains an lm"),
        (["compare", "--lrs", "0"], "audit compare: error: --lrs: must be one or more positive"),
        (["compare", "--seeds", "1", "1"], "audit compare: error: --seeds: name each seed once"),
        (["compare", "--activations", "tanh"], "audit compare: error: argument --activations"),
        (["runs"], "audit runs: error: the following arguments are required: RUNS"),
        (["monitor", "--every", "0"], "audit monitor: error: --every: must be positive, got 0"),
        (["monitor", "--steps", "0"], "audit monitor: error: --steps: must be positive, got 0"),
        (["monitor", "--", "--lr", "0"], "audit monitor: error: --lr: must be positive, got 0"),
        (["sweep"], "audit: error: unrecognized arguments: sweep"),
    ],
)
def test_bad_values_exit_2_naming_the_flag(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*argv, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_earlier_command_lines_still_parse() -> None:
    assert _compatible_argv(["monitor", "--every", "2", "--", "--steps=4"]) == [
        "monitor",
        "--every",
        "2",
        "--steps=4",
    ]
    repeated = ["--alert", "a > 1", "b > 2", "--quiet", "--alert=c > 3", "--kinds", "mlp_pre"]
    assert _compatible_argv(repeated) == [
        "--quiet",
        "--kinds",
        "mlp_pre",
        "--alert",
        "a > 1",
        "b > 2",
        "c > 3",
    ]
    assert _compatible_argv(["swap", "--alert", "x"]) == ["swap", "--alert", "x"]


def test_monitor_takes_the_pretrain_options_and_passes_them_on(tmp_path: Path) -> None:
    config = MonitorConfig(out=tmp_path, steps=7, lr=0.01, every=3, alert=("*.nan_count > 0",))
    pretrain = config.pretrain_config()
    assert type(pretrain) is PretrainConfig
    assert pretrain == PretrainConfig(out=tmp_path, steps=7, lr=0.01)


def test_swap_subcommand_compares_activations_in_one_chart(corpus: str, tmp_path: Path) -> None:
    out = tmp_path / "swap"
    args = ["swap", "--model", "tiny", "--corpus", corpus, "--out", str(out), *FAST]
    assert main([*args, "--activations", "relu", "elu"]) == 0
    swap = json.loads((out / "swap.json").read_text())
    assert set(swap["results"]) == {"original (NewGELUActivation)", "relu", "elu"}
    assert all(len(r["dead_ratio"]) == 2 for r in swap["results"].values())
    assert (out / "swap_dead_ratio.png").read_bytes()[:8] == PNG


def test_strip_subcommand_trains_with_and_without_stripping(corpus: str, tmp_path: Path) -> None:
    out = tmp_path / "strip"
    args = ["strip", "--corpus", corpus, "--out", str(out), "--quiet", "--epochs", "2"]
    small = ["--steps-per-epoch", "3", "--batch-size", "4", "--block-size", "16"]
    assert main([*args, *small, "--val-blocks", "4", "--lr", "0.05"]) == 0
    strip = json.loads((out / "strip.json").read_text())
    assert set(strip["final"]) == {"baseline", "stripping"}
    baseline, stripping = strip["histories"]["baseline"], strip["histories"]["stripping"]
    assert [r["epoch"] for r in baseline] == [0, 1, 2]
    # same initial weights and batches: identical until the first strip takes effect
    assert baseline[1]["val_loss"] == stripping[1]["val_loss"]
    assert "weights_zeroed" in stripping[1]
    assert (out / "strip.png").read_bytes()[:8] == PNG


def test_monitor_pretrains_with_the_audit_callback_and_alerts(
    corpus: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "monitor"
    pretrain = ["--preset=tiny", "--steps=4", f"--corpus={corpus}", "--vocab-size=300"]
    pretrain += ["--block-size=32", "--batch-size=2", "--eval-every=2", "--eval-batches=1"]
    args = ["monitor", "--out", str(out), "--every", "2", "--alert", "*.dead_ratio >= 0"]
    assert main([*args, *pretrain, "--quiet"]) == 1  # the always-true rule fires

    records = [json.loads(line) for line in (out / "audit.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2, 4]
    # only the training passes count (2 steps x 2 x 32 tokens); evaluation passes do not
    assert [r["tokens"] for r in records] == [128, 128]
    assert [len(r["dead_ratio"]["mlp_post"]) for r in records] == [2, 2]
    assert (out / "monitor.png").read_bytes()[:8] == PNG
    assert (out / "config.json").is_file() and (out / "metrics.json").is_file()
    assert len((out / "alerts.jsonl").read_text().splitlines()) == 2 * 6
    assert "alert(s) fired" in capsys.readouterr().err
