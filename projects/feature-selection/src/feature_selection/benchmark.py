"""Benchmark: how well each method recovers known relevant features, and how fast.

Synthetic tables (sklearn's make_classification / make_regression with ``shuffle=False``, so
the relevant columns are known: informative + redundant ones) over several seeds and 20-200
features, and sklearn's bundled real tables with added noise columns (relevant = the original
columns). Reports precision / recall / F1 per method and for the voting selector, runtime per
method, and Boruta through this package next to ``boruta.BorutaPy`` called directly.

Besides ``results.csv`` and ``summary.json`` it writes ``selections.json``: every method's
kept columns per dataset, so other voter sets and thresholds can be scored in seconds without
refitting (``--rescore selections.json --voters ... --threshold ...``; ``--grid`` scores every
voter subset and k-of-n rule). ``--seeds`` / ``--real-seeds`` pick the datasets, so a voting
rule chosen on some seeds can be checked on others.

    ./pants run projects/feature-selection:benchmark -- --out runs/feature-selection-benchmark
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from boruta import BorutaPy
from sklearn.base import BaseEstimator, clone
from sklearn.datasets import (
    load_breast_cancer,
    load_diabetes,
    load_wine,
    make_classification,
    make_regression,
)
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from feature_selection.base import BaseSelector
from feature_selection.errors import FeatureSelectionError
from feature_selection.presets import PRESETS, Preset, PresetName
from feature_selection.selectors import (
    BorutaSelector,
    FilterSelector,
    L1Selector,
    RFESelector,
    SequentialSelector,
    VIFSelector,
)
from feature_selection.voting import VotingSelector, tally
from ml_core import atomic_output, collect_run_metadata, write_json_atomic
from ml_core.cli import (
    CheckFailed,
    Command,
    config_to_dict,
    make_main,
    option,
    require,
    require_non_negative,
    require_positive,
)

# The methods a voter set can be drawn from (all fitted on every dataset by default).
CANDIDATES = ("association", "mutual_info", "l1", "rfecv", "boruta")
# ... plus Boruta with its tentative features kept, read off the same fit.
CANDIDATES_WITH_VARIANTS = (*CANDIDATES, "boruta_tentative")
# Single methods run besides the voters: the candidates, two references, and BorutaPy called
# directly (to check the wrapper).
METHODS = (*CANDIDATES, "anova", "forward", "vif", "boruta_direct")
# --quick: one seed per kind, the narrow synthetic tables, no forward / direct-Boruta references.
QUICK_METHODS = (*CANDIDATES, "anova", "vif")
# Permuted copies of relevant columns added to each synthetic table: the hardest noise (same
# distribution as a relevant column, no relation to the target).
SYNTHETIC_PERMUTED = 5
# Forward selection refits a model per candidate feature per step: only on narrow tables.
FORWARD_MAX_FEATURES = 60
# A fixed forest size; BorutaPy's "auto" grows it with the feature count (slow at 200+).
BORUTA_TREES = 100


@dataclass
class Dataset:
    name: str
    kind: str  # "synthetic" or "real"
    task: str
    X: pd.DataFrame
    y: pd.Series
    relevant: set[str]
    seed: int
    permuted: set[str] = dataclasses.field(default_factory=set)
    """Noise columns that are permuted copies of real (relevant) columns."""


def _frame(X: np.ndarray, prefix: str = "f") -> pd.DataFrame:
    return pd.DataFrame(X, columns=[f"{prefix}{i}" for i in range(X.shape[1])])


def add_permuted_copies(X: pd.DataFrame, sources: Sequence[str], seed: int) -> list[str]:
    """Add ``perm_<source>``: each source column with its rows shuffled; return the new names."""
    rng = np.random.default_rng(seed + 10_000)
    names = []
    for source in sources:
        name = f"perm_{source}"
        X[name] = rng.permutation(X[source].to_numpy())
        names.append(name)
    return names


def synthetic_datasets(
    seeds: Sequence[int], sizes: Sequence[int], n_permuted: int = SYNTHETIC_PERMUTED
) -> list[Dataset]:
    datasets = []
    for seed in seeds:
        for n_features in sizes:
            X, y = make_classification(
                n_samples=200,
                n_features=n_features,
                n_informative=5,
                n_redundant=2,
                shuffle=False,
                random_state=seed,
            )
            relevant = {f"f{i}" for i in range(7)}
            frame = _frame(X)
            permuted = add_permuted_copies(frame, [f"f{i}" for i in range(n_permuted)], seed)
            datasets.append(
                Dataset(
                    f"clf p={frame.shape[1]} seed={seed}",
                    "synthetic",
                    "classification",
                    frame,
                    pd.Series(y),
                    relevant,
                    seed,
                    set(permuted),
                )
            )
        X, y = make_regression(
            n_samples=200,
            n_features=50,
            n_informative=5,
            noise=20.0,
            shuffle=False,
            random_state=seed,
        )
        frame = _frame(X)
        permuted = add_permuted_copies(frame, [f"f{i}" for i in range(min(n_permuted, 5))], seed)
        datasets.append(
            Dataset(
                f"reg p={frame.shape[1]} seed={seed}",
                "synthetic",
                "regression",
                frame,
                pd.Series(y),
                {f"f{i}" for i in range(5)},
                seed,
                set(permuted),
            )
        )
    return datasets


def real_datasets(n_noise: int, seeds: Sequence[int]) -> list[Dataset]:
    loaders: list[tuple[str, str, Callable[..., Any]]] = [
        ("breast_cancer", "classification", load_breast_cancer),
        ("wine", "classification", load_wine),
        ("diabetes", "regression", load_diabetes),
    ]
    return [
        dataset for seed in seeds for dataset in _real_datasets_for_seed(loaders, n_noise, seed)
    ]


def _real_datasets_for_seed(
    loaders: Sequence[tuple[str, str, Callable[..., Any]]], n_noise: int, seed: int
) -> list[Dataset]:
    rng = np.random.default_rng(seed)
    datasets = []
    for name, task, loader in loaders:
        bunch = loader(as_frame=True)
        X = bunch.data.copy()
        X.columns = [str(column).replace(" ", "_") for column in X.columns]
        relevant = set(X.columns)
        permuted = set()
        for index in range(n_noise):
            # Half Gaussian noise, half shuffled copies of real columns (realistic marginals).
            if index % 2 == 0:
                X[f"noise{index}"] = rng.normal(size=len(X))
            else:
                source = X.columns[index % len(relevant)]
                X[f"noise{index}"] = rng.permutation(X[source].to_numpy())
                permuted.add(f"noise{index}")
        datasets.append(
            Dataset(
                f"{name} +{n_noise} noise seed={seed}",
                "real",
                task,
                X,
                bunch.target,
                relevant,
                seed,
                permuted,
            )
        )
    return datasets


def selectors_for(
    dataset: Dataset, boruta_max_iter: int, preset: Preset = PRESETS["default"]
) -> dict[str, BaseSelector]:
    """Every single method the benchmark can run, with the preset's options; nothing is told the
    answer."""
    seed, task = dataset.seed, dataset.task
    methods: dict[str, BaseSelector] = {
        "association": FilterSelector(
            "association", task=task, random_state=seed, measure_table=preset.measure_table
        ),
        "mutual_info": FilterSelector("mutual_info", task=task, random_state=seed),
        "l1": L1Selector(task=task, random_state=seed),
        # Drop 10% of the features per step: step=1 costs minutes at 200 features.
        "rfecv": RFESelector(cv=5, step=0.1, task=task),
        "boruta": BorutaSelector(
            n_estimators=BORUTA_TREES,
            max_iter=boruta_max_iter,
            keep_tentative=preset.boruta_keep_tentative,
            task=task,
            random_state=seed,
        ),
        "anova": FilterSelector("anova", task=task),
    }
    if dataset.X.shape[0] >= dataset.X.shape[1] + 2:  # VIF needs more rows than features
        methods["vif"] = VIFSelector(iterative=preset.vif_iterative, constant=preset.vif_constant)
    if dataset.X.shape[1] <= FORWARD_MAX_FEATURES:
        methods["forward"] = SequentialSelector("forward", cv=5, task=task)
    return methods


def scores(
    selected: Sequence[str], relevant: set[str], permuted: set[str] | None = None
) -> dict[str, float]:
    """Precision, recall, F1, how many columns were kept, how many of them are noise and how many
    are permuted copies of real columns."""
    chosen = set(selected)
    hits = len(chosen & relevant)
    precision = hits / len(chosen) if chosen else 0.0  # an empty selection scores 0
    recall = hits / len(relevant)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "n_selected": len(chosen),
        "noise_kept": len(chosen - relevant),
        "permuted_kept": len(chosen & (permuted or set())),
    }


# Downstream model: a standardised linear model, 5-fold CV (accuracy / R^2).
CV_FOLDS = 5


def downstream_score(dataset: Dataset, columns: Sequence[str]) -> float:
    """Mean 5-fold CV score (classification: accuracy; regression: R^2) of a standardised logistic /
    ridge regression on ``columns``; a dummy model's score when none is kept."""
    classification = dataset.task == "classification"
    model: BaseEstimator
    if not columns:
        model = DummyClassifier() if classification else DummyRegressor()
        X = np.zeros((len(dataset.y), 1))
    else:
        model = make_pipeline(
            StandardScaler(), LogisticRegression(max_iter=2000) if classification else Ridge()
        )
        X = dataset.X[list(columns)].to_numpy(dtype=np.float64)
    cv = (
        StratifiedKFold(CV_FOLDS, shuffle=True, random_state=0)
        if classification
        else KFold(CV_FOLDS, shuffle=True, random_state=0)
    )
    scoring = "accuracy" if classification else "r2"
    return float(cross_val_score(model, X, dataset.y.to_numpy(), cv=cv, scoring=scoring).mean())


