from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from feature_selection_testing import SIGNAL, classification_table, split
from sklearn.base import BaseEstimator, clone
from sklearn.feature_selection import SelectorMixin
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from feature_selection import FeatureSelectionError, FilterSelector, L1Selector, VotingSelector
from feature_selection.voting import tally


class FixedSelector(SelectorMixin, BaseEstimator):  # type: ignore[misc]
    """Keeps the features given by ``mask``; lets the vote arithmetic be checked exactly."""

    def __init__(self, mask: Sequence[int] = ()) -> None:
        self.mask = mask

    def fit(self, X: Any, y: Any = None) -> "FixedSelector":
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def _get_support_mask(self) -> np.ndarray:
        return np.asarray(self.mask, dtype=bool)


def fixed(*masks: Sequence[int]) -> list[tuple[str, FixedSelector]]:
    return [(f"m{i}", FixedSelector(mask)) for i, mask in enumerate(masks)]


X_FOUR = pd.DataFrame(np.arange(20.0).reshape(5, 4), columns=["a", "b", "c", "d"])


def test_votes_table_and_shares() -> None:
    masks = ([1, 1, 0, 0], [1, 0, 1, 0], [1, 1, 1, 0], [0, 1, 0, 0])
    voting = VotingSelector(fixed(*masks)).fit(X_FOUR, np.zeros(5))
    assert voting.votes_.shape == (4, 4)
    assert voting.votes_.to_numpy().tolist() == [list(m) for m in masks]
    assert voting.vote_share_.tolist() == [0.75, 0.75, 0.5, 0.0]
    # Shares must exceed the threshold: c has exactly 0.5 and is dropped.
    assert list(voting.get_feature_names_out()) == ["a", "b"]


def test_threshold_is_configurable() -> None:
    masks = ([1, 1, 0, 0], [1, 0, 1, 0])
    voting = VotingSelector(fixed(*masks), threshold=0.4).fit(X_FOUR, None)
    assert list(voting.get_feature_names_out()) == ["a", "b", "c"]
    assert VotingSelector(fixed(*masks), threshold=0.0).fit(X_FOUR).get_support().sum() == 3


def test_tally_any_vote_and_strict_majority() -> None:
    votes = pd.DataFrame([[1, 1, 0, 0], [1, 0, 1, 0]], columns=["a", "b", "c", "d"])
    share, union = tally(votes, 0.0)
    assert share.tolist() == [1.0, 0.5, 0.5, 0.0]
    assert union.tolist() == [True, True, True, False]
    # With two voters a share above 0.5 needs both: the intersection.
    assert tally(votes, 0.5)[1].tolist() == [True, False, False, False]
    # VotingSelector applies the same rule.
    fitted = VotingSelector(fixed([1, 1, 0, 0], [1, 0, 1, 0]), threshold=0.0).fit(X_FOUR)
    assert fitted.get_support().tolist() == union.tolist()


def test_bad_voting_configurations_are_rejected() -> None:
    with pytest.raises(FeatureSelectionError, match="unique"):
        VotingSelector([("a", FixedSelector([1])), ("a", FixedSelector([1]))]).fit(X_FOUR)
    with pytest.raises(FeatureSelectionError, match="threshold"):
        VotingSelector(fixed([1, 0, 0, 0]), threshold=1.0).fit(X_FOUR)
    with pytest.raises(FeatureSelectionError, match="at least one"):
        VotingSelector([]).fit(X_FOUR)


def test_real_selectors_vote_and_scores_table_lines_up(tmp_path: Path) -> None:
    X, y = split(classification_table())
    voting = VotingSelector(
        [("pearson", FilterSelector("pearson", k=2)), ("mi", FilterSelector("mutual_info", k=3))]
    ).fit(X, y)
    assert list(voting.get_feature_names_out()) == SIGNAL
    table = voting.scores_table()
    assert list(table.index) == list(X.columns)
    assert table["selected"].tolist() == voting.get_support().tolist()
    assert set(voting.timings_) == {"pearson", "mi"}
    voting.plot_votes(tmp_path / "votes.png")
    assert (tmp_path / "votes.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_selectors_work_inside_a_pipeline_with_numpy_input() -> None:
    X, y = split(classification_table())
    pipeline = make_pipeline(
        StandardScaler(), FilterSelector("anova", k=2), LogisticRegression()
    ).fit(X.to_numpy(), y)
    assert pipeline.score(X.to_numpy(), y) > 0.9
    selector = pipeline[1]
    assert selector.get_feature_names_out().tolist() == ["x0", "x1"]
    assert selector.get_support(indices=True).tolist() == [0, 1]
    assert pipeline[:-1].transform(X.to_numpy()).shape == (len(X), 2)


def test_set_output_pandas_keeps_names_and_categorical_columns() -> None:
    X, y = split(classification_table())
    X["colour"] = np.where(X["s0"] > 0, "warm", "cold")
    selector = FilterSelector("association", k=2).set_output(transform="pandas").fit(X, y)
    out = selector.transform(X)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == list(selector.get_feature_names_out())
    voting = VotingSelector(
        [("assoc", FilterSelector("association", k=3)), ("l1", L1Selector(C=0.1))]
    ).set_output(transform="pandas")
    result = voting.fit_transform(X.drop(columns="colour"), y)
    assert list(result.columns) == SIGNAL


def test_clone_and_params_round_trip() -> None:
    selector = FilterSelector("kendall", k=3, levels={"a": "ordinal"})
    copy = clone(selector)
    assert copy.get_params() == selector.get_params()
    with pytest.raises(Exception, match="not fitted"):
        copy.get_support()


def test_transform_checks_feature_names() -> None:
    X, y = split(classification_table())
    selector = FilterSelector("pearson", k=2).fit(X, y)
    with pytest.raises(ValueError, match="feature names"):
        selector.transform(X.rename(columns={"s0": "other"}))
