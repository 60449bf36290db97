import json
import random
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import PreTrainedModel

from few_shot import pretrain, synthetic
from few_shot.cli import main
from few_shot.pretrain import (
    PretrainConfig,
    _batch,
    _fresh_model,
    cpu_has_native_bf16,
    learning_rate_factor,
    use_bf16,
)
from few_shot.tasks import Task, write_task
from lm import load_model_spec


def test_eval_writes_results_curve_and_prompts(
    tmp_path: Path, model_dir: Path, colour_task: Task
) -> None:
    write_task(colour_task, tmp_path / "task.jsonl")
    out = tmp_path / "out"
    code = main(
        [
            "eval",
            "--task",
            str(tmp_path / "task.jsonl"),
            "--model",
            str(model_dir),
            "--shots",
            "0,1,4",
            "--draws",
            "3",
            "--out",
            str(out),
            "--generation",
        ]
    )
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert results["prompt_format"] == "icl"
    assert set(results["shots"]) == {"0", "1", "4"}
    assert results["shots"]["4"]["acc"]["n"] == 3
    assert results["shots"]["0"]["acc"]["n"] == 1
    assert "exact_match" in results["shots"]["1"]
    assert results["sensitivity"]["k"] == 4
    assert set(results["sensitivity"]["selection"]) == {"random", "balanced", "similar"}
    assert (out / "k_curve.png").read_bytes()[:4] == b"\x89PNG"
    prompts = [json.loads(line) for line in (out / "prompts.jsonl").read_text().splitlines()]
    assert len(prompts) == (1 + 3 + 3) * len(colour_task.queries)
    four_shot = next(p for p in prompts if p["k"] == 4)
    assert four_shot["context"].count(" ; ") == 4


