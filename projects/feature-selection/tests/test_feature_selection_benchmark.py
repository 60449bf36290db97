import json
from pathlib import Path
from typing import Any

import pytest

from feature_selection.benchmark import (
    BenchmarkConfig,
    k_of_n_grid,
    main,
    real_datasets,
    rescore,
    revote,
    scores,
    synthetic_datasets,
)
from feature_selection.cli import SelectConfig
from ml_core.cli import ConfigError, parse_config


def record(kind: str = "synthetic") -> dict[str, Any]:
    """Saved selections for one dataset: relevant a, b, c; three methods."""
    return {
        "dataset": f"toy {kind}",
        "kind": kind,
        "seed": 0,
        "p": 5,
        "relevant": ["a", "b", "c"],
        "kept": {"m1": ["a", "b"], "m2": ["a", "c", "x"], "m3": ["a", "y"]},
        "seconds": {"m1": 1.0, "m2": 2.0, "m3": 4.0},
    }


def test_scores_precision_recall_f1() -> None:
    assert scores(["a", "b", "x", "perm_a"], {"a", "b", "c", "d"}, {"perm_a"}) == {
        "precision": 0.5,
        "recall": 0.5,
        "f1": 0.5,
        "n_selected": 4,
        "noise_kept": 2,
        "permuted_kept": 1,
    }
    assert scores([], {"a"})["precision"] == 0.0  # an empty selection scores 0


def test_revote_applies_the_voting_selectors_rule() -> None:
    voters = ["m1", "m2", "m3"]
    # a: 3 votes, b, c, x, y: 1 vote each.
    assert revote(record(), voters, 0.5) == ["a"]
    assert revote(record(), voters, 0.0) == ["a", "b", "c", "x", "y"]
    # Shares must exceed the threshold: 1 vote of 3 is not above 1/3.
    assert revote(record(), voters, 1 / 3) == ["a"]
    assert revote(record(), ["m1", "m2"], 0.3) == ["a", "b", "c", "x"]
    with pytest.raises(ValueError, match="no saved selection"):
        revote(record(), ["m1", "nope"], 0.5)


def test_rescore_recomputes_only_the_voting_row() -> None:
    saved = record()
    saved["kept"]["voting"] = ["y"]
    results = rescore([saved], ["m1", "m2"], 0.0).set_index("method")
    assert results.loc["voting", "n_selected"] == 4
    assert results.loc["voting", "recall"] == 1.0
    assert results.loc["voting", "seconds"] == 3.0
    assert results.loc["m1", "precision"] == 1.0


def test_k_of_n_grid_covers_every_subset_and_rule() -> None:
    grid = k_of_n_grid([record("synthetic"), record("real")], ["m1", "m2", "m3"], max_voters=3)
    # 3 singles (k=1) + 3 pairs (k=1,2) + 1 triple (k=1,2,3)
    assert len(grid) == 3 + 6 + 3
    union = grid[(grid["voters"] == "m1,m2") & (grid["k"] == 1)].iloc[0]
    assert union["synthetic_recall"] == 1.0
    assert union["real_precision"] == 0.75
    assert grid["all_f1"].is_monotonic_decreasing


def test_the_default_voting_row_is_the_select_clis_default_vote() -> None:
    """What ``select`` runs with no --methods/--threshold is what the benchmark's "voting" row
    measures, and those voters are candidates the benchmark can fit."""
    cli = parse_config(SelectConfig, ["t.csv", "--target", "y", "--out", "o"], prog="select")
    benchmark = parse_config(BenchmarkConfig, [], prog="benchmark")
    assert benchmark.voter_names == cli.method_names
    assert benchmark.threshold == cli.threshold
    with pytest.raises(ConfigError) as error:
        BenchmarkConfig(voters="association,vif")  # vif is no benchmark candidate
    assert error.value.field == "voters"


def test_datasets_know_their_relevant_columns() -> None:
    synthetic = synthetic_datasets([0], [20])
    assert [d.name for d in synthetic] == ["clf p=25 seed=0", "reg p=55 seed=0"]
    assert synthetic[0].relevant == {f"f{i}" for i in range(7)}
    # Permuted copies of relevant columns: same values, another order.
    assert synthetic[0].permuted == {f"perm_f{i}" for i in range(5)}
    copy, source = synthetic[0].X["perm_f0"], synthetic[0].X["f0"]
    assert sorted(copy) == sorted(source) and not copy.equals(source)
    real = real_datasets(4, [0, 1])
    assert len(real) == 6
    wine = [d for d in real if d.name.startswith("wine")]
    assert wine[0].relevant == set(wine[0].X.columns[:13])
    assert wine[0].permuted == {"noise1", "noise3"}
    # Another seed draws other noise columns.
    assert not wine[0].X["noise0"].equals(wine[1].X["noise0"])


