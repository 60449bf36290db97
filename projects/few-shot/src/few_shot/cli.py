"""``few-shot``: zero-, one- and k-shot prompting with a measured evaluation harness.

Sub-commands: ``pretrain`` (the synthetic in-context-learning model), ``eval`` (a k-shot curve of a
task on a model directory or an OpenAI-compatible URL) and ``benchmark`` (the issue's targets).
"""

from __future__ import annotations

from few_shot.backends import BackendError
from few_shot.benchmark import BenchmarkConfig
from few_shot.benchmark import run as run_benchmark
from few_shot.evaluate import EvalConfig
from few_shot.evaluate import run as run_eval
from few_shot.pretrain import PretrainConfig
from few_shot.pretrain import run as run_pretrain
from few_shot.tasks import TaskError
from lm import ModelLoadError
from ml_core.cli import Command, make_main

main = make_main(
    {
        "eval": Command(EvalConfig, run_eval, help="k-shot curve of a task on a model or URL"),
        "pretrain": Command(
            PretrainConfig, run_pretrain, help="pretrain the in-context-learning model"
        ),
        "benchmark": Command(BenchmarkConfig, run_benchmark, help="check the issue's targets"),
    },
    prog="few-shot",
    description=__doc__,
    user_errors=(ModelLoadError, TaskError, BackendError),
)


if __name__ == "__main__":
    raise SystemExit(main())
