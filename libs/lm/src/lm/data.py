"""Fixed-length blocks of token ids for causal language modelling."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.utils.data import Dataset
from transformers.tokenization_utils_base import PreTrainedTokenizerBase


def tokenize_documents(documents: Sequence[str], tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """Token ids of the documents, concatenated, each followed by the eos token."""
    eos = tokenizer.eos_token_id
    if not isinstance(eos, int):
        raise ValueError("The tokenizer has no eos token to separate documents with.")
    if not documents:
        return []
    encoded: list[list[int]] = tokenizer(list(documents), add_special_tokens=False, verbose=False)[
        "input_ids"
    ]
    ids: list[int] = []
    for document_ids in encoded:
        ids.extend(document_ids)
        ids.append(eos)
    return ids


class TokenBlockDataset(Dataset[torch.Tensor]):
    """A token stream cut into non-overlapping blocks of ``block_size`` ids.

    The tail shorter than a block is dropped. Items are 1-D ``int64`` tensors; a causal LM uses them
    as both inputs and labels (transformers shifts the labels itself).
    """

    def __init__(self, token_ids: Sequence[int] | torch.Tensor, block_size: int) -> None:
        if block_size < 2:
            raise ValueError(f"block_size must be at least 2, got {block_size}.")
        ids = torch.as_tensor(token_ids, dtype=torch.long).flatten()
        count = ids.numel() // block_size
        if count == 0:
            raise ValueError(
                f"Only {ids.numel()} tokens: too few for one block of {block_size}; use more "
                "text or a smaller block size."
            )
        self.block_size = block_size
        self.blocks = ids[: count * block_size].view(count, block_size)

    @classmethod
    def from_texts(
        cls, documents: Sequence[str], tokenizer: PreTrainedTokenizerBase, block_size: int
    ) -> TokenBlockDataset:
        return cls(tokenize_documents(documents, tokenizer), block_size)

    @property
    def num_tokens(self) -> int:
        return int(self.blocks.numel())

    def __len__(self) -> int:
        return int(self.blocks.shape[0])

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.blocks[index]
