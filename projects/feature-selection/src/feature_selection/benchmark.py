"""Benchmark: how well each method recovers known relevant features, and how fast.

Synthetic tables (sklearn's make_classification / make_regression with ``shuffle=False``, so
the relevant columns are known: informative + redundant ones) over several seeds and 20-200
features, and sklearn's bundled real tables with added noise columns (relevant = the original
columns). Reports precision / recall / F1 per method and for the voting selector, runtime per
method, and Boruta through this package next to ``boruta.BorutaPy`` called directly.

    ./pants run projects/feature-selection:benchmark -- --out runs/feature-selection-benchmark
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from boruta import BorutaPy
from sklearn.datasets import (
    load_breast_cancer,
    load_diabetes,
    load_wine,
    make_classification,
    make_regression,
)

from feature_selection.base import BaseSelector
from feature_selection.selectors import (
    BorutaSelector,
    FilterSelector,
    L1Selector,
    RFESelector,
    SequentialSelector,
)
from feature_selection.voting import VotingSelector
from ml_core import atomic_output, collect_run_metadata, write_json_atomic

VOTERS = ("association", "mutual_info", "l1", "rfecv", "boruta")
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


def real_datasets(n_noise: int, seed: int) -> list[Dataset]:
    loaders: list[tuple[str, str, Callable[..., Any]]] = [
        ("breast_cancer", "classification", load_breast_cancer),
        ("wine", "classification", load_wine),
        ("diabetes", "regression", load_diabetes),
    ]
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
            Dataset(f"{name} +{n_noise} noise", "real", task, X, bunch.target, relevant, seed)
        )
    return datasets


def selectors_for(
    dataset: Dataset, boruta_max_iter: int
) -> tuple[list[tuple[str, BaseSelector]], list[tuple[str, BaseSelector]]]:
    """(voters, extra single methods) with default options; nothing is told the
    answer."""
    seed, task = dataset.seed, dataset.task
    voters: list[tuple[str, BaseSelector]] = [
        ("association", FilterSelector("association", task=task, random_state=seed)),
        ("mutual_info", FilterSelector("mutual_info", task=task, random_state=seed)),
        ("l1", L1Selector(task=task, random_state=seed)),
        # Drop 10% of the features per step: step=1 costs minutes at 200 features.
        ("rfecv", RFESelector(cv=5, step=0.1, task=task)),
        (
            "boruta",
            BorutaSelector(
                n_estimators=BORUTA_TREES, max_iter=boruta_max_iter, task=task, random_state=seed
            ),
        ),
    ]
    extras: list[tuple[str, BaseSelector]] = [("anova", FilterSelector("anova", task=task))]
    if dataset.X.shape[1] <= 60:
        extras.append(("forward", SequentialSelector("forward", cv=5, task=task)))
    return voters, extras


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
    seeds: Sequence[int], sizes: Sequence[int], n_noise: int, boruta_max_iter: int
) -> pd.DataFrame:
    datasets = synthetic_datasets(seeds, sizes) + real_datasets(n_noise, seed=0)
    rows: list[dict[str, Any]] = []
    for position, dataset in enumerate(datasets, start=1):
        started = time.perf_counter()
        voters, extras = selectors_for(dataset, boruta_max_iter)
        voting = VotingSelector(voters).fit(dataset.X, dataset.y)
        base = {"dataset": dataset.name, "kind": dataset.kind, "p": dataset.X.shape[1]}
        for name, fitted in voting.selectors_.items():
            kept = [str(c) for c in fitted.get_feature_names_out()]
            rows.append(
                {**base, "method": name, "seconds": voting.timings_[name]}
                | scores(kept, dataset.relevant)
            )
        kept = [str(c) for c in voting.get_feature_names_out()]
        rows.append(
            {**base, "method": "voting", "seconds": sum(voting.timings_.values())}
            | scores(kept, dataset.relevant)
        )
        for name, selector in extras:
            tic = time.perf_counter()
            selector.fit(dataset.X, dataset.y)
            kept = [str(c) for c in selector.get_feature_names_out()]
            rows.append(
                {**base, "method": name, "seconds": time.perf_counter() - tic}
                | scores(kept, dataset.relevant)
            )
        boruta = voting.selectors_["boruta"]
        assert isinstance(boruta, BorutaSelector)
        seconds, support = boruta_direct(dataset, boruta)
        same = bool((support == boruta.boruta_.support_).all())
        rows.append(
            {**base, "method": "BorutaPy direct", "seconds": seconds, "same_as_wrapper": same}
            | scores(list(dataset.X.columns[support]), dataset.relevant)
        )
        print(
            f"[{position}/{len(datasets)}] {dataset.name}: "
            f"{time.perf_counter() - started:.1f}s "
            + str({name: round(sec, 1) for name, sec in voting.timings_.items()}),
            file=sys.stderr,
            flush=True,
        )
    return pd.DataFrame(rows)


def summary(results: pd.DataFrame) -> pd.DataFrame:
    grouped = results.groupby(["kind", "method"])[
        ["precision", "recall", "f1", "n_selected", "seconds"]
    ].mean()
    return grouped.round(3).reset_index()


def to_markdown(frame: pd.DataFrame) -> str:
    """A GitHub table without the optional ``tabulate`` dependency of
    DataFrame.to_markdown."""
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "---|" * frame.shape[1]
    lines = ["| " + " | ".join(map(str, row)) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *lines])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/feature-selection-benchmark"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20, 200])
    parser.add_argument("--noise-columns", type=int, default=20)
    parser.add_argument("--boruta-max-iter", type=int, default=20)
    args = parser.parse_args(argv)
    results = run_benchmark(args.seeds, args.sizes, args.noise_columns, args.boruta_max_iter)
    table = summary(results)
    with atomic_output(args.out / "results.csv") as temporary:
        results.to_csv(temporary, index=False)
    write_json_atomic(
        args.out / "summary.json",
        {
            "args": {key: str(value) for key, value in vars(args).items()},
            "summary": table.to_dict(orient="records"),
            "boruta_same_as_direct": bool(
                results.loc[results["method"] == "BorutaPy direct", "same_as_wrapper"].all()
            ),
            "run": collect_run_metadata(
                packages=("numpy", "pandas", "scikit-learn", "boruta")
            ).to_dict(),
        },
    )
    print(to_markdown(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
