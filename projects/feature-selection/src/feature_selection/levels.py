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

# The article's table, where it differs: a nominal feature or target against an ordinal one is
# measured with the rank-biserial correlation, against an interval/ratio one with the
# point-biserial correlation. Both are defined for a *binary* nominal side; with more categories
# ``choose_measure`` falls back to the default table's measure (Cramer's V, correlation ratio).
ARTICLE_MEASURE_TABLE: dict[tuple[Level, Level], str] = {
    **MEASURE_TABLE,
    (N, O): "rank_biserial",
    (O, N): "rank_biserial",
    (N, I): "pointbiserial",
    (N, R): "pointbiserial",
    (I, N): "pointbiserial",
    (R, N): "pointbiserial",
}

MEASURE_TABLES: dict[str, dict[tuple[Level, Level], str]] = {
    "default": MEASURE_TABLE,
    "article": ARTICLE_MEASURE_TABLE,
}

# An integer target with at most this many distinct values is read as class labels.
MAX_CLASS_LABELS = 20


def choose_measure(
    feature_level: Level | str,
    target_level: Level | str,
    *,
    feature_binary: bool = False,
    target_binary: bool = False,
    table: str = "default",
) -> str:
    """Return the association measure for a feature and a target of the given levels.

    ``table``: "default" (``MEASURE_TABLE``) or "article" (``ARTICLE_MEASURE_TABLE``).
    """
    if table not in MEASURE_TABLES:
        raise FeatureSelectionError(
            f"Unknown measure table {table!r}; choose one of {', '.join(MEASURE_TABLES)}."
        )
    pair = (Level(feature_level), Level(target_level))
    measure = MEASURE_TABLES[table][pair]
    nominal_is_binary = feature_binary if pair[0] is N else target_binary
    if measure == "correlation_ratio" and nominal_is_binary:
        return "pointbiserial"
    if measure in ("pointbiserial", "rank_biserial") and not nominal_is_binary:
        return MEASURE_TABLE[pair]  # defined for two categories only: the default's measure
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
