"""Importing a changed transcript again keeps codings on their words.

The main case: 20 codings, 5 edits (a typo fixed inside a coding, a
paragraph inserted, a sentence deleted, a word changed next to a coding and
a word changed inside a coded sentence). The expected new offsets are found
by searching each coded phrase in its own turn of the edited text, not by
the code under test.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from qualkit import store
from qualkit.anchoring import OffsetMap, matching_blocks
from qualkit.cli import cli
from qualkit.codebook import Codebook
from qualkit.codebook_versions import store_codebook

EMOJI = "\U0001F600"
EXTENSION_B = "\U00020000"

TURNS = [
    "Interviewer: How are the annual targets set in your county?",
    f"Respondent: The city sends a draft in autumn. We read it and we talk to the departments. {EMOJI} Nobody likes the first draft.",
    "Interviewer: What happens when a target is too high?",
    "Respondent: We talked the targts down before the meeting. The mayor called the deputy director twice.",
    "Interviewer: Did the ranking matter?",
    f"Respondent: The ranking mattered a lot. We came second in the province ranking in 2015. {EXTENSION_B} That was a good year.",
    "Interviewer: And environmental targets?",
    "Respondent: Those are hard. The monitoring data goes straight to Beijing. We cannot bargain about air quality.",
    "Interviewer: Anything else?",
    "Respondent: Only that the township targets are softer. They negotiate every spring with the county office.",
]

# The five edits, as (turn, old words, new words); None as turn inserts a turn first.
EDITS = [
    (3, "targts", "targets"),
    (None, "", "Interviewer: Thank you for your time."),
    (7, " The monitoring data goes straight to Beijing.", ""),
    (5, "2015", "2016"),
    (9, "spring", "autumn"),
]

# (key, turn, coded words, code, coder). Keys name the codings in the checks.
CODINGS = [
    ("annual", 0, "annual targets", "tournament", "A"),
    ("draft", 1, "The city sends a draft in autumn.", "strategy", "A"),
    ("departments", 1, "talk to the departments", "strategy", "A"),
    ("nobody", 1, f"{EMOJI} Nobody likes the first draft.", "strategy", "B"),
    ("typo", 3, "We talked the targts down", "strategy.underpromise", "A"),
    ("mayor", 3, "The mayor called the deputy director twice.", "strategy", "A"),
    ("deputy", 3, "deputy director", "strategy", "B"),
    ("mattered", 5, "The ranking mattered a lot.", "tournament", "A"),
    ("second", 5, "second in the province ranking", "tournament", "B"),
    ("good-year", 5, f"{EXTENSION_B} That was a good year.", "tournament", "A"),
    ("hard", 7, "Those are hard.", "strategy", "A"),
    ("monitoring", 7, "The monitoring data goes straight to Beijing.", "strategy", "A"),
    ("beijing", 7, "Beijing", "strategy", "B"),
    ("air", 7, "We cannot bargain about air quality.", "strategy.underpromise", "B"),
    ("softer", 9, "township targets are softer", "strategy", "A"),
    ("spring", 9, "They negotiate every spring with the county office.", "strategy", "A"),
    ("negotiate", 9, "negotiate", "strategy.underpromise", "A"),
    ("too-high", 2, "too high", "strategy.underpromise", "A"),
    ("ranking", 4, "ranking", "tournament", "A"),
    ("environment", 6, "environmental targets", "strategy", "A"),
]
FLAGGED = {"typo", "monitoring", "beijing", "spring"}


def edited_turns() -> list[str]:
    turns = list(TURNS)
    for turn, old, new in EDITS:
        if turn is None:
            turns.insert(0, new)
            continue
        index = turns.index(TURNS[turn])
        assert turns[index].count(old) == 1
        turns[index] = turns[index].replace(old, new)
    return turns


def new_turn_index(turn: int) -> int:
    return turn + 1  # one turn is inserted before all others


def join(turns: list[str]) -> str:
    return "\n\n".join(turns) + "\n"


def offset_in(text: str, turns: list[str], turn: int, words: str) -> int:
    start = text.index(turns[turn])
    assert turns[turn].count(words) == 1
    return start + turns[turn].index(words)


def add_codings(project: Any, codebook: Codebook, source_id: str) -> dict[str, int]:
    """Store the CODINGS as accepted manual codings; return their ids by key."""
    text = join(TURNS)
    ids = {}
    with store.transaction(project.db):
        store_codebook(project.db, codebook)
        now = store.utc_now()
        for key, turn, words, code, coder in CODINGS:
            start = offset_in(text, TURNS, turn, words)
            ids[key] = project.db["codings"].insert(
                {
                    "source_id": source_id,
                    "start_offset": start,
                    "end_offset": start + len(words),
                    "quote": words,
                    "code_id": code,
                    "coder": coder,
                    "origin": "manual",
                    "status": "accepted",
                    "codebook_version": codebook.version,
                    "created_at": now,
                    "updated_at": now,
                }
            ).last_pk
    return ids


def coding_rows(project: Any) -> dict[int, tuple[int, int, str, int]]:
    rows = project.db.execute("SELECT id, start_offset, end_offset, quote, needs_review FROM codings")
    return {row[0]: tuple(row[1:]) for row in rows}


@pytest.fixture
def reimported(
    project: Any, tmp_path: Path, make_codebook: Callable[..., Codebook]
) -> tuple[Any, dict[str, int], Any]:
    """Import the transcript, code it, edit it in five places and import it again."""
    path = tmp_path / "R1.md"
    path.write_text(join(TURNS), encoding="utf-8")
    project.import_sources([path])
    ids = add_codings(project, make_codebook(), "R1")
    path.write_text(join(edited_turns()), encoding="utf-8")
    result = project.import_sources([path])
    return project, ids, result


UNCHANGED = [pytest.param(c[0], id=c[0]) for c in CODINGS if c[0] not in FLAGGED]


@pytest.mark.parametrize("key", UNCHANGED)
def test_unchanged_words_keep_coding(reimported: tuple[Any, dict[str, int], Any], key: str) -> None:
    project, ids, _ = reimported
    _, turn, words, _, _ = next(c for c in CODINGS if c[0] == key)
    text = join(edited_turns())
    start = offset_in(text, edited_turns(), new_turn_index(turn), words)

    assert coding_rows(project)[ids[key]] == (start, start + len(words), words, 0)


@pytest.mark.parametrize("key", [pytest.param(k, id=k) for k in sorted(FLAGGED)])
def test_changed_words_flagged(reimported: tuple[Any, dict[str, int], Any], key: str) -> None:
    project, ids, _ = reimported

    assert coding_rows(project)[ids[key]][3] == 1


def test_flagged_codings_listed(reimported: tuple[Any, dict[str, int], Any]) -> None:
    _, ids, result = reimported

    assert sorted(item.id for item in result.flagged_codings) == sorted(ids[key] for key in FLAGGED)
    assert result.moved_codings == len(CODINGS) - len(FLAGGED)


def test_every_quote_matches_offsets(reimported: tuple[Any, dict[str, int], Any]) -> None:
    project, _, _ = reimported
    text = project.db.execute("SELECT text FROM sources").fetchone()[0]
    mismatched = [
        coding_id
        for coding_id, (start, end, quote, _) in coding_rows(project).items()
        if text[start:end] != quote
    ]

    assert text == join(edited_turns())
    assert mismatched == []


@pytest.mark.parametrize(
    ("key", "quote", "reason"),
    [
        pytest.param("typo", "We talked the targets down", "changed", id="typo-fixed"),
        pytest.param(
            "spring", "They negotiate every autumn with the county office.", "changed", id="word-replaced"
        ),
        pytest.param("monitoring", None, "deleted", id="sentence-deleted"),
    ],
)
def test_flagged_coding_new_span(
    reimported: tuple[Any, dict[str, int], Any], key: str, quote: str | None, reason: str
) -> None:
    _, ids, result = reimported
    flagged = next(item for item in result.flagged_codings if item.id == ids[key])

    assert flagged.reason == reason
    assert flagged.old_quote == next(c[2] for c in CODINGS if c[0] == key)
    if quote is not None:
        assert flagged.quote == quote


def test_deleted_words_move_to_sentence(reimported: tuple[Any, dict[str, int], Any]) -> None:
    project, ids, _ = reimported
    start, end, quote, _ = coding_rows(project)[ids["monitoring"]]

    assert quote in ("Those are hard.", "We cannot bargain about air quality.")


def test_flagged_coding_memo_keeps_old_words(reimported: tuple[Any, dict[str, int], Any]) -> None:
    project, ids, _ = reimported
    memos = project.db.execute(
        "SELECT text FROM memos WHERE about = 'coding' AND about_id = ?", [str(ids["typo"])]
    ).fetchall()

    assert len(memos) == 1
    assert "We talked the targts down" in memos[0][0]


def test_identical_reimport_no_op(
    project: Any, tmp_path: Path, make_codebook: Callable[..., Codebook]
) -> None:
    path = tmp_path / "R1.md"
    path.write_text(join(TURNS), encoding="utf-8")
    project.import_sources([path])
    add_codings(project, make_codebook(), "R1")
    before = store.content_hash(project.db)
    stamps = project.db.execute("SELECT updated_at FROM sources").fetchone(), store.get_meta(project.db, "updated_at")
    result = project.import_sources([path])

    assert result.unchanged == ["R1"]
    assert not result.changed
    assert store.content_hash(project.db) == before
    assert (project.db.execute("SELECT updated_at FROM sources").fetchone(), store.get_meta(project.db, "updated_at")) == stamps


def test_same_span_collision_resolved(
    project: Any, tmp_path: Path, make_codebook: Callable[..., Codebook]
) -> None:
    # Both codings are one code by one coder inside the sentence that is
    # deleted, so both would land on the sentence that is there now.
    path = tmp_path / "R1.md"
    path.write_text(join(TURNS), encoding="utf-8")
    project.import_sources([path])
    codebook = make_codebook()
    text = join(TURNS)
    with store.transaction(project.db):
        store_codebook(project.db, codebook)
        now = store.utc_now()
        for words in ("monitoring data", "straight to Beijing"):
            start = offset_in(text, TURNS, 7, words)
            project.db["codings"].insert(
                {
                    "source_id": "R1", "start_offset": start, "end_offset": start + len(words),
                    "quote": words, "code_id": "strategy", "coder": "A", "origin": "manual",
                    "status": "accepted", "codebook_version": codebook.version,
                    "created_at": now, "updated_at": now,
                }
            )
    path.write_text(join(edited_turns()), encoding="utf-8")
    result = project.import_sources([path])

    spans = {(item.start, item.end) for item in result.flagged_codings}
    assert len(result.flagged_codings) == 2
    assert len(spans) == 2
    assert all(item.reason == "deleted" for item in result.flagged_codings)


def test_shifted_codings_do_not_collide_midway(
    project: Any, tmp_path: Path, make_codebook: Callable[..., Codebook]
) -> None:
    # After the insertion, "cat" moves onto the span where "dog" was: writing
    # the codings one by one in place would break the uniqueness of
    # (source, span, code, coder) halfway.
    path = tmp_path / "R1.md"
    path.write_text("Respondent: cat dog.\n", encoding="utf-8")
    project.import_sources([path])
    codebook = make_codebook()
    with store.transaction(project.db):
        store_codebook(project.db, codebook)
        now = store.utc_now()
        for start, words in ((12, "cat"), (16, "dog")):
            project.db["codings"].insert(
                {
                    "source_id": "R1", "start_offset": start, "end_offset": start + 3, "quote": words,
                    "code_id": "strategy", "coder": "A", "origin": "manual", "status": "accepted",
                    "codebook_version": codebook.version, "created_at": now, "updated_at": now,
                }
            )
    path.write_text("Respondent: emu cat dog.\n", encoding="utf-8")
    result = project.import_sources([path])

    assert result.updated == ["R1"]
    assert sorted(row[:3] for row in coding_rows(project).values()) == [(16, 19, "cat"), (20, 23, "dog")]


def test_quote_link_alias_moves(
    project: Any, tmp_path: Path, make_codebook: Callable[..., Codebook]
) -> None:
    path = tmp_path / "R1.md"
    path.write_text(join(TURNS), encoding="utf-8")
    project.import_sources([path])
    ids = add_codings(project, make_codebook(), "R1")
    text = join(TURNS)
    alias_start = offset_in(text, TURNS, 5, "province ranking")
    with store.transaction(project.db):
        project.db["targets"].insert({"id": "ranking", "name": "Ranking", "category": "general"})
        project.db["quote_links"].insert(
            {
                "coding_id": ids["second"], "target_id": "ranking", "alias": "province ranking",
                "alias_start": alias_start, "alias_end": alias_start + len("province ranking"),
                "origin": "auto",
            }
        )
    path.write_text(join(edited_turns()), encoding="utf-8")
    project.import_sources([path])

    new_text = join(edited_turns())
    start, end = project.db.execute("SELECT alias_start, alias_end FROM quote_links").fetchone()
    assert new_text[start:end] == "province ranking"


def test_cli_lists_flagged_codings(
    project: Any, tmp_path: Path, make_codebook: Callable[..., Codebook], runner: CliRunner
) -> None:
    path = tmp_path / "R1.md"
    path.write_text(join(TURNS), encoding="utf-8")
    project.import_sources([path])
    ids = add_codings(project, make_codebook(), "R1")
    path.write_text(join(edited_turns()), encoding="utf-8")
    result = runner.invoke(
        cli, ["--db", str(tmp_path / "qualkit.db"), "import", str(path)], prog_name="qualkit"
    )

    assert result.exit_code == 0, result.stderr
    assert "0 added, 1 updated, 0 unchanged." in result.stdout
    assert "16 codings moved with their words; 4 flagged for review" in result.stdout
    listed = [line.split()[0] for line in result.stdout.splitlines()[3:]]
    assert sorted(int(value) for value in listed) == sorted(ids[key] for key in FLAGGED)


# The offset map on its own


def test_matching_blocks_cover_unchanged_text() -> None:
    old, new = join(TURNS), join(edited_turns())
    blocks = matching_blocks(old, new)

    assert all(old[a : a + size] == new[b : b + size] for a, b, size in blocks)
    assert sum(size for _, _, size in blocks) >= len(old) - len(EDITS[2][1]) - len("2015") - len("spring")


def test_offset_map_rejects_span_across_edit() -> None:
    mapping = OffsetMap("We talked the targts down.", "We talked the targets down.")

    assert mapping.span(0, 9) == (0, 9)
    assert mapping.span(0, 20) is None
