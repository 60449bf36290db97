"""Models for the three steps: the starting policy, a policy with a value head, sequence classifiers
for rewards, and the token bookkeeping they share."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import torch
import torch.nn.functional as F
from tokenizers import Tokenizer as RawTokenizer
from tokenizers import decoders, pre_tokenizers, processors, trainers
from tokenizers.models import BPE
from torch import nn
from tqdm import tqdm
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    BertConfig,
    BertModel,
    BertPreTrainedModel,
    PreTrainedModel,
    PreTrainedTokenizerFast,
)
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from lm import PRESETS, build_model, load_model, load_tokenizer, preset_names, train_tokenizer
from ml_core.cli import require, require_positive
from ml_core.threads import configure_threads
from rlhf.task import task_corpus

Tokenizer = PreTrainedTokenizerBase


def save_model_dir(
    model: PreTrainedModel, tokenizer: Tokenizer, out: str | os.PathLike[str]
) -> Path:
    """``save_pretrained`` model and tokenizer into ``out``, atomically: a sibling temporary
    directory renamed into place."""
    destination = Path(out)
    destination.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=destination.parent))
    try:
        model.save_pretrained(temporary)
        tokenizer.save_pretrained(temporary)
        if destination.exists():
            shutil.rmtree(destination)
        os.replace(temporary, destination)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return destination


def set_eval(module: nn.Module) -> None:
    """Evaluation mode (``nn.Module.train(False)``, typed, unlike ``PreTrainedModel.eval``)."""
    module.train(False)


def token_ids(tokenizer: Tokenizer, text: str) -> list[int]:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return [int(i) for i in ids]


def special_id(tokenizer: Tokenizer, name: str) -> int:
    value = getattr(tokenizer, f"{name}_token_id")
    if not isinstance(value, int):
        raise ValueError(f"The tokenizer has no {name} token.")
    return value


def pad_left(sequences: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ids, attention_mask)`` of ``sequences`` padded on the left."""
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, sequence in enumerate(sequences):
        if sequence:
            ids[row, width - len(sequence) :] = torch.tensor(sequence)
            mask[row, width - len(sequence) :] = 1
    return ids, mask


def pad_right(sequences: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ids, attention_mask)`` of ``sequences`` padded on the right."""
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, sequence in enumerate(sequences):
        ids[row, : len(sequence)] = torch.tensor(sequence, dtype=torch.long)
        mask[row, : len(sequence)] = 1
    return ids, mask


def position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions counted over real tokens only, so left padding does not shift them."""
    return (attention_mask.cumsum(dim=1) - 1).clamp(min=0)


