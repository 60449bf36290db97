import json
from pathlib import Path
from typing import Any

import pytest
from neuron_audit_testing import write_corpus

from lm import load_corpus
from neuron_audit.cli import main
from neuron_audit.compare import (
    CompareSettings,
    claim_holds,
    run_compare_experiment,
    summarise_runs,
)
from neuron_audit.runs import RunReadError, markdown_table, read_run

PNG = b"\x89PNG\r\n\x1a\n"
SMALL: dict[str, Any] = dict(
    epochs=1, steps_per_epoch=2, batch_size=4, block_size=16, val_blocks=4, vocab_size=320
)


def _run(activation: str, lr: float, seed: int, dead: float, loss: float) -> dict[str, Any]:
    final = {"epoch": 1, "dead_ratio": dead, "dead_ratio_signed": dead, "dead_ratio_abs": dead}
    return {
        "activation": activation,
        "lr": lr,
        "seed": seed,
        "history": [{"epoch": 0, "dead_ratio": 0.0}, {**final, "val_loss": loss}],
    }


def test_the_summary_ranks_activations_and_gives_the_spread_over_seeds() -> None:
    runs = [
        _run("relu", 0.1, 0, 0.4, 5.0),
        _run("relu", 0.1, 1, 0.2, 5.2),
        _run("gelu", 0.1, 0, 0.0, 4.9),
        _run("gelu", 0.1, 1, 0.1, 5.1),
    ]
    summary = summarise_runs(runs, ["relu", "gelu"], [0.1])["0.1"]
    relu = summary["activations"]["relu"]["dead_ratio"]
    assert relu["mean"] == pytest.approx(0.3) and (relu["min"], relu["max"]) == (0.2, 0.4)
    assert relu["std"] == pytest.approx(0.1414, abs=1e-4)
    assert summary["ranking_most_dead_first"] == ["relu", "gelu"]
    assert summary["ranking_lowest_loss_first"] == ["gelu", "relu"]
    assert summary["claim_holds"] is True
    tied = {"relu": {"dead_ratio": {"mean": 0.1}}, "elu": {"dead_ratio": {"mean": 0.1}}}
    assert claim_holds(tied) is False  # a tie is not "fewer"
    assert claim_holds({"gelu": {"dead_ratio": {"mean": 0.0}}}) is None


def test_every_activation_trains_from_the_same_start_and_results_are_saved_per_run(
    tmp_path: Path,
) -> None:
    corpus = load_corpus(str(write_corpus(tmp_path / "corpus")))
    settings = CompareSettings(
        activations=("relu", "leaky_relu"), lrs=(0.05,), seeds=(0, 1), **SMALL
    )
    saved: list[int] = []
    result = run_compare_experiment(
        settings, corpus, on_run=lambda partial: saved.append(len(partial["runs"]))
    )
    assert saved == [1, 2, 3, 4]
    runs = result["runs"]
    assert [(r["seed"], r["activation"]) for r in runs] == [
        (0, "relu"),
        (0, "leaky_relu"),
        (1, "relu"),
        (1, "leaky_relu"),
    ]
    assert all([h["epoch"] for h in r["history"]] == [0, 1] for r in runs)
    # Same initial weights within a seed: block 0's pre-activations do not depend on the
    # activation, and LeakyReLU(0.01) > 0.001 exactly where ReLU is, so their firing agrees there.
    by = {(r["seed"], r["activation"]): r["history"] for r in runs}
    for seed in (0, 1):
        relu, leaky = by[(seed, "relu")][0], by[(seed, "leaky_relu")][0]
        assert relu["mean_fire_frequency_per_layer"][0] == leaky["mean_fire_frequency_per_layer"][0]
        assert relu["dead_ratio_signed"] == relu["dead_ratio_abs"]  # ReLU: both rules agree
        assert leaky["dead_ratio_abs"] == 0.0  # a leaky unit's output is never ~0 everywhere
    seed0, seed1 = by[(0, "relu")][0], by[(1, "relu")][0]
    assert seed0["mean_fire_frequency_per_layer"] != seed1["mean_fire_frequency_per_layer"]
    assert set(result["summary"]["0.05"]["activations"]) == {"relu", "leaky_relu"}


def test_compare_and_runs_commands_write_json_and_pngs(tmp_path: Path) -> None:
    corpus = str(write_corpus(tmp_path / "corpus"))
    out = tmp_path / "compare"
    small = [f"--{k.replace('_', '-')}={v}" for k, v in SMALL.items()]
    args = ["compare", "--out", str(out), "--corpus", corpus, "--quiet", *small]
    assert main([*args, "--activations", "relu", "gelu", "--seeds", "0", "1", "--lrs", "0.05"]) == 0
    result = json.loads((out / "compare.json").read_text())
    assert result["complete"] is True and len(result["runs"]) == 4
    assert (
        "never fires" in result["dead_definition"] and "|activation|" in result["dead_definition"]
    )
    for name in (
        "compare_dead_ratio",
        "compare_never_positive",
        "compare_loss",
        "activation_shapes",
    ):
        assert (out / f"{name}.png").read_bytes()[:8] == PNG

    audit = tmp_path / "audit"
    audit.mkdir()
    (audit / "metrics.json").write_text(
        json.dumps(
            {
                "model": "preset:tiny",
                "random_weights": True,
                "summary": {"mlp_post": {"dead_ratio": 0.25}},
            }
        )
    )
    monitor = tmp_path / "monitor"
    monitor.mkdir()
    lines = [
        {"step": 2, "dead_ratio": {"mlp_post": [0.0, 0.5]}},
        {"step": 4, "dead_ratio": {"mlp_post": [0.1, 0.3]}},
    ]
    (monitor / "audit.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    (monitor / "metrics.json").write_text(json.dumps({"val_loss": 4.5, "step": 4}))

    rows = read_run(monitor)
    assert rows[0]["dead_ratio"]["mlp_post"] == pytest.approx(0.2) and rows[0]["val_loss"] == 4.5
    table_out = tmp_path / "table"
    assert main(["runs", str(out), str(audit), str(monitor), "--out", str(table_out)]) == 0
    saved = json.loads((table_out / "runs.json").read_text())
    names = [row["name"] for row in saved["runs"]]
    assert names == ["compare:relu@0.05", "compare:gelu@0.05", "audit", "monitor"]
    assert "audit (random weights) | metrics.json | 25.0% | - |" in markdown_table(saved["runs"])
    assert (table_out / "runs.png").read_bytes()[:8] == PNG
    with pytest.raises(RunReadError, match="holds no audit.jsonl"):
        read_run(tmp_path / "corpus")


def test_runs_of_an_empty_folder_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "holds no audit.jsonl" in err and "Traceback" not in err
