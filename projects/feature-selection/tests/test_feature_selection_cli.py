import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from feature_selection_testing import SIGNAL, classification_table

from feature_selection.cli import SelectConfig, main, run
from ml_core.cli import ConfigError

# Three quick voters and a strict majority (2 of 3), not the default pair and union.
FAST = ["--methods", "pearson,anova,l1", "--threshold", "0.5", "--cv", "3", "--quiet"]


@pytest.fixture
def table_csv(tmp_path: Path) -> Path:
    path = tmp_path / "data.csv"
    classification_table(n_rows=120).to_csv(path, index=False)
    return path


def test_end_to_end_csv(
    table_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main([str(table_csv), "--target", "y", "--out", str(out), *FAST]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["report.json", "scores.csv", "selected.csv", "votes.csv", "votes.png"]
    selected = pd.read_csv(out / "selected.csv")
    assert list(selected.columns) == [*SIGNAL, "y"]
    votes = pd.read_csv(out / "votes.csv", index_col="selector")
    assert list(votes.index) == ["pearson", "anova", "l1"]
    assert votes.loc[:, SIGNAL].to_numpy().all()
    scores = pd.read_csv(out / "scores.csv", index_col="feature")
    assert {"pearson_score", "anova_score", "l1_score", "vote_share"} <= set(scores.columns)
    report = json.loads((out / "report.json").read_text())
    assert report["selected"] == SIGNAL
    assert report["methods"]["pearson"]["kept"] == SIGNAL
    assert report["methods"]["pearson"]["params"]["k"] == "auto"
    assert report["vote_share"]["s0"] == 1.0
    assert "git_sha" in report["run"]
    assert (out / "votes.png").read_bytes()[:4] == b"\x89PNG"


def test_parquet_in_parquet_out_with_progress(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "data.parquet"
    classification_table(n_rows=120).to_parquet(path)
    out = tmp_path / "out"
    argv = [
        str(path),
        "--target",
        "y",
        "--out",
        str(out),
        "--methods",
        "pearson,kendall",
        "--k",
        "2",
    ]
    assert main(argv) == 0
    assert list(pd.read_parquet(out / "selected.parquet").columns) == [*SIGNAL, "y"]
    err = capsys.readouterr().err
    assert "[1/2] pearson" in err and "[2/2] kendall" in err and "Selected 2 of 6" in err


def run_bad(
    tmp_path: Path, frame: pd.DataFrame, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, str]:
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    out = tmp_path / "out"
    code = main([str(path), "--target", "y", "--out", str(out), *FAST, *extra])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert not out.exists()  # nothing half-written
    return code, err


def test_missing_target(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run_bad(tmp_path, classification_table().rename(columns={"y": "label"}), capsys)
    assert code == 2 and "Target column 'y' is not in the table" in err


def test_non_numeric_features(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    frame = classification_table()
    frame["city"] = np.where(frame.index % 2 == 0, "paris", "rome")
    code, err = run_bad(tmp_path, frame, capsys)
    assert code == 2 and "non-numeric columns: 'city'" in err


def test_nan_features(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    frame = classification_table()
    frame.loc[5, "n2"] = np.nan
    code, err = run_bad(tmp_path, frame, capsys)
    assert code == 2 and "'n2'" in err and "missing" in err


def test_constant_columns_fail_unless_dropped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = classification_table()
    frame["flat"] = 7
    code, err = run_bad(tmp_path, frame, capsys)
    assert code == 2 and "constant columns: 'flat'" in err
    path = tmp_path / "flat.csv"
    frame.to_csv(path, index=False)
    out = tmp_path / "dropped"
    assert main([str(path), "--target", "y", "--out", str(out), *FAST, "--drop-constant"]) == 0
    assert json.loads((out / "report.json").read_text())["dropped_constant"] == ["flat"]


def test_too_few_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run_bad(tmp_path, classification_table().head(5), capsys)
    assert code == 2 and "needs at least" in err and "got 5" in err


def test_target_with_nan_and_missing_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = classification_table().astype({"y": float})
    frame.loc[0, "y"] = np.nan
    code, err = run_bad(tmp_path, frame, capsys)
    assert code == 2 and "missing values in 1 rows" in err
    code = main([str(tmp_path / "nope.csv"), "--target", "y", "--out", str(tmp_path / "o")])
    assert code == 2 and "does not exist" in capsys.readouterr().err


def test_unknown_method(
    table_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main([str(table_csv), "--target", "y", "--out", str(out), "--methods", "magic"]) == 2
    assert "select: error: --methods: Unknown method 'magic'" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--threshold", "1.5"], "--threshold: must be in [0, 1), got 1.5"),
        (["--k", "0"], "--k: must be a positive integer, 'auto' or 'all', got '0'"),
        (["--alpha", "0"], "--alpha: must be in (0, 1], got 0.0"),
        (["--cv", "1"], "--cv: must be at least 2, got 1"),
        (["--percentile", "150"], "--percentile: must be in (0, 100], got 150.0"),
        (["--levels", "s0"], "--levels: are column=level pairs, not 's0'"),
        (["--levels", "s0=loud"], "--levels: 'loud' is not one of nominal, ordinal"),
        (["--methods", " , "], "--methods: is empty"),
        (["--task", "ranking"], "argument --task: invalid choice: 'ranking'"),
        (["--seed", "x"], "argument --seed: invalid int value: 'x'"),
    ],
)
def test_bad_option_values_exit_2_and_name_the_flag(
    extra: list[str],
    message: str,
    table_csv: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "out"
    assert main([str(table_csv), "--target", "y", "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err
    assert f"select: error: {message}" in err
    assert "Traceback" not in err
    assert not out.exists()


def test_help_lists_the_flags_with_their_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())  # help wraps its lines
    assert "--methods" in text and "default: association,boruta" in text
    assert "--boruta-keep-tentative" in text and "keep tentative features too" in text


def test_run_from_python_records_its_config(table_csv: Path, tmp_path: Path) -> None:
    config = SelectConfig(
        table=table_csv,
        target="y",
        out=tmp_path / "out",
        methods="pearson,kendall",
        k="2",
        levels="s0=interval",
        quiet=True,
    )
    report = run(config)
    assert report["selected"] == SIGNAL
    assert report["methods"]["pearson"]["params"]["k"] == 2
    saved = json.loads((tmp_path / "out" / "report.json").read_text())
    assert saved["config"]["k"] == "2" and saved["config"]["table"] == str(table_csv)
    assert saved["config"]["levels"] == "s0=interval"
    with pytest.raises(ConfigError) as error:
        SelectConfig(table=table_csv, target="y", out=tmp_path, threshold=1.0)
    assert error.value.field == "threshold"


def curved_table(n_rows: int = 200, seed: int = 1) -> pd.DataFrame:
    """``y`` rises with s0 and with q0 squared: q0 has no linear effect (a univariate filter cannot
    see it, a forest can); n0..n3 are noise."""
    rng = np.random.default_rng(seed)
    names = ["s0", "q0", "n0", "n1", "n2", "n3"]
    frame = pd.DataFrame({name: rng.normal(size=n_rows) for name in names})
    logit = 2 * frame["s0"] + 2 * (frame["q0"] ** 2 - 0.5) + 0.3 * rng.normal(size=n_rows)
    frame["y"] = (logit > 0).astype(int)
    return frame


def test_default_voters_keep_what_either_one_finds(tmp_path: Path) -> None:
    """The defaults (association + Boruta, any vote) keep the linear feature and the curved one only
    Boruta finds, and no noise column."""
    path = tmp_path / "curved.csv"
    curved_table().to_csv(path, index=False)
    out = tmp_path / "out"
    assert main([str(path), "--target", "y", "--out", str(out), "--quiet"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert list(report["methods"]) == ["association", "boruta"]
    assert report["threshold"] == 0.0
    assert report["methods"]["association"]["kept"] == ["s0"]
    assert "q0" in report["methods"]["boruta"]["kept"]
    assert report["selected"] == ["s0", "q0"]
    assert report["vote_share"]["q0"] == 0.5
    assert report["vote_share"]["n0"] == 0.0
