"""The load benchmark end to end with tiny sizes: JSON and plot written, targets checked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kv_serve.load_benchmark import fit_chat, main


def test_quick_run_writes_results_and_plot(tmp_path: Path) -> None:
    out = tmp_path / "load"
    assert main(["--quick", "--out", str(out), "--prompt-tokens", "8"]) == 0
    results = json.loads((out / "load.json").read_text())
    assert [level["clients"] for level in results["levels"]] == [1, 4]
    assert all(level["errors"] == 0 and level["tokens"] > 0 for level in results["levels"])
    assert results["levels"][1]["tokens"] == 4 * 8
    assert (out / "load.png").stat().st_size > 1000
    assert results["missed_targets"] == []
    # The chat: kv-serve is sent only each new message and reuses the rest from its session.
    turns = results["session"]["chats"][0]["turns"]
    assert len(turns) == 3 and turns[0]["cached_tokens"] == 0
    assert all(t["cached_tokens"] > 0 for t in turns[1:])
    assert all(t["cached_tokens"] <= t["prompt_tokens"] for t in turns)
    assert turns[2]["prompt_tokens"] > turns[1]["prompt_tokens"] > turns[0]["prompt_tokens"]
    assert (out / "model" / "config.json").is_file() and not (out / "model.partial").exists()


def test_quick_run_beside_transformers_serve(tmp_path: Path) -> None:
    out = tmp_path / "load"
    argv = ["--quick", "--out", str(out), "--prompt-tokens", "8", "--peer", "transformers-serve"]
    assert main(argv) == 0
    results = json.loads((out / "load.json").read_text())
    peer = results["peer"]
    assert peer["name"] == "transformers-serve"
    # The same prompts, the same fixed length, no failures, on both servers.
    assert [level["tokens"] for level in peer["levels"]] == [8, 4 * 8]
    assert [level["tokens"] for level in results["levels"]] == [8, 4 * 8]
    # The peer is sent the whole history each turn, so its prompt grows by the replies too.
    peer_turns = peer["session"]["chats"][0]["turns"]
    ours = results["session"]["chats"][0]["turns"]
    assert [t["prompt_tokens"] for t in peer_turns][0] == ours[0]["prompt_tokens"]
    assert peer_turns[2]["prompt_tokens"] > peer_turns[1]["prompt_tokens"]
    assert (out / "load.png").stat().st_size > 1000


def test_missed_target_exits_1_after_writing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "load"
    argv = ["--out", str(out), "--clients", "1", "16", "--new-tokens", "2", "--min-speedup", "1000"]
    assert main(argv) == 1
    assert "below the target --min-speedup 1000x" in capsys.readouterr().err
    results = json.loads((out / "load.json").read_text())
    assert results["missed_targets"] and len(results["levels"]) == 2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--new-tokens", "0"], "--new-tokens"),
        (["--clients", "0"], "--clients"),
        (["--peer", "vllm"], "--peer"),
        (["--session-turns", "-1"], "--session-turns"),
    ],
)
def test_bad_values_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("context", [256, 1024])
def test_fit_chat_keeps_the_last_turn_inside_the_context(context: int) -> None:
    user, reply = fit_chat(context, 5, 32, 96)
    assert 5 * (user + 16 + reply) <= context
    if context == 1024:
        assert (user, reply) == (32, 96)  # fits as asked
    else:
        assert 4 <= user < 32 and 1 <= reply < 96 and reply > user  # scaled together
