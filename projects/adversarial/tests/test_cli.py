from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import tiny_cnn

from adversarial.cli import main
from adversarial.models import DigitMLP
from vision.checkpoint import save_checkpoint
from vision.model import DigitCNN


@pytest.fixture()
def checkpoint(tmp_path: Path, trained_cnn: DigitCNN) -> Path:
    return save_checkpoint(tmp_path / "model.pt", trained_cnn)


def test_attack_a_checkpoint_and_write_the_result(
    tmp_path: Path, checkpoint: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["attack", str(checkpoint), "--attack", "pgd", "--eps", "0.1", "--examples", "50"]
    assert main([*argv, "--out", str(tmp_path / "out")]) == 0
    result = json.loads((tmp_path / "out" / "attack.json").read_text())
    assert result["examples"] == 50
    assert result["robust_accuracy"] < result["clean_accuracy"]
    assert result["max_perturbation"] <= 0.1 + 1e-6
    assert "pgd at eps 0.1: accuracy" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--attack", "deepfool"], "--attack: unknown attack 'deepfool'; choose one of fgsm, pgd"),
        (["--eps", "0"], "--eps: must be in (0, 1] (pixels are in [0, 1]), got 0.0"),
        (["--eps", "1.5"], "--eps: must be in (0, 1] (pixels are in [0, 1]), got 1.5"),
        (["--eps", "nan"], "argument --eps: invalid float value: 'nan'"),
    ],
)
def test_bad_attack_arguments_exit_2_naming_the_flag(
    checkpoint: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(["attack", str(checkpoint), *argv]) == 2
    error = capsys.readouterr().err
    assert message in error
    assert "Traceback" not in error


def test_a_checkpoint_of_another_architecture_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "mlp.pt"
    torch.save(
        {"architecture": "DigitMLP", "model_state": DigitMLP().state_dict(), "model_config": {}},
        path,
    )
    assert main(["attack", str(path)]) == 2
    assert "holds a 'DigitMLP' model, not a DigitCNN" in capsys.readouterr().err

    # A DigitCNN checkpoint whose weights belong to different layer sizes.
    wrong = tiny_cnn()
    state = torch.load(save_checkpoint(tmp_path / "cnn.pt", wrong), weights_only=True)
    state["model_config"]["channels"] = [32, 64]
    torch.save(state, tmp_path / "cnn.pt")
    assert main(["attack", str(tmp_path / "cnn.pt")]) == 2
    assert "does not match the DigitCNN it describes" in capsys.readouterr().err

    assert main(["attack", str(tmp_path / "missing.pt")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err


def test_unknown_sub_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["defend"]) == 2
    assert "unknown sub-command 'defend'; choose one of: report, attack" in capsys.readouterr().err


def test_report_bad_eps_exits_2_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "--eps", "2", "--out", str(tmp_path)]) == 2
    assert "--eps: must be in (0, 1]" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_quick_report_writes_every_output_then_names_missed_targets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["report", "--quick", "--out", str(tmp_path), "--epochs", "1"]
    argv += ["--adversarial-epochs", "1", "--train-pgd-steps", "1", "--pgd-steps", "3"]
    argv += ["--examples", "30", "--autoattack-examples", "10", "--square-queries", "10"]
    # One epoch of adversarial training cannot reach 60% robust accuracy: exit 1, outputs written.
    assert main(argv) == 1
    error = capsys.readouterr().err
    assert "adversarial report: check failed: " in error
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["meets_targets"] is False
    for missed in report["missed_targets"]:
        assert missed in error
    for name in ("robustness.png", "examples.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "AutoAttack" in (tmp_path / "report.html").read_text()
    assert report["data"]["attacked_test_images"] == 30
    # The deterministic attacks agree with ART on any model, trained or not.
    assert report["art"]["max_gap"] <= 0.01
    # ART's poisoning, membership-inference and extraction attacks ran beside ours.
    assert 0.0 <= report["art"]["backdoor"]["art_attack_success"] <= 1.0
    assert set(report["art"]["membership_inference"]) == {"overfit", "regularised"}
    assert [row["queries"] for row in report["art"]["model_extraction"]["rows"]] == [50, 200]
    assert "Model extraction: ours vs ART" in (tmp_path / "report.html").read_text()
    curves = report["robustness_curves"]["accuracy"]
    for values in curves.values():
        assert len(values) == len(report["robustness_curves"]["eps"])
