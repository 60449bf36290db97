import math
from pathlib import Path

import pytest
import torch
from transformers import GPT2LMHeadModel, PreTrainedTokenizerFast

from few_shot.backends import BackendError, CompletionsBackend, HuggingFaceBackend, open_backend
from few_shot.prefix_latency import prefix_cache_latency
from few_shot.prompts import FORMATS, PromptBuilder
from few_shot.scoring import normalise, score_draw
from few_shot.server import create_app, serve
from few_shot.tasks import Task, TaskError


@pytest.fixture()
def backend(tiny_model: GPT2LMHeadModel, tokenizer: PreTrainedTokenizerFast) -> HuggingFaceBackend:
    return HuggingFaceBackend(tiny_model, tokenizer, "tiny", batch_size=2)


def _direct(
    model: GPT2LMHeadModel, tokenizer: PreTrainedTokenizerFast, context: str, cont: str
) -> float:
    ids = tokenizer(context + cont, add_special_tokens=False)["input_ids"]
    n = len(tokenizer(context, add_special_tokens=False)["input_ids"])
    with torch.no_grad():
        logprobs = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0], -1)
    return sum(float(logprobs[i - 1, ids[i]]) for i in range(n, len(ids)))


def test_batched_loglikelihoods_equal_one_at_a_time_and_obey_the_chain_rule(
    backend: HuggingFaceBackend, tiny_model: GPT2LMHeadModel, tokenizer: PreTrainedTokenizerFast
) -> None:
    requests = [("red = ; cat =", " red"), ("cat =", " dog cow"), ("good bad good =", " yes")]
    results = backend.loglikelihood(requests)
    for (context, cont), result in zip(requests, results):
        assert math.isclose(
            result.logprob, _direct(tiny_model, tokenizer, context, cont), abs_tol=1e-4
        )
    both = backend.loglikelihood([("cat =", " dog cow")])[0].logprob
    parts = backend.loglikelihood([("cat =", " dog"), ("cat = dog", " cow")])
    assert math.isclose(both, parts[0].logprob + parts[1].logprob, abs_tol=1e-4)
    assert results[1].tokens == 2


def test_acc_is_the_argmax_of_option_loglikelihoods(
    backend: HuggingFaceBackend, colour_task: Task
) -> None:
    builder = PromptBuilder(colour_task, FORMATS["icl"])
    result = score_draw(backend, colour_task, builder, 2, 0, generation=True)
    assert result.acc is not None and result.exact_match is not None
    hits = 0
    for record in result.prompts:
        scores = record["loglikelihoods"]
        assert record["prediction"] == max(scores, key=scores.__getitem__)
        hits += record["prediction"] == record["target"]
    assert result.acc == hits / len(colour_task.queries)
    assert normalise("  Red. ") == normalise("red")


def test_http_backend_matches_the_local_model_over_a_real_server(
    backend: HuggingFaceBackend,
    tiny_model: GPT2LMHeadModel,
    tokenizer: PreTrainedTokenizerFast,
    colour_task: Task,
) -> None:
    with serve(create_app(tiny_model, tokenizer)) as url:
        remote = open_backend(url)
        assert isinstance(remote, CompletionsBackend)
        requests = [("translate the words : cat =", " red"), ("cat = dog ; cat =", " dog cow")]
        for local, over_http in zip(
            backend.loglikelihood(requests), remote.loglikelihood(requests)
        ):
            assert math.isclose(local.logprob, over_http.logprob, abs_tol=1e-4)
            assert local.tokens == over_http.tokens
            assert local.greedy == over_http.greedy
        assert remote.generate(["cat ="], ";", 4) == backend.generate(["cat ="], ";", 4)
        builder = PromptBuilder(colour_task, FORMATS["icl"])
        assert (
            score_draw(remote, colour_task, builder, 3, 1).acc
            == score_draw(backend, colour_task, builder, 3, 1).acc
        )


def test_prefix_latency_runs_both_modes_over_http_and_reports_no_hit_without_a_cache(
    backend: HuggingFaceBackend,
    tiny_model: GPT2LMHeadModel,
    tokenizer: PreTrainedTokenizerFast,
    colour_task: Task,
) -> None:
    builder = PromptBuilder(colour_task, FORMATS["icl"])
    with serve(create_app(tiny_model, tokenizer)) as url:
        result = prefix_cache_latency(url, colour_task, builder, 3, rounds=2)
        with pytest.raises(TaskError, match="has only"):
            prefix_cache_latency(url, colour_task, builder, 99)
    prompts = [
        builder.render(query, colour_task.demonstrations[:3]).context
        for query in colour_task.queries
    ]
    expected_tokens = [len(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts]
    assert result["queries"] == len(colour_task.queries)
    assert result["prompt_tokens_mean"] == sum(expected_tokens) / len(expected_tokens)
    # This project's server has no prefix cache, so no mode may claim a hit.
    assert result["prefix_hit"] is False
    assert result["cached"]["cached_tokens_mean"] == 0
    assert result["same_answers"] is True
    for mode in ("cached", "uncached"):
        assert result[mode]["seconds_per_query_median"] > 0


def test_an_unreachable_endpoint_is_a_backend_error() -> None:
    from few_shot.server import free_port

    with pytest.raises(BackendError, match="cannot reach"):
        open_backend(f"http://127.0.0.1:{free_port()}")


def test_unknown_label_words_are_found(backend: HuggingFaceBackend) -> None:
    assert backend.unknown_words(["red", "zzzqx"]) == ["zzzqx"]


def test_a_model_directory_loads_through_lm(model_dir: Path) -> None:
    loaded = open_backend(str(model_dir))
    assert isinstance(loaded, HuggingFaceBackend)
    assert loaded.name == str(model_dir)
