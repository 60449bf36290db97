import json
from pathlib import Path

import pytest
import rlhf_testing  # noqa: F401  (one torch thread)
import torch

from rlhf.cli import main
from rlhf.models import use_torch_threads


def test_quick_pipeline_runs_every_step_and_writes_outputs(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main(["--quick", "--no-hacking-check", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["seconds"]) == {"base", "data", "reward", "bert_reward", "ppo", "dpo"}
    assert 0.0 <= summary["reward_model_held_out"]["accuracy"] <= 1.0
    assert summary["bert_reward_model_held_out"]["pairs"] == 16
    bert_metrics = json.loads((out / "bert_reward_model" / "metrics.json").read_text())
    assert bert_metrics["reward_model"] == "bert"
    # PPO reads the BERT reward model with the tokenizer saved beside it.
    ppo_argv = ["ppo", "--policy", str(out / "base_policy"), "--out", str(out / "ppo_bert")]
    ppo_argv += ["--reward-model", str(out / "bert_reward_model"), "--steps", "1"]
    assert main([*ppo_argv, "--batch-size", "4", "--minibatch-size", "2"]) == 0
    assert summary["run"]["package_versions"]["torch"].startswith("2.13")
    for png in (
        "reward_model/reward_curves.png",
        "ppo_policy/ppo_curves.png",
        "dpo_policy/dpo_curves.png",
    ):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ppo_log = [json.loads(line) for line in (out / "ppo_policy_log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in ppo_log] == [1, 2]
    assert {"reward", "kl", "entropy", "clip_fraction", "kl_coef"} <= set(ppo_log[0])
    assert (out / "data" / "labeler_instructions.md").read_text().startswith("# Labeler")
    assert (out / "data" / "train.jsonl").read_text().count("\n") == 32
    for model_dir in (
        "base_policy",
        "reward_model",
        "bert_reward_model",
        "ppo_policy",
        "dpo_policy",
    ):
        assert (out / model_dir / "model.safetensors").exists()
    assert not [p for p in out.rglob(".*")]  # no temporary files left behind


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["reward", "--train-data", "{tmp}/missing.jsonl"], "missing.jsonl: no such file"),
        (["dpo", "--train-data", "{tmp}/bad.jsonl"], "bad.jsonl row 2: missing 'chosen'"),
        (["ppo", "--steps", "0"], "--steps: must be positive, got 0"),
        (["ppo", "--kl-coef", "-1"], "--kl-coef: must be zero or more, got -1.0"),
        (["ppo", "--policy", "{tmp}/nowhere"], "nowhere"),
        (["--ppo-steps", "many"], "argument --ppo-steps: invalid int value: 'many'"),
        (["--preset", "huge"], "--preset: unknown preset 'huge'"),
        (["base", "--preset", "huge"], "--preset: unknown preset 'huge'"),
        (["sft"], "unrecognized arguments: sft"),
        (["reward", "--reward-model", "gpt"], "--reward-model: invalid choice: 'gpt'"),
        (["reward", "--bert-heads", "3"], "--bert-heads: must divide --bert-hidden-size 64, got 3"),
    ],
)
def test_bad_input_exits_2_with_a_message_naming_the_flag_or_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    (tmp_path / "bad.jsonl").write_text(
        '{"prompt": "p", "chosen": "a", "rejected": "b"}\n{"prompt": "p"}\n'
    )
    assert main([arg.format(tmp=tmp_path) for arg in argv]) == 2
    error = capsys.readouterr().err
    assert "pipeline" in error and "error: " in error and message in error
    assert "Traceback" not in error


def test_help_lists_the_steps_and_their_documented_options(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--help"]) == 0
    overview = capsys.readouterr().out
    for step in ("all", "base", "data", "reward", "ppo", "dpo"):
        assert f"  {step} " in overview
    assert main(["ppo", "--help"]) == 0
    text = capsys.readouterr().out
    assert "--kl-coef" in text and "per-token KL penalty" in text and "default: 0.2" in text
    assert "--adaptive-kl, --no-adaptive-kl" in text
    assert main(["all", "--help"]) == 0
    assert "--hacking-check, --no-hacking-check" in capsys.readouterr().out


def test_torch_threads_follow_the_shared_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ML_THREADS", "2")
    assert use_torch_threads() == 2 and torch.get_num_threads() == 2
    monkeypatch.setenv("ML_THREADS", "1")
    assert use_torch_threads() == 1 and torch.get_num_threads() == 1