def encode_pairs(
    tokenizer: Tokenizer, prompts: Sequence[str], completions: Sequence[str]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded ``prompt + completion + eos``: ``(ids, attention_mask, completion_mask)``."""
    eos = special_id(tokenizer, "eos")
    sequences, completion_spans = [], []
    for prompt, completion in zip(prompts, completions, strict=True):
        prompt_ids = token_ids(tokenizer, prompt)
        completion_ids = token_ids(tokenizer, completion) + [eos]
        sequences.append(prompt_ids + completion_ids)
        completion_spans.append((len(prompt_ids), len(prompt_ids) + len(completion_ids)))
    ids, mask = pad_right(sequences, special_id(tokenizer, "pad"))
    completion_mask = torch.zeros_like(mask)
    for row, (start, end) in enumerate(completion_spans):
        completion_mask[row, start:end] = 1
    return ids, mask, completion_mask


def sequence_logprobs(
    model: PreTrainedModel,
    ids: torch.Tensor,
    attention_mask: torch.Tensor,
    completion_mask: torch.Tensor,
) -> torch.Tensor:
    """Sum of the log-probabilities ``model`` gives the completion tokens, per row."""
    logits = model(input_ids=ids, attention_mask=attention_mask).logits[:, :-1]
    logprobs = torch.gather(F.log_softmax(logits, dim=-1), 2, ids[:, 1:, None]).squeeze(-1)
    return (logprobs * completion_mask[:, 1:]).sum(dim=1)


@dataclasses.dataclass(frozen=True)
class BasePolicyConfig:
    """The starting ("supervised") policy: a preset trained to imitate the task's random answers."""

    out: Path = Path("runs/rlhf/base_policy")
    """Directory for the policy and its tokenizer (save_pretrained)."""

    preset: str = "tiny"
    """Model preset from libs/lm (tiny: GPT-2 layout, llama-tiny: Llama layout)."""

    examples: int = 4000
    """Random task answers to imitate."""

    steps: int = 400
    """Optimiser steps."""

    batch_size: int = 32
    """Examples per step."""

    learning_rate: float = 3e-3
    """AdamW learning rate."""

    seed: int = 0
    """Seeds the tokenizer corpus, the initial weights and the batches."""

    def __post_init__(self) -> None:
        require_preset(self)
        require_positive(self, "examples", "steps", "batch_size", "learning_rate")


def require_preset(config: Any) -> None:
    """``config.preset`` names a ``libs/lm`` preset."""
    require(
        config.preset in PRESETS,
        "preset",
        f"unknown preset {config.preset!r}; choose one of {', '.join(preset_names())}",
    )


def use_torch_threads() -> int:
    """Apply the repository's threading policy (``ml_core.threads``: ``--threads``, ``$ML_THREADS``,
    ``$OMP_NUM_THREADS``, else half the usable CPUs) and return the count.

    These models are tiny: one thread is several times faster per step than two on a busy
    2-core machine, which is what the policy picks there. Every step's run calls this first, so
    a step run from Python follows the same policy as the command line.
    """
    return configure_threads().threads


def task_tokenizer(seed: int = 0) -> Tokenizer:
    """A byte-level BPE trained on the task's texts: every task word becomes one token."""
    texts = [prompt + completion for prompt, completion in task_corpus(2000, seed)]
    return train_tokenizer(texts, vocab_size=400, min_frequency=1)


def train_base_policy(config: BasePolicyConfig) -> dict[str, Any]:
    """Train the starting policy on the task corpus and save it to
    ``config.out``."""
    use_torch_threads()
    tokenizer = task_tokenizer(config.seed)
    model = build_model(config.preset, tokenizer=tokenizer, seed=config.seed)
    examples = task_corpus(config.examples, config.seed + 1)
    ids, mask, _ = encode_pairs(tokenizer, [p for p, _ in examples], [c for _, c in examples])
    labels = ids.masked_fill(mask == 0, -100)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate)
    generator = torch.Generator().manual_seed(config.seed)
    losses = []
    model.train()
    for _ in tqdm(range(config.steps), desc="base policy", unit="step"):
        batch = torch.randint(0, len(ids), (config.batch_size,), generator=generator)
        loss = model(input_ids=ids[batch], attention_mask=mask[batch], labels=labels[batch]).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(float(loss.detach()))
    set_eval(model)
    save_model_dir(model, tokenizer, config.out)
    return {"loss_first": losses[0], "loss_last": losses[-1], "steps": config.steps}


def load_policy(path: str | os.PathLike[str]) -> tuple[PreTrainedModel, Tokenizer]:
    """A causal LM and its tokenizer from a directory (via ``libs/lm``)."""
    tokenizer = load_tokenizer(path)
    tokenizer.padding_side = "left"
    return load_model(path), tokenizer


# The head of a sequence classifier that a causal LM checkpoint does not have.
NEW_HEAD_KEYS = frozenset({"score.weight", "score.bias"})
TRANSFORMERS_LOAD_LOGGER = "transformers.modeling_utils"


class _HeldLoadReports(logging.Filter):
    """Holds back transformers' ``LOAD REPORT`` warnings; every other record passes."""

    def __init__(self) -> None:
        super().__init__()
        self.held: list[logging.LogRecord] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if "LOAD REPORT" in record.getMessage():
            self.held.append(record)
            return False
        return True


@contextlib.contextmanager
def _holding_load_reports() -> Iterator[_HeldLoadReports]:
    logger = logging.getLogger(TRANSFORMERS_LOAD_LOGGER)
    held = _HeldLoadReports()
    logger.addFilter(held)
    try:
        yield held
    finally:
        logger.removeFilter(held)


