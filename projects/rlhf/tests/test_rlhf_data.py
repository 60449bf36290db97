import json
from pathlib import Path

import pytest

from rlhf.data import (
    PreferenceDataError,
    PreferencePair,
    load_preferences,
    load_prompts,
    ranking_to_pairs,
    split_hh_dialogue,
)


def test_ranking_expands_into_all_pairs() -> None:
    pairs = ranking_to_pairs("p", ["a", "b", "c"])
    assert [(p.chosen, p.rejected) for p in pairs] == [("a", "b"), ("a", "c"), ("b", "c")]
    scored = ranking_to_pairs("p", ["a", "b", "c", "d"], [1.0, 3.0, 2.0, 2.0])
    # 4 responses give 6 pairs; the tie (c, d) gives none.
    assert {(p.chosen, p.rejected) for p in scored} == {
        ("b", "a"),
        ("c", "a"),
        ("d", "a"),
        ("b", "c"),
        ("b", "d"),
    }


def test_hh_dialogues_split_at_the_last_assistant_turn() -> None:
    prompt = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: help?\n\nAssistant:"
    pair = split_hh_dialogue(prompt + " sure", prompt + " no")
    assert pair == PreferencePair(prompt, " sure", " no")
    with pytest.raises(ValueError, match="share"):
        split_hh_dialogue(prompt + " sure", "\n\nHuman: other\n\nAssistant: no")


def test_jsonl_with_every_row_format(tmp_path: Path) -> None:
    rows = [
        {"prompt": "p", "chosen": "good", "rejected": "bad"},
        {"chosen": "\n\nHuman: q\n\nAssistant: yes", "rejected": "\n\nHuman: q\n\nAssistant: no"},
        {"prompt": "r", "responses": ["x", "y", "z"]},
    ]
    path = tmp_path / "prefs.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows) + "\n")
    pairs = load_preferences(path)
    assert len(pairs) == 1 + 1 + 3
    assert pairs[1] == PreferencePair("\n\nHuman: q\n\nAssistant:", " yes", " no")


def test_csv_rows_and_ranking_cells(tmp_path: Path) -> None:
    path = tmp_path / "prefs.csv"
    path.write_text("prompt,chosen,rejected\np,good,bad\nq,fine,worse\n")
    assert load_preferences(path)[1] == PreferencePair("q", "fine", "worse")
    ranked = tmp_path / "ranked.csv"
    ranked.write_text('prompt,responses,scores\nq,"[""a"", ""b""]","[0, 1]"\n')
    assert load_preferences(ranked) == [PreferencePair("q", "b", "a")]


def test_saved_datasets_directory(tmp_path: Path) -> None:
    import datasets

    datasets.Dataset.from_list([{"prompt": "p", "chosen": "c", "rejected": "r"}]).save_to_disk(
        str(tmp_path / "saved")
    )
    assert load_preferences(tmp_path / "saved") == [PreferencePair("p", "c", "r")]


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (
            ['{"prompt": "p", "chosen": "c", "rejected": "r"}', '{"prompt": "p", "chosen": "c"}'],
            "row 2: missing 'rejected'",
        ),
        (['{"prompt": "p", "chosen": "c", "rejected": "r"}', "{not json"], "row 2: invalid JSON"),
        (['{"prompt": "p", "chosen": 3, "rejected": "r"}'], "row 1: 'chosen' must be text"),
        (['{"prompt": "p", "chosen": "same", "rejected": "same"}'], "row 1: 'chosen' and"),
        (['{"chosen": "no turns", "rejected": "x"}'], "row 1: 'chosen' has no 'Assistant:'"),
        (['{"prompt": "p", "responses": ["only one"]}'], "row 1: 'responses' needs at least 2"),
        (["[1, 2]"], "row 1: expected a JSON object"),
    ],
)
def test_bad_rows_are_named(tmp_path: Path, lines: list[str], message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(PreferenceDataError, match=message.replace("(", r"\(")):
        load_preferences(path)


def test_missing_and_unsupported_files(tmp_path: Path) -> None:
    with pytest.raises(PreferenceDataError, match="no such file"):
        load_preferences(tmp_path / "missing.jsonl")
    (tmp_path / "data.txt").write_text("hello")
    with pytest.raises(PreferenceDataError, match="unsupported file type"):
        load_preferences(tmp_path / "data.txt")


def test_prompt_only_dataset(tmp_path: Path) -> None:
    path = tmp_path / "prompts.jsonl"
    path.write_text('{"prompt": "a"}\n{"prompt": "b"}\n')
    assert load_prompts(path) == ["a", "b"]
    path.write_text('{"prompt": "a"}\n{"text": "b"}\n')
    with pytest.raises(PreferenceDataError, match="row 2: missing 'prompt'"):
        load_prompts(path)


def test_four_field_comparisons_in_jsonl_and_csv(tmp_path: Path) -> None:
    rows = [
        {"input": "post one", "summary_1": "good", "summary_2": "bad", "preference": 1},
        {"input": "post two", "summary_1": "worse", "summary_2": "better", "preference": 2},
        {"input": "post three", "summary1": "a", "Summary 2": "b", "preference": "2"},
    ]
    path = tmp_path / "comparisons.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    assert load_preferences(path) == [
        PreferencePair("post one", "good", "bad"),
        PreferencePair("post two", "better", "worse"),
        PreferencePair("post three", "b", "a"),
    ]
    csv_path = tmp_path / "comparisons.csv"
    csv_path.write_text(
        'Input,Summary 1,Summary 2,Preference\n"a post, with a comma",first,second,2\nq,x,y, 1\n'
    )
    assert load_preferences(csv_path) == [
        PreferencePair("a post, with a comma", "second", "first"),
        PreferencePair("q", "x", "y"),
    ]


