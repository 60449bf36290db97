"""Association measures between one feature and the target, each as (score, p-value).

Scores are effect sizes: absolute correlations, Cramer's V and the correlation ratio all lie in [0,
1], so the level-driven ``association`` filter can rank features measured differently. The
statistics come from scipy.stats; only the correlation ratio (eta) is derived by hand from scipy's
one-way ANOVA F, because neither scipy nor sklearn exposes it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy import stats
from scipy.stats import contingency

# Numeric columns with more distinct values than this are cut into quantile bins before a
# contingency table is built; Cramer's V over hundreds of one-row cells means nothing.
MAX_CATEGORIES = 20
QUANTILE_BINS = 10

Measure = Callable[[pd.Series, pd.Series], tuple[float, float]]


def as_codes(column: pd.Series) -> np.ndarray:
    """Integer codes of a categorical-like column; ordered categoricals keep their order."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        return np.asarray(column.cat.codes, dtype=np.float64)
    codes, _ = pd.factorize(column, sort=True)
    return np.asarray(codes, dtype=np.float64)


def as_ranked_numbers(column: pd.Series) -> np.ndarray:
    """Numbers for rank correlations: numeric values as they are, categories as sorted codes."""
    if pd.api.types.is_numeric_dtype(column.dtype) and not isinstance(
        column.dtype, pd.CategoricalDtype
    ):
        return np.asarray(column, dtype=np.float64)
    return as_codes(column)


def as_categories(column: pd.Series) -> np.ndarray:
    """Category codes for contingency tables; many-valued numbers go into quantile bins."""
    numeric = pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(
        column.dtype
    )
    if numeric and column.nunique() > MAX_CATEGORIES:
        binned = pd.qcut(column.astype(float), q=QUANTILE_BINS, duplicates="drop")
        return np.asarray(binned.cat.codes, dtype=np.int64)
    codes, _ = pd.factorize(column, sort=True)
    return np.asarray(codes, dtype=np.int64)


def _finite(value: float) -> float:
    return float(value) if np.isfinite(value) else 0.0


def pearson(x: pd.Series, y: pd.Series) -> tuple[float, float]:
    result = stats.pearsonr(as_ranked_numbers(x), as_ranked_numbers(y))
    return abs(_finite(result.statistic)), float(result.pvalue)


def spearman(x: pd.Series, y: pd.Series) -> tuple[float, float]:
    result = stats.spearmanr(as_ranked_numbers(x), as_ranked_numbers(y))
    return abs(_finite(result.statistic)), float(result.pvalue)


def kendall(x: pd.Series, y: pd.Series) -> tuple[float, float]:
    result = stats.kendalltau(as_ranked_numbers(x), as_ranked_numbers(y))
    return abs(_finite(result.statistic)), float(result.pvalue)


def pointbiserial(x: pd.Series, y: pd.Series) -> tuple[float, float]:
    """Point-biserial r; whichever of x and y has two values is the dichotomous one."""
    binary, continuous = (x, y) if x.nunique() == 2 else (y, x)
    result = stats.pointbiserialr(as_codes(binary), as_ranked_numbers(continuous))
    return abs(_finite(result.statistic)), float(result.pvalue)


def rank_biserial(x: pd.Series, y: pd.Series) -> tuple[float, float]:
    """Rank-biserial r between a two-valued column and an ordinal (or numeric) one.

    From scipy's Mann-Whitney U of the ordinal side split by the binary side: r = 2 U / (n1 n2) - 1
    (Glass's / Kerby's formula), with the test's p-value. Hand-written because scipy gives U, not r.
    """
    binary, ordinal = (x, y) if x.nunique() == 2 else (y, x)
    codes = as_codes(binary)
    values = as_ranked_numbers(ordinal)
    first, second = values[codes == 0], values[codes == 1]
    if len(first) == 0 or len(second) == 0:
        return 0.0, 1.0
    result = stats.mannwhitneyu(first, second, alternative="two-sided")
    r = 2.0 * float(result.statistic) / (len(first) * len(second)) - 1.0
    pvalue = float(result.pvalue) if np.isfinite(result.pvalue) else 1.0
    return abs(_finite(r)), pvalue


def correlation_ratio(x: pd.Series, y: pd.Series) -> tuple[float, float]:
    """Eta: sqrt(between-group / total sum of squares) of the numeric side grouped by the other.

    The nominal side is whichever is not numeric or, for two numeric columns, the one with fewer
    distinct values. Derived from scipy's one-way ANOVA F: eta^2 = F*df_b / (F*df_b + df_w).
    """
    x_numeric = pd.api.types.is_numeric_dtype(x.dtype) and not isinstance(
        x.dtype, pd.CategoricalDtype
    )
    y_numeric = pd.api.types.is_numeric_dtype(y.dtype) and not isinstance(
        y.dtype, pd.CategoricalDtype
    )
    if x_numeric and (not y_numeric or x.nunique() > y.nunique()):
        groups_of, values = y, x
    else:
        groups_of, values = x, y
    codes = as_codes(groups_of)
    numbers = np.asarray(values, dtype=np.float64)
    samples = [numbers[codes == code] for code in np.unique(codes)]
    if len(samples) < 2:
        return 0.0, 1.0
    result = stats.f_oneway(*samples)
    f_value = _finite(result.statistic)
    df_between = len(samples) - 1
    df_within = len(numbers) - len(samples)
    denominator = f_value * df_between + df_within
    eta = float(np.sqrt(f_value * df_between / denominator)) if denominator > 0 else 0.0
    pvalue = float(result.pvalue) if np.isfinite(result.pvalue) else 1.0
    return eta, pvalue


def cramers_v(x: pd.Series, y: pd.Series) -> tuple[float, float]:
    """Cramer's V of the contingency table (scipy), p-value of its chi-squared test."""
    table = pd.crosstab(as_categories(x), as_categories(y)).to_numpy()
    if min(table.shape) < 2:
        return 0.0, 1.0
    v = contingency.association(table, method="cramer")
    pvalue = contingency.chi2_contingency(table).pvalue
    return _finite(v), float(pvalue)


PAIRWISE_MEASURES: dict[str, Measure] = {
    "pearson": pearson,
    "spearman": spearman,
    "kendall": kendall,
    "pointbiserial": pointbiserial,
    "correlation_ratio": correlation_ratio,
    "cramers_v": cramers_v,
    "rank_biserial": rank_biserial,
}
