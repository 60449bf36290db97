"""Command line: select features of a CSV or Parquet table by voting over methods.

select data.csv --target y --out DIR [--methods association,l1,boruta] [--threshold 0.5]

Writes to DIR (each file atomically): ``selected.csv`` (or ``.parquet``, like the input; the kept
features plus the target), ``votes.csv`` and ``votes.png`` (selector x feature), ``scores.csv``
(per-method scores per feature) and ``report.json``. Bad tables exit with status 2 and a one-line
message that names the problem.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import math
import os
import shlex
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from feature_selection.base import BaseSelector, constant_columns, duplicate_columns, explain_task
from feature_selection.errors import FeatureSelectionError, format_columns
from feature_selection.levels import Level
from feature_selection.presets import PRESETS, Preset, PresetName
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
from ml_core.cli import (
    Command,
    config_to_dict,
    make_main,
    option,
    positional,
    require,
    require_fraction,
    require_non_negative,
    require_positive,
)

# Two conservative methods from different families, and a feature is kept when either keeps it
# (vote share > 0): the univariate association filter (Benjamini-Hochberg FDR 5%) and Boruta
# (all-relevant, multivariate). Chosen on the benchmark's seeds 0-2 and confirmed on seeds 3-5;
# see the README's "Benchmark" section. With more voters, a majority (--threshold 0.5) is the
# usual rule: the union of five methods would inherit L1's false positives.
DEFAULT_METHODS = PRESETS["default"].methods
DEFAULT_THRESHOLD = PRESETS["default"].threshold
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


@dataclasses.dataclass(frozen=True)
class SelectConfig:
    """Select features of a table by voting over feature-selection methods."""

    table: Path = positional(help="input table (.csv, .parquet or .pq)")
    target: str = option(help="name of the target column")
    out: Path = option(help="output directory")
    preset: PresetName = "default"
    """'default' (the benchmark's choice) or 'article' (the article's measure table, VIF computed
    once with VIF <= 10, Boruta keeping tentative features, a majority of five voters)."""

    methods: str | None = option(
        None,
        help=f"comma-separated methods from: {', '.join(ALL_METHODS)} (default: the preset's; "
        f"default: {DEFAULT_METHODS}, article: {PRESETS['article'].methods})",
    )
    threshold: float | None = option(
        None,
        help="keep features whose vote share exceeds this: 0 = any voter keeps it, 0.5 = a strict "
        f"majority (default: the preset's; default: {DEFAULT_THRESHOLD}, article: "
        f"{PRESETS['article'].threshold})",
    )
    sep: str = ","
    """CSV field separator, e.g. ';' (write a tab as '\\t')."""

    encoding: str = "utf-8"
    """CSV text encoding, e.g. latin-1 or cp1252."""

    task: Literal["auto", "classification", "regression"] = "auto"
    """Classification or regression; auto infers it from the target."""

    seed: int = 0
    """Random seed for every method."""

    drop_constant: bool = False
    """Drop constant columns instead of failing."""

    quiet: bool = False
    """No progress lines on stderr."""

    k: str = "auto"
    """Features each filter keeps: a positive integer, 'all', or 'auto' = FDR-adjusted p < alpha
    (mutual information: beats a shuffled-target baseline)."""
    percentile: float | None = None
    """Filters keep this percent of features instead (0-100]."""

    alpha: float = 0.05
    """FDR level for --k auto."""

    levels: str = ""
    """Override inferred levels, e.g. 'grade=ordinal,zip=nominal'."""

    target_level: Literal["nominal", "ordinal", "interval", "ratio"] | None = None
    """Override the target's inferred measurement level."""

    variance_threshold: float = 0.0
    """Variance: drop features whose variance is at most this."""

    max_missing: float = 0.5
    """missing_ratio: drop features with a larger share of missing values."""

    max_vif: float = 10.0
    """Vif: drop features until every variance inflation factor is at most this."""

    cv: int = 5
    """Cross-validation folds (forward, backward, rfecv, l1)."""

    n_features: int | None = None
    """Features for rfe/forward/backward (default: each method's own rule)."""

    boruta_max_iter: int = 100
    """Boruta iterations."""

    boruta_perc: int = 100
    """Boruta: percentile of the shadow features' importance a feature must beat."""

    boruta_keep_tentative: bool = False
    """Boruta: keep tentative features too (the article preset always does)."""

    def __post_init__(self) -> None:
        require(
            len(self.separator) == 1,
            "sep",
            f"must be one character (a tab as '\\t'), got {self.sep!r}",
        )
        try:
            codecs.lookup(self.encoding)
        except LookupError:
            require(False, "encoding", f"unknown encoding {self.encoding!r}; e.g. utf-8, latin-1")
        names = self.method_names
        require(bool(names), "methods", "is empty")
        unknown = [name for name in names if name not in ALL_METHODS]
        require(
            not unknown,
            "methods",
            f"Unknown method {', '.join(map(repr, unknown))}; "
            f"choose from: {', '.join(ALL_METHODS)}",
        )
        require(len(set(names)) == len(names), "methods", f"names a method twice: {self.methods!r}")
        require(
            0 <= self.vote_threshold < 1,
            "threshold",
            f"must be in [0, 1), got {self.threshold!r}",
        )
        require(
            self.k in ("auto", "all") or (self.k.isdigit() and int(self.k) >= 1),
            "k",
            f"must be a positive integer, 'auto' or 'all', got {self.k!r}",
        )
        require_fraction(self, "alpha")
        require_fraction(self, "max_missing", allow_zero=True)
        require_non_negative(self, "variance_threshold")
        require_positive(self, "max_vif", "n_features", "boruta_max_iter")
        require(self.cv >= 2, "cv", f"must be at least 2, got {self.cv!r}")
        for name in ("percentile", "boruta_perc"):
            value = getattr(self, name)
            require(value is None or 0 < value <= 100, name, f"must be in (0, 100], got {value!r}")
        self.level_overrides  # raises ConfigError on a malformed --levels

    @property
    def preset_choices(self) -> Preset:
        """The preset's choices."""
        return PRESETS[self.preset]

    @property
    def method_names(self) -> list[str]:
        """``methods`` (or the preset's) as a list."""
        methods = self.preset_choices.methods if self.methods is None else self.methods
        return [method.strip() for method in methods.split(",") if method.strip()]

    @property
    def vote_threshold(self) -> float:
        """``threshold``, or the preset's."""
        return self.preset_choices.threshold if self.threshold is None else self.threshold

    @property
    def separator(self) -> str:
        """``sep`` with the escape '\\t' read as a tab."""
        return "\t" if self.sep in ("\\t", "tab") else self.sep

    @property
    def filter_k(self) -> int | str:
        """``k`` as the filters take it: an int, 'auto' or 'all'."""
        return self.k if self.k in ("auto", "all") else int(self.k)

    @property
    def level_overrides(self) -> dict[str, str]:
        """``levels`` as a column -> level dict."""
        allowed = [level.value for level in Level]
        overrides = {}
        for item in filter(None, (part.strip() for part in self.levels.split(","))):
            name, separator, level = item.partition("=")
            require(bool(separator), "levels", f"are column=level pairs, not {item!r}")
            require(
                level.strip() in allowed,
                "levels",
                f"{level.strip()!r} is not one of {', '.join(allowed)}",
            )
            overrides[name.strip()] = level.strip()
        return overrides


