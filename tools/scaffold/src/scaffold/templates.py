"""The files of a new project or service, as ``string.Template`` texts.

Placeholders: ``$name`` (directory and resolve, e.g. ``few-shot``), ``$package`` (``few_shot``),
``$location`` (``projects`` or ``services``), ``$description``. Every text is already formatted the
way black, isort, docformatter and ``update-build-files`` want it, so the checks pass on a project
straight after it is made.
"""

from __future__ import annotations

from string import Template

BUILD_ROOT_FILE = Template("""\
# Its own tree, the shared libs, its requirements and (for an image) the image definition.
__dependencies_rules__(("*", "/**", "//libs/**", "//3rdparty/**", "//:image-definition", "!*"))

# Every Python target below this directory builds in the project's own resolve (extending the
# root BUILD's defaults: test files of one resolve share a pytest process).
__defaults__(all=dict(resolve="$name"), extend=True)

# ./pants run $location/$name:$name -- --help
$binary""")

PEX_TARGET = Template("""\
pex_binary(
    name="$name",
    entry_point="$package.cli:main",
)
""")

# The macro (build-support/macros.py) makes the `$name` PEX too, and the image's layers from it.
IMAGE_TARGET = Template("""\
pex_docker_image(
    name="$name-image",
    pex="$name",
    entry_point="$package.cli:main",
    repository="ml-monorepo/$name",
    title="$name",
    description="$description ($location/$name)",
    cmd=$cmd,$expose
)
""")

SOURCES_BUILD = "python_sources()\n"
TESTS_BUILD = "python_tests()\n"

REQUIREMENTS_HEADER = Template("""\
# Requirements of $location/$name, locked in $name.lock
# (./pants generate-lockfiles --resolve=$name after an edit).
""")
REQUIREMENTS_BASE = """\
numpy>=2.0
matplotlib>=3.9
"""
REQUIREMENTS_TORCH = """\
# The CPU build of torch: ./pants puts its wheel in a find-links dir (see pants.toml).
torch==2.13.0+cpu
"""
REQUIREMENTS_LM = """\
transformers>=5,<6
tokenizers>=0.21
datasets>=3
safetensors>=0.4
tqdm>=4.66
types-tqdm>=4.66
"""
REQUIREMENTS_SERVICE = """\
fastapi>=0.115
uvicorn>=0.32
pydantic>=2.9
httpx>=0.27
"""
REQUIREMENTS_TAIL = """\
# Tests import pytest for fixtures and raises; same range as the pytest tool resolve.
pytest>=8.3,<9
"""

INIT = Template('''\
"""$description."""

from $package.core import $exports

__all__ = [$all]
''')

# --- the model: plain numpy, torch, or a libs/lm language model ------------------------

CORE_PLAIN = '''\
"""A least-squares line: the smallest real model, to be replaced by yours."""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Model:
    """``y = slope * x + intercept``."""

    slope: float
    intercept: float

    def predict(self, inputs: list[float]) -> list[float]:
        return [self.slope * x + self.intercept for x in inputs]


def make_data(samples: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Noisy points on the line ``y = 3x + 1``."""
    generator = np.random.default_rng(seed)
    x = generator.uniform(-1.0, 1.0, samples)
    return x, 3.0 * x + 1.0 + generator.normal(0.0, noise, samples)


def fit(x: np.ndarray, y: np.ndarray) -> Model:
    """The least-squares line through ``(x, y)``."""
    slope, intercept = np.polyfit(x, y, deg=1)
    return Model(float(slope), float(intercept))
'''

