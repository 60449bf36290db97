"""The ``kv-serve`` command as a real uvicorn process on 127.0.0.1."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest
from kv_serve_testing import free_port

from kv_serve.config import parse_settings
from kv_serve.server import main


def test_settings_from_env_and_cli() -> None:
    env = {"KV_SERVE_BUDGET_MB": "8", "KV_SERVE_FP16_STORAGE": "true", "KV_SERVE_PORT": "9000"}
    settings = parse_settings(["--port", "9001", "--session-ttl-s", "5"], env)
    assert settings.host == "127.0.0.1"  # loopback unless asked
    assert settings.port == 9001 and settings.budget_bytes == 8 * 1024 * 1024
    assert settings.fp16_storage and settings.session_ttl_s == 5
    with pytest.raises(SystemExit):
        parse_settings(["--block-size", "0"], {})


@pytest.mark.slow
def test_cli_serves_over_http_and_stops() -> None:
    port = free_port()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), KV_SERVE_BUDGET_MB="16")
    command = [
        sys.executable,
        "-c",
        f"from {main.__module__} import main; main()",
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
        assert health["model"] == "preset:tiny"
        prompt = "Return the sum of the list. " * 8  # several 16-token blocks
        body = {"prompt": prompt, "max_new_tokens": 5, "stop_at_eos": False}
        first = httpx.post(base + "/v1/generate", json=body, timeout=60).json()
        second = httpx.post(base + "/v1/generate", json=body, timeout=60).json()
        assert len(first["token_ids"]) == 5 and first["token_ids"] == second["token_ids"]
        assert second["reused_tokens"] >= 16
        stats = httpx.get(base + "/v1/cache/stats").json()
        assert stats["budget_bytes"] == 16 * 1024 * 1024 and stats["prefix_hits"] >= 1
        assert httpx.post(base + "/v1/generate", content=b"{", timeout=10).status_code == 422
    finally:
        process.terminate()
        process.wait(timeout=30)
