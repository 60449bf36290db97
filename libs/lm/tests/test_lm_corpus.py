import sys
from pathlib import Path

import datasets
import pytest
import torch
from lm_testing import TEXTS, tiny_tokenizer

from lm import TokenBlockDataset, load_corpus, split_documents, stdlib_docstrings
from lm.corpus import SKIPPED_MODULES


def test_stdlib_corpus_is_deterministic_clean_and_capped() -> None:
    documents = stdlib_docstrings(50_000)
    assert documents == stdlib_docstrings(50_000)
    assert 0 < sum(map(len, documents)) <= 50_000
    assert len(set(documents)) == len(documents)
    assert all(doc == doc.strip() and "\n\n\n" not in doc for doc in documents)
    assert any("abstract base class" in doc.lower() for doc in documents)


def test_full_stdlib_harvest_skips_modules_with_side_effects() -> None:
    documents = stdlib_docstrings(10**9)
    assert sum(map(len, documents)) > 500_000
    for name in ("antigravity", "this", "tkinter", "turtle", "idlelib"):
        assert name in SKIPPED_MODULES
        assert name not in sys.modules


def test_stdlib_split_is_deterministic_and_non_empty() -> None:
    corpus = load_corpus(max_chars=30_000)
    again = load_corpus("stdlib", max_chars=30_000)
    assert corpus == again
    assert corpus.train and corpus.validation
    assert not set(corpus.train) & set(corpus.validation)
    assert corpus.stats()["source"] == "stdlib"
    assert load_corpus(max_chars=30_000, seed=1).validation != corpus.validation


def test_split_documents_fractions_and_single_document() -> None:
    documents = [f"document {i}" for i in range(100)]
    train, validation = split_documents(documents, validation_fraction=0.1, seed=3)
    assert len(validation) == 10 and len(train) == 90
    assert sorted(train + validation, key=documents.index) == documents
    train, validation = split_documents(["first line\nsecond line\nthird line"])
    assert train and validation and validation[0]
    with pytest.raises(ValueError, match="validation_fraction"):
        split_documents(documents, validation_fraction=1.0)
    with pytest.raises(ValueError, match="empty corpus"):
        split_documents([])


def test_text_files(tmp_path: Path) -> None:
    (tmp_path / "nested").mkdir()
    for i, text in enumerate(TEXTS[:10]):
        (tmp_path / "nested" / f"{i:02}.txt").write_text(text + "\n\n\n\n", encoding="utf-8")
    (tmp_path / "ignored.md").write_text("not text", encoding="utf-8")
    corpus = load_corpus(tmp_path, validation_fraction=0.2)
    assert sorted(corpus.train + corpus.validation) == sorted(TEXTS[:10])
    assert len(corpus.validation) == 2
    single = load_corpus(tmp_path / "nested" / "00.txt")
    assert single.train and single.validation


def test_saved_datasets(tmp_path: Path) -> None:
    datasets.Dataset.from_dict({"text": list(TEXTS), "id": list(range(len(TEXTS)))}).save_to_disk(
        str(tmp_path / "flat")
    )
    corpus = load_corpus(tmp_path / "flat")
    assert len(corpus.train) + len(corpus.validation) == len(TEXTS)
    assert corpus.validation

    datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict({"body": list(TEXTS[:20])}),
            "validation": datasets.Dataset.from_dict({"body": list(TEXTS[20:])}),
        }
    ).save_to_disk(str(tmp_path / "splits"))
    corpus = load_corpus(tmp_path / "splits", text_column="body")
    assert corpus.train == TEXTS[:20] and corpus.validation == TEXTS[20:]
    with pytest.raises(ValueError, match="no 'text' column; its columns are: body"):
        load_corpus(tmp_path / "splits")


def test_bad_corpus_paths(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_corpus(tmp_path / "missing")
    with pytest.raises(ValueError, match="no .txt files"):
        load_corpus(tmp_path)
    (tmp_path / "empty.txt").write_text("  \n", encoding="utf-8")
    with pytest.raises(ValueError, match="only empty text files"):
        load_corpus(tmp_path)


def test_token_blocks() -> None:
    tokenizer = tiny_tokenizer()
    dataset = TokenBlockDataset.from_texts(TEXTS, tokenizer, block_size=16)
    assert len(dataset) > 1
    assert dataset[0].shape == (16,) and dataset[0].dtype == torch.long
    assert tokenizer.eos_token_id in torch.cat([dataset[i] for i in range(len(dataset))])
    assert dataset.num_tokens == 16 * len(dataset)
    with pytest.raises(ValueError, match="too few for one block"):
        TokenBlockDataset.from_texts(["short"], tokenizer, block_size=64)
