import json
from pathlib import Path

import pytest
import rlhf_testing  # noqa: F401  (one torch thread)

from rlhf.cli import main


def test_quick_pipeline_runs_every_step_and_writes_outputs(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main(["--quick", "--no-hacking-check", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["seconds"]) == {"base", "data", "reward", "ppo", "dpo"}
    assert 0.0 <= summary["reward_model_held_out"]["accuracy"] <= 1.0
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
    for model_dir in ("base_policy", "reward_model", "ppo_policy", "dpo_policy"):
        assert (out / model_dir / "model.safetensors").exists()
    assert not [p for p in out.rglob(".*")]  # no temporary files left behind


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["reward", "--train-data", "{tmp}/missing.jsonl"], "missing.jsonl: no such file"),
        (["dpo", "--train-data", "{tmp}/bad.jsonl"], "bad.jsonl row 2: missing 'chosen'"),
        (["ppo", "--steps", "0"], "--steps must be at least 1"),
        (["ppo", "--policy", "{tmp}/nowhere"], "nowhere"),
        (["--ppo-steps", "many"], "invalid int value"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    (tmp_path / "bad.jsonl").write_text(
        '{"prompt": "p", "chosen": "a", "rejected": "b"}\n{"prompt": "p"}\n'
    )
    with pytest.raises(SystemExit) as exit_info:
        main([arg.format(tmp=tmp_path) for arg in argv])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert "pipeline: error: " in error and message in error
    assert "Traceback" not in error
