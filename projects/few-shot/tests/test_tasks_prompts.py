import json
import random
from pathlib import Path

import pytest

from few_shot import synthetic
from few_shot.prompts import BM25, FORMATS, PromptBuilder
from few_shot.tasks import Example, Task, TaskError, load_task, write_task


def test_jsonl_round_trip_and_csv_load(tmp_path: Path, colour_task: Task) -> None:
    write_task(colour_task, tmp_path / "task.jsonl")
    assert load_task(tmp_path / "task.jsonl") == colour_task
    (tmp_path / "task.csv").write_text(
        "kind,input,target,instruction,options\n"
        "meta,,,say it :,yes|no\n"
        "demo,a b,yes,,\n"
        "query,c,no,,\n"
    )
    task = load_task(tmp_path / "task.csv")
    assert task.instruction == "say it :"
    assert task.options == ("yes", "no")
    assert task.demonstrations == (Example("a b", "yes"),)
    assert task.queries == (Example("c", "no"),)


@pytest.mark.parametrize(
    "lines, message",
    [
        ([{"kind": "meta", "name": "t"}, {"kind": "query", "input": "x"}], ":2: missing"),
        ([{"kind": "demo", "input": "x", "target": "y"}], "no queries"),
        ([{"kind": "sample", "input": "x", "target": "y"}], "field 'kind'"),
        (
            [
                {"kind": "meta", "options": ["a", "b"]},
                {"kind": "query", "input": "x", "target": "c"},
            ],
            "not one of the options",
        ),
    ],
)
def test_bad_task_files_are_clear_errors(
    tmp_path: Path, lines: list[dict[str, str]], message: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    with pytest.raises(TaskError, match=message):
        load_task(path)


def test_csv_without_a_target_column_is_refused(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("kind,input\nquery,x\n")
    with pytest.raises(TaskError, match="lacks the column"):
        load_task(tmp_path / "t.csv")


def test_zero_one_and_k_shot_prompts_have_the_lm_eval_layout(colour_task: Task) -> None:
    builder = PromptBuilder(colour_task, FORMATS["icl"])
    query = colour_task.queries[0]
    zero = builder.build(query, 0, rng=random.Random(0))
    assert zero.context == f"translate the words : {query.input} ="
    first = builder.build(query, 2, selection="first", rng=random.Random(0))
    pool = colour_task.demonstrations
    assert first.context == (
        f"translate the words : {pool[0].input} = {pool[0].target} ; "
        f"{pool[1].input} = {pool[1].target} ; {query.input} ="
    )
    with pytest.raises(TaskError, match="only 9"):
        builder.build(query, 10, rng=random.Random(0))


def test_balanced_selection_covers_every_label_and_similar_puts_matches_first(
    colour_task: Task,
) -> None:
    builder = PromptBuilder(colour_task, FORMATS["icl"])
    query = colour_task.queries[1]
    for seed in range(5):
        chosen = builder.select(query, 3, "balanced", random.Random(seed))
        assert sorted(e.target for e in chosen) == ["blue", "green", "red"]
        similar = builder.select(query, 3, "similar", random.Random(seed))
        assert all(e.input == query.input for e in similar)
    draws = {tuple(builder.select(query, 3, "random", random.Random(s))) for s in range(5)}
    assert len(draws) > 1


def test_bm25_prefers_documents_sharing_rare_terms() -> None:
    scores = BM25(["good nice", "bad awful", "good bad"]).scores("awful")
    assert scores.index(max(scores)) == 1
    assert scores[0] == 0.0


def test_evaluation_languages_are_held_out_pairs_and_training_pairs_are_uniform() -> None:
    task = synthetic.invented_language_task(seed=100)
    assert len(task["options"]) == 4
    for record in task["queries"]:
        assert synthetic.held_out(record["input"], record["target"])
    rng = random.Random(0)
    pairs = [
        pair
        for _ in range(400)
        for pair in synthetic._sample_mapping(rng, 5, evaluation=False).items()
    ]
    share = sum(synthetic.held_out(s, t) for s, t in pairs) / len(pairs)
    assert 0.2 < share < 0.3  # about the held-out quarter: no pair is avoided in training


def test_odd_sum_labels_follow_the_two_step_rule() -> None:
    for record in synthetic.odd_sum_task(seed=3)["queries"]:
        numbers = [int(n) for n in record["input"].split()]
        even = sum(n for n in numbers if n % 2) % 2 == 0
        assert record["target"] == ("yes" if even else "no")
