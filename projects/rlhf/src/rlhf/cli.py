"""``pipeline``: the three RLHF steps on the embedded task, or each step on its own.

``pipeline --out DIR`` (the default sub-command ``all``) trains the starting policy, labels
preference pairs, trains the reward model (and, ``--bert-reward``, a separate BERT reward model to
compare), runs PPO (and PPO without the KL penalty, the reward-hacking check) and DPO. Sub-commands
``base``, ``data``, ``reward``, ``ppo`` and ``dpo`` run one step; every option is a field of that
step's config dataclass (``pipeline STEP --help``; ``pipeline all --help`` for the whole run).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lm import ModelLoadError
from ml_core import Timer, collect_run_metadata, write_json_atomic
from ml_core.cli import Command, make_main, require_positive
from rlhf.data import PreferenceDataError
from rlhf.dpo import DPOConfig, train_dpo
from rlhf.models import BasePolicyConfig, require_preset, train_base_policy, use_torch_threads
from rlhf.ppo import PPOConfig, train_ppo
from rlhf.preferences import DataConfig, make_preference_data
from rlhf.reward import RewardConfig, train_reward_model

PROG = "pipeline"
PACKAGES = ("torch", "transformers", "tokenizers", "numpy")


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """All steps with their defaults under one directory."""

    out: Path = Path("runs/rlhf")
    """Directory for every step's outputs and summary.json."""

    seed: int = 0
    """Seed of every step."""

    quick: bool = False
    """A seconds-long smoke run: a few steps and pairs per step."""

    hacking_check: bool = True
    """Also run PPO without the KL penalty (the reward-hacking check)."""

    bert_reward: bool = True
    """Also train the separate BERT reward model (own tokenizer and trunk, from scratch) on the same
    pairs and report its held-out accuracy beside the shared-trunk one (PPO uses the shared one)."""

    ppo_steps: int = 40
    """PPO steps (ignored with --quick)."""

    preset: str = "tiny"
    """Model preset of the starting policy (tiny or llama-tiny)."""

    def __post_init__(self) -> None:
        require_positive(self, "ppo_steps")
        require_preset(self)


def run_all(config: PipelineConfig) -> dict[str, Any]:
    """Every step with its defaults, outputs under ``config.out``."""
    use_torch_threads()
    out, seed = config.out, config.seed
    quick = config.quick
    base = out / "base_policy"
    data = out / "data"
    results: dict[str, Any] = {}
    timings: dict[str, float] = {}

    def run(name: str, function: Callable[[Any], dict[str, Any]], step_config: Any) -> None:
        with Timer() as timer:
            results[name] = function(step_config)
        timings[name] = round(timer.elapsed, 1)

    run(
        "base",
        train_base_policy,
        BasePolicyConfig(
            out=base,
            preset=config.preset,
            seed=seed,
            steps=10 if quick else BasePolicyConfig.steps,
            examples=200 if quick else BasePolicyConfig.examples,
        ),
    )
    run(
        "data",
        make_preference_data,
        DataConfig(
            out=data,
            policy=base,
            seed=seed,
            train_pairs=32 if quick else DataConfig.train_pairs,
            test_pairs=16 if quick else DataConfig.test_pairs,
        ),
    )
    paths: dict[str, Any] = {
        "policy": base,
        "train_data": data / "train.jsonl",
        "test_data": data / "test.jsonl",
    }
    few: dict[str, Any] = {"steps": 3, "batch_size": 8} if quick else {}
    run(
        "reward",
        train_reward_model,
        RewardConfig(out=out / "reward_model", seed=seed, **paths, **few),
    )
    if config.bert_reward:
        run(
            "bert_reward",
            train_reward_model,
            RewardConfig(
                out=out / "bert_reward_model", reward_model="bert", seed=seed, **paths, **few
            ),
        )
    ppo_few: dict[str, Any] = {"steps": 2, "batch_size": 8, "minibatch_size": 4} if quick else {}
    ppo_steps: dict[str, Any] = {} if quick else {"steps": config.ppo_steps}
    ppo_common: dict[str, Any] = {
        "policy": base,
        "reward_model": out / "reward_model",
        "seed": seed,
        **ppo_few,
        **ppo_steps,
    }
    run("ppo", train_ppo, PPOConfig(out=out / "ppo_policy", **ppo_common))
    if config.hacking_check:
        run(
            "ppo_no_kl",
            train_ppo,
            PPOConfig(out=out / "ppo_no_kl_policy", kl_coef=0.0, adaptive_kl=False, **ppo_common),
        )
    dpo_few: dict[str, Any] = {**few, "comparison_samples": 1} if quick else {}
    run("dpo", train_dpo, DPOConfig(out=out / "dpo_policy", seed=seed, **paths, **dpo_few))
    summary = {
        "seconds": timings,
        "run": collect_run_metadata(packages=PACKAGES).to_dict(),
        "base": results["base"],
        "data": results["data"],
        "reward_model_held_out": results["reward"]["held_out"],
        "ppo": _ppo_summary(results["ppo"]),
        "dpo_held_out_implicit_reward": results["dpo"]["held_out_implicit_reward"],
        "dpo_labeler_after_vs_before": results["dpo"]["labeler_after_vs_before"],
    }
    if "bert_reward" in results:
        summary["bert_reward_model_held_out"] = results["bert_reward"]["held_out"]
    if "ppo_no_kl" in results:
        summary["ppo_no_kl"] = _ppo_summary(results["ppo_no_kl"])
    write_json_atomic(out / "summary.json", summary)
    return summary


def _ppo_summary(result: dict[str, Any]) -> dict[str, Any]:
    return {
        **result["summary_first_last_5_steps"],
        "max_kl": result["max_kl"],
        "kl_target": result["config"]["kl_target"],
        "distinct_completions_after": result["distinct_completions_after"],
    }


def _headline(result: dict[str, Any]) -> str:
    """The headline numbers of a run or a step's result, as JSON."""
    keys = (
        "reward_model_held_out",
        "bert_reward_model_held_out",
        "ppo",
        "ppo_no_kl",
        "dpo_held_out_implicit_reward",
        "dpo_labeler_after_vs_before",
        "seconds",
        "held_out",
        "summary_first_last_5_steps",
        "max_kl",
        "held_out_implicit_reward",
        "labeler_after_vs_before",
        "loss_last",
        "ties",
    )
    return json.dumps({k: result[k] for k in keys if k in result}, indent=2)


main = make_main(
    {
        "all": Command(PipelineConfig, run_all, "every step, outputs under --out (the default)"),
        "base": Command(BasePolicyConfig, train_base_policy, "train the starting policy"),
        "data": Command(DataConfig, make_preference_data, "sample and label preference pairs"),
        "reward": Command(
            RewardConfig,
            train_reward_model,
            "train the Bradley-Terry reward model (--reward-model shared|bert)",
        ),
        "ppo": Command(PPOConfig, train_ppo, "PPO with a KL penalty against the reward model"),
        "dpo": Command(DPOConfig, train_dpo, "DPO on the preference pairs"),
    },
    prog=PROG,
    description=__doc__,
    default="all",
    user_errors=(PreferenceDataError, ModelLoadError, OSError),
    show=_headline,
)

if __name__ == "__main__":
    sys.exit(main(None))