def build_selector(method: str, config: SelectConfig) -> BaseSelector:
    """The selector a method name and the command line options describe."""
    seed = config.seed
    if method == "variance":
        return VarianceSelector(threshold=config.variance_threshold)
    if method == "missing_ratio":
        return MissingRatioSelector(max_missing=config.max_missing)
    preset = config.preset_choices
    if method == "vif":
        return VIFSelector(
            max_vif=config.max_vif, iterative=preset.vif_iterative, constant=preset.vif_constant
        )
    if method in FILTER_METHODS:
        return FilterSelector(
            method,
            k=config.filter_k,
            percentile=config.percentile,
            alpha=config.alpha,
            task=config.task,
            levels=config.level_overrides or None,
            target_level=config.target_level,
            random_state=seed,
            measure_table=preset.measure_table,
        )
    if method in ("forward", "backward"):
        n_features = config.n_features if config.n_features is not None else "auto"
        return SequentialSelector(
            method, n_features_to_select=n_features, cv=config.cv, task=config.task
        )
    if method in ("rfe", "rfecv"):
        return RFESelector(
            n_features_to_select=config.n_features,
            cv=config.cv if method == "rfecv" else None,
            task=config.task,
        )
    if method == "l1":
        return L1Selector(cv=config.cv, task=config.task, random_state=seed)
    if method == "boruta":
        return BorutaSelector(
            max_iter=config.boruta_max_iter,
            perc=config.boruta_perc,
            keep_tentative=config.boruta_keep_tentative or preset.boruta_keep_tentative,
            task=config.task,
            random_state=seed,
        )
    raise FeatureSelectionError(
        f"Unknown method {method!r}; choose from: {', '.join(ALL_METHODS)}."
    )


