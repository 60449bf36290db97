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


def resolve_task(task: str, y: pd.Series) -> Task:
    """``auto`` means classification for label-like targets (sklearn's type_of_target)."""
    if task in ("classification", "regression"):
        return "classification" if task == "classification" else "regression"
    if task != "auto":
        raise FeatureSelectionError(
            f"task must be 'auto', 'classification' or 'regression', got {task!r}."
        )
    if not is_numeric_dtype(y.dtype) or is_bool_dtype(y.dtype):
        return "classification"
    kind = type_of_target(y.to_numpy())
    return "classification" if kind in ("binary", "multiclass") else "regression"


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
        needed = self.min_rows(frame.shape[1])
        if frame.shape[0] < needed:
            raise FeatureSelectionError(
                f"Method {name!r} needs at least {needed} rows, got {frame.shape[0]}."
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
            raise FeatureSelectionError(f"Method {name!r} needs a target y.")
        target = y if isinstance(y, pd.Series) else pd.Series(np.asarray(y).ravel())
        if isinstance(y, pd.DataFrame) or np.ndim(y) != 1:
            raise FeatureSelectionError(f"Method {name!r} needs a one-dimensional target.")
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
