"""Tests of ``qualkit clone``: a coder's own copy of a project, blind to the others.

The project has one English transcript imported with the real spaCy
pipeline, a codebook with one keyword rule, an auto-coding suggestion that
bob accepted, and codings and memos by alice and bob.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from qualkit import store
from qualkit.cli import cli
from qualkit.clone import sources_fingerprint

TRANSCRIPT = """\
---
id: E01
province: Hunan
level: city
---

Interviewer: How are the targets set?

Respondent: We talk the growth target down first. The ranking is published every spring. Our mayor watches it closely.

Interviewer: And the environment?

Respondent: That target is a veto target.
"""
CODEBOOK = """\
codebook:
  id: blind
  version: "1"
codes:
  - id: strategy
    label: Strategy
    definition: A way a lower level tries to obtain targets that suit it.
    when_to_use: A bargaining move is described.
    when_not_to_use: No move is described.
    example: We talk the target down.
  - id: tournament
    label: Ranking
    definition: Jurisdictions compared and ranked against each other.
    when_to_use: A ranking is named.
    when_not_to_use: A single result without comparison.
    example: The ranking matters.
    rules:
      en:
        keywords: [ranking]
  - id: veto
    label: Veto target
    definition: A target whose failure cancels every other success.
    when_to_use: A veto is named.
    when_not_to_use: An ordinary binding target.
    example: It is a veto target.
"""
BOB_MEMO = "Bob thinks the mayor is the key actor."
# Tables a blind clone copies whole.
SHARED_TABLES = (
    "cases",
    "sources",
    "segments",
    "codebooks",
    "codes",
    "targets",
    "target_values",
    "scores",
)


def invoke(runner: CliRunner, db: Path, *args: str, coder: str | None = None) -> Result:
    env = {"QUALKIT_CODER": coder} if coder else {"QUALKIT_CODER": None}
    return runner.invoke(cli, ["--db", str(db), *args], prog_name="qualkit", env=env)


def ok(result: Result) -> Result:
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    return result


def rows(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    connection = sqlite3.connect(db)
    try:
        return connection.execute(sql, params).fetchall()
    finally:
        connection.close()


def content_hash(db: Path) -> str:
    opened = store.open_database(db, create=False)
    try:
        return store.content_hash(opened)
    finally:
        opened.close()


def add(
    runner: CliRunner, db: Path, code: str, segment: int, coder: str, *extra: str
) -> int:
    result = ok(
        invoke(
            runner,
            db,
            "code",
            "add",
            "E01",
            "--code",
            code,
            "--segment",
            str(segment),
            *extra,
            coder=coder,
        )
    )
    return int(re.search(r"Coding #(\d+)", result.output).group(1))


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project with alice's and bob's work, built once."""
    folder = tmp_path_factory.mktemp("clone")
    (folder / "E01.md").write_text(TRANSCRIPT, encoding="utf-8")
    (folder / "codebook.yaml").write_text(CODEBOOK, encoding="utf-8")
    db = folder / "project.db"
    runner = CliRunner()

    ok(invoke(runner, db, "import", str(folder / "E01.md")))
    ok(
        invoke(
            runner, db, "codebook", "apply", str(folder / "codebook.yaml"), coder="lead"
        )
    )
    ok(invoke(runner, db, "autocode", "--codebook", str(folder / "codebook.yaml")))

    suggestion = rows(db, "SELECT id FROM codings WHERE coder = 'autocode'")[0][0]
    ok(invoke(runner, db, "review", "--accept", "--id", str(suggestion), coder="bob"))

    add(
        runner,
        db,
        "strategy",
        1,
        "alice",
        "--memo",
        "Alice: a clear case of talking down.",
    )
    add(runner, db, "veto", 5, "alice")
    add(runner, db, "strategy", 1, "bob", "--memo", BOB_MEMO)
    ok(
        invoke(
            runner,
            db,
            "memo",
            "add",
            "--source",
            "E01",
            "--text",
            "Bob's note on the whole interview.",
            coder="bob",
        )
    )

    connection = sqlite3.connect(db)
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    return db


