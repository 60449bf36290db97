from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Literal

import pytest

from ml_core.cli import (
    CheckFailed,
    Command,
    ConfigError,
    build_parser,
    config_to_dict,
    make_main,
    option,
    parse_config,
    positional,
    require_fraction,
    require_positive,
    show_json,
)


class MissingInput(Exception):
    pass


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Train something small."""

    epochs: int = 3
    """Passes over the data."""

    learning_rate: float = 0.1
    fraction: float = 0.5
    out: Path = Path("runs/x")
    shuffle: bool = True
    optimizer: Literal["sgd", "adam"] = "sgd"
    layers: tuple[int, ...] = (8, 4)
    limit: int | None = None
    secret: str = option("hidden", cli=False)

    def __post_init__(self) -> None:
        require_positive(self, "epochs", "learning_rate")
        require_fraction(self, "fraction")


@dataclasses.dataclass(frozen=True)
class InputConfig:
    data: Path = positional(help="a CSV file")
    target: str = option(help="the column to predict")
    threshold: float = 0.0


def run_train(config: TrainConfig) -> dict[str, Any]:
    if config.limit == 0:
        raise CheckFailed("limit 0 reached")
    if config.limit == -1:
        raise ConfigError("limit", "is not available on this machine")
    return {"config": config_to_dict(config)}


def run_input(config: InputConfig) -> dict[str, Any]:
    if not config.data.exists():
        raise MissingInput(f"{config.data} does not exist")
    return {"rows": len(config.data.read_text().splitlines())}


def test_flags_types_and_defaults_come_from_the_dataclass() -> None:
    config = parse_config(
        TrainConfig,
        ["--epochs", "5", "--no-shuffle", "--optimizer", "adam", "--layers", "16", "8", "2"],
        prog="train",
    )
    assert config == TrainConfig(epochs=5, shuffle=False, optimizer="adam", layers=(16, 8, 2))
    assert parse_config(TrainConfig, [], prog="train") == TrainConfig()
    repeated = parse_config(TrainConfig, ["--layers", "4", "--layers", "2", "1"], prog="train")
    assert repeated.layers == (4, 2, 1)
    assert parse_config(TrainConfig, ["--limit", "7"], prog="train").limit == 7


def test_help_lists_field_docs_defaults_and_choices(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        parse_config(TrainConfig, ["--help"], prog="train")
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert "Passes over the data." in text
    assert "default: 3" in text
    assert "one of: sgd, adam" in text
    assert "--secret" not in text
    assert "Train something small." in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--epochs", "0"], "--epochs: must be positive, got 0"),
        (["--fraction", "1.5"], "--fraction: must be in (0, 1], got 1.5"),
        (["--learning-rate", "nan"], "argument --learning-rate: invalid float value: 'nan'"),
        (["--epochs", "x"], "argument --epochs: invalid int value: 'x'"),
        (["--optimizer", "rmsprop"], "argument --optimizer: invalid choice: 'rmsprop'"),
        (["--epoch", "2"], "unrecognized arguments: --epoch"),
    ],
)
def test_usage_errors_name_the_flag_and_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    main = make_main(Command(TrainConfig, run_train), prog="train")
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert f"train: error: {message}" in error
    assert "Traceback" not in error


def test_exit_codes_ok_failed_check_and_user_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main = make_main(Command(TrainConfig, run_train), prog="train", show=show_json)
    assert main(["--epochs", "2"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["config"]["epochs"] == 2
    assert printed["config"]["out"] == "runs/x"
    assert printed["config"]["layers"] == [8, 4]

    assert main(["--limit", "0"]) == 1
    assert "train: check failed: limit 0 reached" in capsys.readouterr().err
    assert main(["--limit", "-1"]) == 2
    assert "train: error: --limit: is not available on this machine" in capsys.readouterr().err

    select = make_main(Command(InputConfig, run_input), prog="select", user_errors=(MissingInput,))
    missing = tmp_path / "nope.csv"
    assert select([str(missing), "--target", "y"]) == 2
    assert f"select: error: {missing} does not exist" in capsys.readouterr().err
    data = tmp_path / "data.csv"
    data.write_text("a,y\n1,2\n")
    assert select([str(data), "--target", "y"]) == 0


def test_required_fields_and_positionals(capsys: pytest.CaptureFixture[str]) -> None:
    select = make_main(Command(InputConfig, run_input), prog="select")
    assert select(["data.csv"]) == 2
    assert "the following arguments are required: --target" in capsys.readouterr().err


def test_environment_overrides_defaults_but_not_flags() -> None:
    env = {"APP_EPOCHS": "9", "APP_SHUFFLE": "false", "APP_LAYERS": "3 3"}
    config = parse_config(TrainConfig, [], prog="serve", env_prefix="APP_", env=env)
    assert (config.epochs, config.shuffle, config.layers) == (9, False, (3, 3))
    assert (
        parse_config(TrainConfig, ["--epochs", "4"], prog="s", env_prefix="APP_", env=env).epochs
        == 4
    )


@dataclasses.dataclass(frozen=True)
class KeyedConfig:
    """A service with keys."""

    api_key: tuple[str, ...] = option((), help="accepted keys", secret=True)
    region: str = "eu"


def test_a_secret_from_the_environment_stays_out_of_help(
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = {"APP_API_KEY": "sk-very-secret", "APP_REGION": "us"}
    parser = build_parser(KeyedConfig, prog="serve", env_prefix="APP_", env=env)
    text = " ".join(parser.format_help().split())  # argparse wraps lines at the terminal width
    assert "sk-very-secret" not in text
    assert "default: set by the environment, not shown" in text and "default: us" in text
    config = parse_config(KeyedConfig, [], prog="serve", env_prefix="APP_", env=env)
    assert config.api_key == ("sk-very-secret",)


def test_a_bad_environment_value_names_the_variable(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        parse_config(TrainConfig, [], prog="serve", env_prefix="APP_", env={"APP_EPOCHS": "many"})
    assert exit_.value.code == 2
    assert "environment variable APP_EPOCHS: invalid value 'many'" in capsys.readouterr().err


def test_sub_commands_and_default(capsys: pytest.CaptureFixture[str]) -> None:
    main = make_main(
        {
            "train": Command(TrainConfig, run_train, "train it"),
            "load": Command(InputConfig, run_input),
        },
        prog="tool",
        default="train",
        user_errors=(MissingInput,),
    )
    assert main(["train", "--epochs", "1"]) == 0
    assert main(["--epochs", "1"]) == 0
    assert main(["load", "missing.csv", "--target", "y"]) == 2
    assert "tool load: error: missing.csv does not exist" in capsys.readouterr().err
    assert main(["--help"]) == 0
    assert "train  train it" in capsys.readouterr().out

    no_default = make_main({"train": Command(TrainConfig, run_train)}, prog="tool")
    assert no_default(["fit"]) == 2
    assert "unknown sub-command 'fit'; choose one of: train" in capsys.readouterr().err


def test_config_error_carries_the_field() -> None:
    with pytest.raises(ConfigError) as error:
        TrainConfig(fraction=0)
    assert error.value.field == "fraction"
