"""Tests for qualkit.store: schema creation, version checks and transactions."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlite_utils

from qualkit import store
from qualkit.errors import StoreError

TABLES = (
    "meta",
    "cases",
    "metadata_conflicts",
    "sources",
    "segments",
    "codebooks",
    "codes",
    "codings",
    "autocode_state",
    "memos",
    "targets",
    "target_aliases",
    "quote_links",
    "target_values",
    "target_points",
    "scores",
)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "qualkit.db"


@pytest.fixture
def db(db_path: Path) -> Iterator[sqlite_utils.Database]:
    """A new qualkit database, closed after the test."""
    opened = store.open_database(db_path)
    yield opened
    opened.close()


@pytest.fixture
def foreign_db(tmp_path: Path) -> Path:
    """A SQLite file written by another program, in the default journal mode."""
    path = tmp_path / "notes.db"
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
    connection.commit()
    connection.close()
    return path


def test_new_database_schema_version(db: sqlite_utils.Database) -> None:
    assert store.get_meta(db, "schema_version") == str(store.SCHEMA_VERSION)


@pytest.mark.parametrize("table", [pytest.param(name, id=name) for name in TABLES])
def test_new_database_has_table(db: sqlite_utils.Database, table: str) -> None:
    assert table in db.table_names()


def test_new_database_foreign_keys_on(db: sqlite_utils.Database) -> None:
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_segment_without_source_rejected(db: sqlite_utils.Database) -> None:
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        db.execute(
            "INSERT INTO segments "
            "(source_id, kind, position, start_offset, end_offset) "
            "VALUES ('missing', 'turn', 0, 0, 5)"
        )


def test_reopen_keeps_schema_version(db_path: Path) -> None:
    store.open_database(db_path).close()
    db = store.open_database(db_path, create=False)

    assert store.get_meta(db, "schema_version") == str(store.SCHEMA_VERSION)


def test_open_missing_without_create(db_path: Path) -> None:
    with pytest.raises(StoreError, match="not found"):
        store.open_database(db_path, create=False)


def test_newer_schema_version_rejected(db_path: Path) -> None:
    db = store.open_database(db_path)
    store.set_meta(db, "schema_version", str(store.SCHEMA_VERSION + 1))
    db.conn.commit()
    db.close()

    with pytest.raises(StoreError) as raised:
        store.open_database(db_path)

    message = str(raised.value)
    assert str(db_path) in message
    assert f"schema version {store.SCHEMA_VERSION + 1}" in message
    assert "Upgrade qualkit" in message


def test_non_qualkit_sqlite_rejected(foreign_db: Path) -> None:
    with pytest.raises(StoreError) as raised:
        store.open_database(foreign_db)

    message = str(raised.value)
    assert "not a qualkit project" in message
    assert "notes" in message


def test_non_qualkit_sqlite_gets_no_tables(foreign_db: Path) -> None:
    with pytest.raises(StoreError):
        store.open_database(foreign_db)

    connection = sqlite3.connect(foreign_db)
    tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master")]
    connection.close()
    assert tables == ["notes"]


def test_non_qualkit_sqlite_keeps_journal_mode(foreign_db: Path) -> None:
    with pytest.raises(StoreError):
        store.open_database(foreign_db)

    connection = sqlite3.connect(foreign_db)
    mode = connection.execute("PRAGMA journal_mode").fetchone()[0]
    connection.close()
    assert mode == "delete"


def test_non_sqlite_file_rejected(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("Interview notes, not a database.\n" * 100, encoding="utf-8")

    with pytest.raises(StoreError, match="Cannot open"):
        store.open_database(path)


def _write_everywhere(db: sqlite_utils.Database) -> None:
    db["cases"].insert({"id": "C1", "origin": "test"})
    with store.transaction(db):
        db["cases"].upsert_all([{"id": "C2", "origin": "test"}], pk="id")
    store.set_meta(db, "note", "written")
    db.execute(
        "INSERT INTO targets (id, name, category) VALUES ('fdi', 'FDI', 'economic')"
    )


@pytest.mark.parametrize(
    ("table", "where"),
    [
        pytest.param("cases", "1 = 1", id="insert-and-nested-upsert"),
        pytest.param("meta", "key = 'note'", id="set-meta"),
        pytest.param("targets", "1 = 1", id="raw-sql"),
    ],
)
def test_transaction_rolls_back_on_error(
    db: sqlite_utils.Database, table: str, where: str
) -> None:
    with pytest.raises(RuntimeError, match="stop"), store.transaction(db):
        _write_everywhere(db)
        raise RuntimeError("stop")

    count = db.execute(f"SELECT count(*) FROM [{table}] WHERE {where}").fetchone()[0]
    assert count == 0


def test_transaction_rollback_reaches_disk(db_path: Path) -> None:
    db = store.open_database(db_path)
    with pytest.raises(RuntimeError), store.transaction(db):
        _write_everywhere(db)
        raise RuntimeError("stop")
    db.close()

    reopened = store.open_database(db_path)
    assert reopened["cases"].count == 0


def test_transaction_commits_without_error(db_path: Path) -> None:
    db = store.open_database(db_path)
    with store.transaction(db):
        _write_everywhere(db)
    db.close()

    reopened = store.open_database(db_path)
    assert reopened["cases"].count == 2


def _insert_source(db: sqlite_utils.Database) -> None:
    db["cases"].insert({"id": "C1", "origin": "test"})
    db["sources"].insert(
        {
            "id": "C1",
            "case_id": "C1",
            "format": "text",
            "language": "en",
            "text": "Respondent: We asked for less.",
            "content_hash": store.text_hash("Respondent: We asked for less."),
            "imported_at": "2020-01-01T00:00:00+00:00",
            "updated_at": "2020-01-01T00:00:00+00:00",
        }
    )


def test_content_hash_ignores_timestamps(db: sqlite_utils.Database) -> None:
    _insert_source(db)
    before = store.content_hash(db)
    db.execute("UPDATE sources SET updated_at = '2021-06-01T00:00:00+00:00'")

    assert store.content_hash(db) == before


def test_content_hash_follows_text(db: sqlite_utils.Database) -> None:
    _insert_source(db)
    before = store.content_hash(db)
    db.execute("UPDATE sources SET text = 'Respondent: We asked for more.'")

    assert store.content_hash(db) != before
