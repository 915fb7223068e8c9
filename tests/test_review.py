"""Tests of the review of auto-coding suggestions: decisions, places, bulk forms, the screen.

The screen is driven through a real pseudo terminal with pexpect.
"""

from __future__ import annotations

import io
import os
import shutil
import sqlite3
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pexpect
import pytest
from click.testing import CliRunner, Result

from qualkit import store
from qualkit.audit import ChangeRecorder
from qualkit.cli import cli
from qualkit.codebook import Codebook
from qualkit.coding import CodingFilter, add_coding
from qualkit.review import ReviewSession, suggestion_ids

ROOT = Path(__file__).resolve().parents[1]
# Five sentences name the ranking (code tournament) and one talks the target
# down (code strategy.underpromise), so auto-coding suggests six codings.
TRANSCRIPT = """\
---
id: R01
province: Hunan
level: city
---

Interviewer: What matters most?

Respondent: The ranking matters. Our ranking fell last year. We talked the targets down. The ranking is public. Every ranking is read by the leaders. A good ranking helps promotion.
"""
SENTENCES = (
    "The ranking matters.",
    "Our ranking fell last year.",
    "We talked the targets down.",
    "The ranking is public.",
    "Every ranking is read by the leaders.",
    "A good ranking helps promotion.",
)


def checkpoint(db: Path) -> None:
    """Move the write-ahead log into the database file, so that copying the file copies the data."""
    connection = sqlite3.connect(db)
    try:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()


@pytest.fixture(scope="module")
def template_db(
    tmp_path_factory: pytest.TempPathFactory, make_codebook: Callable[..., Codebook]
) -> Path:
    """A database with R01 imported and auto-coded by the tiny codebook, built once."""
    from qualkit.project import Project

    folder = tmp_path_factory.mktemp("review")
    (folder / "R01.md").write_text(TRANSCRIPT, encoding="utf-8")
    db = folder / "qualkit.db"
    project = Project(db)
    try:
        project.import_sources([folder / "R01.md"])
        result = project.autocode(make_codebook())
    finally:
        project.close()
    assert result.added == len(SENTENCES)
    checkpoint(db)
    return db