def load_reward_model(path: str | os.PathLike[str]) -> PreTrainedModel:
    """A one-output sequence classifier from a directory (a causal LM directory gets a new head).

    Starting the reward model from the policy's causal-LM checkpoint leaves its scalar ``score``
    head out of the checkpoint by design, and transformers warns about it with a ``LOAD REPORT``
    table (``score.weight | MISSING``) on every run. That report, and only when the new head is all
    it lists, is dropped here; a report of any other missing, unexpected or mismatched weight is
    logged as transformers wrote it.
    """
    if getattr(AutoConfig.from_pretrained(str(path)), "model_type", None) == "bert":
        return cast(PreTrainedModel, BertRewardModel.from_pretrained(str(path)))
    with _holding_load_reports() as held:
        model, info = AutoModelForSequenceClassification.from_pretrained(
            str(path), num_labels=1, output_loading_info=True
        )
    expected = (
        set(info.get("missing_keys", ())) <= NEW_HEAD_KEYS
        and not info.get("unexpected_keys")
        and not info.get("mismatched_keys")
    )
    if not expected:
        logger = logging.getLogger(TRANSFORMERS_LOAD_LOGGER)
        for record in held.held:
            logger.handle(record)
    return cast(PreTrainedModel, model)


def is_bert(model: PreTrainedModel) -> bool:
    """Whether ``model`` is the separate BERT-style reward model (its own tokenizer and trunk)."""
    return getattr(model.config, "model_type", None) == "bert"


BERT_PAD, BERT_CLS, BERT_SEP = "[PAD]", "[CLS]", "[SEP]"


def bert_tokenizer(texts: Iterable[str], vocab_size: int = 1000) -> PreTrainedTokenizerFast:
    """A byte-level BPE for the BERT reward model, trained offline on ``texts`` the way
    ``lm.train_tokenizer`` trains the policy's, with BERT's special tokens: a pair is encoded as
    ``[CLS] prompt [SEP] completion [SEP]`` with segment ids 0 and 1.

    Deterministic for the same texts in the same order.
    """
    documents = [text for text in texts if text]
    if not documents:
        raise ValueError("Cannot train a tokenizer on empty texts.")
    special = [BERT_PAD, BERT_CLS, BERT_SEP]
    raw = RawTokenizer(BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=max(vocab_size, len(pre_tokenizers.ByteLevel.alphabet()) + len(special)),
        min_frequency=1,
        special_tokens=special,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    raw.train_from_iterator(documents, trainer=trainer)
    cls_id, sep_id = raw.token_to_id(BERT_CLS), raw.token_to_id(BERT_SEP)
    raw.post_processor = processors.TemplateProcessing(
        single=f"{BERT_CLS}:0 $A:0 {BERT_SEP}:0",
        pair=f"{BERT_CLS}:0 $A:0 {BERT_SEP}:0 $B:1 {BERT_SEP}:1",
        special_tokens=[(BERT_CLS, cls_id), (BERT_SEP, sep_id)],
    )
    factory = cast(Callable[..., PreTrainedTokenizerFast], PreTrainedTokenizerFast)
    return factory(
        tokenizer_object=raw,
        cls_token=BERT_CLS,
        sep_token=BERT_SEP,
        pad_token=BERT_PAD,
        clean_up_tokenization_spaces=False,
        model_input_names=["input_ids", "token_type_ids", "attention_mask"],
    )


class BertRewardModel(BertPreTrainedModel):  # type: ignore[no-untyped-call]
    """A BERT encoder (no pooler) and a linear scalar head on the mean of its last hidden states
    over the real tokens: one reward per sequence in ``logits[:, 0]``.

    ``BertForSequenceClassification`` was tried first: its ``tanh`` pooler saturated within a few
    hundred steps at this learning rate, so most rewards came out as the same two values (+-2.97)
    and 17% of held-out pairs tied exactly (41% accuracy). Mean pooling into a linear head has no
    such ceiling.
    """

    def __init__(self, config: BertConfig) -> None:
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        self.score = nn.Linear(config.hidden_size, 1)
        self.post_init()  # type: ignore[no-untyped-call]

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        **_: Any,
    ) -> SequenceClassifierOutput:
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        hidden = self.bert(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state
        weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)
        return SequenceClassifierOutput(logits=self.score(pooled))


def build_bert_reward_model(
    tokenizer: Tokenizer,
    *,
    hidden_size: int = 64,
    layers: int = 2,
    heads: int = 4,
    max_positions: int = 256,
    seed: int = 0,
) -> PreTrainedModel:
    """A small :class:`BertRewardModel` with random weights from ``seed``: nothing is downloaded."""
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=4 * hidden_size,
        max_position_embeddings=max_positions,
        type_vocab_size=2,
        pad_token_id=special_id(tokenizer, "pad"),
    )
    config.num_labels = 1  # one scalar reward per sequence
    torch.manual_seed(seed)
    return BertRewardModel(config)