def _encoding_hint(path: Path, encoding: str, error: UnicodeDecodeError) -> FeatureSelectionError:
    return FeatureSelectionError(
        f"Cannot read {str(path)!r} as {encoding}: byte 0x{error.object[error.start]:02x} at "
        f"position {error.start} is not valid {encoding}. If the file was saved as Latin-1 or "
        "Windows-1252 (common for spreadsheet exports), pass --encoding latin-1 "
        "(or --encoding cp1252)."
    )


def _csv_header(path: Path, sep: str, encoding: str) -> list[str]:
    """The header row as written (pandas renames duplicate names to 'a.1', so read it here)."""
    try:
        with open(path, encoding=encoding, newline="") as handle:
            return next(csv.reader(handle, delimiter=sep), [])
    except UnicodeDecodeError as error:
        raise _encoding_hint(path, encoding, error) from None
    except (OSError, csv.Error) as error:
        raise FeatureSelectionError(f"Cannot read {str(path)!r}: {error}") from None


def _separator_hint(path: Path, header: list[str], sep: str) -> None:
    """Raise when a one-column header looks separated by another character than ``sep``."""
    if len(header) != 1:
        return
    counts = {candidate: header[0].count(candidate) for candidate in (";", "\t", "|", ",")}
    counts.pop(sep, None)
    likely = max(counts, key=lambda candidate: counts[candidate])
    if counts[likely] == 0:
        return
    flag = "'\\t'" if likely == "\t" else shlex.quote(likely)
    raise FeatureSelectionError(
        f"{str(path)!r} has a single column {header[0]!r} when split on {sep!r}: it looks "
        f"{likely!r}-separated. Pass --sep {flag}."
    )


def read_table(path: Path, sep: str = ",", encoding: str = "utf-8") -> pd.DataFrame:
    """Read a CSV (with ``sep`` and ``encoding``) or Parquet table; refuse duplicate column names.

    Raises :class:`FeatureSelectionError` naming the likely fix (``--sep``, ``--encoding``).
    """
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet", ".pq"):
        raise FeatureSelectionError(f"Cannot read {str(path)!r}: use a .csv, .parquet or .pq file.")
    if not path.is_file():
        raise FeatureSelectionError(f"Input table {str(path)!r} does not exist.")
    columns: list[str] = []
    if suffix == ".csv":
        columns = _csv_header(path, sep, encoding)
        _separator_hint(path, columns, sep)
    try:
        if suffix == ".csv":
            table = pd.read_csv(path, sep=sep, encoding=encoding)
        else:
            table = pd.read_parquet(path)
            columns = [str(column) for column in table.columns]
    except UnicodeDecodeError as error:
        raise _encoding_hint(path, encoding, error) from None
    except (OSError, ValueError, pd.errors.ParserError) as error:
        raise FeatureSelectionError(f"Cannot read {str(path)!r}: {error}") from None
    repeated = duplicate_columns(columns)
    if repeated:
        raise FeatureSelectionError(
            f"{str(path)!r} has duplicate column names: {format_columns(repeated)}. Every column "
            "(the target included) needs a unique name; rename or drop the copies."
        )
    return table


# What a select run writes into --out; an existing --out holding anything else is refused.
OUTPUT_NAMES = frozenset(
    {"report.json", "scores.csv", "votes.csv", "votes.png", "selected.csv", "selected.parquet"}
)


