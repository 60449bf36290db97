"""The base class every selector shares: sklearn's SelectorMixin plus friendly input checks.

``SelectorMixin`` gives ``transform``, ``get_support``, ``get_feature_names_out`` and
``inverse_transform`` from ``_get_support_mask``; ``validate_data`` records ``n_features_in_`` and
``feature_names_in_`` exactly as sklearn's own selectors do. The checks here run first, so a bad
table fails with a message that names the columns instead of sklearn's generic "could not convert
string to float".
"""

from __future__ import annotations

from typing import Any, Literal, Self

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype, is_numeric_dtype
from sklearn.base import BaseEstimator
from sklearn.feature_selection import SelectorMixin
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from feature_selection.errors import FeatureSelectionError, format_columns

Task = Literal["classification", "regression"]


def to_frame(X: Any) -> pd.DataFrame:
    """``X`` as a DataFrame; arrays get sklearn's default names x0, x1, ..."""
    if isinstance(X, pd.DataFrame):
        return X
    array = check_array(X, dtype=None, ensure_all_finite=False, ensure_min_samples=0)
    columns = [f"x{index}" for index in range(array.shape[1])]
    return pd.DataFrame(array, columns=columns).infer_objects()


def non_numeric_columns(frame: pd.DataFrame) -> list[str]:
    return [
        str(name)
        for name in frame.columns
        if not (is_numeric_dtype(frame[name].dtype) or is_bool_dtype(frame[name].dtype))
        or isinstance(frame[name].dtype, pd.CategoricalDtype)
    ]


def missing_columns(frame: pd.DataFrame) -> list[str]:
    """Columns with NaN/None, or with infinities among numbers."""
    names = []
    for name in frame.columns:
        column = frame[name]
        if column.isna().any():
            names.append(str(name))
        elif is_numeric_dtype(column.dtype) and not is_bool_dtype(column.dtype):
            if not np.isfinite(column.to_numpy(dtype=np.float64)).all():
                names.append(str(name))
    return names


def constant_columns(frame: pd.DataFrame) -> list[str]:
    return [str(name) for name in frame.columns if frame[name].nunique(dropna=True) <= 1]


# A numeric target with more distinct values than this is a quantity to regress on, even when
# every value is a whole number (sklearn's diabetes target: 214 integer-valued floats).
MAX_CLASSES = 20


def explain_task(task: str, y: pd.Series) -> tuple[Task, str]:
    """The task for ``y`` and, in words, why it was chosen.

    ``auto``: classification for non-numeric or boolean targets, for targets with two values, and
    for whole-number targets with at most ``MAX_CLASSES`` distinct values; regression for numeric
    targets with fractional values or more distinct values than that.
    """
    if task in ("classification", "regression"):
        chosen: Task = "classification" if task == "classification" else "regression"
        return chosen, f"--task {task} was given"
    if task != "auto":
        raise FeatureSelectionError(
            f"task must be 'auto', 'classification' or 'regression', got {task!r}."
        )
    if isinstance(y.dtype, pd.CategoricalDtype):
        return "classification", "the target is categorical"
    if is_bool_dtype(y.dtype):
        return "classification", "the target is boolean"
    if not is_numeric_dtype(y.dtype):
        return "classification", f"the target is not numeric (dtype {y.dtype})"
    distinct = int(y.nunique())
    if distinct <= 2:
        return "classification", f"the target has {distinct} distinct values"
    kind = type_of_target(y.to_numpy())
    if kind not in ("binary", "multiclass"):
        return "regression", f"the target has fractional values ({distinct} distinct)"
    if distinct > MAX_CLASSES:
        return "regression", (
            f"the numeric target has {distinct} distinct values (more than {MAX_CLASSES}), "
            "so it is read as a quantity, not class labels"
        )
    return "classification", (
        f"the target has {distinct} distinct whole-number values (at most {MAX_CLASSES}), "
        "read as class labels"
    )


def resolve_task(task: str, y: pd.Series) -> Task:
    """The task ``explain_task`` chooses, without the reason."""
    return explain_task(task, y)[0]


def duplicate_columns(columns: Any) -> list[str]:
    """Names that occur more than once, each once, in order of first repeat."""
    seen: set[str] = set()
    repeated: list[str] = []
    for name in map(str, columns):
        if name in seen and name not in repeated:
            repeated.append(name)
        seen.add(name)
    return repeated


def encode_for_trees(frame: pd.DataFrame) -> np.ndarray:
    """Numbers for a tree ensemble: numeric and boolean columns as they are, categories as integer
    codes (ordered categoricals in their order, other categories sorted).

    Trees split on codes, so a nominal column becomes usable by a random forest without one-hot
    columns that would split its importance.
    """
    columns = []
    for name in frame.columns:
        column = frame[name]
        if isinstance(column.dtype, pd.CategoricalDtype):
            columns.append(np.asarray(column.cat.codes, dtype=np.float64))
        elif is_numeric_dtype(column.dtype) or is_bool_dtype(column.dtype):
            columns.append(column.to_numpy(dtype=np.float64))
        else:
            codes, _ = pd.factorize(column.astype(str), sort=True)
            columns.append(codes.astype(np.float64))
    return np.column_stack(columns) if columns else np.empty((len(frame), 0))