CORE_TORCH = '''\
"""A linear model trained with SGD: the smallest real torch model, to be
replaced by yours."""

from __future__ import annotations

import torch
from torch import nn


class Model(nn.Module):
    """``y = w * x + b``, one input and one output."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        output: torch.Tensor = self.linear(x)
        return output

    def predict(self, inputs: list[float]) -> list[float]:
        with torch.no_grad():
            values = self(torch.tensor(inputs, dtype=torch.float32).unsqueeze(1))
        return [float(value) for value in values.squeeze(1)]


def make_data(samples: int, noise: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Noisy points on the line ``y = 3x + 1``, shaped ``(samples, 1)``."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(samples, 1, generator=generator) * 2 - 1
    return x, 3 * x + 1 + noise * torch.randn(samples, 1, generator=generator)


def train(
    x: torch.Tensor, y: torch.Tensor, *, steps: int, learning_rate: float, seed: int
) -> tuple[Model, list[float]]:
    """Fit :class:`Model` to ``(x, y)``; returns it and the loss after every
    step."""
    torch.manual_seed(seed)
    model = Model()
    optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(float(loss))
    return model, losses
'''

CORE_LM = '''\
"""Text generation with a libs/lm language model: a saved directory, a preset
(random weights) or a Hub id."""

from __future__ import annotations

import torch
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from lm import LoadedModel, load_corpus, load_model_spec, train_tokenizer


def small_tokenizer() -> PreTrainedTokenizerBase:
    """A byte-level BPE trained in seconds on the embedded stdlib corpus."""
    return train_tokenizer(load_corpus(max_chars=20_000).train, vocab_size=512)


def load(model: str | None, seed: int) -> LoadedModel:
    """What ``--model`` names (see ``lm.load_model_spec``)."""
    return load_model_spec(model, preset_tokenizer=small_tokenizer, seed=seed)


def complete(loaded: LoadedModel, prompt: str, max_new_tokens: int) -> str:
    """``prompt`` continued greedily by ``max_new_tokens`` tokens."""
    config = loaded.model.config
    context = getattr(config, "n_positions", None) or getattr(config, "max_position_embeddings")
    ids = loaded.tokenizer(prompt, return_tensors="pt")["input_ids"]
    # Keep the newest tokens when the prompt and the completion exceed the model's context.
    ids = ids[:, -max(1, int(context) - max_new_tokens) :]
    new_tokens: list[int] = []
    with torch.no_grad():
        for _ in range(max_new_tokens):
            next_id = int(loaded.model(input_ids=ids).logits[0, -1].argmax())
            new_tokens.append(next_id)
            ids = torch.cat([ids, torch.tensor([[next_id]])], dim=1)
    text = loaded.tokenizer.decode(new_tokens)
    assert isinstance(text, str)
    return text
'''

# --- project command lines ------------------------------------------------------------

CLI_PLAIN = Template('''\
"""``$name``: $description.

Fits the model, writes ``metrics.json`` and ``fit.png`` under ``--out``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt

from ml_core import collect_run_metadata, write_json_atomic
from ml_core.cli import Command, config_to_dict, make_main, require_non_negative, require_positive
from ml_core.plotting import save_figure
from $package.core import fit, make_data


@dataclasses.dataclass(frozen=True)
class Config:
    """Fit a line to noisy synthetic points."""

    out: Path = Path("runs/$name")
    """output directory"""
    samples: int = 200
    """number of synthetic points"""
    noise: float = 0.1
    """standard deviation of the noise"""
    seed: int = 0

    def __post_init__(self) -> None:
        require_positive(self, "samples")
        require_non_negative(self, "noise")


def run(config: Config) -> dict[str, Any]:
    """Fit, then write the metrics and the plot; returns the metrics."""
    x, y = make_data(config.samples, config.noise, config.seed)
    model = fit(x, y)
    residuals = y - model.predict(list(x))
    metrics = {
        "slope": model.slope,
        "intercept": model.intercept,
        "rmse": float((residuals**2).mean() ** 0.5),
        "config": config_to_dict(config),
        "run": collect_run_metadata(packages=("numpy",)).to_dict(),
    }
    write_json_atomic(config.out / "metrics.json", metrics)
    figure, axes = plt.subplots(figsize=(5, 4))
    axes.scatter(x, y, s=8, alpha=0.5, label="data")
    axes.plot(sorted(x), model.predict(sorted(x)), color="C1", label="fit")
    axes.legend()
    save_figure(figure, config.out / "fit.png")
    print(f"slope {model.slope:.3f}, intercept {model.intercept:.3f} -> {config.out}")
    return metrics


main = make_main(Command(Config, run), prog="$name", description=__doc__)
''')

