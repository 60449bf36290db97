"""``pipeline``: the three RLHF steps on the embedded task, or each step on its
own.

``pipeline --out DIR`` trains the starting policy, labels preference
pairs, trains the reward model, runs PPO (and PPO without the KL
penalty, the reward-hacking check) and DPO. Sub-commands ``base``,
``data``, ``reward``, ``ppo`` and ``dpo`` run one step; every option is
a field of that step's config dataclass.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import types
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from lm import ModelLoadError
from ml_core import Timer, collect_run_metadata, write_json_atomic
from rlhf.data import PreferenceDataError
from rlhf.dpo import DPOConfig, train_dpo
from rlhf.models import BasePolicyConfig, train_base_policy
from rlhf.ppo import PPOConfig, train_ppo
from rlhf.preferences import DataConfig, make_preference_data
from rlhf.reward import RewardConfig, train_reward_model

PROG = "pipeline"
PACKAGES = ("torch", "transformers", "tokenizers", "numpy")
STEPS: dict[str, tuple[type[Any], Callable[[Any], dict[str, Any]], str]] = {
    "base": (BasePolicyConfig, train_base_policy, "train the starting policy on the task"),
    "data": (DataConfig, make_preference_data, "sample and label preference pairs"),
    "reward": (RewardConfig, train_reward_model, "train the Bradley-Terry reward model"),
    "ppo": (PPOConfig, train_ppo, "PPO with a KL penalty against the reward model"),
    "dpo": (DPOConfig, train_dpo, "DPO on the preference pairs"),
}


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """All steps with their defaults under one directory."""

    out: Path = Path("runs/rlhf")
    seed: int = 0
    quick: bool = False
    hacking_check: bool = True
    ppo_steps: int = 40
    preset: str = "tiny"


def _field_type(cls: type[Any], field: dataclasses.Field[Any]) -> Any:
    hint = typing.get_type_hints(cls)[field.name]
    if isinstance(hint, types.UnionType):  # ``X | None``
        return next(arg for arg in typing.get_args(hint) if arg is not type(None))
    return hint


def add_config_options(parser: argparse.ArgumentParser, cls: type[Any]) -> None:
    """One ``--option`` per dataclass field, typed and defaulted from it."""
    for field in dataclasses.fields(cls):
        flag = "--" + field.name.replace("_", "-")
        kind = _field_type(cls, field)
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=field.default)
        else:
            parser.add_argument(
                flag, type=kind, default=field.default, help=f"default: {field.default}"
            )


def build_parser(step: str | None) -> argparse.ArgumentParser:
    if step is None:
        parser = argparse.ArgumentParser(
            prog=PROG,
            description=__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            epilog=f"sub-commands: {', '.join(STEPS)} (`{PROG} SUB --help`)",
        )
        add_config_options(parser, PipelineConfig)
        return parser
    cls, _, help_text = STEPS[step]
    # prog stays "pipeline" so every error reads "pipeline: error: ..."; usage names the step.
    parser = argparse.ArgumentParser(
        prog=PROG, usage=f"{PROG} {step} [options]", description=help_text
    )
    add_config_options(parser, cls)
    return parser


def run_all(config: PipelineConfig) -> dict[str, Any]:
    """Every step with its defaults, outputs under ``config.out``."""
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


def main(argv: Sequence[str] | None = None) -> int:
    # These models are tiny: one thread is several times faster than two on a busy 2-core box.
    torch.set_num_threads(int(os.environ.get("RLHF_TORCH_THREADS", "1")))
    arguments = list(sys.argv[1:] if argv is None else argv)
    step = arguments[0] if arguments and arguments[0] in STEPS else None
    parser = build_parser(step)
    namespace = parser.parse_args(arguments[1:] if step else arguments)
    cls, function, _ = STEPS[step] if step else (PipelineConfig, run_all, "")
    try:
        config = cls(**vars(namespace))
    except ValueError as error:
        parser.error(str(error))
    try:
        result = function(config)
    except (PreferenceDataError, ModelLoadError, OSError) as error:
        parser.error(str(error))
    print(_headline(step, result))
    return 0


def _headline(step: str | None, result: dict[str, Any]) -> str:
    keys = (
        "reward_model_held_out",
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
    import json

    return json.dumps({k: result[k] for k in keys if k in result}, indent=2)


if __name__ == "__main__":
    sys.exit(main())