def check_out_dir(out: Path) -> None:
    """Refuse an ``--out`` that is a file or holds files a select run did not write (it will be
    replaced as a whole)."""
    if not out.exists():
        return
    if not out.is_dir():
        raise FeatureSelectionError(f"--out {str(out)!r} exists and is not a directory.")
    foreign = sorted(entry.name for entry in out.iterdir() if entry.name not in OUTPUT_NAMES)
    if foreign:
        raise FeatureSelectionError(
            f"--out {str(out)!r} holds files a select run does not write: "
            f"{format_columns(foreign)}. The whole directory is replaced by a new run; choose a "
            "new or empty directory."
        )


def _umask_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o777 & ~mask


@contextmanager
def staged_directory(out: Path) -> Iterator[Path]:
    """Yield an empty directory beside ``out``; when the block succeeds it *becomes* ``out`` (an
    earlier ``out`` is removed), when it fails it is deleted and ``out`` is left as it was.

    So ``out`` holds one run's complete outputs, never a mix of two runs.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    os.chmod(staging, _umask_mode())  # mkdtemp makes it 0700
    try:
        yield staging
        previous = staging.with_suffix(".old")
        if out.exists():
            os.replace(out, previous)
        os.replace(staging, out)
        shutil.rmtree(previous, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


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
    """Features, target and the constant columns dropped; raises on a bad table."""
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


def run(config: SelectConfig) -> dict[str, Any]:
    """Select features as ``config`` says, write every output to ``config.out`` and return the
    report (also written as ``report.json``).

    Raises :class:`FeatureSelectionError` on a table the methods cannot use, before anything is
    written. The outputs are written into a temporary directory that replaces ``config.out`` only
    when all of them were written, so ``config.out`` never mixes two runs.
    """
    seed_everything(config.seed)
    selectors = [(method, build_selector(method, config)) for method in config.method_names]
    check_out_dir(config.out)
    table = read_table(config.table, config.separator, config.encoding)
    features, y, dropped = split_table(table, config.target, config.drop_constant)
    task, task_reason = explain_task(config.task, y)
    if not config.quiet:
        print(f"Task: {task} ({task_reason}); preset: {config.preset}", file=sys.stderr)
    voting = VotingSelector(selectors, threshold=config.vote_threshold, verbose=not config.quiet)
    voting.fit(features, y)

    selected = [str(name) for name in voting.get_feature_names_out()]
    suffix = ".csv" if config.table.suffix.lower() == ".csv" else ".parquet"
    method_reports: dict[str, Any] = {}
    for name, fitted in voting.selectors_.items():
        entry: dict[str, Any] = {
            "params": _json_safe(fitted.get_params(deep=False)),
            "seconds": round(voting.timings_[name], 4),
            "kept": [str(column) for column in fitted.get_feature_names_out()],
            "score_name": SCORE_NAMES.get(name, "score"),
        }
        for attribute in ("task_", "task_reason_", "measures_", "levels_", "target_level_"):
            if hasattr(fitted, attribute):
                entry[attribute.rstrip("_")] = _json_safe(getattr(fitted, attribute))
        method_reports[name] = entry
    report = {
        "input": str(config.table),
        "rows": int(table.shape[0]),
        "target": config.target,
        "task": task,
        "task_reason": task_reason,
        "preset": config.preset,
        "n_features": int(features.shape[1]),
        "threshold": config.vote_threshold,
        "config": config_to_dict(config),
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
    with staged_directory(config.out) as staging:
        write_table(table[[*selected, config.target]], staging / f"selected{suffix}")
        with atomic_output(staging / "votes.csv") as temporary:
            voting.votes_.to_csv(temporary)
        with atomic_output(staging / "scores.csv") as temporary:
            voting.scores_table().to_csv(temporary)
        voting.plot_votes(staging / "votes.png")
        write_json_atomic(staging / "report.json", report)
    if not config.quiet:
        print(
            f"Selected {len(selected)} of {report['n_features']} features: "
            f"{', '.join(selected) or '(none)'}; outputs in {config.out}",
            file=sys.stderr,
        )
    return report


# Exit status: 0 ok, 2 a bad option or a table the methods cannot use (one line, no traceback).
main = make_main(Command(SelectConfig, run), prog="select", user_errors=(FeatureSelectionError,))


if __name__ == "__main__":
    sys.exit(main(None))
