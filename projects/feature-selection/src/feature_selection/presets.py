"""Named presets: this project's defaults, and the article's own choices.

``--preset default`` is what the benchmark chose (see the README's "Benchmark" and "Presets");
``--preset article`` reproduces "Feature Selection Methods and How to Choose Them" as written: its
measurement-level table, VIF computed once on the columns as given and kept at VIF <= 10, Boruta
keeping tentative features, and a strict majority of its voters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

PresetName = Literal["default", "article"]


@dataclass(frozen=True)
class Preset:
    """The choices a preset makes; explicit options override ``methods`` and ``threshold``."""

    name: str
    methods: str
    """Comma-separated voters."""

    threshold: float
    """Vote share a feature must exceed."""

    measure_table: str
    """``feature_selection.levels.MEASURE_TABLES`` key for the association filter."""

    vif_iterative: bool
    """VIF: drop the worst and recompute (True) or compute once (False)."""

    vif_constant: bool
    """VIF: regress with an intercept (True) or on the columns as given (False)."""

    boruta_keep_tentative: bool
    """Boruta: keep tentative features too."""


PRESETS: dict[str, Preset] = {
    # Chosen by the benchmark: the union of two conservative voters from different families.
    "default": Preset(
        name="default",
        methods="association,boruta",
        threshold=0.0,
        measure_table="default",
        vif_iterative=True,
        vif_constant=True,
        boruta_keep_tentative=False,
    ),
    # The article: a majority (3 of 5) of filter, embedded, wrapper and all-relevant voters.
    "article": Preset(
        name="article",
        methods="association,mutual_info,l1,rfecv,boruta",
        threshold=0.5,
        measure_table="article",
        vif_iterative=False,
        vif_constant=False,
        boruta_keep_tentative=True,
    ),
}