def boruta_direct(dataset: Dataset, selector: BorutaSelector) -> tuple[float, np.ndarray]:
    """BorutaPy called by hand with the settings the wrapper uses."""
    estimator = selector.default_estimator(
        "classification" if dataset.task == "classification" else "regression"
    )
    boruta = BorutaPy(
        estimator,
        n_estimators=selector.n_estimators,
        max_iter=selector.max_iter,
        random_state=selector.random_state,
    )
    started = time.perf_counter()
    boruta.fit(dataset.X.to_numpy(dtype=np.float64), dataset.y.to_numpy())
    support = np.asarray(boruta.support_, dtype=bool)
    if selector.keep_tentative:
        support = support | np.asarray(boruta.support_weak_, dtype=bool)
    return time.perf_counter() - started, support


def run_benchmark(
    datasets: Sequence[Dataset],
    voters: Sequence[str],
    threshold: float,
    methods: Sequence[str],
    boruta_max_iter: int,
    preset: Preset = PRESETS["default"],
    on_progress: Callable[[list[dict[str, Any]]], None] | None = None,
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Results (one row per dataset and method, plus "voting") and the saved selections.

    The voters are fitted once, inside the ``VotingSelector`` the row "voting" scores; the other
    ``methods`` are fitted on their own. Each selection record holds every method's kept columns
    (plus "boruta_tentative": Boruta's confirmed and tentative features from the same fit), so other
    voter sets and thresholds can be scored later without refitting (``rescore``), and each
    selection's downstream CV score (``downstream_score``; "all" = every column).
    ``on_progress(selections)`` is called after every dataset (the partial results).
    """
    rows: list[dict[str, Any]] = []
    selections: list[dict[str, Any]] = []
    for position, dataset in enumerate(datasets, start=1):
        started = time.perf_counter()
        available = selectors_for(dataset, boruta_max_iter, preset)
        voting = VotingSelector(
            [(name, available[name]) for name in voters], threshold=threshold
        ).fit(dataset.X, dataset.y)
        fitted: dict[str, BaseSelector] = dict(voting.selectors_)
        seconds: dict[str, float] = dict(voting.timings_)
        for name in methods:
            if name in fitted or name not in available:
                continue  # a voter (already fitted), or forward on a wide table
            tic = time.perf_counter()
            fitted[name] = clone(available[name]).fit(dataset.X, dataset.y)
            seconds[name] = time.perf_counter() - tic
        kept = {name: [str(c) for c in fit.get_feature_names_out()] for name, fit in fitted.items()}
        boruta = fitted.get("boruta")
        if isinstance(boruta, BorutaSelector):
            weak = boruta.get_support() | boruta.tentative_
            kept["boruta_tentative"] = [str(c) for c in dataset.X.columns[weak]]
            seconds["boruta_tentative"] = seconds["boruta"]
            if "boruta_direct" in methods:
                seconds["boruta_direct"], support = boruta_direct(dataset, boruta)
                kept["boruta_direct"] = [str(c) for c in dataset.X.columns[support]]
        kept["voting"] = [str(c) for c in voting.get_feature_names_out()]
        seconds["voting"] = sum(voting.timings_.values())
        cache: dict[frozenset[str], float] = {}
        for columns in [list(map(str, dataset.X.columns)), *kept.values()]:
            if frozenset(columns) not in cache:
                cache[frozenset(columns)] = downstream_score(dataset, columns)
        record = {
            "dataset": dataset.name,
            "kind": dataset.kind,
            "seed": dataset.seed,
            "p": dataset.X.shape[1],
            "relevant": sorted(dataset.relevant),
            "permuted": sorted(dataset.permuted),
            "kept": kept,
            "seconds": seconds,
            "cv_score_all": cache[frozenset(map(str, dataset.X.columns))],
            "cv_score": {name: cache[frozenset(columns)] for name, columns in kept.items()},
        }
        selections.append(record)
        rows.extend(score_record(record))
        if on_progress is not None:
            on_progress(selections)
        print(
            f"[{position}/{len(datasets)}] {dataset.name}: "
            f"{time.perf_counter() - started:.1f}s "
            + str({name: round(sec, 1) for name, sec in seconds.items()}),
            file=sys.stderr,
            flush=True,
        )
    return pd.DataFrame(rows), selections


def score_record(record: dict[str, Any]) -> list[dict[str, Any]]:
    """One result row per method of a selection record."""
    relevant = set(record["relevant"])
    permuted = set(record.get("permuted", []))
    base = {"dataset": record["dataset"], "kind": record["kind"], "p": record["p"]}
    cv_all = record.get("cv_score_all", float("nan"))
    cv = record.get("cv_score", {})
    rows = []
    for name, kept in record["kept"].items():
        row = {**base, "method": name, "seconds": record["seconds"].get(name, float("nan"))}
        if name == "boruta_direct":
            row["same_as_wrapper"] = set(kept) == set(record["kept"]["boruta"])
        score = cv.get(name, float("nan"))
        row |= {"cv_score": score, "cv_score_all": cv_all, "cv_gain": score - cv_all}
        rows.append(row | scores(kept, relevant, permuted))
    return rows


def revote(record: dict[str, Any], voters: Sequence[str], threshold: float) -> list[str]:
    """The features ``VotingSelector(voters, threshold)`` keeps, from saved selections."""
    missing = [name for name in voters if name not in record["kept"]]
    if missing:
        raise FeatureSelectionError(f"{record['dataset']}: no saved selection for {missing}")
    columns = sorted({c for name in voters for c in record["kept"][name]})
    votes = pd.DataFrame(
        [[int(c in set(record["kept"][name])) for c in columns] for name in voters],
        index=list(voters),
        columns=columns,
    )
    _, support = tally(votes, threshold)
    return [c for c, keep in zip(columns, support) if keep]


def rescore(
    selections: Sequence[dict[str, Any]], voters: Sequence[str], threshold: float
) -> pd.DataFrame:
    """Results as ``run_benchmark`` gives them, with "voting" recomputed for other voters."""
    rows = []
    for record in selections:
        voting = revote(record, voters, threshold)
        kept = {**record["kept"], "voting": voting}
        seconds = {**record["seconds"], "voting": sum(record["seconds"][n] for n in voters)}
        # The downstream score is known only when another method kept the same columns.
        saved = record.get("cv_score", {})
        same = [n for n, cols in record["kept"].items() if set(cols) == set(voting) and n in saved]
        cv = {**saved, "voting": saved[same[0]] if same else float("nan")}
        rows.extend(score_record({**record, "kept": kept, "seconds": seconds, "cv_score": cv}))
    return pd.DataFrame(rows)


def k_of_n_grid(
    selections: Sequence[dict[str, Any]], candidates: Sequence[str], max_voters: int = 5
) -> pd.DataFrame:
    """Mean precision / recall / F1 by kind for every voter subset and every "at least k of n
    votes" rule (threshold (k - 0.5) / n), from saved selections.

    Columns: voters, n, k, threshold, then ``{kind}_{metric}`` and ``all_f1`` (mean over
    every dataset). Sorted by ``all_f1``.
    """
    rows = []
    for n in range(1, max_voters + 1):
        for voters in itertools.combinations(candidates, n):
            for k in range(1, n + 1):
                threshold = (k - 0.5) / n
                results = []
                for record in selections:
                    kept = revote(record, voters, threshold)
                    results.append({"kind": record["kind"]} | scores(kept, set(record["relevant"])))
                frame = pd.DataFrame(results)
                row: dict[str, Any] = {
                    "voters": ",".join(voters),
                    "n": n,
                    "k": k,
                    "threshold": round(threshold, 4),
                }
                for kind, group in frame.groupby("kind"):
                    for metric in ("precision", "recall", "f1"):
                        row[f"{kind}_{metric}"] = group[metric].mean()
                row["all_f1"] = frame["f1"].mean()
                rows.append(row)
    return pd.DataFrame(rows).sort_values("all_f1", ascending=False).reset_index(drop=True)


def summary(results: pd.DataFrame) -> pd.DataFrame:
    """Means per kind ("synthetic", "real") and method, then over every dataset ("all")."""
    metrics = [
        "precision",
        "recall",
        "f1",
        "n_selected",
        "noise_kept",
        "permuted_kept",
        "cv_score",
        "cv_score_all",
        "seconds",
    ]
    metrics = [metric for metric in metrics if metric in results.columns]
    by_kind = results.groupby(["kind", "method"])[metrics].mean().reset_index()
    overall = results.groupby("method")[metrics].mean().reset_index().assign(kind="all")
    return pd.concat([by_kind, overall[by_kind.columns]], ignore_index=True).round(3)


def to_markdown(frame: pd.DataFrame) -> str:
    """A GitHub table without the optional ``tabulate`` dependency of DataFrame.to_markdown."""
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "---|" * frame.shape[1]
    lines = ["| " + " | ".join(map(str, row)) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *lines])


@dataclass(frozen=True)
class BenchmarkConfig:
    """Benchmark the feature-selection methods on tables whose relevant features are known."""

    out: Path = Path("runs/feature-selection-benchmark")
    """Output directory."""

    quick: bool = False
    """Quick mode (about 2 minutes): seed 0 only, synthetic p=20 (+5 permuted copies), no.

    forward selection or direct-BorutaPy reference; overrides --seeds/--real-seeds/--sizes/
    --methods.
    """

    preset: PresetName = "default"
    """'default' or 'article': the voters, threshold, association measure table, VIF mode and
    Boruta's tentative rule (see the README's "Presets")."""

    seeds: tuple[int, ...] = (0, 1, 2)
    """Seeds of the synthetic tables (and of their methods)."""

    real_seeds: tuple[int, ...] = (0, 1, 2)
    """Seeds of the noise columns added to the real tables (and of their methods)."""

    sizes: tuple[int, ...] = (20, 200)
    """Feature counts of the synthetic classification tables (before the permuted copies)."""

    noise_columns: int = 20
    """Noise columns added to each real table (half Gaussian, half permuted copies)."""

    boruta_max_iter: int = 20
    """Boruta iterations."""

    voters: str | None = option(
        None,
        help="comma-separated voters (default: the preset's; default: "
        f"{PRESETS['default'].methods}, article: {PRESETS['article'].methods})",
    )
    threshold: float | None = option(
        None,
        help="vote share a feature must exceed (default: the preset's; default: "
        f"{PRESETS['default'].threshold}, article: {PRESETS['article'].threshold})",
    )
    methods: tuple[str, ...] = option(
        METHODS, help=f"single methods to run besides the voters, from {', '.join(METHODS)}"
    )
    rescore: Path | None = None
    """Score --voters/--threshold on a saved selections.json instead of fitting."""

    grid: bool = False
    """Also write grid.csv: every voter subset and k-of-n rule (needs selections)."""

    check_voting_best: bool = True
    """Check the target (voting's mean F1 over all datasets at least every single method's) and exit
    1 when it is missed, after writing the results (--no-check-voting-best: report only)."""

    def __post_init__(self) -> None:
        require_positive(self, "boruta_max_iter")
        require_non_negative(self, "noise_columns")
        threshold = self.vote_threshold
        require(0 <= threshold < 1, "threshold", f"must be in [0, 1), got {threshold!r}")
        unknown = sorted(set(self.methods) - set(METHODS))
        require(not unknown, "methods", f"unknown methods: {', '.join(unknown)}")
        # A saved selections file can hold any method's selections; which it holds is checked
        # when it is read.
        allowed = (
            tuple(dict.fromkeys([*CANDIDATES_WITH_VARIANTS, *METHODS]))
            if self.rescore
            else CANDIDATES
        )
        require(bool(self.voter_names), "voters", "is empty")
        unknown = sorted(set(self.voter_names) - set(allowed))
        require(
            not unknown,
            "voters",
            f"unknown methods: {', '.join(unknown)}; choose from {', '.join(allowed)}",
        )
        too_small = [size for size in self.sizes if size < 7]
        require(
            not too_small, "sizes", f"must be at least 7 (the relevant features), got {too_small}"
        )

    @property
    def preset_choices(self) -> Preset:
        """The preset's choices."""
        return PRESETS[self.preset]

    @property
    def voter_names(self) -> list[str]:
        """``voters`` (or the preset's) as a list."""
        voters = self.preset_choices.methods if self.voters is None else self.voters
        return [name.strip() for name in voters.split(",") if name.strip()]

    @property
    def vote_threshold(self) -> float:
        """``threshold``, or the preset's."""
        return self.preset_choices.threshold if self.threshold is None else self.threshold

    def plan(self) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[str, ...]]:
        """Seeds, real seeds, sizes and methods to run (``quick`` replaces them)."""
        if self.quick:
            return (0,), (0,), (20,), QUICK_METHODS
        return self.seeds, self.real_seeds, self.sizes, self.methods