CLI_TORCH = Template('''\
"""``$name``: $description.

Trains the model, writes ``metrics.json`` and ``loss.png`` under ``--out``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt

from ml_core import collect_run_metadata, seed_everything, write_json_atomic
from ml_core.cli import Command, config_to_dict, make_main, require_non_negative, require_positive
from ml_core.plotting import save_figure
from $package.core import make_data, train


@dataclasses.dataclass(frozen=True)
class Config:
    """Train a linear model on noisy synthetic points."""

    out: Path = Path("runs/$name")
    """output directory"""
    samples: int = 200
    """number of synthetic points"""
    noise: float = 0.1
    """standard deviation of the noise"""
    steps: int = 200
    """SGD steps"""
    learning_rate: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        require_positive(self, "samples", "steps", "learning_rate")
        require_non_negative(self, "noise")


def run(config: Config) -> dict[str, Any]:
    """Train, then write the metrics and the loss curve; returns the
    metrics."""
    seed_everything(config.seed)
    x, y = make_data(config.samples, config.noise, config.seed)
    model, losses = train(
        x, y, steps=config.steps, learning_rate=config.learning_rate, seed=config.seed
    )
    metrics = {
        "first_loss": losses[0],
        "final_loss": losses[-1],
        "weight": float(model.linear.weight),
        "bias": float(model.linear.bias),
        "config": config_to_dict(config),
        "run": collect_run_metadata(packages=("torch", "numpy")).to_dict(),
    }
    write_json_atomic(config.out / "metrics.json", metrics)
    figure, axes = plt.subplots(figsize=(5, 4))
    axes.plot(losses)
    axes.set_xlabel("step")
    axes.set_ylabel("MSE loss")
    axes.set_yscale("log")
    save_figure(figure, config.out / "loss.png")
    print(f"loss {losses[0]:.4f} -> {losses[-1]:.4f}; outputs in {config.out}")
    return metrics


main = make_main(Command(Config, run), prog="$name", description=__doc__)
''')

CLI_LM = Template('''\
"""``$name``: $description.

Completes a prompt with a language model (``--model``: a saved directory,
an lm preset with random weights, or a Hub id) and writes
``metrics.json`` under ``--out``.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

from lm import ModelLoadError
from ml_core import collect_run_metadata, write_json_atomic
from ml_core.cli import Command, config_to_dict, make_main, require_positive
from $package.core import complete, load


@dataclasses.dataclass(frozen=True)
class Config:
    """Complete a prompt with a causal language model."""

    out: Path = Path("runs/$name")
    """output directory"""
    model: str | None = None
    """save_pretrained directory, lm preset or Hub id (default: runs/lm-tiny, else tiny)"""
    prompt: str = "Return the"
    max_new_tokens: int = 16
    seed: int = 0

    def __post_init__(self) -> None:
        require_positive(self, "max_new_tokens")


def run(config: Config) -> dict[str, Any]:
    """Load, complete, write the metrics; returns them."""
    loaded = load(config.model, config.seed)
    started = time.perf_counter()
    text = complete(loaded, config.prompt, config.max_new_tokens)
    seconds = time.perf_counter() - started
    metrics = {
        "model": loaded.source,
        "completion": text,
        "tokens_per_second": config.max_new_tokens / seconds,
        "config": config_to_dict(config),
        "run": collect_run_metadata(packages=("torch", "transformers")).to_dict(),
    }
    write_json_atomic(config.out / "metrics.json", metrics)
    print(f"{loaded.source}: {config.prompt!r} -> {text!r}")
    return metrics


main = make_main(
    Command(Config, run), prog="$name", description=__doc__, user_errors=(ModelLoadError,)
)
''')

