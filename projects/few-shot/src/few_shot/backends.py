"""Where log-likelihoods and generations come from: a local Hugging Face causal LM (loaded through
``lm.load_model_spec``) or an OpenAI-compatible ``/v1/completions`` endpoint.

Both answer the two request types of lm-evaluation-harness: ``loglikelihood(context, continuation)``
-> (summed log-probability of the continuation's tokens, whether greedy decoding would produce them)
and ``generate(context, until)``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Protocol

import httpx
import torch
from transformers import PreTrainedModel
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from few_shot import synthetic
from lm import load_model_spec


class BackendError(RuntimeError):
    """A model or endpoint that cannot serve the requests (reported without a traceback)."""


@dataclasses.dataclass(frozen=True)
class LogLikelihood:
    logprob: float
    greedy: bool
    tokens: int


class Backend(Protocol):
    name: str

    def loglikelihood(self, requests: Sequence[tuple[str, str]]) -> list[LogLikelihood]: ...

    def generate(self, contexts: Sequence[str], until: str, max_tokens: int) -> list[str]: ...

    def unknown_words(self, words: Sequence[str]) -> list[str]: ...


def split_pair(context: str, continuation: str) -> tuple[str, str]:
    """Lm-evaluation-harness's rule: trailing spaces of the context move to the continuation."""
    spaces = len(context) - len(context.rstrip())
    if spaces:
        continuation = context[-spaces:] + continuation
        context = context[:-spaces]
    return context, continuation