@dataclass(frozen=True)
class BenchmarkResult:
    results: pd.DataFrame
    """One row per dataset and method."""

    summary: pd.DataFrame
    """Means per kind and method (``summary``)."""

    wall_seconds: float


def load_selections(path: Path) -> list[dict[str, Any]]:
    """The selection records of a ``selections.json`` the benchmark wrote."""
    try:
        selections = json.loads(path.read_text())["selections"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise FeatureSelectionError(f"Cannot read selections from {str(path)!r}: {error!r}")
    if not isinstance(selections, list):
        raise FeatureSelectionError(f"{str(path)!r}: 'selections' is not a list.")
    return selections


def check_voters_saved(
    selections: Sequence[dict[str, Any]], voters: Sequence[str], path: Path
) -> None:
    """Raise naming the voters a selections file lacks (on every dataset or on some)."""
    problems = []
    for name in voters:
        lacking = sum(1 for record in selections if name not in record.get("kept", {}))
        if lacking == len(selections):
            problems.append(f"{name!r} is missing from that selections file")
        elif lacking:
            problems.append(f"{name!r} is missing on {lacking} of {len(selections)} datasets")
    if problems:
        saved = sorted({name for record in selections for name in record.get("kept", {})})
        hint = (
            f" (forward selection runs only on tables with at most {FORWARD_MAX_FEATURES} "
            "features)"
            if "forward" in voters
            else ""
        )
        raise FeatureSelectionError(
            f"--voters: {'; '.join(problems)} {str(path)!r}{hint}. It holds: {', '.join(saved)}."
        )


def voting_shortfall(table: pd.DataFrame) -> str | None:
    """Why the voting row misses the issue's target (mean F1 over all datasets at least every single
    method's), or None when it meets it."""
    overall = table.loc[table["kind"] == "all"].set_index("method")["f1"]
    singles = overall.drop("voting")
    best = str(singles.idxmax())
    if overall["voting"] >= singles[best]:
        return None
    return f"voting mean F1 {overall['voting']:.3f} is below {best}'s {singles[best]:.3f}"


TARGET = "voting's mean F1 over all datasets >= the best single method's"


def target_lines(table: pd.DataFrame) -> tuple[list[str], bool]:
    """The target, the measured values and the verdict, as printed; and whether it was met."""
    overall = table.loc[table["kind"] == "all"].set_index("method")["f1"]
    singles = overall.drop("voting")
    best = str(singles.idxmax())
    met = bool(overall["voting"] >= singles[best])
    return [
        f"target: {TARGET}",
        f"measured: voting {overall['voting']:.3f}, best single {best} {singles[best]:.3f}",
        f"verdict: {'met' if met else 'MISSED'}",
    ], met


def write_partial(
    out: Path, config: BenchmarkConfig, total: int, selections: list[dict[str, Any]]
) -> None:
    """``partial.json``: the datasets finished so far, their selections and a running summary."""
    rows = [row for record in selections for row in score_record(record)]
    write_json_atomic(
        out / "partial.json",
        {
            "config": config_to_dict(config),
            "done": len(selections),
            "total": total,
            "summary": _finite_records(summary(pd.DataFrame(rows))),
            "selections": selections,
        },
    )


def _finite_records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts with NaN as None (JSON has no NaN)."""
    cleaned = table.astype(object).where(table.notna(), None)
    return [{str(key): value for key, value in row.items()} for row in cleaned.to_dict("records")]


def _json_ready(value: Any) -> Any:
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _json_ready(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_ready(item) for item in value]
    return value


def run(config: BenchmarkConfig) -> BenchmarkResult:
    """Run (or, with ``rescore``, re-score) the benchmark, write its outputs to ``config.out`` and
    return the results; raises ``CheckFailed`` after writing them when ``check_voting_best`` is set
    and the voting row misses the target."""
    voters = config.voter_names
    threshold = config.vote_threshold
    seeds, real_seeds, sizes, methods = config.plan()
    started = time.perf_counter()
    if config.rescore:
        selections = load_selections(config.rescore)
        check_voters_saved(selections, voters, config.rescore)
        results = rescore(selections, voters, threshold)
    else:
        datasets = synthetic_datasets(seeds, sizes) + real_datasets(
            config.noise_columns, real_seeds
        )
        print(
            f"benchmark: preset {config.preset}, voters {','.join(voters)}, threshold "
            f"{threshold}, {len(datasets)} datasets{' (quick)' if config.quick else ''}",
            file=sys.stderr,
        )
        results, selections = run_benchmark(
            datasets,
            voters,
            threshold,
            methods,
            config.boruta_max_iter,
            config.preset_choices,
            on_progress=lambda done: write_partial(
                config.out, config, len(datasets), [_json_ready(r) for r in done]
            ),
        )
    wall = time.perf_counter() - started
    table = summary(results)
    with atomic_output(config.out / "results.csv") as temporary:
        results.to_csv(temporary, index=False)
    if not config.rescore:
        write_json_atomic(
            config.out / "selections.json", {"selections": [_json_ready(r) for r in selections]}
        )
    if config.grid:
        saved = [n for n in CANDIDATES_WITH_VARIANTS if all(n in r["kept"] for r in selections)]
        grid = k_of_n_grid(selections, saved)
        with atomic_output(config.out / "grid.csv") as temporary:
            grid.to_csv(temporary, index=False)
    direct = results.loc[results["method"] == "boruta_direct"]
    lines, met = target_lines(table)
    write_json_atomic(
        config.out / "summary.json",
        {
            "config": config_to_dict(config),
            "preset": config.preset,
            "voters": voters,
            "threshold": threshold,
            "wall_seconds": round(wall, 1),
            "summary": _finite_records(table),
            "target": TARGET,
            "target_met": met,
            "target_report": lines,
            "boruta_same_as_direct": (
                bool(direct["same_as_wrapper"].all()) if len(direct) else None
            ),
            "run": collect_run_metadata(
                packages=("numpy", "pandas", "scikit-learn", "boruta")
            ).to_dict(),
        },
    )
    print(f"wall time: {wall:.1f}s", file=sys.stderr)
    for line in lines:
        print(line, file=sys.stderr)
    if config.check_voting_best and not met:
        shortfall = voting_shortfall(table)
        print(to_markdown(table))
        raise CheckFailed(f"target missed: {shortfall}")
    return BenchmarkResult(results, table, wall)


main = make_main(
    Command(BenchmarkConfig, run),
    prog="benchmark",
    user_errors=(FeatureSelectionError,),
    show=lambda result: to_markdown(result.summary),
)


if __name__ == "__main__":
    sys.exit(main(None))
