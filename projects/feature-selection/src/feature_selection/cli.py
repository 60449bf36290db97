"""Command line: select features of a CSV or Parquet table by voting over
methods.

select data.csv --target y --out DIR [--methods association,l1,boruta]
[--threshold 0.5]

Writes to DIR (each file atomically): ``selected.csv`` (or ``.parquet``,
like the input; the kept features plus the target), ``votes.csv`` and
``votes.png`` (selector x feature), ``scores.csv`` (per-method scores
per feature) and ``report.json``. Bad tables exit with status 2 and a
one-line message that names the problem.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from feature_selection.base import BaseSelector, constant_columns
from feature_selection.errors import FeatureSelectionError, format_columns
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
from feature_selection.voting import VotingSelector
from ml_core import atomic_output, collect_run_metadata, seed_everything, write_json_atomic

EXIT_BAD_INPUT = 2
# Two conservative methods from different families, and a feature is kept when either keeps it
# (vote share > 0): the univariate association filter (Benjamini-Hochberg FDR 5%) and Boruta
# (all-relevant, multivariate). Chosen on the benchmark's seeds 0-2 and confirmed on seeds 3-5;
# see the README's "Benchmark" section. With more voters, a majority (--threshold 0.5) is the
# usual rule: the union of five methods would inherit L1's false positives.
DEFAULT_METHODS = "association,boruta"
DEFAULT_THRESHOLD = 0.0
OTHER_METHODS = ("variance", "missing_ratio", "vif", "forward", "backward", "rfe", "rfecv", "l1")
ALL_METHODS = (*OTHER_METHODS[:3], *FILTER_METHODS, *OTHER_METHODS[3:], "boruta")

SCORE_NAMES = {
    "variance": "variance",
    "missing_ratio": "share of missing values",
    "vif": "variance inflation factor (at drop, or final)",
    "pearson": "|Pearson r|",
    "spearman": "|Spearman rho|",
    "kendall": "|Kendall tau|",
    "pointbiserial": "|point-biserial r|",
    "chi2": "chi-squared statistic",
    "mutual_info": "mutual information (nats)",
    "anova": "ANOVA / regression F statistic",
    "cramers_v": "Cramer's V",
    "association": "level-chosen association in [0, 1] (see measures)",
    "forward": "1 = selected",
    "backward": "1 = selected",
    "rfe": "RFE rank (1 = kept)",
    "rfecv": "RFE rank (1 = kept)",
    "l1": "|coefficient| on standardised features",
    "boruta": "Boruta rank (1 = confirmed, 2 = tentative)",
}


def parse_k(text: str) -> int | str:
    if text in ("auto", "all"):
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"k must be an integer, 'auto' or 'all', not {text!r}")
    if value < 1:
        raise argparse.ArgumentTypeError("k must be at least 1")
    return value


def parse_levels(text: str) -> dict[str, str]:
    levels = {}
    for item in filter(None, text.split(",")):
        name, separator, level = item.partition("=")
        if not separator:
            raise argparse.ArgumentTypeError(f"levels are column=level pairs, not {item!r}")
        levels[name.strip()] = level.strip()
    return levels


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="select",
        description="Select features of a table by voting over feature-selection methods.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("table", type=Path, help="input table (.csv, .parquet or .pq)")
    parser.add_argument("--target", required=True, help="name of the target column")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument(
        "--methods",
        default=DEFAULT_METHODS,
        help=f"comma-separated methods from: {', '.join(ALL_METHODS)}",
    )
    parser.add_argument(
        "--threshold",
        type=float,
        default=DEFAULT_THRESHOLD,
        help="keep features whose vote share exceeds this (0 = any voter keeps it; "
        "0.5 = a strict majority, the usual choice with three or more voters)",
    )
    parser.add_argument("--task", choices=("auto", "classification", "regression"), default="auto")
    parser.add_argument("--seed", type=int, default=0, help="random seed for every method")
    parser.add_argument(
        "--drop-constant", action="store_true", help="drop constant columns instead of failing"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    filters = parser.add_argument_group("filters")
    filters.add_argument(
        "--k",
        type=parse_k,
        default="auto",
        help="features each filter keeps; 'auto' = FDR-adjusted p < alpha "
        "(mutual information: beats a shuffled-target baseline)",
    )
    filters.add_argument("--percentile", type=float, help="keep this percent of features instead")
    filters.add_argument("--alpha", type=float, default=0.05, help="FDR level for --k auto")
    filters.add_argument(
        "--levels",
        type=parse_levels,
        default={},
        help="override inferred levels, e.g. 'grade=ordinal,zip=nominal'",
    )
    filters.add_argument(
        "--target-level", choices=("nominal", "ordinal", "interval", "ratio"), default=None
    )
    unsupervised = parser.add_argument_group("unsupervised")
    unsupervised.add_argument("--variance-threshold", type=float, default=0.0)
    unsupervised.add_argument("--max-missing", type=float, default=0.5)
    unsupervised.add_argument("--max-vif", type=float, default=10.0)
    wrappers = parser.add_argument_group("wrappers and embedded")
    wrappers.add_argument("--cv", type=int, default=5, help="cross-validation folds")
    wrappers.add_argument(
        "--n-features", type=int, default=None, help="features for rfe/forward/backward"
    )
    boruta = parser.add_argument_group("boruta")
    boruta.add_argument("--boruta-max-iter", type=int, default=100)
    boruta.add_argument("--boruta-perc", type=int, default=100)
    boruta.add_argument(
        "--boruta-keep-tentative", action="store_true", help="keep tentative features too"
    )
    return parser


def build_selector(method: str, args: argparse.Namespace) -> BaseSelector:
    """The selector a method name and the command line options describe."""
    seed = args.seed
    if method == "variance":
        return VarianceSelector(threshold=args.variance_threshold)
    if method == "missing_ratio":
        return MissingRatioSelector(max_missing=args.max_missing)
    if method == "vif":
        return VIFSelector(max_vif=args.max_vif)
    if method in FILTER_METHODS:
        return FilterSelector(
            method,
            k=args.k,
            percentile=args.percentile,
            alpha=args.alpha,
            task=args.task,
            levels=args.levels or None,
            target_level=args.target_level,
            random_state=seed,
        )
    if method in ("forward", "backward"):
        n_features = args.n_features if args.n_features is not None else "auto"
        return SequentialSelector(
            method, n_features_to_select=n_features, cv=args.cv, task=args.task
        )
    if method in ("rfe", "rfecv"):
        return RFESelector(
            n_features_to_select=args.n_features,
            cv=args.cv if method == "rfecv" else None,
            task=args.task,
        )
    if method == "l1":
        return L1Selector(cv=args.cv, task=args.task, random_state=seed)
    if method == "boruta":
        return BorutaSelector(
            max_iter=args.boruta_max_iter,
            perc=args.boruta_perc,
            keep_tentative=args.boruta_keep_tentative,
            task=args.task,
            random_state=seed,
        )
    raise FeatureSelectionError(
        f"Unknown method {method!r}; choose from: {', '.join(ALL_METHODS)}."
    )


def read_table(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet", ".pq"):
        raise FeatureSelectionError(f"Cannot read {str(path)!r}: use a .csv, .parquet or .pq file.")
    if not path.is_file():
        raise FeatureSelectionError(f"Input table {str(path)!r} does not exist.")
    try:
        if suffix == ".csv":
            return pd.read_csv(path)
        return pd.read_parquet(path)
    except (OSError, ValueError, pd.errors.ParserError) as error:
        raise FeatureSelectionError(f"Cannot read {str(path)!r}: {error}") from None


def write_table(frame: pd.DataFrame, path: Path) -> None:
    with atomic_output(path) as temporary:
        if path.suffix == ".csv":
            frame.to_csv(temporary, index=False)
        else:
            frame.to_parquet(temporary, index=False)


def _json_safe(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    return repr(value)


def split_table(
    table: pd.DataFrame, target: str, drop_constant: bool
) -> tuple[pd.DataFrame, pd.Series, list[str]]:
    """Features, target and the constant columns dropped; raises on a bad
    table."""
    if target not in table.columns:
        raise FeatureSelectionError(
            f"Target column {target!r} is not in the table; columns are "
            f"{format_columns(list(table.columns))}."
        )
    if table.shape[0] == 0:
        raise FeatureSelectionError("The table has no rows.")
    features = table.drop(columns=[target])
    if features.shape[1] == 0:
        raise FeatureSelectionError("The table has no feature columns besides the target.")
    y = table[target]
    if y.isna().any():
        raise FeatureSelectionError(
            f"Target column {target!r} has missing values in {int(y.isna().sum())} rows."
        )
    dropped: list[str] = []
    if drop_constant:
        dropped = constant_columns(features)
        features = features.drop(columns=dropped)
        if features.shape[1] == 0:
            raise FeatureSelectionError("Every feature column is constant.")
    return features, y, dropped


def run(args: argparse.Namespace) -> dict[str, Any]:
    seed_everything(args.seed)
    methods = [method.strip() for method in args.methods.split(",") if method.strip()]
    if not methods:
        raise FeatureSelectionError("--methods is empty.")
    if not 0 <= args.threshold < 1:
        raise FeatureSelectionError(f"--threshold must be in [0, 1), got {args.threshold}.")
    selectors = [(method, build_selector(method, args)) for method in methods]
    table = read_table(args.table)
    features, y, dropped = split_table(table, args.target, args.drop_constant)
    voting = VotingSelector(selectors, threshold=args.threshold, verbose=not args.quiet)
    voting.fit(features, y)

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    selected = [str(name) for name in voting.get_feature_names_out()]
    suffix = ".csv" if args.table.suffix.lower() == ".csv" else ".parquet"
    write_table(table[[*selected, args.target]], out / f"selected{suffix}")
    with atomic_output(out / "votes.csv") as temporary:
        voting.votes_.to_csv(temporary)
    with atomic_output(out / "scores.csv") as temporary:
        voting.scores_table().to_csv(temporary)
    voting.plot_votes(out / "votes.png")

    method_reports: dict[str, Any] = {}
    for name, fitted in voting.selectors_.items():
        entry: dict[str, Any] = {
            "params": _json_safe(fitted.get_params(deep=False)),
            "seconds": round(voting.timings_[name], 4),
            "kept": [str(column) for column in fitted.get_feature_names_out()],
            "score_name": SCORE_NAMES.get(name, "score"),
        }
        for attribute in ("task_", "measures_", "levels_", "target_level_"):
            if hasattr(fitted, attribute):
                entry[attribute.rstrip("_")] = _json_safe(getattr(fitted, attribute))
        method_reports[name] = entry
    report = {
        "input": str(args.table),
        "rows": int(table.shape[0]),
        "target": args.target,
        "n_features": int(features.shape[1]),
        "threshold": args.threshold,
        "methods": method_reports,
        "selected": selected,
        "dropped": [c for c in map(str, features.columns) if c not in set(selected)],
        "dropped_constant": dropped,
        "vote_share": {str(k): float(v) for k, v in voting.vote_share_.items()},
        "outputs": sorted(
            [f"selected{suffix}", "votes.csv", "votes.png", "scores.csv", "report.json"]
        ),
        "run": collect_run_metadata(
            packages=("numpy", "pandas", "scikit-learn", "scipy", "statsmodels", "boruta")
        ).to_dict(),
    }
    write_json_atomic(out / "report.json", report)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (0 ok, 2 bad input or options)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        report = run(args)
    except FeatureSelectionError as error:
        print(f"select: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if not args.quiet:
        print(
            f"Selected {len(report['selected'])} of {report['n_features']} features: "
            f"{', '.join(report['selected']) or '(none)'}; outputs in {args.out}",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
