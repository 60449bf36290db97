"""Feature selectors: unsupervised, filters, wrappers, embedded and Boruta.

Each wraps the library that does the real work (sklearn, scipy.stats, statsmodels, boruta); what is
hand-written is listed in the README with the reason.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from boruta import BorutaPy
from scipy.stats import false_discovery_control
from sklearn.base import BaseEstimator, clone
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.feature_selection import (
    RFE,
    RFECV,
    SelectFromModel,
    SequentialFeatureSelector,
    VarianceThreshold,
    chi2,
    f_classif,
    f_regression,
    mutual_info_classif,
    mutual_info_regression,
)
from sklearn.linear_model import LassoCV, LinearRegression, LogisticRegression, LogisticRegressionCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from statsmodels.stats.outliers_influence import variance_inflation_factor
from statsmodels.tools.tools import add_constant

from feature_selection.base import (
    BaseSelector,
    Task,
    encode_for_trees,
    explain_task,
    numeric_matrix,
    resolve_task,
)
from feature_selection.errors import FeatureSelectionError, format_columns
from feature_selection.levels import Level, choose_measure, infer_level, resolve_levels
from feature_selection.measures import PAIRWISE_MEASURES

FILTER_METHODS = (
    "pearson",
    "spearman",
    "kendall",
    "pointbiserial",
    "chi2",
    "mutual_info",
    "anova",
    "cramers_v",
    "association",
)
# Filters whose statistic comes with a p-value, so k="auto" can use a false-discovery rate.
_CATEGORY_FILTERS = ("cramers_v", "association")


def top_k_mask(scores: np.ndarray, k: int) -> np.ndarray:
    """Mask of the ``k`` highest scores; ties keep the earlier column, as SelectKBest does."""
    mask = np.zeros(scores.shape[0], dtype=bool)
    if k <= 0:
        return mask
    order = np.argsort(-np.nan_to_num(scores, nan=-np.inf), kind="mergesort")
    mask[order[: min(k, scores.shape[0])]] = True
    return mask


def _scaled_model(model: BaseEstimator) -> Pipeline:
    return Pipeline([("scale", StandardScaler()), ("model", model)])


def _default_linear_model(task: Task) -> BaseEstimator:
    if task == "classification":
        return LogisticRegression(max_iter=2000)
    return LinearRegression()


def _check_cv_classes(name: str, y: pd.Series, task: Task, cv: int) -> None:
    if task != "classification":
        return
    smallest = int(y.value_counts().min())
    if smallest < cv:
        raise FeatureSelectionError(
            f"Method {name!r} uses {cv}-fold cross-validation, but the smallest class has "
            f"only {smallest} rows; it needs at least {cv}."
        )


class VarianceSelector(BaseSelector):
    """Drop features whose variance is at most ``threshold`` (sklearn's VarianceThreshold)."""

    _name = "variance"
    needs_target = False
    allows_constant = True

    def __init__(self, threshold: float = 0.0) -> None:
        self.threshold = threshold

    def min_rows(self, n_features: int) -> int:
        return 2

    def _select(self, frame: pd.DataFrame, y: pd.Series | None) -> tuple[np.ndarray, np.ndarray]:
        selector = VarianceThreshold(threshold=self.threshold)
        try:
            selector.fit(numeric_matrix(frame))
        except ValueError:  # every feature is below the threshold
            variances = np.nanvar(numeric_matrix(frame), axis=0)
            return np.zeros(frame.shape[1], dtype=bool), variances
        return selector.get_support(), selector.variances_


class MissingRatioSelector(BaseSelector):
    """Drop features whose share of missing values exceeds ``max_missing``.

    Hand-written: a column-wise ``isna().mean()``, which no library wraps.
    """

    _name = "missing_ratio"
    needs_numeric = False
    needs_target = False
    allows_nan = True
    allows_constant = True

    def __init__(self, max_missing: float = 0.5) -> None:
        self.max_missing = max_missing

    def min_rows(self, n_features: int) -> int:
        return 1

    def _select(self, frame: pd.DataFrame, y: pd.Series | None) -> tuple[np.ndarray, np.ndarray]:
        ratios = frame.isna().mean(axis=0).to_numpy(dtype=np.float64)
        return ratios <= self.max_missing, ratios


class VIFSelector(BaseSelector):
    """Select features by their variance inflation factor, VIF_j = 1 / (1 - R^2_j).

    Default (``iterative=True, constant=True``): drop the feature with the highest VIF, recompute,
    and repeat until every VIF is at most ``max_vif``. R^2_j comes from regressing feature j on the
    others *with an intercept*: statsmodels' ``variance_inflation_factor`` regresses on the given
    columns only, so the constant is added first (``add_constant``); without it, uncentred
    columns get inflated VIFs. The drop-the-worst loop is hand-written: statsmodels computes VIFs
    but does not select. ``scores_`` holds each feature's VIF when it was dropped, or its final
    VIF when kept.

    The article's way (``iterative=False``, ``constant=False``; ``--preset article``): compute
    every VIF once, on the columns as given, and keep the features with VIF <= ``max_vif``. Two
    collinear features then both go, where the loop keeps one of them.
    """

    _name = "vif"
    needs_target = False

    def __init__(
        self, max_vif: float = 10.0, iterative: bool = True, constant: bool = True
    ) -> None:
        self.max_vif = max_vif
        self.iterative = iterative
        self.constant = constant

    def min_rows(self, n_features: int) -> int:
        return n_features + 2

    def _vifs(self, matrix: np.ndarray) -> np.ndarray:
        offset = 1 if self.constant else 0
        design = add_constant(matrix, has_constant="add") if self.constant else matrix
        with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
            # Perfect collinearity is what VIF measures: an infinite VIF, not a warning (numpy's
            # RuntimeWarning, statsmodels' SingularMatrixWarning).
            warnings.simplefilter("ignore")
            vifs = np.array(
                [
                    variance_inflation_factor(design, index + offset)
                    for index in range(matrix.shape[1])
                ]
            )
        return np.where(np.isnan(vifs), np.inf, vifs)

    def _select(self, frame: pd.DataFrame, y: pd.Series | None) -> tuple[np.ndarray, np.ndarray]:
        matrix = numeric_matrix(frame)
        if matrix.shape[1] == 1:  # nothing to be collinear with
            return np.ones(1, dtype=bool), np.ones(1)
        if not self.iterative:
            scores = self._vifs(matrix)
            return scores <= self.max_vif, scores
        remaining = list(range(matrix.shape[1]))
        scores = np.full(matrix.shape[1], np.nan)
        while remaining:
            vifs = self._vifs(matrix[:, remaining])
            for position, column in enumerate(remaining):
                scores[column] = vifs[position]
            worst = int(np.argmax(vifs))
            if vifs[worst] <= self.max_vif or len(remaining) == 1:
                break
            remaining.pop(worst)
        support = np.zeros(matrix.shape[1], dtype=bool)
        support[remaining] = True
        return support, scores


class FilterSelector(BaseSelector):
    """Score each feature against the target with one measure; keep the best.

    ``method``: pearson, spearman, kendall, pointbiserial (absolute r), chi2, anova (F; sklearn's
    f_classif, or f_regression for a numeric target), mutual_info (sklearn), cramers_v, or
    association (the measure the levels table picks per feature; scores in [0, 1]).

    Selection: ``k`` (int) keeps the k best; ``percentile`` keeps that share; ``k="auto"``
    keeps features whose Benjamini-Hochberg adjusted p-value is below ``alpha``, or, for
    mutual information (no p-value), features whose MI beats every feature's MI against
    ``n_permutations`` shuffled targets.

    ``measure_table`` (association only): "default" or "article" (the article's table; see
    ``feature_selection.levels``).
    """

    def __init__(
        self,
        method: str = "association",
        k: int | str = "auto",
        percentile: float | None = None,
        alpha: float = 0.05,
        task: str = "auto",
        levels: Mapping[str, str] | None = None,
        target_level: str | None = None,
        n_permutations: int = 3,
        random_state: int | None = 0,
        measure_table: str = "default",
    ) -> None:
        self.measure_table = measure_table
        self.method = method
        self.k = k
        self.percentile = percentile
        self.alpha = alpha
        self.task = task
        self.levels = levels
        self.target_level = target_level
        self.n_permutations = n_permutations
        self.random_state = random_state

    @property
    def method_name(self) -> str:
        return self.method

    def _needs_numeric(self) -> bool:
        return self.method not in _CATEGORY_FILTERS

    def check_input(self, X: Any, y: Any = None) -> tuple[pd.DataFrame, pd.Series | None]:
        if self.method not in FILTER_METHODS:
            raise FeatureSelectionError(
                f"Unknown filter method {self.method!r}; choose one of {', '.join(FILTER_METHODS)}."
            )
        frame, target = super().check_input(X, y)
        assert target is not None
        task = resolve_task(self.task, target)
        if self.method == "chi2":
            if task != "classification":
                raise FeatureSelectionError("Method 'chi2' needs a categorical target.")
            negative = [str(c) for c in frame.columns if (frame[c].astype(float) < 0).any()]
            if negative:
                raise FeatureSelectionError(
                    "Method 'chi2' needs non-negative features (counts or frequencies); "
                    f"negative values in {format_columns(negative)}."
                )
        if self.method == "pointbiserial" and target.nunique() != 2:
            raise FeatureSelectionError(
                f"Method 'pointbiserial' needs a binary target; it has {target.nunique()} values."
            )
        if self.k == "auto" and self.percentile is None and not 0 < self.alpha <= 1:
            raise FeatureSelectionError(f"alpha must be in (0, 1], got {self.alpha}.")
        return frame, target

    def _select(self, frame: pd.DataFrame, y: pd.Series | None) -> tuple[np.ndarray, np.ndarray]:
        assert y is not None
        self.task_, self.task_reason_ = explain_task(self.task, y)
        scores, pvalues = self._score(frame, y)
        self.pvalues_ = pvalues
        n_features = frame.shape[1]
        if self.percentile is not None:
            k = max(1, math.ceil(n_features * float(self.percentile) / 100))
            return top_k_mask(scores, k), scores
        if self.k == "all":
            return np.ones(n_features, dtype=bool), scores
        if isinstance(self.k, int):
            return top_k_mask(scores, self.k), scores
        if self.k != "auto":
            raise FeatureSelectionError(f"k must be an int, 'all' or 'auto', got {self.k!r}.")
        if pvalues is not None:
            adjusted = false_discovery_control(np.nan_to_num(pvalues, nan=1.0))
            return adjusted < self.alpha, scores
        return scores > self._permutation_threshold(frame, y), scores

    def _score(self, frame: pd.DataFrame, y: pd.Series) -> tuple[np.ndarray, np.ndarray | None]:
        method = self.method
        if method == "association":
            return self._association(frame, y)
        if method in PAIRWISE_MEASURES:
            pairs = [PAIRWISE_MEASURES[method](frame[c], y) for c in frame.columns]
            return np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
        matrix = numeric_matrix(frame)
        target = y.to_numpy()
        if method == "mutual_info":
            return self._mutual_info(matrix, target), None
        if method == "chi2":
            statistic, pvalues = chi2(matrix, target)
        elif self.task_ == "classification":
            statistic, pvalues = f_classif(matrix, target)
        else:
            statistic, pvalues = f_regression(matrix, target.astype(np.float64))
        return np.nan_to_num(statistic), np.nan_to_num(pvalues, nan=1.0)

    def _mutual_info(self, matrix: np.ndarray, target: np.ndarray) -> np.ndarray:
        if self.task_ == "classification":
            scores = mutual_info_classif(matrix, target, random_state=self.random_state)
        else:
            scores = mutual_info_regression(
                matrix, target.astype(np.float64), random_state=self.random_state
            )
        return np.asarray(scores, dtype=np.float64)

    def _permutation_threshold(self, frame: pd.DataFrame, y: pd.Series) -> float:
        """Highest MI any feature reaches against a shuffled target (a chance baseline)."""
        rng = np.random.default_rng(self.random_state)
        matrix = numeric_matrix(frame)
        target = y.to_numpy()
        best = 0.0
        for _ in range(self.n_permutations):
            shuffled = rng.permutation(target)
            best = max(best, float(self._mutual_info(matrix, shuffled).max()))
        return best

    def _association(self, frame: pd.DataFrame, y: pd.Series) -> tuple[np.ndarray, np.ndarray]:
        levels = resolve_levels(frame, self.levels)
        target_level = (
            Level(self.target_level)
            if self.target_level
            else (
                infer_level(y, is_target=True)
                if self.task == "auto"
                else (Level.NOMINAL if self.task_ == "classification" else Level.INTERVAL)
            )
        )
        self.target_level_ = target_level
        measures: dict[str, str] = {}
        scores, pvalues = [], []
        for column in frame.columns:
            measure = choose_measure(
                levels[str(column)],
                target_level,
                feature_binary=frame[column].nunique() == 2,
                target_binary=y.nunique() == 2,
                table=self.measure_table,
            )
            measures[str(column)] = measure
            score, pvalue = PAIRWISE_MEASURES[measure](frame[column], y)
            scores.append(score)
            pvalues.append(pvalue)
        self.levels_ = {name: level.value for name, level in levels.items()}
        self.measures_ = measures
        return np.array(scores), np.array(pvalues)


class SequentialSelector(BaseSelector):
    """Forward or backward sequential selection (sklearn's SequentialFeatureSelector).

    The default estimator is a standardised logistic or linear regression. With
    ``n_features_to_select="auto"`` it stops when the CV score improves by less than ``tol``
    (``tol=None``: 1e-3 forward; backward keeps removing while the score drops by < 1e-3).
    """

    def __init__(
        self,
        direction: str = "forward",
        estimator: BaseEstimator | None = None,
        n_features_to_select: int | float | str = "auto",
        tol: float | None = None,
        cv: int = 5,
        scoring: str | None = None,
        task: str = "auto",
        n_jobs: int | None = None,
    ) -> None:
        self.direction = direction
        self.estimator = estimator
        self.n_features_to_select = n_features_to_select
        self.tol = tol
        self.cv = cv
        self.scoring = scoring
        self.task = task
        self.n_jobs = n_jobs

    @property
    def method_name(self) -> str:
        return self.direction

    def min_rows(self, n_features: int) -> int:
        return max(2 * self.cv, 10)

    def _select(self, frame: pd.DataFrame, y: pd.Series | None) -> tuple[np.ndarray, np.ndarray]:
        assert y is not None
        self.task_, self.task_reason_ = explain_task(self.task, y)
        _check_cv_classes(self.method_name, y, self.task_, self.cv)
        estimator = self.estimator or _scaled_model(_default_linear_model(self.task_))
        tol = self.tol
        if tol is None and self.n_features_to_select == "auto":
            tol = 1e-3 if self.direction == "forward" else -1e-3
        selector = SequentialFeatureSelector(
            clone(estimator),
            n_features_to_select=self.n_features_to_select,
            tol=tol,
            direction=self.direction,
            scoring=self.scoring,
            cv=self.cv,
            n_jobs=self.n_jobs,
        )
        selector.fit(numeric_matrix(frame), y.to_numpy())
        self.selector_ = selector
        support = selector.get_support()
        return support, support.astype(np.float64)


class RFESelector(BaseSelector):
    """Recursive feature elimination: sklearn's RFE, or RFECV when ``cv`` is given.

    The default estimator is a standardised logistic or linear regression ranked by |coef|.
    ``scores_`` is the RFE ranking (1 = kept; higher = eliminated earlier).
    """

    def __init__(
        self,
        estimator: BaseEstimator | None = None,
        n_features_to_select: int | float | None = None,
        step: int | float = 1,
        cv: int | None = 5,
        scoring: str | None = None,
        importance_getter: str = "auto",
        task: str = "auto",
        n_jobs: int | None = None,
    ) -> None:
        self.estimator = estimator
        self.n_features_to_select = n_features_to_select
        self.step = step
        self.cv = cv
        self.scoring = scoring
        self.importance_getter = importance_getter
        self.task = task
        self.n_jobs = n_jobs

    @property
    def method_name(self) -> str:
        return "rfe" if self.cv is None else "rfecv"

    def min_rows(self, n_features: int) -> int:
        return 3 if self.cv is None else max(2 * self.cv, 10)

    def _select(self, frame: pd.DataFrame, y: pd.Series | None) -> tuple[np.ndarray, np.ndarray]:
        assert y is not None
        self.task_, self.task_reason_ = explain_task(self.task, y)
        if self.estimator is None:
            estimator: BaseEstimator = _scaled_model(_default_linear_model(self.task_))
            getter = "named_steps.model.coef_"
        else:
            estimator, getter = clone(self.estimator), self.importance_getter
        selector: RFE | RFECV
        if self.cv is None:
            selector = RFE(
                estimator,
                n_features_to_select=self.n_features_to_select,
                step=self.step,
                importance_getter=getter,
            )
        else:
            _check_cv_classes(self.method_name, y, self.task_, self.cv)
            selector = RFECV(
                estimator,
                step=self.step,
                cv=self.cv,
                scoring=self.scoring,
                importance_getter=getter,
                n_jobs=self.n_jobs,
            )
        selector.fit(numeric_matrix(frame), y.to_numpy())
        self.selector_ = selector
        return selector.get_support(), selector.ranking_.astype(np.float64)


class L1Selector(BaseSelector):
    """Embedded selection: LASSO or L1-penalised logistic regression via SelectFromModel.

    Features are standardised first so the penalty treats them alike. The penalty strength is
    chosen by cross-validation (LassoCV / LogisticRegressionCV) unless ``C`` (classification) or
    ``alpha`` (regression) is given. Kept: non-zero coefficients (|coef| > 1e-5, sklearn's
    SelectFromModel default for L1 models). ``scores_`` = |coef| (largest over classes).
    """

    _name = "l1"

    def __init__(
        self,
        C: float | None = None,
        alpha: float | None = None,
        cv: int = 5,
        task: str = "auto",
        random_state: int | None = 0,
    ) -> None:
        self.C = C
        self.alpha = alpha
        self.cv = cv
        self.task = task
        self.random_state = random_state

    def min_rows(self, n_features: int) -> int:
        return max(2 * self.cv, 10)

    def _select(self, frame: pd.DataFrame, y: pd.Series | None) -> tuple[np.ndarray, np.ndarray]:
        assert y is not None
        self.task_, self.task_reason_ = explain_task(self.task, y)
        model: BaseEstimator
        if self.task_ == "classification":
            solver = "liblinear" if y.nunique() == 2 else "saga"
            if self.C is not None:
                model = LogisticRegression(
                    C=self.C, l1_ratio=1.0, solver=solver, max_iter=5000, random_state=0
                )
            else:
                _check_cv_classes(self._name, y, self.task_, self.cv)
                model = LogisticRegressionCV(
                    Cs=10,
                    l1_ratios=(1.0,),
                    solver=solver,
                    cv=self.cv,
                    scoring="accuracy",  # log-loss CV often prefers the all-zero model here
                    max_iter=5000,
                    use_legacy_attributes=False,
                    random_state=self.random_state,
                )
        elif self.alpha is not None:
            from sklearn.linear_model import Lasso

            model = Lasso(alpha=self.alpha, max_iter=10000)
        else:
            model = LassoCV(cv=self.cv, max_iter=10000, random_state=self.random_state)
        selector = SelectFromModel(
            _scaled_model(model), threshold=1e-5, importance_getter="named_steps.model.coef_"
        )
        with warnings.catch_warnings():
            # saga/liblinear convergence chatter on tiny tables; the CV still picks a C.
            warnings.simplefilter("ignore", category=UserWarning)
            selector.fit(numeric_matrix(frame), y.to_numpy())
        self.selector_ = selector
        coef = np.atleast_2d(selector.estimator_.named_steps["model"].coef_)
        return selector.get_support(), np.abs(coef).max(axis=0)


class BorutaSelector(BaseSelector):
    """All-relevant selection with Boruta (``boruta.BorutaPy``) around a random forest.

    Features Boruta confirms are kept; tentative ones are kept only with ``keep_tentative=True``
    (the article's choice, ``--preset article``: a feature Boruta could not reject stays).
    ``scores_`` is Boruta's ranking (1 confirmed, 2 tentative, ...); ``n_iter_`` the iterations it
    ran.

    Categorical (string, boolean, categorical-dtype) columns are accepted: the forest sees them as
    integer codes (``encode_for_trees``), which trees split as well as one-hot columns without
    spreading one feature's importance over many.
    """

    _name = "boruta"
    needs_numeric = False

    def __init__(
        self,
        estimator: BaseEstimator | None = None,
        n_estimators: int | str = "auto",
        perc: int = 100,
        alpha: float = 0.05,
        two_step: bool = True,
        max_iter: int = 100,
        keep_tentative: bool = False,
        max_depth: int | None = 5,
        task: str = "auto",
        n_jobs: int | None = -1,
        random_state: int | None = 0,
    ) -> None:
        self.estimator = estimator
        self.n_estimators = n_estimators
        self.perc = perc
        self.alpha = alpha
        self.two_step = two_step
        self.max_iter = max_iter
        self.keep_tentative = keep_tentative
        self.max_depth = max_depth
        self.task = task
        self.n_jobs = n_jobs
        self.random_state = random_state

    def min_rows(self, n_features: int) -> int:
        return 10

    def default_estimator(self, task: Task) -> BaseEstimator:
        """The random forest Boruta's authors suggest: shallow trees, balanced classes."""
        if task == "classification":
            return RandomForestClassifier(
                max_depth=self.max_depth, class_weight="balanced", n_jobs=self.n_jobs
            )
        return RandomForestRegressor(max_depth=self.max_depth, n_jobs=self.n_jobs)

    def _select(self, frame: pd.DataFrame, y: pd.Series | None) -> tuple[np.ndarray, np.ndarray]:
        assert y is not None
        self.task_, self.task_reason_ = explain_task(self.task, y)
        estimator = clone(self.estimator) if self.estimator else self.default_estimator(self.task_)
        boruta = BorutaPy(
            estimator,
            n_estimators=self.n_estimators,
            perc=self.perc,
            alpha=self.alpha,
            two_step=self.two_step,
            max_iter=self.max_iter,
            random_state=self.random_state,
            verbose=0,
        )
        boruta.fit(encode_for_trees(frame), y.to_numpy())
        self.boruta_ = boruta
        # importance_history_ starts with a row of zeros, then one row per iteration.
        self.n_iter_ = max(1, int(np.shape(boruta.importance_history_)[0]) - 1)
        self.tentative_ = np.asarray(boruta.support_weak_, dtype=bool)
        support = np.asarray(boruta.support_, dtype=bool)
        if self.keep_tentative:
            support = support | self.tentative_
        return support, np.asarray(boruta.ranking_, dtype=np.float64)
