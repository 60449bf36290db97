"""Voting over selectors: a votes table (selector x feature) and a vote-share threshold."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from typing import Any, Self

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.base import BaseEstimator, clone
from sklearn.feature_selection import SelectorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from feature_selection.base import BaseSelector, to_frame
from feature_selection.errors import FeatureSelectionError
from ml_core.plotting import save_figure


def tally(votes: pd.DataFrame, threshold: float) -> tuple[pd.Series, np.ndarray]:
    """Vote share per feature and the kept mask for a votes table (selector x
    feature, 1 = kept): a feature is kept when its share *exceeds* ``threshold``.

    ``VotingSelector.fit`` uses this, and so does the benchmark when it re-scores saved
    selections, so both apply exactly the same rule.
    """
    share = votes.mean(axis=0)
    return share, (share > threshold).to_numpy()


class VotingSelector(SelectorMixin, BaseEstimator):  # type: ignore[misc]
    """Fit every selector; keep the features whose share of votes exceeds ``threshold``.

    ``selectors`` is a list of (name, selector) pairs, like a Pipeline's steps. Before fitting
    anything, every selector that can (``BaseSelector.check_input``) checks the table, so a bad
    column fails in a second instead of after a long Boruta run.

    Fitted: ``votes_`` (DataFrame, selector x feature, 1 = kept), ``vote_share_`` (Series),
    ``support_``, ``selectors_`` (fitted clones by name), ``timings_`` (seconds by name).
    """

    def __init__(
        self,
        selectors: Sequence[tuple[str, BaseEstimator]],
        threshold: float = 0.5,
        verbose: bool = False,
    ) -> None:
        self.selectors = selectors
        self.threshold = threshold
        self.verbose = verbose

    def _progress(self, message: str) -> None:
        if self.verbose:
            print(message, file=sys.stderr, flush=True)

    def fit(self, X: Any, y: Any = None) -> Self:
        if not self.selectors:
            raise FeatureSelectionError("VotingSelector needs at least one selector.")
        names = [name for name, _ in self.selectors]
        if len(set(names)) != len(names):
            raise FeatureSelectionError(f"Selector names must be unique, got {names}.")
        if not 0 <= self.threshold < 1:
            raise FeatureSelectionError(f"threshold must be in [0, 1), got {self.threshold}.")
        frame = to_frame(X)
        for _, selector in self.selectors:
            if isinstance(selector, BaseSelector):
                selector.check_input(frame, y)
        validate_data(self, X, skip_check_array=True)
        rows: dict[str, np.ndarray] = {}
        self.selectors_: dict[str, BaseEstimator] = {}
        self.timings_: dict[str, float] = {}
        for position, (name, selector) in enumerate(self.selectors, start=1):
            self._progress(f"[{position}/{len(self.selectors)}] {name}: fitting ...")
            started = time.perf_counter()
            try:
                fitted = clone(selector).fit(frame, y)
            except FeatureSelectionError:
                raise
            except ValueError as error:  # sklearn/scipy rejecting the data: say which method
                raise FeatureSelectionError(f"Method {name!r} failed: {error}") from error
            self.timings_[name] = time.perf_counter() - started
            support = np.asarray(fitted.get_support(), dtype=bool)
            rows[name] = support.astype(np.int64)
            self.selectors_[name] = fitted
            self._progress(
                f"[{position}/{len(self.selectors)}] {name}: kept {int(support.sum())} of "
                f"{support.size} features in {self.timings_[name]:.1f}s"
            )
        columns = [str(column) for column in frame.columns]
        self.votes_ = pd.DataFrame.from_dict(rows, orient="index", columns=columns)
        self.votes_.index.name = "selector"
        self.vote_share_, self.support_ = tally(self.votes_, self.threshold)
        return self

    def _get_support_mask(self) -> np.ndarray:
        check_is_fitted(self, "support_")
        mask: np.ndarray = self.support_
        return mask

    def scores_table(self) -> pd.DataFrame:
        """Feature x selector scores, plus vote share and the final decision."""
        check_is_fitted(self, "support_")
        table = pd.DataFrame(index=self.votes_.columns)
        table.index.name = "feature"
        for name, fitted in self.selectors_.items():
            scores = getattr(fitted, "scores_", None)
            if scores is not None:
                table[f"{name}_score"] = np.asarray(scores, dtype=np.float64)
            table[f"{name}_kept"] = self.votes_.loc[name].to_numpy()
        table["vote_share"] = self.vote_share_.to_numpy()
        table["selected"] = self.support_
        return table

    def plot_votes(self, path: str | os.PathLike[str]) -> None:
        """Write a PNG: the votes heatmap on top, vote share per feature below."""
        check_is_fitted(self, "support_")
        plot_votes(self.votes_, self.threshold, path)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.string = True
        return tags


def literal(text: object) -> str:
    """``text`` as matplotlib shows it literally: a '$' would otherwise start mathtext (and a name
    like '$a_b_c$' fails to render)."""
    return str(text).replace("$", r"\$")


def plot_votes(votes: pd.DataFrame, threshold: float, path: str | os.PathLike[str]) -> None:
    """Heatmap of ``votes`` (selector x feature) and a bar chart of vote shares, as a PNG."""
    n_selectors, n_features = votes.shape
    width = min(max(6.0, 0.3 * n_features + 2.0), 40.0)
    height = 2.5 + 0.35 * n_selectors
    # A Figure of its own, not pyplot's: nothing global to switch or leak.
    figure = Figure(figsize=(width, height + 2.5))
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=[n_selectors, 3])
    top.imshow(votes.to_numpy(), aspect="auto", cmap="Greens", vmin=0, vmax=1)
    top.set_yticks(range(n_selectors), labels=[literal(name) for name in votes.index])
    top.set_title("Votes (green = feature kept by the selector)")
    share = votes.mean(axis=0).to_numpy()
    colours = ["tab:green" if value > threshold else "tab:gray" for value in share]
    bottom.bar(range(n_features), share, color=colours)
    bottom.axhline(threshold, color="tab:red", linestyle="--", label=f"threshold {threshold}")
    bottom.set_ylim(0, 1)
    bottom.set_ylabel("vote share")
    bottom.legend(loc="upper right")
    if n_features <= 80:
        bottom.set_xticks(
            range(n_features),
            labels=[literal(name) for name in votes.columns],
            rotation=90,
        )
    figure.tight_layout()
    save_figure(figure, path, dpi=100)