@pytest.fixture
def project(template: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "project.db"
    shutil.copyfile(template, copy)
    return copy


def test_blind_clone_keeps_own_codings(
    runner: CliRunner, project: Path, tmp_path: Path
) -> None:
    clone = tmp_path / "alice.db"

    result = ok(invoke(runner, project, "clone", str(clone), "--coder", "Alice"))

    assert "Wrote" in result.output
    coders = rows(
        clone, "SELECT coder, status, code_id FROM codings ORDER BY code_id, coder"
    )
    assert coders == [
        ("alice", "accepted", "strategy"),
        ("autocode", "suggested", "tournament"),
        ("alice", "accepted", "veto"),
    ]
    memos = rows(clone, "SELECT coder, text FROM memos")
    assert memos == [("alice", "Alice: a clear case of talking down.")]


def test_blind_clone_restores_decided_suggestion(
    runner: CliRunner, project: Path, tmp_path: Path
) -> None:
    before = rows(
        project,
        "SELECT start_offset, end_offset, rule FROM codings WHERE code_id = 'tournament'",
    )
    clone = tmp_path / "alice.db"

    ok(invoke(runner, project, "clone", str(clone), "--coder", "alice"))

    after = rows(
        clone,
        "SELECT start_offset, end_offset, rule, coder, status FROM codings WHERE code_id = 'tournament'",
    )
    assert after == [(*before[0], "autocode", "suggested")]


def test_blind_clone_drops_others_history(
    runner: CliRunner, project: Path, tmp_path: Path
) -> None:
    clone = tmp_path / "alice.db"

    ok(invoke(runner, project, "clone", str(clone), "--coder", "alice"))

    history = rows(
        clone,
        "SELECT DISTINCT coder, table_name FROM audit_log ORDER BY coder, table_name",
    )
    assert ("bob", "codings") not in history
    assert ("bob", "memos") not in history
    assert ("alice", "codings") in history
    assert ("lead", "codes") in history
    assert BOB_MEMO.encode() in project.read_bytes()
    assert BOB_MEMO.encode() not in clone.read_bytes()


def test_blind_clone_copies_shared_tables(
    runner: CliRunner, project: Path, tmp_path: Path
) -> None:
    clone = tmp_path / "alice.db"

    ok(invoke(runner, project, "clone", str(clone), "--coder", "alice"))

    for table in SHARED_TABLES:
        assert rows(clone, f"SELECT * FROM [{table}]") == rows(
            project, f"SELECT * FROM [{table}]"
        ), table
    assert rows(clone, "PRAGMA integrity_check") == [("ok",)]
    assert rows(clone, "PRAGMA foreign_key_check") == []


def test_clone_records_origin_in_meta(
    runner: CliRunner, project: Path, tmp_path: Path
) -> None:
    clone = tmp_path / "alice.db"

    ok(invoke(runner, project, "clone", str(clone), "--coder", "alice"))

    meta = dict(rows(clone, "SELECT key, value FROM meta WHERE key LIKE 'clone%'"))
    connection = sqlite3.connect(project)
    expected = sources_fingerprint(connection)
    connection.close()
    assert meta["clone_of"] == expected
    assert meta["clone_coder"] == "alice"
    assert meta["clone_blind"] == "1"
    assert meta["clone_source"] == str(project.resolve())
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00",
        rows(clone, "SELECT value FROM meta WHERE key = 'cloned_at'")[0][0],
    )


def test_open_clone_keeps_everything(
    runner: CliRunner, project: Path, tmp_path: Path
) -> None:
    clone = tmp_path / "lead.db"

    ok(invoke(runner, project, "clone", str(clone), "--coder", "lead", "--no-blind"))

    assert content_hash(clone) == content_hash(project)
    assert rows(clone, "SELECT value FROM meta WHERE key = 'clone_blind'") == [("0",)]


def test_clone_is_a_working_project(
    runner: CliRunner, project: Path, tmp_path: Path
) -> None:
    clone = tmp_path / "alice.db"
    ok(invoke(runner, project, "clone", str(clone), "--coder", "alice"))
    before = content_hash(clone)

    add(runner, clone, "tournament", 2, "alice")
    ok(invoke(runner, clone, "undo", coder="alice"))

    assert content_hash(clone) == before
    assert rows(clone, "PRAGMA journal_mode") == [("wal",)]


def test_clone_rejects_existing_file(
    runner: CliRunner, project: Path, tmp_path: Path
) -> None:
    clone = tmp_path / "alice.db"
    clone.write_text("an earlier file", encoding="utf-8")

    result = invoke(runner, project, "clone", str(clone), "--coder", "alice")

    assert result.exit_code == 1
    assert "already exists" in result.stderr
    assert clone.read_text(encoding="utf-8") == "an earlier file"


def test_clone_force_replaces_file_and_log(
    runner: CliRunner, project: Path, tmp_path: Path
) -> None:
    clone = tmp_path / "alice.db"
    clone.write_text("an earlier file", encoding="utf-8")
    Path(f"{clone}-wal").write_bytes(b"a stale write-ahead log")

    ok(invoke(runner, project, "clone", str(clone), "--coder", "alice", "--force"))

    assert not Path(f"{clone}-wal").exists()
    assert rows(clone, "PRAGMA integrity_check") == [("ok",)]
    assert rows(clone, "SELECT count(*) FROM codings WHERE coder = 'alice'") == [(2,)]
    assert [path.name for path in tmp_path.iterdir() if "partial" in path.name] == []


def test_clone_rejects_project_itself(runner: CliRunner, project: Path) -> None:
    digest = content_hash(project)

    result = invoke(
        runner, project, "clone", str(project), "--coder", "alice", "--force"
    )

    assert result.exit_code == 1
    assert "is the project database itself" in result.stderr
    assert content_hash(project) == digest


def test_clone_needs_a_human_coder(
    runner: CliRunner, project: Path, tmp_path: Path
) -> None:
    missing = invoke(runner, project, "clone", str(tmp_path / "a.db"))
    reserved = invoke(
        runner, project, "clone", str(tmp_path / "b.db"), "--coder", "autocode"
    )

    assert missing.exit_code == 2
    assert "--coder" in missing.stderr
    assert reserved.exit_code == 1
    assert "reserved" in reserved.stderr
    assert not (tmp_path / "b.db").exists()


def test_clone_ignores_uncommitted_write(
    runner: CliRunner, project: Path, tmp_path: Path
) -> None:
    writer = sqlite3.connect(project, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("DELETE FROM codings WHERE coder = 'alice'")
    clone = tmp_path / "alice.db"
    try:
        ok(invoke(runner, project, "clone", str(clone), "--coder", "alice"))
    finally:
        writer.execute("COMMIT")
        writer.close()

    assert rows(clone, "SELECT count(*) FROM codings WHERE coder = 'alice'") == [(2,)]
    assert rows(clone, "PRAGMA integrity_check") == [("ok",)]
    assert rows(project, "SELECT count(*) FROM codings WHERE coder = 'alice'") == [(0,)]
