from typing import Any

import numpy as np
import pandas as pd
import pytest
from feature_selection_testing import classification_table, split

from feature_selection import (
    FeatureSelectionError,
    FilterSelector,
    L1Selector,
    RFESelector,
    VarianceSelector,
    VIFSelector,
    VotingSelector,
)
from feature_selection.errors import format_columns


def test_non_numeric_features_are_named() -> None:
    X, y = split(classification_table())
    X["city"] = "paris"
    X["zip"] = "75001"
    with pytest.raises(FeatureSelectionError, match="non-numeric columns: 'city', 'zip'"):
        FilterSelector("pearson").fit(X, y)


def test_nan_is_reported_with_its_columns() -> None:
    X, y = split(classification_table())
    X.loc[3, "n1"] = np.nan
    with pytest.raises(FeatureSelectionError, match="missing or infinite.*'n1'"):
        L1Selector().fit(X, y)
    X.loc[3, "n1"] = np.inf
    with pytest.raises(FeatureSelectionError, match="'n1'"):
        FilterSelector("mutual_info").fit(X, y)


def test_constant_columns_are_rejected_by_scoring_methods_but_not_by_variance() -> None:
    X, y = split(classification_table())
    X["flat"] = 1.0
    with pytest.raises(FeatureSelectionError, match="constant columns: 'flat'"):
        FilterSelector("pearson").fit(X, y)
    assert "flat" not in VarianceSelector().fit(X).get_feature_names_out()


def test_too_few_rows() -> None:
    X, y = split(classification_table())
    with pytest.raises(FeatureSelectionError, match="'rfecv' needs at least 10 rows, got 6"):
        RFESelector(cv=5).fit(X.head(6), y.head(6))
    with pytest.raises(FeatureSelectionError, match="'vif' needs at least 8 rows, got 5"):
        VIFSelector().fit(X.head(5))


def test_cv_needs_enough_rows_per_class() -> None:
    X, y = split(classification_table(n_rows=40))
    y = pd.Series(np.where(np.arange(40) < 3, 1, 0))
    with pytest.raises(FeatureSelectionError, match="smallest class has only 3 rows"):
        RFESelector(cv=5).fit(X, y)


def test_target_problems() -> None:
    X, y = split(classification_table())
    with pytest.raises(FeatureSelectionError, match="requires y to be passed"):
        FilterSelector("pearson").fit(X)
    with pytest.raises(FeatureSelectionError, match="missing values in 1 rows"):
        FilterSelector("pearson").fit(X, y.astype(float).where(y.index != 0))
    with pytest.raises(FeatureSelectionError, match="constant"):
        FilterSelector("pearson").fit(X, np.zeros(len(X)))
    with pytest.raises(FeatureSelectionError, match="binary target"):
        FilterSelector("pointbiserial").fit(X, np.arange(len(X)) % 3)


def test_method_specific_requirements() -> None:
    X, y = split(classification_table())
    with pytest.raises(FeatureSelectionError, match="non-negative.*'s0'"):
        FilterSelector("chi2").fit(X, y)
    with pytest.raises(FeatureSelectionError, match="Unknown filter method 'pearsn'"):
        FilterSelector("pearsn").fit(X, y)


def test_voting_checks_every_method_before_fitting_any() -> None:
    X, y = split(classification_table())
    X["city"] = "paris"
    X["city"] = X["city"].where(X.index > 0, "rome")

    class MustNotFit(VarianceSelector):
        def _select(self, frame: Any, target: Any) -> Any:
            raise AssertionError("fitted before all inputs were checked")

    voting = VotingSelector([("first", MustNotFit()), ("pearson", FilterSelector("pearson"))])
    with pytest.raises(FeatureSelectionError, match="'city'"):
        voting.fit(X, y)


def test_long_column_lists_are_shortened() -> None:
    assert format_columns([f"c{i}" for i in range(13)]).endswith("'c9' and 3 more")