@pytest.mark.parametrize(
    "args, message",
    [
        (["--shots", "0,10"], "10-shot needs 10 demonstrations"),
        (["--shots", "0,x"], "--shots: must be comma-separated"),
        (["--model", "/nonexistent/model"], "does not exist"),
    ],
)
def test_bad_requests_exit_2_and_write_nothing(
    tmp_path: Path,
    model_dir: Path,
    colour_task: Task,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    write_task(colour_task, tmp_path / "task.jsonl")
    out = tmp_path / "out"
    base = [
        "eval",
        "--task",
        str(tmp_path / "task.jsonl"),
        "--model",
        str(model_dir),
        "--out",
        str(out),
    ]
    assert main(base + args) == 2
    error = capsys.readouterr().err
    assert message in error
    assert "Traceback" not in error
    assert not out.exists()


def test_a_task_with_missing_fields_or_unknown_label_words_is_refused(
    tmp_path: Path, model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"kind": "meta"}\n{"kind": "query", "target": "red"}\n')
    assert (
        main(["eval", "--task", str(bad), "--model", str(model_dir), "--out", str(tmp_path / "o")])
        == 2
    )
    assert "missing or non-string field(s) input" in capsys.readouterr().err
    odd = tmp_path / "odd.jsonl"
    odd.write_text(
        '{"kind": "meta", "options": ["zzzqx", "red"]}\n'
        '{"kind": "query", "input": "cat", "target": "red"}\n'
    )
    assert (
        main(
            [
                "eval",
                "--task",
                str(odd),
                "--model",
                str(model_dir),
                "--shots",
                "0",
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    assert "no token for the label word(s) ['zzzqx']" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_pretrain_writes_a_model_lm_can_load_with_tasks(tmp_path: Path) -> None:
    out = tmp_path / "icl"
    assert (
        main(
            [
                "pretrain",
                "--out",
                str(out),
                "--steps",
                "3",
                "--batch-size",
                "4",
                "--eval-every",
                "2",
                "--warmup",
                "1",
                "--decay-fraction",
                "1",
            ]
        )
        == 0
    )
    loaded = load_model_spec(str(out), preset_tokenizer=synthetic.build_tokenizer)
    assert loaded.tokenizer("wug = red")["input_ids"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 3
    assert [h["step"] for h in metrics["history"]] == [2, 3]
    rates = [h["learning_rate"] for h in metrics["history"]]
    assert rates[0] > rates[1] > 0, "the cosine decays once warm-up is over"
    assert sorted(p.name for p in (out / "tasks").iterdir()) == [
        "invented-language.jsonl",
        "inverted-sentiment.jsonl",
        "odd-sum.jsonl",
    ]
    assert (out / "loss_curve.png").exists()


def test_benchmark_quick_reports_missed_targets_with_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bench"
    code = main(
        ["benchmark", "--quick", "--out", str(out), "--pretrain-steps", "2", "--no-lm-eval"]
    )
    assert code == 1
    assert "invented_language_8shot>=0.80" in capsys.readouterr().err
    report = json.loads((out / "benchmark.json").read_text())
    assert report["targets"]["invented_language_8shot>=0.80"] is False
    assert report["http"]["same_acc"] is True
    panel = report["held_out_languages"]
    assert panel["languages"] == ["invented-language-100", "invented-language-101"]
    assert len(panel["8"]["per_language"]) == 2
    assert panel["8"]["mean"] == pytest.approx(sum(panel["8"]["per_language"]) / 2)
    assert set(report["curves"]) == {"invented-language", "inverted-sentiment", "odd-sum"}
    assert (out / "k_curve_invented-language.png").exists()


def test_prefix_cache_only_without_a_server_url_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bench"
    assert main(["benchmark", "--prefix-cache-only", "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert "needs --kv-serve URL" in error
    assert "Traceback" not in error
    assert not out.exists()


def test_learning_rate_warms_up_holds_then_decays_to_zero_at_the_step_or_time_cap() -> None:
    assert [learning_rate_factor(step, 4, 0.0, 0.2) for step in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert learning_rate_factor(10, 4, 0.5, 0.2) == 1.0
    assert learning_rate_factor(10, 4, 0.9, 0.2) == pytest.approx(0.5)
    # A run stopped by --max-seconds passes the time fraction: the rate still ends at zero.
    assert learning_rate_factor(10, 4, 1.0, 0.2) == pytest.approx(0.0)
    assert learning_rate_factor(10, 4, 1.7, 0.2) == pytest.approx(0.0)
    assert learning_rate_factor(10, 4, 0.5, 1.0) == pytest.approx(0.5), "plain cosine"


def _tiny_pretrain(
    out: Path, restart_after: int, restart_below: float, max_restarts: int = 3
) -> dict[str, Any]:
    config = PretrainConfig(
        out=out,
        steps=4,
        batch_size=2,
        block_size=16,
        layers=1,
        width=32,
        heads=2,
        eval_every=2,
        warmup=1,
        seed=5,
        restart_after=restart_after,
        restart_below=restart_below,
        max_restarts=max_restarts,
    )
    return pretrain.run(config)


def test_a_run_still_on_the_plateau_restarts_with_the_next_seed(tmp_path: Path) -> None:
    # A 2-step model cannot look anything up: a threshold of 1.0 restarts every attempt it may.
    metrics = _tiny_pretrain(tmp_path / "icl", restart_after=2, restart_below=1.0, max_restarts=2)
    assert [(r["seed"], r["step"]) for r in metrics["restarts"]] == [(5, 2), (6, 2)]
    assert all(r["training_lookup_accuracy"] < 1.0 for r in metrics["restarts"])
    assert metrics["seed"] == 7 and metrics["steps"] == 4, "the last attempt runs to the end"
    assert [(h["seed"], h["step"]) for h in metrics["history"]] == [(5, 2), (6, 2), (7, 2), (7, 4)]
    saved = json.loads((tmp_path / "icl" / "metrics.json").read_text())
    assert saved["seed"] == 7 and len(saved["restarts"]) == 2


@pytest.mark.parametrize(
    ("restart_after", "restart_below"),
    [(0, 1.0), (2, 0.0)],
    ids=["restarts-off", "above-the-threshold"],
)
def test_no_restart_when_off_or_past_the_plateau(
    tmp_path: Path, restart_after: int, restart_below: float
) -> None:
    metrics = _tiny_pretrain(tmp_path / "icl", restart_after, restart_below)
    assert metrics["restarts"] == [] and metrics["seed"] == 5 and metrics["steps"] == 4


def test_pretrain_rejects_a_decay_fraction_outside_0_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "icl"
    assert main(["pretrain", "--out", str(out), "--decay-fraction", "1.5"]) == 2
    assert "decay_fraction" in capsys.readouterr().err.replace("-", "_")
    assert not out.exists()


def test_training_batches_hold_the_word_level_tokenizers_ids() -> None:
    tokenizer = synthetic.build_tokenizer()
    ids, mask = _batch(random.Random(3), tokenizer.get_vocab(), 16, 64)
    episodes = random.Random(3)
    for row in range(16):
        expected = tokenizer(synthetic.episode_text(episodes))["input_ids"][:64]
        assert ids[row, : len(expected)].tolist() == expected
        assert int(mask[row].sum()) == len(expected)
        assert set(ids[row, len(expected) :].tolist()) <= {tokenizer.pad_token_id}


def test_precision_auto_autocasts_only_where_the_cpu_has_native_bf16() -> None:
    assert use_bf16("bf16") is True
    assert use_bf16("fp32") is False
    assert use_bf16("auto") is cpu_has_native_bf16()


def _layer0_attention(model: PreTrainedModel, length: int) -> torch.Tensor:
    model.config._attn_implementation = "eager"
    vocab_size = int(model.config.vocab_size)
    ids = torch.randint(5, vocab_size, (1, length), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        attentions: torch.Tensor = model(input_ids=ids, output_attentions=True).attentions[0]
    return attentions[0]


def test_positional_heads_attend_one_and_two_tokens_back_at_every_position() -> None:
    tokenizer = synthetic.build_tokenizer()
    model = _fresh_model(PretrainConfig(positional_heads=2, heads=4), tokenizer)
    attention = _layer0_attention(model, 256)
    positions = torch.arange(256)
    for head, offset in ((0, 1), (1, 2)):
        weight_at_offset = attention[head, positions[offset:], positions[offset:] - offset]
        assert weight_at_offset.min().item() >= 0.998, (head, offset)
    # The other heads start random: spread out, not on any one offset.
    assert attention[2, 100:].max().item() < 0.5
    # Still trainable parameters of a plain Llama that lm loads (the pretrain test saves one).
    assert model.model.layers[0].self_attn.q_proj.bias.requires_grad


def test_without_positional_heads_no_head_starts_on_an_offset() -> None:
    model = _fresh_model(PretrainConfig(positional_heads=0), synthetic.build_tokenizer())
    assert model.model.layers[0].self_attn.q_proj.bias is None
    assert _layer0_attention(model, 128)[:, 64:].max().item() < 0.5


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        (["--positional-heads", "5"], "must be at most --heads"),
        (["--positional-heads", "2", "--family", "gpt2"], "needs --family llama"),
    ],
)
def test_pretrain_rejects_positional_heads_it_cannot_build(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], arguments: list[str], problem: str
) -> None:
    out = tmp_path / "icl"
    assert main(["pretrain", "--out", str(out), *arguments]) == 2
    assert problem in capsys.readouterr().err
    assert not out.exists()
