"""The ``kv-serve`` command as a real uvicorn process on 127.0.0.1."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from kv_serve_testing import free_port

from kv_serve.config import ENV_PREFIX, Settings
from kv_serve.server import main
from ml_core.cli import parse_config


def test_settings_from_env_and_cli() -> None:
    env = {"KV_SERVE_BUDGET_MB": "8", "KV_SERVE_FP16_STORAGE": "true", "KV_SERVE_PORT": "9000"}
    settings = parse_config(
        Settings,
        ["--port", "9001", "--session-ttl-s", "5"],
        prog="kv-serve",
        env_prefix=ENV_PREFIX,
        env=env,
    )
    assert settings.host == "127.0.0.1"  # loopback unless asked
    assert settings.port == 9001 and settings.budget_bytes == 8 * 1024 * 1024
    assert settings.fp16_storage and settings.session_ttl_s == 5
    assert settings.prefix_caching and settings.model is None
    flags = ["--no-prefix-caching", "--fp16-storage", "--model", "tiny", "--log-level", "debug"]
    settings = parse_config(Settings, flags, prog="kv-serve", env_prefix=ENV_PREFIX, env={})
    assert not settings.prefix_caching and settings.fp16_storage
    assert (settings.model, settings.log_level) == ("tiny", "debug")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--block-size", "0"], "--block-size: must be positive, got 0"),
        (["--budget-mb", "-1"], "--budget-mb: must be positive, got -1.0"),
        (["--session-ttl-s", "-5"], "--session-ttl-s: must be zero or more, got -5.0"),
        (["--prefill-chunk", "-1"], "--prefill-chunk: must be zero or more, got -1"),
        (["--port", "70000"], "--port: must be in [0, 65535], got 70000"),
        (["--port", "http"], "argument --port: invalid int value: 'http'"),
        (["--log-level", "loud"], "argument --log-level: invalid choice: 'loud'"),
    ],
)
def test_bad_flag_values_exit_2_naming_the_flag(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert f"kv-serve: error: {message}" in error
    assert "Traceback" not in error


def test_env_override_and_bad_env_value_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KV_SERVE_BLOCK_SIZE", "32")
    monkeypatch.setenv("KV_SERVE_PREFIX_CACHING", "off")
    settings = parse_config(Settings, [], prog="kv-serve", env_prefix=ENV_PREFIX)
    assert settings.block_size == 32 and not settings.prefix_caching
    monkeypatch.setenv("KV_SERVE_PORT", "eighty")
    # ml_core.cli reads variables while building the parser, outside main's SystemExit
    # handling, so this exits (code 2) rather than returning 2; accept either.
    code: object
    try:
        code = main(["--model", "tiny"])
    except SystemExit as exit_:
        code = exit_.code
    assert code == 2
    error = capsys.readouterr().err
    assert "environment variable KV_SERVE_PORT: invalid value 'eighty'" in error
    assert "Traceback" not in error


def test_missing_model_directory_is_a_clear_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-such-model"
    assert main(["--model", str(missing), "--port", "0"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("kv-serve: error: Could not load a causal language model")
    assert str(missing) in error and "does not exist" in error
    assert "Traceback" not in error


def test_missing_relative_model_directory_is_not_looked_up_on_the_hub(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # "runs/no-such-model" has the shape of a Hub id ("org/name"); run from a directory that holds
    # runs/ but not the model, it must be reported as a missing local directory, not fetched.
    (tmp_path / "runs").mkdir()
    monkeypatch.chdir(tmp_path)
    assert main(["--model", "runs/no-such-model", "--port", "0"]) == 2
    error = capsys.readouterr().err
    assert "Traceback" not in error and "huggingface.co" not in error
    assert "kv-serve: error: Could not load a causal language model" in error
    assert "does not exist (and the name is not a Hugging Face Hub id)" in error
    assert "Hub error" not in error


def test_cli_serves_over_http_and_stops() -> None:
    port = free_port()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), KV_SERVE_BUDGET_MB="16")
    command = [
        sys.executable,
        "-c",
        "from kv_serve.server import main; raise SystemExit(main(None))",
        "--model",
        "tiny",
        "--port",
        str(port),
        "--tokenizer-max-chars",
        "20000",
        "--log-level",
        "warning",
    ]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                output = process.stdout.read() if process.stdout else ""
                raise AssertionError(f"kv-serve exited early:\n{output}")
            try:
                if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not come up"
            time.sleep(0.25)
        health = httpx.get(base + "/healthz").json()
        assert health["model"] == "preset:tiny" and health["random_weights"] is True
        prompt = "Return the sum of the list. " * 8  # several 16-token blocks
        body = {"prompt": prompt, "max_new_tokens": 5, "stop_at_eos": False}
        first = httpx.post(base + "/v1/generate", json=body, timeout=60).json()
        second = httpx.post(base + "/v1/generate", json=body, timeout=60).json()
        assert len(first["token_ids"]) == 5 and first["token_ids"] == second["token_ids"]
        assert second["reused_tokens"] >= 16
        stats = httpx.get(base + "/v1/cache/stats").json()
        assert stats["budget_bytes"] == 16 * 1024 * 1024 and stats["prefix_hits"] >= 1
        malformed = httpx.post(
            base + "/v1/generate",
            content=b"{",
            headers={"content-type": "application/json"},
            timeout=10,
        )
        assert malformed.status_code == 422
        # What `curl -d` sends: a JSON body labelled as a form.
        unlabelled = httpx.post(base + "/v1/generate", data={"prompt": "a"}, timeout=10)
        assert unlabelled.status_code == 415
    finally:
        process.terminate()
        process.wait(timeout=30)
