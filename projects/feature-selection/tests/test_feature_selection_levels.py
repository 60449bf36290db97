import pandas as pd
import pytest

from feature_selection import MEASURE_TABLE, FeatureSelectionError, Level, choose_measure
from feature_selection.levels import infer_level, resolve_levels


@pytest.mark.parametrize(
    "feature, target, expected",
    [
        ("nominal", "nominal", "cramers_v"),
        ("nominal", "ordinal", "cramers_v"),
        ("nominal", "interval", "correlation_ratio"),
        ("ordinal", "ordinal", "kendall"),
        ("ordinal", "ratio", "spearman"),
        ("interval", "ordinal", "spearman"),
        ("interval", "interval", "pearson"),
        ("ratio", "interval", "pearson"),
        ("ratio", "nominal", "correlation_ratio"),
    ],
)
def test_measure_table(feature: str, target: str, expected: str) -> None:
    assert choose_measure(feature, target) == expected


def test_table_covers_every_pair_of_levels() -> None:
    assert set(MEASURE_TABLE) == {(a, b) for a in Level for b in Level}


def test_binary_nominal_side_uses_point_biserial() -> None:
    assert choose_measure("interval", "nominal", target_binary=True) == "pointbiserial"
    assert choose_measure("nominal", "ratio", feature_binary=True) == "pointbiserial"
    # The binary flag of the numeric side does not matter.
    assert choose_measure("nominal", "ratio", target_binary=True) == "correlation_ratio"


def test_levels_are_inferred_from_dtypes() -> None:
    frame = pd.DataFrame(
        {
            "flag": [True, False, True, False],
            "city": ["a", "b", "c", "a"],
            "size": pd.Categorical(["s", "m", "l", "s"], categories=["s", "m", "l"], ordered=True),
            "kind": pd.Categorical(["x", "y", "x", "z"]),
            "height": [1.5, 2.5, 3.5, 4.0],
            "binary_int": [0, 1, 1, 0],
        }
    )
    levels = resolve_levels(frame)
    assert levels == {
        "flag": Level.NOMINAL,
        "city": Level.NOMINAL,
        "size": Level.ORDINAL,
        "kind": Level.NOMINAL,
        "height": Level.INTERVAL,
        "binary_int": Level.NOMINAL,
    }
    assert resolve_levels(frame, {"height": "ratio"})["height"] is Level.RATIO


def test_integer_targets_with_few_values_are_class_labels() -> None:
    assert infer_level(pd.Series([1, 2, 3, 1]), is_target=True) is Level.NOMINAL
    assert infer_level(pd.Series([1, 2, 3, 1])) is Level.INTERVAL
    assert infer_level(pd.Series(range(100)), is_target=True) is Level.INTERVAL


def test_bad_overrides_are_named() -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0]})
    with pytest.raises(FeatureSelectionError, match="'b'"):
        resolve_levels(frame, {"b": "nominal"})
    with pytest.raises(FeatureSelectionError, match="Unknown level 'nominl'"):
        resolve_levels(frame, {"a": "nominl"})