# --- service: FastAPI app plus a `serve` command line ---------------------------------

APP_PREDICT = Template('''\
"""The HTTP API of $name: ``GET /healthz`` and ``POST /v1/predict``."""

from __future__ import annotations

from fastapi import FastAPI
from pydantic import BaseModel, Field

from $package.core import $core_imports


class PredictRequest(BaseModel):
    inputs: list[float] = Field(min_length=1, max_length=10_000)


class PredictResponse(BaseModel):
    outputs: list[float]


def create_app(model: Model | None = None) -> FastAPI:
    """The app, serving ``model`` (default: one fitted to synthetic data)."""
    if model is None:
        model = $default_model
    served = model
    app = FastAPI(title="$name")

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/predict")
    def predict(request: PredictRequest) -> PredictResponse:
        return PredictResponse(outputs=served.predict(request.inputs))

    return app
''')
# What the predict service serves by default, per model kind.
PLAIN_DEFAULT_MODEL = "fit(*make_data(200, 0.1, 0))"
TORCH_DEFAULT_MODEL = "train(*make_data(200, 0.1, 0), steps=200, learning_rate=0.1, seed=0)[0]"

APP_LM = Template('''\
"""The HTTP API of $name: ``GET /healthz`` and ``POST /v1/complete``."""

from __future__ import annotations

from fastapi import FastAPI
from pydantic import BaseModel, Field

from lm import LoadedModel
from $package.core import complete


class CompleteRequest(BaseModel):
    prompt: str = Field(min_length=1, max_length=10_000)
    max_new_tokens: int = Field(default=16, ge=1, le=256)


class CompleteResponse(BaseModel):
    completion: str
    model: str


def create_app(loaded: LoadedModel) -> FastAPI:
    """The app, serving ``loaded``."""
    app = FastAPI(title="$name")

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/complete")
    def complete_prompt(request: CompleteRequest) -> CompleteResponse:
        text = complete(loaded, request.prompt, request.max_new_tokens)
        return CompleteResponse(completion=text, model=loaded.source)

    return app
''')

SERVE = Template('''\
"""``$name``: $description.

Serves the HTTP API of :mod:`$package.app`; every option can also be set
with an environment variable ($env_prefix<OPTION>).
"""

from __future__ import annotations

import dataclasses

import uvicorn
$serve_imports
from ml_core.cli import Command, make_main, require


@dataclasses.dataclass(frozen=True)
class Config:
    """Serve the model over HTTP."""

    host: str = "127.0.0.1"
    """interface to listen on (0.0.0.0 inside a container)"""
    port: int = 8000$serve_fields
    log_level: str = "info"

    def __post_init__(self) -> None:
        require(0 <= self.port <= 65535, "port", f"must be in 0..65535, got {self.port}")


def run(config: Config) -> None:
    """Serve until interrupted."""
    uvicorn.run($create_app, host=config.host, port=config.port, log_level=config.log_level)


main = make_main(
    Command(Config, run), prog="$name", description=__doc__, env_prefix="$env_prefix"$user_errors
)
''')

# --- tests ----------------------------------------------------------------------------

TEST_PROJECT_PLAIN = Template("""\
import json
from pathlib import Path

import pytest

from $package.cli import Config, main, run


def test_run_recovers_the_line_and_writes_its_outputs(tmp_path: Path) -> None:
    metrics = run(Config(out=tmp_path, samples=100, noise=0.05))
    assert metrics["slope"] == pytest.approx(3.0, abs=0.1)
    assert metrics["intercept"] == pytest.approx(1.0, abs=0.1)
    assert json.loads((tmp_path / "metrics.json").read_text())["rmse"] < 0.1
    assert (tmp_path / "fit.png").read_bytes()[:4] == b"\\x89PNG"


def test_a_bad_value_names_its_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--samples", "0"]) == 2
    assert "--samples: must be positive" in capsys.readouterr().err
""")