@pytest.fixture
def db_path(template_db: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "qualkit.db"
    shutil.copyfile(template_db, copy)
    return copy


@pytest.fixture
def db(db_path: Path) -> Iterator[Any]:
    opened = store.open_database(db_path)
    yield opened
    opened.close()


def codings(db_path: Path, columns: str = "*") -> list[tuple[Any, ...]]:
    connection = sqlite3.connect(db_path)
    try:
        return connection.execute(
            f"SELECT {columns} FROM codings ORDER BY id"
        ).fetchall()
    finally:
        connection.close()


def invoke(
    runner: CliRunner, db_path: Path, *args: str, coder: str = "alice"
) -> Result:
    return runner.invoke(
        cli,
        ["--db", str(db_path), *args],
        prog_name="qualkit",
        env={"QUALKIT_CODER": coder},
    )


def quote_of(db: Any, coding_id: int) -> str:
    return db.execute("SELECT quote FROM codings WHERE id = ?", [coding_id]).fetchone()[
        0
    ]


# The queue and the decisions


def test_queue_in_text_order(db: Any) -> None:
    quotes = [quote_of(db, coding_id) for coding_id in suggestion_ids(db)]

    assert quotes == list(SENTENCES)


def test_queue_filtered_by_code(db: Any) -> None:
    ids = suggestion_ids(db, CodingFilter(codes=("strategy",)))

    assert [quote_of(db, i) for i in ids] == ["We talked the targets down."]


def test_accept_makes_coding_the_reviewers(db: Any) -> None:
    session = ReviewSession(db, "alice")
    first = session.current_id()
    session.decide("accept")
    row = db.execute(
        "SELECT status, coder, origin, rule FROM codings WHERE id = ?", [first]
    ).fetchone()

    assert row == ("accepted", "alice", "auto", "keyword ranking")


def test_reject_records_reviewer(db: Any) -> None:
    session = ReviewSession(db, "alice")
    first = session.current_id()
    session.decide("reject")

    assert db.execute(
        "SELECT status, coder FROM codings WHERE id = ?", [first]
    ).fetchone() == ("rejected", "alice")


def test_recode_rejects_and_adds(db: Any) -> None:
    session = ReviewSession(db, "alice")
    first = session.current_id()
    session.decide("recode", "strategy")
    rows = db.execute(
        "SELECT code_id, status, origin, coder FROM codings WHERE quote = ? ORDER BY id",
        [SENTENCES[0]],
    ).fetchall()

    assert rows == [
        ("tournament", "rejected", "auto", "alice"),
        ("strategy", "accepted", "manual", "alice"),
    ]
    assert session.current_id() != first


def test_recode_unknown_code_keeps_place(db: Any) -> None:
    session = ReviewSession(db, "alice")
    before = db.execute("SELECT * FROM codings ORDER BY id").fetchall()
    message = session.decide("recode", "tournement")

    assert "Code 'tournement' not found" in message
    assert session.index == 0
    assert db.execute("SELECT * FROM codings ORDER BY id").fetchall() == before


def test_memo_on_suggestion(db: Any) -> None:
    session = ReviewSession(db, "alice")
    session.add_memo("Check the ranking year.")

    assert db.execute("SELECT about, about_id, coder, text FROM memos").fetchall() == [
        ("coding", str(session.current_id()), "alice", "Check the ranking year.")
    ]


def test_skip_and_back(db: Any) -> None:
    session = ReviewSession(db, "alice")
    first = session.current_id()
    session.skip()
    session.back()

    assert session.current_id() == first
    assert db.execute(
        "SELECT count(*) FROM codings WHERE status = 'suggested'"
    ).fetchone() == (6,)


def test_back_changes_decision(db: Any) -> None:
    session = ReviewSession(db, "alice")
    first = session.current_id()
    session.decide("accept")
    session.back()
    session.decide("reject")

    assert db.execute(
        "SELECT status FROM codings WHERE id = ?", [first]
    ).fetchone() == ("rejected",)


def test_new_session_resumes(db: Any) -> None:
    session = ReviewSession(db, "alice")
    queue = list(session.queue)
    session.decide("accept")
    session.skip()
    resumed = ReviewSession(db, "alice")

    assert resumed.current_id() == queue[2]


def test_resume_wraps_to_skipped(db: Any) -> None:
    session = ReviewSession(db, "alice")
    skipped = session.current_id()
    session.skip()
    while not session.finished:
        session.decide("accept")
    resumed = ReviewSession(db, "alice")

    assert resumed.queue == [skipped]
    assert resumed.current_id() == skipped


def test_place_kept_per_coder(db: Any) -> None:
    session = ReviewSession(db, "alice")
    session.skip()
    session.skip()

    assert ReviewSession(db, "bob").index == 0


def test_place_kept_per_filter(db: Any) -> None:
    session = ReviewSession(db, "alice", CodingFilter(codes=("tournament",)))
    session.skip()
    other = ReviewSession(db, "alice", CodingFilter(codes=("strategy",)))

    assert other.index == 0


def test_accept_merges_own_overlapping_coding(db: Any) -> None:
    start = (
        db.execute("SELECT text FROM sources").fetchone()[0].index("ranking matters")
    )
    with store.transaction(db):
        own = add_coding(
            ChangeRecorder(db, "alice", "code add"),
            "R01",
            "tournament",
            start,
            start + 7,
        )
    session = ReviewSession(db, "alice")
    first = session.current_id()
    session.decide("accept")
    rows = db.execute("SELECT id, quote FROM codings WHERE coder = 'alice'").fetchall()

    assert rows == [(first, SENTENCES[0])]
    assert own.coding_id != first


def test_reject_conflicting_own_coding(db: Any) -> None:
    session = ReviewSession(db, "alice")
    first = session.current_id()
    start, end = db.execute(
        "SELECT start_offset, end_offset FROM codings WHERE id = ?", [first]
    ).fetchone()
    with store.transaction(db):
        add_coding(
            ChangeRecorder(db, "alice", "code add"), "R01", "tournament", start, end
        )
    message = session.decide("reject")

    assert "You coded this span with tournament yourself" in message
    assert db.execute(
        "SELECT status FROM codings WHERE id = ?", [first]
    ).fetchone() == ("suggested",)


def test_autocode_keeps_decisions(
    db_path: Path, make_codebook: Callable[..., Codebook]
) -> None:
    from qualkit.project import Project

    project = Project(db_path)
    try:
        session = ReviewSession(project.db, "alice")
        session.decide("accept")
        session.decide("reject")
        before = codings(db_path, "id, status, coder")
        result = project.autocode(make_codebook(), force=True)
    finally:
        project.close()

    assert result.added == 0
    assert codings(db_path, "id, status, coder") == before


# Bulk decisions and the command line


def test_bulk_accept_by_code(runner: CliRunner, db_path: Path) -> None:
    result = invoke(runner, db_path, "review", "--accept", "--code", "tournament")

    assert result.exit_code == 0, result.output
    assert "5 suggestions accepted" in result.stdout
    assert codings(db_path, "code_id, status, coder") == [
        ("tournament", "accepted", "alice"),
        ("tournament", "accepted", "alice"),
        ("strategy.underpromise", "suggested", "autocode"),
        ("tournament", "accepted", "alice"),
        ("tournament", "accepted", "alice"),
        ("tournament", "accepted", "alice"),
    ]


def test_bulk_reject_all(runner: CliRunner, db_path: Path) -> None:
    result = invoke(runner, db_path, "review", "--reject", "--all")

    assert result.exit_code == 0, result.output
    assert {row[0] for row in codings(db_path, "status")} == {"rejected"}


def test_bulk_without_filter_rejected(runner: CliRunner, db_path: Path) -> None:
    result = invoke(runner, db_path, "review", "--accept")

    assert result.exit_code == 2
    assert "would decide every suggestion" in result.stderr


def test_bulk_unknown_code(runner: CliRunner, db_path: Path) -> None:
    result = invoke(runner, db_path, "review", "--accept", "--code", "tournement")

    assert result.exit_code == 1
    assert "Code 'tournement' not found" in result.stderr


def test_undo_after_bulk_restores_rows(runner: CliRunner, db_path: Path) -> None:
    before = codings(db_path)
    invoke(runner, db_path, "review", "--accept", "--where", "province=Hunan")
    result = invoke(runner, db_path, "undo")

    assert result.exit_code == 0, result.output
    assert codings(db_path) == before


def test_screen_needs_terminal(runner: CliRunner, db_path: Path) -> None:
    result = invoke(runner, db_path, "review")

    assert result.exit_code == 2
    assert "needs an interactive terminal" in result.stderr


# The screen, through a pseudo terminal


def spawn_review(db_path: Path, *args: str) -> pexpect.spawn:
    env = {key: value for key, value in os.environ.items() if key != "QUALKIT_DB"}
    env.update(
        {
            "QUALKIT_CODER": "alice",
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(ROOT), env.get("PYTHONPATH")])
            ),
            "TERM": "xterm",
        }
    )
    program = [
        "-c",
        "from qualkit.cli import main; main()",
        "--db",
        str(db_path),
        "review",
        *args,
    ]
    return pexpect.spawn(
        sys.executable,
        program,
        env=env,
        encoding="utf-8",
        timeout=30,
        dimensions=(50, 120),
    )


