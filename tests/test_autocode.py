"""Tests for qualkit.autocode: rule hits in English and Chinese, and re-runs.

The codebook is the tiny one from conftest.py, so the tests do not depend on
the wording of the bundled codebook's keywords.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from qualkit.autocode import AutocodeOptions
from qualkit.codebook import Codebook
from qualkit.nlp import load_pipeline

ENGLISH = """\
Interviewer: Did the city talk the target down?

Respondent: Yes. We talked the targets down before the meeting. The ranking came later.
"""
CHINESE_KEYWORD = "留一手"
# jieba reads 保留 ("keep") as one word, so the keyword's first character
# belongs to the token before it. The tokens are 保留 | 一手.
CHINESE = """\
问：你们怎么报指标？

答：他们总是保留一手，不敢全报。
"""
INTERVIEWER_ONLY = """\
Interviewer: Is it true that cities talk the target down? And the ranking?

Respondent: I would not say so.
"""
THREE_TIMES = """\
Respondent: In 2014 we talked the target down.

In 2015 we talked the target down again.

In 2016 we talked the target down a third time, and the ranking improved.
"""

Rows = list[tuple[Any, ...]]


def codings(project: Any, columns: str = "code_id, matched_text") -> Rows:
    return project.db.execute(
        f"SELECT {columns} FROM codings ORDER BY source_id, start_offset, code_id"
    ).fetchall()


def import_text(
    project: Any, write_transcript: Callable[..., Path], body: str, language: str
) -> str:
    path = write_transcript("T1.md", body, id="T1", language=language)
    project.import_sources([path])
    return project.db.execute("SELECT text FROM sources WHERE id = 'T1'").fetchone()[0]


# English


@pytest.fixture
def english_project(
    project: Any,
    write_transcript: Callable[..., Path],
    make_codebook: Callable[..., Codebook],
) -> Any:
    import_text(project, write_transcript, ENGLISH, "en")
    project.autocode(make_codebook())
    return project


def test_english_keyword_matches_inflections(english_project: Any) -> None:
    assert ("strategy.underpromise", "talked the targets down") in codings(
        english_project
    )


def test_english_coding_is_whole_sentence(english_project: Any) -> None:
    quotes = codings(english_project, "quote")

    assert ("We talked the targets down before the meeting.",) in quotes


def test_english_suggestions_status(english_project: Any) -> None:
    statuses = set(codings(english_project, "origin, status, coder"))

    assert statuses == {("auto", "suggested", "autocode")}


# Chinese


@pytest.fixture
def chinese_project(
    project: Any,
    write_transcript: Callable[..., Path],
    make_codebook: Callable[..., Codebook],
) -> tuple[Any, str]:
    text = import_text(project, write_transcript, CHINESE, "zh")
    project.autocode(make_codebook())
    return project, text


def test_chinese_keyword_split_by_segmenter(chinese_project: tuple[Any, str]) -> None:
    # Tokenize after autocode, which adds the keyword to jieba's dictionary.
    # Even then the segmenter cuts through the keyword in this sentence.
    _, text = chinese_project
    sentence = "他们总是保留一手，不敢全报。"
    start = sentence.index(CHINESE_KEYWORD)
    end = start + len(CHINESE_KEYWORD)
    token_starts = {token.idx for token in load_pipeline("zh")(sentence)}

    assert sentence in text
    assert any(start < boundary < end for boundary in token_starts)


def test_chinese_split_keyword_suggested(chinese_project: tuple[Any, str]) -> None:
    project, _ = chinese_project

    assert codings(project) == [("strategy.underpromise", CHINESE_KEYWORD)]


def test_chinese_split_keyword_quote(chinese_project: tuple[Any, str]) -> None:
    project, _ = chinese_project

    assert codings(project, "quote") == [("他们总是保留一手，不敢全报。",)]


# Interviewer turns


def test_interviewer_turns_not_coded(
    project: Any,
    write_transcript: Callable[..., Path],
    make_codebook: Callable[..., Codebook],
) -> None:
    import_text(project, write_transcript, INTERVIEWER_ONLY, "en")
    project.autocode(make_codebook())

    assert codings(project) == []


def test_interviewer_turns_coded_on_request(
    project: Any,
    write_transcript: Callable[..., Path],
    make_codebook: Callable[..., Codebook],
) -> None:
    import_text(project, write_transcript, INTERVIEWER_ONLY, "en")
    project.autocode(make_codebook(), AutocodeOptions(include_interviewer=True))

    assert codings(project) == [
        ("strategy.underpromise", "talk the target down"),
        ("tournament", "ranking"),
    ]


# Re-runs


@pytest.mark.parametrize(
    "force",
    [pytest.param(False, id="unchanged-skipped"), pytest.param(True, id="forced")],
)
def test_rerun_adds_no_duplicates(
    project: Any,
    write_transcript: Callable[..., Path],
    make_codebook: Callable[..., Codebook],
    force: bool,
) -> None:
    import_text(project, write_transcript, THREE_TIMES, "en")
    codebook = make_codebook()
    project.autocode(codebook)
    first = codings(project, "id, start_offset, end_offset, code_id")

    project.autocode(codebook, force=force)

    assert codings(project, "id, start_offset, end_offset, code_id") == first


def test_forced_rerun_reports_kept(
    project: Any,
    write_transcript: Callable[..., Path],
    make_codebook: Callable[..., Codebook],
) -> None:
    import_text(project, write_transcript, THREE_TIMES, "en")
    codebook = make_codebook()
    first = project.autocode(codebook)

    second = project.autocode(codebook, force=True)

    assert second.added == 0
    assert second.kept == first.added


@pytest.fixture(scope="module")
def reviewed_then_recoded(
    tmp_path_factory: pytest.TempPathFactory, make_codebook: Callable[..., Codebook]
) -> Iterator[dict[str, Rows]]:
    """Code three sentences, accept one and reject one, then re-code.

    The second codebook no longer has the keyword behind those three
    codings, so none of them is a rule hit any more.
    """
    from qualkit.project import Project

    folder = tmp_path_factory.mktemp("reviewed")
    path = folder / "T1.md"
    path.write_text(
        "---\nid: T1\nlanguage: en\n---\n\n" + THREE_TIMES, encoding="utf-8"
    )
    project = Project(folder / "qualkit.db")
    project.import_sources([path])
    project.autocode(make_codebook())
    ids = [
        row[0]
        for row in project.db.execute(
            "SELECT id FROM codings WHERE code_id = 'strategy.underpromise' "
            "ORDER BY start_offset"
        )
    ]
    assert len(ids) == 3, "the transcript must give one suggestion per sentence"
    project.db.execute("UPDATE codings SET status = 'accepted' WHERE id = ?", [ids[0]])
    project.db.execute("UPDATE codings SET status = 'rejected' WHERE id = ?", [ids[1]])
    project.db.conn.commit()
    before = codings(project, "id, code_id, status")

    project.autocode(make_codebook(underpromise_en=("hide reserves",), version="2"))

    yield {"before": before, "after": codings(project, "id, code_id, status")}
    project.close()


@pytest.mark.parametrize(
    "status",
    [pytest.param("accepted", id="accepted"), pytest.param("rejected", id="rejected")],
)
def test_reviewed_coding_survives_rerun(
    reviewed_then_recoded: dict[str, Rows], status: str
) -> None:
    reviewed = [row for row in reviewed_then_recoded["before"] if row[2] == status]

    assert len(reviewed) == 1
    assert reviewed[0] in reviewed_then_recoded["after"]


def test_stale_suggestion_removed(reviewed_then_recoded: dict[str, Rows]) -> None:
    stale = [
        row
        for row in reviewed_then_recoded["before"]
        if row[1] == "strategy.underpromise" and row[2] == "suggested"
    ]

    assert len(stale) == 1
    assert stale[0] not in reviewed_then_recoded["after"]


def test_matching_suggestion_kept(reviewed_then_recoded: dict[str, Rows]) -> None:
    ranking = [row for row in reviewed_then_recoded["before"] if row[1] == "tournament"]

    assert len(ranking) == 1
    assert ranking[0] in reviewed_then_recoded["after"]


def test_rerun_leaves_three_codings(reviewed_then_recoded: dict[str, Rows]) -> None:
    statuses = sorted(row[2] for row in reviewed_then_recoded["after"])

    assert statuses == ["accepted", "rejected", "suggested"]


def test_lowering_keeps_offsets() -> None:
    from qualkit.rules import lower_same_length

    text = "İstanbul 讨价还价 GDP"

    assert len(lower_same_length(text)) == len(text)
    assert lower_same_length(text).endswith("讨价还价 gdp")