def test_benchmark_main_saves_selections_and_rescores(tmp_path: Path) -> None:
    argv = ["--seeds", "0", "--sizes", "20", "--real-seeds", "--methods", "anova"]
    argv += ["--voters", "association,l1", "--threshold", "0.0", "--boruta-max-iter", "5"]
    argv += ["--no-check-voting-best"]
    assert main([*argv, "--out", str(tmp_path / "run")]) == 0
    saved = json.loads((tmp_path / "run" / "selections.json").read_text())["selections"]
    assert [s["dataset"] for s in saved] == ["clf p=25 seed=0", "reg p=55 seed=0"]
    for selection in saved:
        union = set(selection["kept"]["association"]) | set(selection["kept"]["l1"])
        assert set(selection["kept"]) == {"association", "l1", "anova", "voting"}
        assert set(selection["kept"]["voting"]) == union
        # Downstream CV score per selection and on every column.
        assert set(selection["cv_score"]) == set(selection["kept"])
        assert 0.5 < selection["cv_score"]["association"] <= 1.0
    assert 0.5 < saved[0]["cv_score_all"] <= 1.0
    partial = json.loads((tmp_path / "run" / "partial.json").read_text())
    assert partial["done"] == partial["total"] == 2
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert "permuted_kept" in summary["summary"][0] and "cv_score" in summary["summary"][0]
    assert summary["target_report"][0].startswith("target: ")
    rescored = tmp_path / "rescored"
    rescore_argv = ["--voters", "association", "--threshold", "0.5", "--grid"]
    selections = str(tmp_path / "run" / "selections.json")
    assert main([*rescore_argv, "--rescore", selections, "--out", str(rescored)]) == 0
    assert (rescored / "grid.csv").is_file()
    summary = json.loads((rescored / "summary.json").read_text())["summary"]
    rows = {row["method"]: row for row in summary}
    assert rows["voting"]["f1"] == rows["association"]["f1"]


def write_selections(path: Path) -> Path:
    """A selections.json with the candidates' names: association keeps a, b; l1 a, c, x; boruta a, y
    (relevant: a, b, c)."""
    saved = record()
    saved["kept"] = {"association": ["a", "b"], "l1": ["a", "c", "x"], "boruta": ["a", "y"]}
    saved["seconds"] = {"association": 1.0, "l1": 2.0, "boruta": 4.0}
    path.write_text(json.dumps({"selections": [saved]}))
    return path


def test_a_missed_target_exits_1_after_writing_the_results(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    selections = str(write_selections(tmp_path / "selections.json"))
    out = tmp_path / "out"
    argv = ["--rescore", selections, "--out", str(out), "--check-voting-best"]
    # A 2-of-3 majority keeps only a: F1 0.5, below association's 0.8.
    assert main([*argv, "--voters", "association,l1,boruta", "--threshold", "0.5"]) == 1
    assert (out / "summary.json").is_file() and (out / "results.csv").is_file()
    err = capsys.readouterr().err
    assert "benchmark: check failed: target missed: voting mean F1 0.500 is below" in err
    assert "association's 0.800" in err
    # Association alone is the voting row: it ties the best single method, which meets the target.
    assert main([*argv, "--voters", "association", "--threshold", "0"]) == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--voters", "association,magic"], "--voters: unknown methods: magic"),
        (["--methods", "anova", "lasso"], "--methods: unknown methods: lasso"),
        (["--threshold", "1"], "--threshold: must be in [0, 1), got 1.0"),
        (["--boruta-max-iter", "0"], "--boruta-max-iter: must be positive, got 0"),
        (["--sizes", "5"], "--sizes: must be at least 7"),
        (["--rescore", "missing.json"], "Cannot read selections from 'missing.json'"),
    ],
)
def test_usage_errors_exit_2_and_name_the_flag(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*argv, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"benchmark: error: {message}" in err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_rescoring_a_voter_without_saved_selections_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    selections = str(write_selections(tmp_path / "selections.json"))
    argv = ["--rescore", selections, "--voters", "rfecv", "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    assert "'rfecv' is missing from that selections file" in capsys.readouterr().err


def test_rescoring_with_a_known_method_absent_from_the_file_names_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    selections = str(write_selections(tmp_path / "selections.json"))
    argv = ["--rescore", selections, "--voters", "association,forward"]
    assert main([*argv, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "'forward' is missing from that selections file" in err
    assert "unknown" not in err and "It holds: association, boruta, l1" in err


def test_presets_and_quick_mode_choose_the_voters_and_datasets() -> None:
    article = BenchmarkConfig(preset="article")
    assert article.voter_names == ["association", "mutual_info", "l1", "rfecv", "boruta"]
    assert article.vote_threshold == 0.5
    assert BenchmarkConfig(preset="article", threshold=0.0).vote_threshold == 0.0
    seeds, real_seeds, sizes, methods = BenchmarkConfig(quick=True).plan()
    assert (seeds, real_seeds, sizes) == ((0,), (0,), (20,))
    assert "forward" not in methods and "boruta_direct" not in methods