def shown_coding(child: pexpect.spawn) -> int:
    """Wait for a suggestion screen and return the id of the coding it shows."""
    child.expect(r"coding #(\d+) ")
    coding_id = int(child.match.group(1))
    child.expect(r"\[q\] quit")
    return coding_id


@pytest.fixture(scope="module")
def screen_run(
    template_db: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """Accept two suggestions, reject one and quit on the screen, restart it, then undo three times."""
    db_path = tmp_path_factory.mktemp("screen") / "qualkit.db"
    shutil.copyfile(template_db, db_path)
    opened = store.open_database(db_path)
    queue = suggestion_ids(opened)
    opened.close()
    before = codings(db_path)

    screen = io.StringIO()
    child = spawn_review(db_path)
    child.logfile_read = screen
    shown_ids = []
    for key in "aar":
        shown_ids.append(shown_coding(child))
        child.send(key)
    shown_ids.append(shown_coding(child))
    child.send("q")
    child.expect("next run starts here")
    child.expect(pexpect.EOF)
    after_screen = [row[0] for row in codings(db_path, "status")]

    restarted = spawn_review(db_path)
    resumed = shown_coding(restarted)
    restarted.send("q")
    restarted.expect(pexpect.EOF)

    runner = CliRunner()
    undone = [invoke(runner, db_path, "undo") for _ in range(3)]
    return {
        "queue": queue,
        "shown": shown_ids,
        "resumed": resumed,
        "screen": screen.getvalue(),
        "before": before,
        "after_screen": after_screen,
        "undone": undone,
        "after_undo": codings(db_path),
    }


def test_screen_walks_queue(screen_run: dict[str, Any]) -> None:
    assert screen_run["shown"] == screen_run["queue"][:4]


def test_screen_resumes_at_fourth(screen_run: dict[str, Any]) -> None:
    assert screen_run["resumed"] == screen_run["queue"][3]


def test_screen_stores_decisions(screen_run: dict[str, Any]) -> None:
    assert screen_run["after_screen"] == [
        "accepted",
        "accepted",
        "rejected",
        "suggested",
        "suggested",
        "suggested",
    ]


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("Definition: ", id="definition-label"),
        pytest.param("Cities compared and ranked against each other.", id="definition"),
        pytest.param("Do not use when: ", id="when-not-label"),
        pytest.param(
            "A single city's result without comparison.", id="when-not-to-use"
        ),
        pytest.param("The ranking matters.", id="segment"),
        pytest.param("Our ranking fell last year.", id="context"),
    ],
)
def test_screen_shows(screen_run: dict[str, Any], text: str) -> None:
    assert text in screen_run["screen"]