def reward_scores(
    reward_model: PreTrainedModel,
    tokenizer: Tokenizer,
    prompts: Sequence[str],
    completions: Sequence[str],
) -> torch.Tensor:
    """The scalar reward of each ``prompt + completion`` (with gradients).

    The shared-trunk model reads ``prompt + completion + eos`` in the policy's tokens; the BERT
    model reads ``[CLS] prompt [SEP] completion [SEP]`` in its own tokens, truncated to its
    positions.
    """
    if is_bert(reward_model):
        encoded = tokenizer(
            list(prompts),
            list(completions),
            padding=True,
            truncation=True,
            max_length=int(reward_model.config.max_position_embeddings),
            return_tensors="pt",
        )
        logits = reward_model(**encoded).logits
    else:
        ids, mask, _ = encode_pairs(tokenizer, prompts, completions)
        logits = reward_model(input_ids=ids, attention_mask=mask).logits
    return cast(torch.Tensor, logits[:, 0])


@torch.no_grad()
def score_texts(
    reward_model: PreTrainedModel,
    tokenizer: Tokenizer,
    prompts: Sequence[str],
    completions: Sequence[str],
) -> torch.Tensor:
    """The reward model's scalar score of each ``prompt + completion``."""
    set_eval(reward_model)
    return reward_scores(reward_model, tokenizer, prompts, completions)


class PolicyWithValueHead(nn.Module):
    """A causal LM with a scalar value head on its last hidden state (shared trunk)."""

    def __init__(self, model: PreTrainedModel) -> None:
        super().__init__()
        self.model = model
        self.value_head = nn.Linear(int(model.config.hidden_size), 1)
        nn.init.zeros_(self.value_head.weight)
        nn.init.zeros_(self.value_head.bias)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(logits, values)`` at every position."""
        output = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids(attention_mask),
            output_hidden_states=True,
        )
        values = self.value_head(output.hidden_states[-1]).squeeze(-1)
        return output.logits, values


@dataclasses.dataclass
class Rollout:
    """Sampled responses: left-padded queries and right-padded responses."""

    prompts: list[str]
    completions: list[str]
    query: torch.Tensor
    query_mask: torch.Tensor
    response: torch.Tensor
    response_mask: torch.Tensor


@torch.no_grad()
def sample(
    model: PreTrainedModel, tokenizer: Tokenizer, prompts: Sequence[str], max_new_tokens: int
) -> Rollout:
    """Sample one response per prompt (temperature 1, no top-k/top-p)."""
    set_eval(model)
    eos, pad = special_id(tokenizer, "eos"), special_id(tokenizer, "pad")
    query, query_mask = pad_left([token_ids(tokenizer, p) for p in prompts], pad)
    generate = cast(Callable[..., torch.Tensor], getattr(model, "generate"))
    output = generate(
        input_ids=query,
        attention_mask=query_mask,
        do_sample=True,
        top_k=0,
        top_p=1.0,
        temperature=1.0,
        max_new_tokens=max_new_tokens,
        eos_token_id=eos,
        pad_token_id=pad,
    )
    response = output[:, query.shape[1] :]
    is_eos = (response == eos).long()
    # 1 through the first eos (inclusive); everything after it is padding.
    response_mask = ((is_eos.cumsum(dim=1) - is_eos) == 0).long()
    response = response.masked_fill(response_mask == 0, pad)
    completions = []
    for row in range(len(prompts)):
        kept = [int(t) for t, m in zip(response[row], response_mask[row]) if m and t != eos]
        text = tokenizer.decode(kept, skip_special_tokens=True)
        completions.append(text if isinstance(text, str) else "".join(text))
    return Rollout(list(prompts), completions, query, query_mask, response, response_mask)


def response_logits(
    policy: nn.Module, rollout: Rollout
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Logits (and values, for a :class:`PolicyWithValueHead`) predicting each response token."""
    ids = torch.cat([rollout.query, rollout.response], dim=1)
    mask = torch.cat([rollout.query_mask, rollout.response_mask], dim=1)
    start, end = rollout.query.shape[1] - 1, ids.shape[1] - 1
    if isinstance(policy, PolicyWithValueHead):
        logits, values = policy(ids, mask)
        return logits[:, start:end], values[:, start:end]
    output = policy(input_ids=ids, attention_mask=mask, position_ids=position_ids(mask))
    return output.logits[:, start:end], None


def token_logprobs(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Log-probability of each of ``tokens`` under ``logits``."""
    return torch.gather(F.log_softmax(logits, dim=-1), 2, tokens[..., None]).squeeze(-1)