class HuggingFaceBackend:
    """A causal LM in this process.

    Requests are scored in right-padded batches.
    """

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        name: str,
        batch_size: int = 32,
    ) -> None:
        model.train(False)
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.batch_size = batch_size
        config = model.config
        self.max_length = int(
            getattr(config, "n_positions", None) or getattr(config, "max_position_embeddings")
        )
        prefix = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else 0
        self.prefix_token = int(prefix)

    @classmethod
    def load(cls, spec: str) -> HuggingFaceBackend:
        loaded = load_model_spec(spec, preset_tokenizer=synthetic.build_tokenizer)
        return cls(loaded.model, loaded.tokenizer, loaded.source)

    def _encode(self, text: str) -> list[int]:
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return [int(i) for i in ids]

    def encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """Token ids of the context and of the continuation, split as lm-eval splits them: encode
        the whole string, then cut it at the context's length."""
        context, continuation = split_pair(context, continuation)
        whole = self._encode(context + continuation)
        context_ids = self._encode(context)
        continuation_ids = whole[len(context_ids) :]
        if not context_ids:
            context_ids = [self.prefix_token]
        return context_ids, continuation_ids

    @torch.no_grad()
    def loglikelihood(self, requests: Sequence[tuple[str, str]]) -> list[LogLikelihood]:
        encoded = [self.encode_pair(context, continuation) for context, continuation in requests]
        results: list[LogLikelihood] = []
        for start in range(0, len(encoded), self.batch_size):
            chunk = encoded[start : start + self.batch_size]
            rows = [(c + k)[-(self.max_length + 1) :][:-1] for c, k in chunk]
            width = max(map(len, rows))
            ids = torch.zeros((len(rows), width), dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for index, row in enumerate(rows):
                ids[index, : len(row)] = torch.tensor(row)
                mask[index, : len(row)] = 1
            logprobs = torch.log_softmax(
                self.model(input_ids=ids, attention_mask=mask).logits.float(), dim=-1
            )
            for index, (row, (_, continuation)) in enumerate(zip(rows, chunk)):
                count = len(continuation)
                positions = torch.arange(len(row) - count, len(row))
                wanted = torch.tensor(continuation)
                scores = logprobs[index, positions]
                total = float(scores.gather(1, wanted[:, None]).sum())
                greedy = bool((scores.argmax(-1) == wanted).all())
                results.append(LogLikelihood(total, greedy, count))
        return results

    @torch.no_grad()
    def generate(self, contexts: Sequence[str], until: str, max_tokens: int) -> list[str]:
        outputs = []
        for context in contexts:
            ids = self._encode(context) or [self.prefix_token]
            tokens: list[int] = []
            text = ""
            for _ in range(max_tokens):
                window = torch.tensor([(ids + tokens)[-self.max_length :]])
                next_id = int(self.model(input_ids=window).logits[0, -1].argmax())
                if next_id == self.tokenizer.eos_token_id:
                    break
                tokens.append(next_id)
                text = str(self.tokenizer.decode(tokens))
                if until and until in text:
                    text = text[: text.index(until)]
                    break
            outputs.append(text)
        return outputs

    def unknown_words(self, words: Sequence[str]) -> list[str]:
        unk = self.tokenizer.unk_token_id
        if unk is None:
            return []
        return [word for word in words if unk in self._encode(" " + word)]


class CompletionsBackend:
    """An OpenAI-compatible ``/v1/completions`` endpoint.

    Log-likelihoods are read the way lm-eval's ``local-completions`` model reads them: the prompt is
    context + continuation, sent with ``echo=true``, ``max_tokens=0`` and ``logprobs=1``; the
    continuation's tokens are those whose ``text_offset`` is at or past the context's end.
    """

    def __init__(
        self,
        url: str,
        model: str = "default",
        timeout: float = 60.0,
        extra_body: dict[str, Any] | None = None,
    ) -> None:
        self.base = url.rstrip("/")
        if self.base.endswith("/v1/completions"):
            self.base = self.base[: -len("/v1/completions")]
        self.name = self.base
        self.model = model
        self.client = httpx.Client(timeout=timeout)
        # Server-specific fields sent with every request, e.g. kv-serve's ``use_prefix_cache``
        # (the OpenAI client's ``extra_body``).
        self.extra_body = dict(extra_body or {})

    def complete(self, prompt: str, max_tokens: int, **fields: Any) -> dict[str, Any]:
        """One greedy ``/v1/completions`` request; the whole answer (``choices``, ``usage``)."""
        return self._post(
            {"prompt": prompt, "max_tokens": max_tokens, "temperature": 0.0, **fields}
        )

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        url = self.base + "/v1/completions"
        try:
            response = self.client.post(url, json={"model": self.model, **self.extra_body, **body})
        except httpx.HTTPError as error:
            raise BackendError(f"cannot reach {url}: {error}") from None
        if response.status_code != 200:
            raise BackendError(f"{url} answered {response.status_code}: {response.text[:300]}")
        data: dict[str, Any] = response.json()
        return data

    def loglikelihood(self, requests: Sequence[tuple[str, str]]) -> list[LogLikelihood]:
        results = []
        for context, continuation in requests:
            context, continuation = split_pair(context, continuation)
            data = self._post(
                {
                    "prompt": context + continuation,
                    "max_tokens": 0,
                    "echo": True,
                    "logprobs": 1,
                    "temperature": 0.0,
                }
            )
            try:
                logprobs = data["choices"][0]["logprobs"]
                offsets = logprobs["text_offset"]
                values = logprobs["token_logprobs"]
                tokens = logprobs["tokens"]
                tops = logprobs.get("top_logprobs") or [None] * len(tokens)
            except (KeyError, IndexError, TypeError):
                raise BackendError(
                    f"{self.base}: the completions answer has no echoed logprobs"
                ) from None
            total, greedy, count = 0.0, True, 0
            for offset, value, token, top in zip(offsets, values, tokens, tops):
                if offset < len(context) or value is None:
                    continue
                total += float(value)
                count += 1
                if top:
                    greedy = greedy and max(top, key=top.__getitem__) == token
            results.append(LogLikelihood(total, greedy, count))
        return results

    def generate(self, contexts: Sequence[str], until: str, max_tokens: int) -> list[str]:
        outputs = []
        for context in contexts:
            data = self.complete(context, max_tokens, **({"stop": [until]} if until else {}))
            text = str(data["choices"][0]["text"])
            if until and until in text:
                text = text[: text.index(until)]
            outputs.append(text)
        return outputs

    def unknown_words(self, words: Sequence[str]) -> list[str]:
        return []


def open_backend(model: str) -> Backend:
    """``http(s)://...`` -> :class:`CompletionsBackend`; anything else goes to
    ``lm.load_model_spec``."""
    if model.startswith(("http://", "https://")):
        backend = CompletionsBackend(model)
        backend._post({"prompt": "a", "max_tokens": 0, "echo": True, "logprobs": 1})
        return backend
    return HuggingFaceBackend.load(model)
