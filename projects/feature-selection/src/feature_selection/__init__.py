"""Feature selection methods and how to choose them: sklearn-compatible selectors, the measurement-
level table as code, and a voting selector over any of them."""

from feature_selection.errors import FeatureSelectionError
from feature_selection.levels import MEASURE_TABLE, Level, choose_measure, infer_level
from feature_selection.selectors import (
    FILTER_METHODS,
    BorutaSelector,
    FilterSelector,
    L1Selector,
    MissingRatioSelector,
    RFESelector,
    SequentialSelector,
    VarianceSelector,
    VIFSelector,
)
from feature_selection.voting import VotingSelector, plot_votes

__all__ = [
    "FILTER_METHODS",
    "MEASURE_TABLE",
    "BorutaSelector",
    "FeatureSelectionError",
    "FilterSelector",
    "L1Selector",
    "Level",
    "MissingRatioSelector",
    "RFESelector",
    "SequentialSelector",
    "VIFSelector",
    "VarianceSelector",
    "VotingSelector",
    "choose_measure",
    "infer_level",
    "plot_votes",
]
