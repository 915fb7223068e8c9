"""Upgrading databases from earlier schema versions, and rejecting unknown versions.

tests/data/schema_v1.db was written by the last qualkit release at schema
version 1 (commit 3429500); tests/data/README.md describes how it was made.
Tests work on copies of it and never open it in place.
"""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
from click.testing import CliRunner

from qualkit import migrations, store
from qualkit.cli import cli
from qualkit.errors import StoreError

V1_FIXTURE = Path(__file__).resolve().parent / "data" / "schema_v1.db"

# Row counts of the fixture, from make_schema_v1.py's build of two transcripts.
V1_COUNTS = {
    "meta": 3,
    "cases": 27,
    "metadata_conflicts": 1,
    "sources": 2,
    "segments": 460,
    "codebooks": 1,
    "codes": 33,
    "codings": 164,
    "autocode_state": 2,
    "memos": 4,
    "targets": 31,
    "target_aliases": 120,
    "quote_links": 72,
    "target_values": 152,
    "target_points": 12,
    "scores": 4,
    "audit_log": 58,
    "review_state": 0,
}


@pytest.fixture
def v1_path(tmp_path: Path) -> Path:
    """A private copy of the version-1 fixture."""
    path = tmp_path / "project" / "qualkit.db"
    path.parent.mkdir()
    shutil.copyfile(V1_FIXTURE, path)
    return path


@contextlib.contextmanager
def _raw(path: Path) -> Iterator[sqlite_utils.Database]:
    """Open a file with plain sqlite-utils, so that qualkit does not upgrade it.

    The connection is closed at the end: an open one would keep the last
    writes in the write-ahead log, where a plain file copy misses them.
    """
    db = sqlite_utils.Database(sqlite3.connect(path))
    try:
        yield db
    finally:
        db.close()


def _version(path: Path) -> str | None:
    with _raw(path) as db:
        return store.get_meta(db, "schema_version")


def _columns(path: Path, table: str) -> list[str]:
    with _raw(path) as db:
        return list(db[table].columns_dict)


def _counts(path: Path) -> dict[str, int]:
    with _raw(path) as db:
        return {table: db[table].count for table in db.table_names()}