def test_undo_after_screen_exit_zero(screen_run: dict[str, Any]) -> None:
    assert [result.exit_code for result in screen_run["undone"]] == [0, 0, 0]


def test_undo_after_screen_restores_rows(screen_run: dict[str, Any]) -> None:
    assert screen_run["after_undo"] == screen_run["before"]


def test_screen_memo_recode_back(db_path: Path) -> None:
    child = spawn_review(db_path)
    first = shown_coding(child)
    child.send("m")
    child.expect("Memo")
    child.sendline("Ranking of 2015.")
    child.expect(r"saved on coding #\d+\.")
    child.expect(r"\[q\] quit")
    child.send("c")
    child.expect("Code id for this span")
    child.sendline("strategy")
    second = shown_coding(child)
    child.send("b")
    back = shown_coding(child)
    child.send("q")
    child.expect(pexpect.EOF)
    connection = sqlite3.connect(db_path)
    memos = connection.execute("SELECT about_id, text FROM memos").fetchall()
    recoded = connection.execute(
        "SELECT code_id, status FROM codings WHERE quote = ? ORDER BY id",
        [SENTENCES[0]],
    ).fetchall()
    connection.close()

    assert memos == [(str(first), "Ranking of 2015.")]
    assert recoded == [("tournament", "rejected"), ("strategy", "accepted")]
    assert back == first
    assert second != first
