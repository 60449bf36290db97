"""Measurement levels and the article's table: which association measure fits which pair.

Stevens' levels are nominal (unordered categories), ordinal (ordered categories or ranks), interval
(differences mean something) and ratio (interval with a true zero). A dtype cannot show a true zero,
so inference never says ``ratio``; interval and ratio choose the same measures, so that costs
nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum

import pandas as pd
from pandas.api.types import (
    is_bool_dtype,
    is_float_dtype,
    is_integer_dtype,
    is_numeric_dtype,
)

from feature_selection.errors import FeatureSelectionError, format_columns


class Level(str, Enum):
    """Stevens' measurement levels."""

    NOMINAL = "nominal"
    ORDINAL = "ordinal"
    INTERVAL = "interval"
    RATIO = "ratio"


N, O, I, R = Level.NOMINAL, Level.ORDINAL, Level.INTERVAL, Level.RATIO

# (feature level, target level) -> measure. "correlation_ratio" (eta, the effect size of a
# one-way ANOVA) becomes "pointbiserial" when the nominal side has exactly two values.
MEASURE_TABLE: dict[tuple[Level, Level], str] = {
    (N, N): "cramers_v",
    (N, O): "cramers_v",
    (N, I): "correlation_ratio",
    (N, R): "correlation_ratio",
    (O, N): "cramers_v",
    (O, O): "kendall",
    (O, I): "spearman",
    (O, R): "spearman",
    (I, N): "correlation_ratio",
    (I, O): "spearman",
    (I, I): "pearson",
    (I, R): "pearson",
    (R, N): "correlation_ratio",
    (R, O): "spearman",
    (R, I): "pearson",
    (R, R): "pearson",
}

# An integer target with at most this many distinct values is read as class labels.
MAX_CLASS_LABELS = 20


def choose_measure(
    feature_level: Level | str,
    target_level: Level | str,
    *,
    feature_binary: bool = False,
    target_binary: bool = False,
) -> str:
    """Return the association measure for a feature and a target of the given levels."""
    measure = MEASURE_TABLE[(Level(feature_level), Level(target_level))]
    if measure == "correlation_ratio":
        nominal_is_binary = feature_binary if Level(feature_level) is N else target_binary
        if nominal_is_binary:
            return "pointbiserial"
    return measure


def infer_level(column: pd.Series, *, is_target: bool = False) -> Level:
    """Infer a column's level from its dtype.

    bool, object, string and unordered categorical columns are nominal; ordered categoricals are
    ordinal; numbers are interval, except two- valued ones (nominal: a binary flag) and, for a
    target, integers with at most ``MAX_CLASS_LABELS`` values (class labels).
    """
    dtype = column.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return O if dtype.ordered else N
    if is_bool_dtype(dtype) or not is_numeric_dtype(dtype):
        return N
    distinct = column.nunique(dropna=True)
    if distinct <= 2:
        return N
    if is_target and is_integer_dtype(dtype) and distinct <= MAX_CLASS_LABELS:
        return N
    if is_float_dtype(dtype) or is_integer_dtype(dtype):
        return I
    return I


def resolve_levels(
    frame: pd.DataFrame, overrides: Mapping[str, Level | str] | None = None
) -> dict[str, Level]:
    """Infer every column's level, then apply ``overrides`` (column -> level)."""
    overrides = dict(overrides or {})
    unknown = [name for name in overrides if name not in frame.columns]
    if unknown:
        raise FeatureSelectionError(f"Level given for unknown columns: {format_columns(unknown)}.")
    levels = {str(name): infer_level(frame[name]) for name in frame.columns}
    for name, level in overrides.items():
        try:
            levels[name] = Level(level)
        except ValueError:
            choices = ", ".join(item.value for item in Level)
            raise FeatureSelectionError(
                f"Unknown level {level!r} for column {name!r}; choose one of {choices}."
            ) from None
    return levels