def _table_rows(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Return every row of every table by rowid, without codings.value and the schema version."""
    with _raw(path) as db:
        rows = {}
        for table in db.table_names():
            columns = [c for c in db[table].columns_dict if not (table == "codings" and c == "value")]
            select = ", ".join(f"[{c}]" for c in columns)
            where = "WHERE key != 'schema_version'" if table == "meta" else ""
            rows[table] = db.execute(f"SELECT {select} FROM [{table}] {where} ORDER BY rowid").fetchall()
        return rows


def _normalize_sql(sql: str | None) -> str | None:
    """Drop comments and collapse white space, so that layout differences vanish."""
    if sql is None:
        return None
    sql = re.sub(r"--[^\n]*", " ", sql)
    sql = re.sub(r"\s+", " ", sql)
    return re.sub(r"\s*([(),])\s*", r"\1", sql).strip()


def _schema(path: Path) -> dict[str, Any]:
    """Describe a file's schema: normalized sqlite_master, columns, indexes and foreign keys."""
    connection = sqlite3.connect(path)
    try:
        master = {
            (kind, name): (table, _normalize_sql(sql))
            for kind, name, table, sql in connection.execute(
                "SELECT type, name, tbl_name, sql FROM sqlite_master"
            )
        }
        tables = [name for kind, name in master if kind == "table"]
        details = {}
        for table in tables:
            indexes = {}
            for row in connection.execute(f"PRAGMA index_list([{table}])"):
                indexes[row[1]] = (row[2:], connection.execute(f"PRAGMA index_xinfo([{row[1]}])").fetchall())
            details[table] = {
                "columns": connection.execute(f"PRAGMA table_xinfo([{table}])").fetchall(),
                "foreign_keys": connection.execute(f"PRAGMA foreign_key_list([{table}])").fetchall(),
                "indexes": indexes,
            }
        return {"master": master, "tables": details}
    finally:
        connection.close()


def _upgrade(path: Path) -> None:
    store.open_database(path, create=False).close()


# The fixture ------------------------------------------------------------------------


def test_fixture_is_version_1(v1_path: Path) -> None:
    assert _version(v1_path) == "1"
    assert "value" not in _columns(v1_path, "codings")
    assert _counts(v1_path) == V1_COUNTS


# Upgrading version 1 ----------------------------------------------------------------


def test_upgrade_sets_version(v1_path: Path) -> None:
    _upgrade(v1_path)

    assert _version(v1_path) == str(store.SCHEMA_VERSION)


def test_upgrade_keeps_every_row(v1_path: Path) -> None:
    before = _table_rows(v1_path)
    _upgrade(v1_path)
    after = _table_rows(v1_path)

    assert sorted(after) == sorted(before)
    for table in before:
        assert after[table] == before[table], table


def test_upgrade_keeps_row_counts(v1_path: Path) -> None:
    _upgrade(v1_path)

    assert _counts(v1_path) == V1_COUNTS


def test_upgrade_keeps_content_hash(v1_path: Path, tmp_path: Path) -> None:
    with _raw(v1_path) as db:
        before = store.content_hash(db)
    _upgrade(v1_path)
    # The hash covers every column, so drop the new one from a copy to compare.
    copy = tmp_path / "without-value.db"
    shutil.copyfile(v1_path, copy)
    with _raw(copy) as db:
        db.execute("ALTER TABLE codings DROP COLUMN value")
        after = store.content_hash(db)

    assert after == before


def test_upgrade_adds_null_values(v1_path: Path) -> None:
    _upgrade(v1_path)
    with _raw(v1_path) as db:
        counts = db.execute("SELECT count(*), count(value) FROM codings").fetchone()
        value_type = db["codings"].columns_dict["value"]

    assert counts == (164, 0)
    assert value_type is float


def test_upgraded_schema_equals_new(v1_path: Path, tmp_path: Path) -> None:
    fresh = tmp_path / "fresh.db"
    store.open_database(fresh).close()
    _upgrade(v1_path)

    upgraded, new = _schema(v1_path), _schema(fresh)

    assert sorted(upgraded["master"]) == sorted(new["master"])
    for key, value in new["master"].items():
        assert upgraded["master"][key] == value, key
    for table, value in new["tables"].items():
        assert upgraded["tables"][table] == value, table


def test_upgrade_creates_missing_history_tables(v1_path: Path, tmp_path: Path) -> None:
    """Early version-1 files had no audit or review tables; the upgrade adds them."""
    with _raw(v1_path) as db:
        for table in ("audit_log", "review_state"):
            db.execute(f"DROP TABLE {table}")
        db.conn.commit()
    fresh = tmp_path / "fresh.db"
    store.open_database(fresh).close()

    _upgrade(v1_path)

    assert _schema(v1_path) == _schema(fresh)


def test_upgraded_file_takes_new_codings(v1_path: Path) -> None:
    _upgrade(v1_path)
    runner = CliRunner()

    added = runner.invoke(
        cli,
        ["--db", str(v1_path), "code", "add", "G16S011", "--code", "tournament", "--segment", "20", "--coder", "bob"],
    )
    checked = runner.invoke(cli, ["--db", str(v1_path), "check"])

    assert added.exit_code == 0, added.output
    assert checked.exit_code == 0, checked.output


def test_upgraded_hash_equals_new_build(v1_path: Path, tmp_path: Path) -> None:
    """content_hash reads columns in table order, so upgraded and new files must agree on it."""
    _upgrade(v1_path)
    fresh = tmp_path / "fresh.db"
    store.open_database(fresh).close()
    # Copy every row of the upgraded file into a new file, column by column name.
    with _raw(v1_path) as source, _raw(fresh) as target:
        for table in source.table_names():
            rows = list(source[table].rows)
            if rows and table != "meta":
                target[table].insert_all(rows)
        target.conn.commit()
        upgraded_hash = store.content_hash(source)
        new_hash = store.content_hash(target)

    assert new_hash == upgraded_hash


# The backup copy --------------------------------------------------------------------


def test_upgrade_writes_backup(v1_path: Path) -> None:
    before = _table_rows(v1_path)
    _upgrade(v1_path)
    copy = v1_path.with_name("qualkit.db.v1-backup")

    assert copy.is_file()
    assert _version(copy) == "1"
    assert _table_rows(copy) == before


def test_upgrade_logs_backup(v1_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="qualkit.migrations"):
        _upgrade(v1_path)

    assert "schema version 1 to 2" in caplog.text
    assert str(v1_path.with_name("qualkit.db.v1-backup")) in caplog.text


def test_upgrade_keeps_earlier_backup(v1_path: Path) -> None:
    earlier = v1_path.with_name("qualkit.db.v1-backup")
    earlier.write_bytes(b"an earlier copy")

    _upgrade(v1_path)

    assert earlier.read_bytes() == b"an earlier copy"
    assert v1_path.with_name("qualkit.db.v1-backup-2").is_file()


def test_reopen_writes_no_second_backup(v1_path: Path) -> None:
    _upgrade(v1_path)
    _upgrade(v1_path)

    backups = sorted(path.name for path in v1_path.parent.glob("*backup*"))
    assert backups == ["qualkit.db.v1-backup"]


def test_upgrade_by_other_process_is_skipped(v1_path: Path) -> None:
    """A process that read version 1 before another one upgraded the file does nothing."""
    _upgrade(v1_path)
    db = store.open_database(v1_path)
    try:
        assert migrations.migrate(db, v1_path, 1) is None
    finally:
        db.close()


def test_failed_step_leaves_version_1(v1_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = _table_rows(v1_path)

    def half_done(db: sqlite_utils.Database) -> None:
        db.execute("ALTER TABLE codings ADD COLUMN value REAL")
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setitem(migrations.MIGRATIONS, 1, half_done)

    with pytest.raises(StoreError) as raised:
        _upgrade(v1_path)

    message = str(raised.value)
    assert "disk I/O error" in message
    assert "left at version 1" in message
    assert _version(v1_path) == "1"
    assert "value" not in _columns(v1_path, "codings")
    assert _table_rows(v1_path) == before


# Versions that cannot be opened -----------------------------------------------------


def _files(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def _set_version(path: Path, version: str | None) -> None:
    store.open_database(path).close()
    connection = sqlite3.connect(path)
    if version is None:
        connection.execute("DELETE FROM meta WHERE key = 'schema_version'")
    else:
        connection.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [version])
    connection.commit()
    connection.close()


def test_newer_version_rejected(tmp_path: Path) -> None:
    path = tmp_path / "qualkit.db"
    _set_version(path, str(store.SCHEMA_VERSION + 1))

    with pytest.raises(StoreError) as raised:
        store.open_database(path)

    message = str(raised.value)
    assert str(path) in message
    assert f"schema version {store.SCHEMA_VERSION + 1}" in message
    assert "newer qualkit" in message
    assert "Upgrade qualkit" in message


def test_newer_version_left_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "qualkit.db"
    _set_version(path, str(store.SCHEMA_VERSION + 1))
    before = _files(tmp_path)

    with pytest.raises(StoreError):
        store.open_database(path)

    assert _files(tmp_path) == before


def test_newer_version_cli_message(tmp_path: Path) -> None:
    path = tmp_path / "qualkit.db"
    _set_version(path, "7")
    before = _files(tmp_path)

    result = CliRunner().invoke(cli, ["--db", str(path), "codings"])

    assert result.exit_code == 1
    assert "newer qualkit (schema version 7" in result.stderr
    assert "Traceback" not in result.stderr
    assert _files(tmp_path) == before


@pytest.mark.parametrize(
    "version",
    [
        pytest.param("0", id="zero"),
        pytest.param("-1", id="negative"),
        pytest.param("abc", id="text"),
        pytest.param("", id="empty"),
        pytest.param("1.5", id="fraction"),
        pytest.param(None, id="missing"),
    ],
)
def test_invalid_version_rejected(tmp_path: Path, version: str | None) -> None:
    path = tmp_path / "qualkit.db"
    _set_version(path, version)
    before = _files(tmp_path)

    with pytest.raises(StoreError, match="no qualkit release writes"):
        store.open_database(path)

    assert _files(tmp_path) == before


def test_version_without_step_rejected(v1_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(migrations.MIGRATIONS, 1)
    before = v1_path.read_bytes()

    with pytest.raises(StoreError, match="cannot upgrade"):
        _upgrade(v1_path)

    assert v1_path.read_bytes() == before


def test_failed_backup_leaves_version_1(v1_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from qualkit import maintenance

    before = v1_path.read_bytes()

    def disk_full(source: Path, destination: Path) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(maintenance, "write_backup", disk_full)

    with pytest.raises(StoreError) as raised:
        _upgrade(v1_path)

    message = str(raised.value)
    assert "No space left on device" in message
    assert "was not changed" in message
    assert v1_path.read_bytes() == before