TEST_PROJECT_TORCH = Template("""\
import json
from pathlib import Path

import pytest

from $package.cli import Config, main, run


def test_training_lowers_the_loss_and_writes_its_outputs(tmp_path: Path) -> None:
    metrics = run(Config(out=tmp_path, samples=64, steps=100))
    assert metrics["final_loss"] < metrics["first_loss"] / 10
    assert metrics["weight"] == pytest.approx(3.0, abs=0.3)
    assert json.loads((tmp_path / "metrics.json").read_text())["config"]["steps"] == 100
    assert (tmp_path / "loss.png").read_bytes()[:4] == b"\\x89PNG"


def test_a_bad_value_names_its_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--learning-rate", "-1"]) == 2
    assert "--learning-rate: must be positive" in capsys.readouterr().err
""")

TEST_PROJECT_LM = Template("""\
import json
from pathlib import Path

import pytest

from $package.cli import Config, main, run


def test_a_preset_completes_the_prompt_and_writes_metrics(tmp_path: Path) -> None:
    metrics = run(Config(out=tmp_path, model="tiny", max_new_tokens=4))
    assert metrics["model"] == "preset:tiny"
    assert metrics["completion"]
    assert json.loads((tmp_path / "metrics.json").read_text())["config"]["max_new_tokens"] == 4


def test_a_missing_model_directory_is_a_clear_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--model", str(tmp_path / "missing"), "--out", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert "does not exist" in error
    assert "Traceback" not in error
""")

TEST_SERVICE = Template('''\
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
$test_imports

@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    """A real server on a free loopback port, stopped after the tests."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config($test_app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_health(base_url: str) -> None:
    assert httpx.get(f"{base_url}/healthz").json() == {"status": "ok"}

$test_body

def test_a_bad_port_names_its_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--port", "70000"]) == 2
    assert "--port: must be in 0..65535" in capsys.readouterr().err
''')

TEST_SERVICE_PREDICT = """\
def test_predict_over_http(base_url: str) -> None:
    response = httpx.post(f"{base_url}/v1/predict", json={"inputs": [0.0, 1.0]})
    assert response.status_code == 200
    outputs = response.json()["outputs"]
    assert outputs == pytest.approx([1.0, 4.0], abs=0.2)


def test_empty_inputs_are_a_422(base_url: str) -> None:
    assert httpx.post(f"{base_url}/v1/predict", json={"inputs": []}).status_code == 422
"""

TEST_SERVICE_LM = """\
def test_complete_over_http(base_url: str) -> None:
    response = httpx.post(f"{base_url}/v1/complete", json={"prompt": "def", "max_new_tokens": 3})
    assert response.status_code == 200
    assert response.json()["model"] == "preset:tiny"
    assert response.json()["completion"]


def test_too_many_tokens_is_a_422(base_url: str) -> None:
    response = httpx.post(f"{base_url}/v1/complete", json={"prompt": "a", "max_new_tokens": 999})
    assert response.status_code == 422
"""

README = Template("""\
# $name

$description.

Made by `./pants run tools/scaffold:new-project -- $args`: a typed config
dataclass, `run(config)` and a `main()` from `ml_core.cli`, one test, and its own resolve
`$name` (requirements in `3rdparty/python/$name.txt`, lockfile `3rdparty/python/$name.lock`).
$model_note
## Commands

```bash
$commands
./pants test $location/$name::                      # its tests
./pants lint check $location/$name::                # black/isort/flake8/docformatter, mypy
./pants generate-lockfiles --resolve=$name          # after editing its requirements$package_line
```
""")
