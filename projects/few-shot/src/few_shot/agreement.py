"""Agreement with EleutherAI's lm-evaluation-harness on the same model directory, task and k.

The task is written as an lm-eval task (a YAML over local JSONL files: ``dataset_path: json``), with
the demonstrations taken in order (``fewshot_config.sampler: first_n``) so both harnesses build the
very same prompts; this project's harness runs with ``selection="first"``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from few_shot import synthetic
from few_shot.backends import HuggingFaceBackend
from few_shot.prompts import FORMATS, PromptBuilder
from few_shot.scoring import score_draw
from few_shot.tasks import Task
from lm import load_model_spec


def write_lm_eval_task(task: Task, directory: Path, name: str) -> Path:
    """``directory/name.yaml`` plus its train (demonstrations) and test (queries) JSONL files."""
    fmt = FORMATS["icl"]
    directory.mkdir(parents=True, exist_ok=True)
    train, test = directory / f"{name}_train.jsonl", directory / f"{name}_test.jsonl"
    train.write_text("".join(json.dumps(vars(e)) + "\n" for e in task.demonstrations))
    test.write_text("".join(json.dumps(vars(e)) + "\n" for e in task.queries))
    description = task.instruction + fmt.description_suffix if task.instruction else ""
    lines = [
        f"task: {name}",
        "dataset_path: json",
        "dataset_kwargs:",
        "  data_files:",
        f"    train: {json.dumps(str(train.resolve()))}",
        f"    test: {json.dumps(str(test.resolve()))}",
        "output_type: multiple_choice",
        "training_split: train",
        "fewshot_split: train",
        "test_split: test",
        "fewshot_config:",
        "  sampler: first_n",
        f"description: {json.dumps(description)}",
        f"doc_to_text: {json.dumps(fmt.query_template.replace('{input}', '{{input}}'))}",
        f"doc_to_choice: {json.dumps(list(task.options))}",
        f"doc_to_target: {json.dumps('{{target}}')}",
        f"target_delimiter: {json.dumps(fmt.target_delimiter)}",
        f"fewshot_delimiter: {json.dumps(fmt.fewshot_delimiter)}",
        "metric_list:",
        "  - metric: acc",
        "  - metric: acc_norm",
    ]
    path = directory / f"{name}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def lm_eval_agreement(model_dir: Path, task: Task, k: int, work: Path) -> dict[str, Any]:
    """``acc`` / ``acc_norm`` of lm-eval (``hf`` model) and of this harness on the same prompts."""
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_CACHE", str((work / "hf_datasets").resolve()))
    from lm_eval import simple_evaluate  # type: ignore[import-untyped]
    from lm_eval.tasks import TaskManager  # type: ignore[import-untyped]

    name = "few_shot_" + task.name.replace("-", "_")
    write_lm_eval_task(task, work, name)
    output = simple_evaluate(
        model="hf",
        model_args=f"pretrained={model_dir.resolve()},dtype=float32",
        tasks=[name],
        num_fewshot=k,
        task_manager=TaskManager(include_path=str(work.resolve())),
        batch_size=16,
        device="cpu",
        log_samples=True,
    )
    assert output is not None
    theirs = output["results"][name]
    loaded = load_model_spec(str(model_dir), preset_tokenizer=synthetic.build_tokenizer)
    backend = HuggingFaceBackend(loaded.model, loaded.tokenizer, str(model_dir))
    mine = score_draw(backend, task, PromptBuilder(task, FORMATS["icl"]), k, 0, selection="first")
    assert mine.acc is not None and mine.acc_norm is not None
    # Per query and option: lm-eval's log-likelihood against ours.
    gaps = []
    for sample in output["samples"][name]:
        record = mine.prompts[int(sample["doc_id"])]
        for option, response in zip(task.options, sample["resps"]):
            gaps.append(abs(float(response[0][0]) - record["loglikelihoods"][option]))
    lm_eval_acc = float(theirs["acc,none"])
    lm_eval_acc_norm = float(theirs["acc_norm,none"])
    return {
        "k": k,
        "task": name,
        "lm_eval_acc": lm_eval_acc,
        "lm_eval_acc_norm": lm_eval_acc_norm,
        "ours_acc": mine.acc,
        "ours_acc_norm": mine.acc_norm,
        "difference_points": 100 * abs(lm_eval_acc - mine.acc),
        "agrees": 100 * abs(lm_eval_acc - mine.acc) <= 0.5,
        "max_loglikelihood_difference": max(gaps) if gaps else None,
        "compared_loglikelihoods": len(gaps),
        "lm_eval_version": _version("lm-eval"),
        "example_prompt": mine.prompts[0]["context"],
    }


def _version(package: str) -> str:
    from importlib import metadata

    return metadata.version(package)
