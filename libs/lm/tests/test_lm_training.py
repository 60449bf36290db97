import pytest
import torch
from lm_testing import TEXTS, tiny_tokenizer

from lm import TokenBlockDataset, build_model, causal_lm_loss, evaluate_loss, perplexity, train_step
from lm.training import batch_indices


@pytest.mark.parametrize("preset", ["tiny", "llama-tiny"])
def test_a_few_steps_reduce_loss_on_a_fixed_batch(preset: str) -> None:
    tokenizer = tiny_tokenizer()
    model = build_model(preset, tokenizer=tokenizer, seed=0)
    blocks = TokenBlockDataset.from_texts(TEXTS, tokenizer, 32)
    batch = torch.stack([blocks[i] for i in range(4)])
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    with torch.no_grad():
        before = float(causal_lm_loss(model.train(False), batch))
    losses = [train_step(model, optimizer, batch) for _ in range(8)]
    with torch.no_grad():
        after = float(causal_lm_loss(model.train(False), batch))
    assert losses[0] == pytest.approx(before, rel=1e-4)
    assert after < before - 0.5


def test_batch_indices_cover_each_epoch_once_and_are_reproducible() -> None:
    batches = [batch_indices(10, 4, step, seed=7) for step in range(5)]
    assert batches == [batch_indices(10, 4, step, seed=7) for step in range(5)]
    flat = [i for batch in batches for i in batch]
    assert sorted(flat[:10]) == list(range(10))
    assert sorted(flat[10:20]) == list(range(10))
    assert flat[:10] != flat[10:20]  # a new permutation each epoch
    assert batch_indices(10, 4, 0, seed=8) != batches[0]


def test_evaluate_loss_is_deterministic_and_restores_mode() -> None:
    tokenizer = tiny_tokenizer()
    model = build_model("tiny", tokenizer=tokenizer, seed=0).train()
    dataset = TokenBlockDataset.from_texts(TEXTS, tokenizer, 16)
    loss = evaluate_loss(model, dataset, batch_size=3, device=torch.device("cpu"))
    assert loss == evaluate_loss(model, dataset, batch_size=3, device=torch.device("cpu"))
    assert model.training
    # Random weights predict roughly uniformly over the vocabulary.
    assert perplexity(loss) == pytest.approx(len(tokenizer), rel=0.5)
    assert perplexity(1e6) == float("inf")
