"""The article preset (issue 17), categorical columns in the default vote and the sample table
(issue 18)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from feature_selection.cli import SelectConfig, build_selector, main
from feature_selection.levels import ARTICLE_MEASURE_TABLE, MEASURE_TABLE, Level, choose_measure
from feature_selection.measures import rank_biserial
from feature_selection.selectors import BorutaSelector, FilterSelector, VIFSelector

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample.csv"
N, O, INTERVAL = Level.NOMINAL, Level.ORDINAL, Level.INTERVAL


def test_the_article_table_differs_where_the_article_does() -> None:
    differ = {pair for pair in MEASURE_TABLE if MEASURE_TABLE[pair] != ARTICLE_MEASURE_TABLE[pair]}
    assert {(N, O), (O, N), (N, INTERVAL), (INTERVAL, N)} <= differ
    assert choose_measure(N, O, feature_binary=True, table="article") == "rank_biserial"
    assert choose_measure(N, O, feature_binary=True) == "cramers_v"
    assert choose_measure(INTERVAL, N, target_binary=True, table="article") == "pointbiserial"
    # Both biserial measures need two categories; with three the default's measure stands in.
    assert choose_measure(N, O, feature_binary=False, table="article") == "cramers_v"
    assert choose_measure(INTERVAL, N, target_binary=False, table="article") == "correlation_ratio"


def test_rank_biserial_is_one_for_separated_groups_and_small_for_mixed() -> None:
    group = pd.Series([0] * 10 + [1] * 10)
    assert rank_biserial(group, pd.Series(range(20)))[0] == pytest.approx(1.0)
    mixed = pd.Series(np.tile([0, 1], 10))
    score, pvalue = rank_biserial(mixed, pd.Series(range(20)))
    assert score < 0.2 and pvalue > 0.5


def test_article_association_uses_rank_biserial_for_a_binary_feature_and_ordinal_target() -> None:
    rng = np.random.default_rng(0)
    grade = pd.Series(pd.Categorical(rng.integers(0, 4, size=200), ordered=True))
    frame = pd.DataFrame(
        {"flag": (grade.cat.codes + rng.normal(size=200) > 1.5).map({True: "y", False: "n"})}
    )
    frame["noise"] = rng.normal(size=200)
    fitted = FilterSelector("association", measure_table="article").fit(frame, grade)
    assert fitted.measures_ == {"flag": "rank_biserial", "noise": "spearman"}
    assert list(fitted.get_feature_names_out()) == ["flag"]
    default = FilterSelector("association").fit(frame, grade)
    assert default.measures_["flag"] == "cramers_v"


def test_vif_once_drops_both_collinear_features_the_loop_keeps_one() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=100)
    frame = pd.DataFrame(
        {"a": a, "a_copy": a + 0.01 * rng.normal(size=100), "b": rng.normal(size=100)}
    )
    assert VIFSelector().fit(frame).get_support().tolist() == [False, True, True]
    once = VIFSelector(iterative=False, constant=False).fit(frame)
    assert once.get_support().tolist() == [False, False, True]


def test_the_article_preset_sets_every_choice() -> None:
    config = SelectConfig(table=SAMPLE, target="churned", out=Path("o"), preset="article")
    assert config.method_names == ["association", "mutual_info", "l1", "rfecv", "boruta"]
    assert config.vote_threshold == 0.5
    assert build_selector("boruta", config).get_params()["keep_tentative"] is True
    vif = build_selector("vif", config).get_params()
    assert (vif["iterative"], vif["constant"], vif["max_vif"]) == (False, False, 10.0)
    assert build_selector("association", config).get_params()["measure_table"] == "article"
    default = SelectConfig(table=SAMPLE, target="churned", out=Path("o"))
    assert default.method_names == ["association", "boruta"] and default.vote_threshold == 0.0
    assert build_selector("boruta", default).get_params()["keep_tentative"] is False
    explicit = SelectConfig(
        table=SAMPLE,
        target="churned",
        out=Path("o"),
        preset="article",
        methods="association",
        threshold=0.0,
    )
    assert explicit.method_names == ["association"] and explicit.vote_threshold == 0.0


def test_boruta_takes_categorical_columns() -> None:
    rng = np.random.default_rng(0)
    city = rng.choice(["paris", "rome", "oslo"], size=200)
    frame = pd.DataFrame({"city": city, "noise": rng.normal(size=200)})
    y = pd.Series((city == "rome").astype(int))
    fitted = BorutaSelector(n_estimators=50, max_iter=20).fit(frame, y)
    assert "city" in fitted.get_feature_names_out()


def test_the_readme_first_command_runs_on_the_sample_as_is(tmp_path: Path) -> None:
    """./pants run projects/feature-selection:select -- projects/feature-selection/data/sample.csv
    --target churned --out runs/fs (fewer Boruta iterations here, to stay fast)."""
    table = pd.read_csv(SAMPLE)
    text = {name for name in table.columns if not pd.api.types.is_numeric_dtype(table[name])}
    assert text == {"contract", "region", "device"}
    out = tmp_path / "fs"
    argv = [str(SAMPLE), "--target", "churned", "--out", str(out), "--quiet"]
    assert main([*argv, "--boruta-max-iter", "20"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert list(report["methods"]) == ["association", "boruta"]
    assert report["task"] == "classification"
    assert {"tenure_months", "contract", "support_calls"} <= set(report["selected"])
    assert not {"region", "device"} & set(report["selected"])
