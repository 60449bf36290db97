from typing import Any

import numpy as np
import pandas as pd
import pytest
from feature_selection_testing import SIGNAL, classification_table, regression_table, split

from feature_selection import (
    BorutaSelector,
    FilterSelector,
    L1Selector,
    MissingRatioSelector,
    RFESelector,
    SequentialSelector,
    VarianceSelector,
    VIFSelector,
)
from feature_selection.selectors import top_k_mask


def kept(selector: Any) -> list[str]:
    return sorted(str(name) for name in selector.get_feature_names_out())


def test_variance_drops_constant_and_low_variance_columns() -> None:
    X = pd.DataFrame({"const": [1.0] * 6, "small": [0, 0.1, 0, 0.1, 0, 0.1], "big": range(6)})
    assert kept(VarianceSelector().fit(X)) == ["big", "small"]
    assert kept(VarianceSelector(threshold=0.1).fit(X)) == ["big"]


def test_missing_ratio_keeps_columns_at_or_below_the_limit() -> None:
    X = pd.DataFrame({"a": [1, np.nan, np.nan, 4], "b": [1, 2, np.nan, 4], "c": ["x"] * 4})
    selector = MissingRatioSelector(max_missing=0.25).fit(X)
    assert kept(selector) == ["b", "c"]
    np.testing.assert_allclose(selector.scores_, [0.5, 0.25, 0.0])


def test_vif_drops_the_collinear_column_and_keeps_independent_ones() -> None:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=100), "b": rng.normal(size=100)})
    X["sum"] = X["a"] + X["b"] + 0.01 * rng.normal(size=100)
    X["free"] = rng.normal(size=100) + 50.0  # a large mean must not inflate VIF (intercept)
    selector = VIFSelector(max_vif=10).fit(X)
    assert len(kept(selector)) == 3 and "free" in kept(selector)
    assert selector.scores_[list(X.columns).index("free")] < 2


@pytest.mark.parametrize(
    "method", ["pearson", "spearman", "kendall", "pointbiserial", "anova", "mutual_info", "chi2"]
)
def test_numeric_filters_find_the_signal_in_classification(method: str) -> None:
    X, y = split(classification_table())
    if method == "chi2":
        X = X - X.min()  # chi-squared needs non-negative features
    selector = FilterSelector(method, k=2).fit(X, y)
    assert kept(selector) == SIGNAL


@pytest.mark.parametrize("method", ["pearson", "anova", "mutual_info", "association"])
def test_auto_k_keeps_only_significant_features_in_regression(method: str) -> None:
    X, y = split(regression_table())
    selector = FilterSelector(method, k="auto").fit(X, y)
    assert kept(selector) == SIGNAL


def test_percentile_keeps_that_share_of_features() -> None:
    X, y = split(classification_table(n_noise=8))
    assert FilterSelector("pearson", percentile=20).fit(X, y).get_support().sum() == 2


def test_cramers_v_and_association_take_categorical_features() -> None:
    rng = np.random.default_rng(1)
    colour = rng.choice(["red", "green", "blue"], size=300)
    y = pd.Series(np.where(colour == "red", "yes", "no"))
    X = pd.DataFrame({"colour": colour, "shape": rng.choice(["a", "b"], size=300)})
    for method in ("cramers_v", "association"):
        selector = FilterSelector(method, k="auto").fit(X, y)
        assert kept(selector) == ["colour"]
    association = FilterSelector("association").fit(X, y)
    assert association.measures_ == {"colour": "cramers_v", "shape": "cramers_v"}


def test_top_k_mask_breaks_ties_by_column_order() -> None:
    assert top_k_mask(np.array([1.0, 3.0, 3.0, np.nan]), 2).tolist() == [False, True, True, False]
    assert top_k_mask(np.array([2.0, 2.0, 2.0]), 1).tolist() == [True, False, False]


@pytest.mark.parametrize("direction", ["forward", "backward"])
def test_sequential_selection_finds_the_signal(direction: str) -> None:
    X, y = split(regression_table(n_noise=3))
    selector = SequentialSelector(direction, n_features_to_select=2, cv=3).fit(X, y)
    assert kept(selector) == SIGNAL


def test_rfe_and_rfecv_find_the_signal() -> None:
    X, y = split(regression_table())
    assert kept(RFESelector(n_features_to_select=2, cv=None).fit(X, y)) == SIGNAL
    rfecv = RFESelector(cv=3).fit(X, y)
    assert set(SIGNAL) <= set(kept(rfecv))
    assert rfecv.scores_[:2].tolist() == [1.0, 1.0]


def test_l1_finds_the_signal_for_both_tasks() -> None:
    X, y = split(regression_table())
    assert kept(L1Selector(alpha=0.3).fit(X, y)) == SIGNAL
    X, y = split(classification_table())
    assert set(SIGNAL) <= set(kept(L1Selector(cv=3).fit(X, y)))
    assert kept(L1Selector(C=0.05).fit(X, y)) == SIGNAL


def test_boruta_confirms_the_signal_and_tentative_is_an_option() -> None:
    X, y = split(classification_table(n_rows=150, n_noise=3))
    selector = BorutaSelector(n_estimators=50, max_iter=20, n_jobs=1).fit(X, y)
    assert kept(selector) == SIGNAL
    assert selector.scores_[:2].tolist() == [1.0, 1.0]
    weak = BorutaSelector(n_estimators=50, max_iter=20, n_jobs=1, keep_tentative=True).fit(X, y)
    expected = selector.get_support() | selector.tentative_
    assert weak.get_support().tolist() == expected.tolist()
