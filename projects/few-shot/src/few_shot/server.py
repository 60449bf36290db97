"""A minimal OpenAI-compatible ``/v1/completions`` server over a local causal LM.

It exists to test :class:`few_shot.backends.CompletionsBackend` over real HTTP (and to serve the ICL
model to any OpenAI client): ``prompt`` (a string or a list of strings), ``max_tokens``, ``echo``,
``logprobs`` (top-n per token), ``stop``; greedy decoding only.
"""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import uvicorn
from fastapi import FastAPI, HTTPException
from transformers import PreTrainedModel
from transformers.tokenization_utils_base import PreTrainedTokenizerBase


@dataclasses.dataclass
class CompletionRequest:
    """The body of ``POST /v1/completions`` (FastAPI validates dataclass bodies too)."""

    prompt: str | list[str]
    model: str = "default"
    max_tokens: int = 16
    echo: bool = False
    logprobs: int | None = None
    temperature: float = 0.0
    stop: str | list[str] | None = None


def create_app(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> FastAPI:
    """The FastAPI app serving ``model``."""
    app = FastAPI(title="few-shot completions")
    model.train(False)
    lock = threading.Lock()

    @torch.no_grad()
    def complete(prompt: str, request: CompletionRequest) -> tuple[dict[str, Any], int, int]:
        """One choice, with the prompt's and the completion's token counts (for ``usage``)."""
        encoding = tokenizer(prompt, add_special_tokens=False, return_offsets_mapping=True)
        ids = [int(i) for i in encoding["input_ids"]]
        offsets = [int(start) for start, _ in encoding["offset_mapping"]]
        tokens_text = [prompt[start:end] for start, end in encoding["offset_mapping"]]
        if not ids:
            raise HTTPException(400, "empty prompt")
        top_n = request.logprobs or 0
        token_logprobs: list[float | None] = []
        top_logprobs: list[dict[str, float] | None] = []
        if request.echo and top_n:
            logits = model(input_ids=torch.tensor([ids])).logits[0].float()
            logprobs = torch.log_softmax(logits, dim=-1)
            token_logprobs.append(None)
            top_logprobs.append(None)
            for position in range(1, len(ids)):
                row = logprobs[position - 1]
                token_logprobs.append(float(row[ids[position]]))
                values, indices = row.topk(top_n)
                top_logprobs.append(
                    {
                        str(tokenizer.decode([int(i)])).strip() or str(int(i)): float(v)
                        for v, i in zip(values, indices)
                    }
                )
        stops = [request.stop] if isinstance(request.stop, str) else (request.stop or [])
        generated: list[int] = []
        text = ""
        finish = "length"
        for _ in range(request.max_tokens):
            next_id = int(model(input_ids=torch.tensor([ids + generated])).logits[0, -1].argmax())
            if next_id == tokenizer.eos_token_id:
                finish = "stop"
                break
            generated.append(next_id)
            text = str(tokenizer.decode(generated))
            hit = [stop for stop in stops if stop in text]
            if hit:
                text = text[: text.index(hit[0])]
                finish = "stop"
                break
        # Word-level tokenizers drop spaces; tokens are the prompt's own slices.
        result: dict[str, Any] = {"text": (prompt + text) if request.echo else text}
        result["index"] = 0
        result["finish_reason"] = finish
        result["logprobs"] = (
            {
                "tokens": [t.strip() or t for t in tokens_text],
                "token_logprobs": token_logprobs,
                "top_logprobs": top_logprobs,
                "text_offset": offsets,
            }
            if request.echo and top_n
            else None
        )
        return result, len(ids), len(generated)

    @app.post("/v1/completions")
    def completions(request: CompletionRequest) -> dict[str, Any]:
        prompts = [request.prompt] if isinstance(request.prompt, str) else request.prompt
        with lock:
            answers = [complete(prompt, request) for prompt in prompts]
        choices = [choice for choice, _, _ in answers]
        for index, choice in enumerate(choices):
            choice["index"] = index
        prompt_tokens = sum(used for _, used, _ in answers)
        completion_tokens = sum(used for _, _, used in answers)
        return {
            "id": f"cmpl-{time.time_ns()}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": request.model,
            "choices": choices,
            # No prefix cache here: cached_tokens is always 0 (kv-serve reports its hits).
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
                "prompt_tokens_details": {"cached_tokens": 0},
            },
        }

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve(app: FastAPI, port: int | None = None) -> Iterator[str]:
    """Run ``app`` with uvicorn on 127.0.0.1 in a thread; yields its base URL, stops it after."""
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the completions server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
