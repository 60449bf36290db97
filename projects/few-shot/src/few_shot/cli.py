"""``few-shot``: Zero-, one- and k-shot prompting with a measured evaluation harness.

Completes a prompt with a language model (``--model``: a saved directory, an lm preset with random
weights, or a Hub id) and writes ``metrics.json`` under ``--out``.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

from few_shot.core import complete, load
from lm import ModelLoadError
from ml_core import collect_run_metadata, write_json_atomic
from ml_core.cli import Command, config_to_dict, make_main, require_positive


@dataclasses.dataclass(frozen=True)
class Config:
    """Complete a prompt with a causal language model."""

    out: Path = Path("runs/few-shot")
    """Output directory."""

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
    Command(Config, run), prog="few-shot", description=__doc__, user_errors=(ModelLoadError,)
)