class BaseSelector(SelectorMixin, BaseEstimator):  # type: ignore[misc]
    """Common fit: check the table, then ``_select`` returns the support mask and scores.

    Fitted attributes: ``support_`` (bool mask), ``scores_`` (one number per feature, NaN
    where the method gives none), ``score_name_`` (what the scores are), ``task_`` for
    supervised selectors.
    """

    _name = "selector"
    needs_numeric = True
    allows_nan = False
    allows_constant = False
    needs_target = True

    @property
    def method_name(self) -> str:
        """The method's name in messages and reports."""
        return self._name

    def min_rows(self, n_features: int) -> int:
        return 3

    def _needs_numeric(self) -> bool:
        return self.needs_numeric

    def check_input(self, X: Any, y: Any = None) -> tuple[pd.DataFrame, pd.Series | None]:
        """Raise ``FeatureSelectionError`` naming the problem if this method cannot use X, y."""
        frame = to_frame(X)
        name = self.method_name
        if frame.shape[1] == 0:
            raise FeatureSelectionError(f"Method {name!r} got a table without feature columns.")
        repeated = duplicate_columns(frame.columns)
        if repeated:
            raise FeatureSelectionError(
                f"Duplicate column names: {format_columns(repeated)}. Every column needs a "
                "unique name; rename or drop the copies."
            )
        needed = self.min_rows(frame.shape[1])
        if frame.shape[0] < needed:
            # "n_samples = N" is the phrase sklearn's estimator checks look for.
            raise FeatureSelectionError(
                f"Method {name!r} needs at least {needed} rows, got {frame.shape[0]} "
                f"(n_samples = {frame.shape[0]})."
            )
        if self._needs_numeric():
            bad = non_numeric_columns(frame)
            if bad:
                raise FeatureSelectionError(
                    f"Method {name!r} needs numeric features; non-numeric columns: "
                    f"{format_columns(bad)}. Encode them, drop them, or use 'cramers_v' or "
                    "'association', which take categories."
                )
        if not self.allows_nan:
            bad = missing_columns(frame)
            if bad:
                raise FeatureSelectionError(
                    f"Method {name!r} cannot take missing or infinite values; found them in "
                    f"columns {format_columns(bad)}. Impute or drop them first "
                    "('missing_ratio' measures them)."
                )
        if not self.allows_constant:
            bad = constant_columns(frame)
            if bad:
                raise FeatureSelectionError(
                    f"Method {name!r} cannot score constant columns: {format_columns(bad)}. "
                    "Drop them first (the 'variance' method finds them)."
                )
        target = None
        if self.needs_target:
            target = self._check_target(y, frame.shape[0])
        return frame, target

    def _check_target(self, y: Any, n_rows: int) -> pd.Series:
        name = self.method_name
        if y is None:
            # sklearn's wording (its estimator checks look for it).
            raise FeatureSelectionError(
                f"Method {name!r} requires y to be passed, but the target y is None."
            )
        values = y if isinstance(y, (pd.Series, pd.DataFrame)) else np.asarray(y)
        if isinstance(values, pd.DataFrame) or np.ndim(values) != 1:
            raise FeatureSelectionError(f"Method {name!r} needs a one-dimensional target.")
        target = values if isinstance(values, pd.Series) else pd.Series(values)
        if len(target) != n_rows:
            raise FeatureSelectionError(
                f"The target has {len(target)} values but the table has {n_rows} rows."
            )
        missing = int(target.isna().sum())
        if missing:
            raise FeatureSelectionError(f"The target has missing values in {missing} rows.")
        if target.nunique() < 2:
            raise FeatureSelectionError("The target is constant; there is nothing to predict.")
        return target.reset_index(drop=True)

    def fit(self, X: Any, y: Any = None) -> Self:
        frame, target = self.check_input(X, y)
        validate_data(self, X, skip_check_array=True)
        frame = frame.reset_index(drop=True)
        support, scores = self._select(frame, target)
        self.support_ = np.asarray(support, dtype=bool)
        self.scores_ = np.asarray(scores, dtype=np.float64)
        return self

    def _select(self, frame: pd.DataFrame, y: pd.Series | None) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _get_support_mask(self) -> np.ndarray:
        check_is_fitted(self, "support_")
        mask: np.ndarray = self.support_
        return mask

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = self.allows_nan
        tags.input_tags.string = not self._needs_numeric()
        tags.target_tags.required = self.needs_target
        return tags


def numeric_matrix(frame: pd.DataFrame) -> np.ndarray:
    return frame.to_numpy(dtype=np.float64)


def expected_failed_checks(estimator: Any) -> dict[str, str]:
    """Sklearn estimator checks a selector fails on purpose, with the reason.

    This is sklearn's own expected-failure mechanism: ``check_estimator(estimator,
    expected_failed_checks=expected_failed_checks(estimator))`` or
    ``parametrize_with_checks(..., expected_failed_checks=expected_failed_checks)`` mark these as
    xfail (sklearn >= 1.6 replaced the old ``_xfail_checks`` tag with this argument).
    """
    failures: dict[str, str] = {}
    if isinstance(estimator, BaseSelector) and estimator._needs_numeric():
        failures["check_dtype_object"] = (
            "a non-numeric value in a numeric method's input raises FeatureSelectionError (a "
            "ValueError naming the columns and what to use instead), not numpy's TypeError"
        )
    return failures
