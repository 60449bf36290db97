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
from sklearn.base import clone
from sklearn.datasets import (
    load_breast_cancer,
    load_diabetes,
    load_wine,
    make_classification,
    make_regression,
)

from feature_selection.base import BaseSelector
from feature_selection.cli import DEFAULT_METHODS, DEFAULT_THRESHOLD
from feature_selection.errors import FeatureSelectionError
from feature_selection.selectors import (
    BorutaSelector,
    FilterSelector,
    L1Selector,
    RFESelector,
    SequentialSelector,
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
METHODS = (*CANDIDATES, "anova", "forward", "boruta_direct")
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


def _frame(X: np.ndarray, prefix: str = "f") -> pd.DataFrame:
    return pd.DataFrame(X, columns=[f"{prefix}{i}" for i in range(X.shape[1])])


def synthetic_datasets(seeds: Sequence[int], sizes: Sequence[int]) -> list[Dataset]:
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
            datasets.append(
                Dataset(
                    f"clf p={n_features} seed={seed}",
                    "synthetic",
                    "classification",
                    _frame(X),
                    pd.Series(y),
                    relevant,
                    seed,
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
        datasets.append(
            Dataset(
                f"reg p=50 seed={seed}",
                "synthetic",
                "regression",
                _frame(X),
                pd.Series(y),
                {f"f{i}" for i in range(5)},
                seed,
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
        for index in range(n_noise):
            # Half Gaussian noise, half shuffled copies of real columns (realistic marginals).
            if index % 2 == 0:
                X[f"noise{index}"] = rng.normal(size=len(X))
            else:
                source = X.columns[index % len(relevant)]
                X[f"noise{index}"] = rng.permutation(X[source].to_numpy())
        datasets.append(
            Dataset(
                f"{name} +{n_noise} noise seed={seed}",
                "real",
                task,
                X,
                bunch.target,
                relevant,
                seed,
            )
        )
    return datasets


def selectors_for(dataset: Dataset, boruta_max_iter: int) -> dict[str, BaseSelector]:
    """Every single method the benchmark can run, with default options; nothing is told the
    answer."""
    seed, task = dataset.seed, dataset.task
    methods: dict[str, BaseSelector] = {
        "association": FilterSelector("association", task=task, random_state=seed),
        "mutual_info": FilterSelector("mutual_info", task=task, random_state=seed),
        "l1": L1Selector(task=task, random_state=seed),
        # Drop 10% of the features per step: step=1 costs minutes at 200 features.
        "rfecv": RFESelector(cv=5, step=0.1, task=task),
        "boruta": BorutaSelector(
            n_estimators=BORUTA_TREES, max_iter=boruta_max_iter, task=task, random_state=seed
        ),
        "anova": FilterSelector("anova", task=task),
    }
    if dataset.X.shape[1] <= FORWARD_MAX_FEATURES:
        methods["forward"] = SequentialSelector("forward", cv=5, task=task)
    return methods


def scores(selected: Sequence[str], relevant: set[str]) -> dict[str, float]:
    chosen = set(selected)
    hits = len(chosen & relevant)
    precision = hits / len(chosen) if chosen else 0.0  # an empty selection scores 0
    recall = hits / len(relevant)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "n_selected": len(chosen)}


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
    return time.perf_counter() - started, np.asarray(boruta.support_, dtype=bool)


def run_benchmark(
    datasets: Sequence[Dataset],
    voters: Sequence[str],
    threshold: float,
    methods: Sequence[str],
    boruta_max_iter: int,
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Results (one row per dataset and method, plus "voting") and the saved selections.

    The voters are fitted once, inside the ``VotingSelector`` the row "voting" scores; the other
    ``methods`` are fitted on their own. Each selection record holds every method's kept columns
    (plus "boruta_tentative": Boruta's confirmed and tentative features from the same fit), so other
    voter sets and thresholds can be scored later without refitting (``rescore``).
    """
    rows: list[dict[str, Any]] = []
    selections: list[dict[str, Any]] = []
    for position, dataset in enumerate(datasets, start=1):
        started = time.perf_counter()
        available = selectors_for(dataset, boruta_max_iter)
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
        record = {
            "dataset": dataset.name,
            "kind": dataset.kind,
            "seed": dataset.seed,
            "p": dataset.X.shape[1],
            "relevant": sorted(dataset.relevant),
            "kept": kept,
            "seconds": seconds,
        }
        selections.append(record)
        rows.extend(score_record(record))
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
    base = {"dataset": record["dataset"], "kind": record["kind"], "p": record["p"]}
    rows = []
    for name, kept in record["kept"].items():
        row = {**base, "method": name, "seconds": record["seconds"].get(name, float("nan"))}
        if name == "boruta_direct":
            row["same_as_wrapper"] = set(kept) == set(record["kept"]["boruta"])
        rows.append(row | scores(kept, relevant))
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
        kept = {**record["kept"], "voting": revote(record, voters, threshold)}
        seconds = {**record["seconds"], "voting": sum(record["seconds"][n] for n in voters)}
        rows.extend(score_record({**record, "kept": kept, "seconds": seconds}))
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
    metrics = ["precision", "recall", "f1", "n_selected", "seconds"]
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

    seeds: tuple[int, ...] = (0, 1, 2)
    """Seeds of the synthetic tables (and of their methods)."""

    real_seeds: tuple[int, ...] = (0, 1, 2)
    """Seeds of the noise columns added to the real tables (and of their methods)."""

    sizes: tuple[int, ...] = (20, 200)
    """Feature counts of the synthetic classification tables."""

    noise_columns: int = 20
    """Noise columns added to each real table."""

    boruta_max_iter: int = 20
    """Boruta iterations."""

    voters: str = DEFAULT_METHODS
    """Comma-separated voters (the CLI default)."""

    threshold: float = DEFAULT_THRESHOLD
    """Vote share a feature must exceed."""

    methods: tuple[str, ...] = option(
        METHODS, help=f"single methods to run besides the voters, from {', '.join(METHODS)}"
    )
    rescore: Path | None = None
    """Score --voters/--threshold on a saved selections.json instead of fitting."""

    grid: bool = False
    """Also write grid.csv: every voter subset and k-of-n rule (needs selections)."""

    check_voting_best: bool = False
    """Exit 1 (after writing the results) unless the voting row's mean F1 over all datasets is at
    least every single method's."""

    def __post_init__(self) -> None:
        require_positive(self, "boruta_max_iter")
        require_non_negative(self, "noise_columns")
        require(0 <= self.threshold < 1, "threshold", f"must be in [0, 1), got {self.threshold!r}")
        unknown = sorted(set(self.methods) - set(METHODS))
        require(not unknown, "methods", f"unknown methods: {', '.join(unknown)}")
        allowed = CANDIDATES_WITH_VARIANTS if self.rescore else CANDIDATES
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
    def voter_names(self) -> list[str]:
        """``voters`` as a list."""
        return [name.strip() for name in self.voters.split(",") if name.strip()]


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


def voting_shortfall(table: pd.DataFrame) -> str | None:
    """Why the voting row misses the issue's target (mean F1 over all datasets at least every single
    method's), or None when it meets it."""
    overall = table.loc[table["kind"] == "all"].set_index("method")["f1"]
    singles = overall.drop("voting")
    best = str(singles.idxmax())
    if overall["voting"] >= singles[best]:
        return None
    return f"voting mean F1 {overall['voting']:.3f} is below {best}'s {singles[best]:.3f}"


def run(config: BenchmarkConfig) -> BenchmarkResult:
    """Run (or, with ``rescore``, re-score) the benchmark, write its outputs to ``config.out`` and
    return the results; raises ``CheckFailed`` after writing them when ``check_voting_best`` is set
    and the voting row misses the target."""
    voters = config.voter_names
    started = time.perf_counter()
    if config.rescore:
        selections = load_selections(config.rescore)
        results = rescore(selections, voters, config.threshold)
    else:
        datasets = synthetic_datasets(config.seeds, config.sizes) + real_datasets(
            config.noise_columns, config.real_seeds
        )
        results, selections = run_benchmark(
            datasets, voters, config.threshold, config.methods, config.boruta_max_iter
        )
    wall = time.perf_counter() - started
    table = summary(results)
    with atomic_output(config.out / "results.csv") as temporary:
        results.to_csv(temporary, index=False)
    if not config.rescore:
        write_json_atomic(config.out / "selections.json", {"selections": selections})
    if config.grid:
        saved = [n for n in CANDIDATES_WITH_VARIANTS if all(n in r["kept"] for r in selections)]
        grid = k_of_n_grid(selections, saved)
        with atomic_output(config.out / "grid.csv") as temporary:
            grid.to_csv(temporary, index=False)
    direct = results.loc[results["method"] == "boruta_direct"]
    write_json_atomic(
        config.out / "summary.json",
        {
            "config": config_to_dict(config),
            "wall_seconds": round(wall, 1),
            "summary": table.to_dict(orient="records"),
            "boruta_same_as_direct": (
                bool(direct["same_as_wrapper"].all()) if len(direct) else None
            ),
            "run": collect_run_metadata(
                packages=("numpy", "pandas", "scikit-learn", "boruta")
            ).to_dict(),
        },
    )
    print(f"wall time: {wall:.1f}s", file=sys.stderr)
    if config.check_voting_best:
        shortfall = voting_shortfall(table)
        if shortfall is not None:
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