GOOD_COMPARISON = '{"input": "p", "summary_1": "a", "summary_2": "b", "preference": 1}'


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"input": "p", "summary_1": "a", "preference": 1}', "row 2: missing 'summary_2'"),
        ('{"summary_1": "a", "summary_2": "b", "preference": 1}', "row 2: missing 'input'"),
        ('{"input": "p", "summary_1": "a", "summary_2": "b"}', "row 2: missing 'preference'"),
        (
            '{"input": "p", "summary_1": "a", "summary_2": "b", "preference": 3}',
            "row 2: 'preference' must be 1 or 2 (the preferred summary), got 3",
        ),
        (
            '{"input": "p", "summary_1": "a", "summary_2": "b", "preference": "first"}',
            "row 2: 'preference' must be 1 or 2 (the preferred summary), got 'first'",
        ),
        (
            '{"input": "p", "summary_1": "a", "summary_2": "b", "preference": true}',
            "row 2: 'preference' must be 1 or 2",
        ),
        (
            '{"input": "p", "summary_1": " ", "summary_2": "b", "preference": 1}',
            "empty 'summary_1'",
        ),
        ('{"input": "", "summary_1": "a", "summary_2": "b", "preference": 1}', "empty 'input'"),
        (
            '{"input": "p", "summary_1": "same", "summary_2": "same", "preference": 2}',
            "row 2: 'summary_1' and 'summary_2' are identical",
        ),
        (
            '{"input": "p", "summary_1": 5, "summary_2": "b", "preference": 2}',
            "row 2: 'summary_1' must be text",
        ),
    ],
)
def test_bad_comparison_rows_are_named(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(GOOD_COMPARISON + "\n" + line + "\n")
    with pytest.raises(PreferenceDataError) as raised:
        load_preferences(path)
    assert str(raised.value).startswith(f"{path} row 2: ")
    assert message in str(raised.value)


def test_bad_comparison_csv_rows_are_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("input,summary_1,summary_2,preference\np,a,b,1\np,a,b,\np,a,b,0\n")
    with pytest.raises(PreferenceDataError, match=r"bad.csv row 2: empty 'preference'\.$"):
        load_preferences(path)
    path.write_text("input,summary_1,summary_2,preference\np,a,b,1\np,a,b,0\n")
    with pytest.raises(PreferenceDataError, match=r"bad.csv row 2: 'preference' must be 1 or 2"):
        load_preferences(path)
    path.write_text("input,summary_1,summary_2,preference\np,a,b\n")
    with pytest.raises(PreferenceDataError, match=r"bad.csv row 1: missing 'preference'"):
        load_preferences(path)
