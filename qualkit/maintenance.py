"""Backing up a project database and checking it for damage.

``backup_database`` copies the database with SQLite's online backup API
inside one read transaction, so the copy is a consistent snapshot even while
another process writes, and then verifies the copy before it takes the
destination name. ``check_database`` lists what is wrong with a database:
SQLite's own checks, rows that point at missing rows, and codings whose
stored quote no longer equals their source text.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import sqlite_utils

from qualkit import store
from qualkit.errors import QualkitError, StoreError

log = logging.getLogger(__name__)

FINDING_COLUMNS = ("check", "table", "row_id", "detail")


# Backup ----------------------------------------------------------------------


@dataclass
class BackupResult:
    """A verified backup copy: where it is and what it contains."""

    path: Path
    content_hash: str
    row_counts: dict[str, int] = field(default_factory=dict)


def _row_counts(db: sqlite_utils.Database) -> dict[str, int]:
    return {
        table: db.execute(f"SELECT count(*) FROM [{table}]").fetchone()[0]
        for table in sorted(db.table_names())
    }


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _verify_copy(copy: Path, expected_hash: str, expected_counts: dict[str, int]) -> None:
    """Raise StoreError unless the copy passes integrity_check and contains the expected rows."""
    connection = sqlite3.connect(copy)
    try:
        copy_db = sqlite_utils.Database(connection)
        problems = [row[0] for row in connection.execute("PRAGMA integrity_check")]
        if problems != ["ok"]:
            raise StoreError(f"The copy failed SQLite's integrity check: {'; '.join(problems[:3])}.")
        if _row_counts(copy_db) != expected_counts:
            raise StoreError("The copy has other row counts than the database.")
        if store.content_hash(copy_db) != expected_hash:
            raise StoreError("The copy has other data than the database (its content hash differs).")
    finally:
        connection.close()


def _copy_snapshot(source: sqlite3.Connection, destination: Path) -> tuple[str, dict[str, int]]:
    """Copy the database of ``source`` to ``destination`` and verify the copy.

    The hash, the row counts and the copy all come from one read transaction,
    so they describe the same snapshot while other processes keep writing,
    because in WAL mode a reader does not wait for a writer. Returns the content hash
    and the row counts. ``destination`` must not exist.
    """
    if source.in_transaction:
        raise StoreError("Cannot back up inside an open transaction; commit it first.")
    source_db = sqlite_utils.Database(source)
    source.execute("BEGIN")
    try:
        # The first read fixes the snapshot that the rest of the block reads.
        digest = store.content_hash(source_db)
        counts = _row_counts(source_db)
        target = sqlite3.connect(destination)
        try:
            # pages=-1 copies everything in one step, inside this snapshot. A
            # copy in several steps would restart whenever another process writes.
            source.backup(target, pages=-1)
        finally:
            target.close()
    finally:
        source.rollback()
    _verify_copy(destination, digest, counts)
    _fsync(destination)
    return digest, counts


def _temporary_name(destination: Path) -> Path:
    descriptor, name = tempfile.mkstemp(
        prefix=f".{destination.name}.", suffix=".partial", dir=destination.parent
    )
    os.close(descriptor)
    os.unlink(name)
    return Path(name)


def write_backup(source_path: str | Path, destination: str | Path) -> BackupResult:
    """Copy the database file ``source_path`` to ``destination`` and verify the copy.

    The copy is written under a temporary name in the destination's folder
    and renamed when it is complete, so ``destination`` never contains half a
    copy. Any existing ``destination`` is replaced, so callers check first.
    """
    destination = Path(destination)
    partial = _temporary_name(destination)
    source = sqlite3.connect(str(source_path), timeout=store.busy_timeout_seconds())
    try:
        digest, counts = _copy_snapshot(source, partial)
        os.replace(partial, destination)
    finally:
        source.close()
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    return BackupResult(destination, digest, counts)


def backup_database(
    db: sqlite_utils.Database, destination: str | Path, *, force: bool = False
) -> BackupResult:
    """Write a verified copy of the open database to ``destination``.

    A folder as ``destination`` gets a file with the database's name. An
    existing file is replaced only with ``force``, and only after the new
    copy passed its checks. Raises QualkitError when the destination is the
    database itself, exists without ``force``, or has a write-ahead log of
    its own (an open or crashed database that replacing would damage).
    """
    source_path = Path(store.database_path(db))
    destination = Path(destination)
    if destination.is_dir():
        destination = destination / source_path.name
    if destination.exists() and destination.resolve() == source_path.resolve():
        raise QualkitError(
            f"{destination} is the project database itself. Give another file name."
        )
    if destination.exists() and not force:
        raise QualkitError(
            f"{destination} already exists. Pass --force to replace it, or give another name."
        )
    log_file = destination.with_name(destination.name + "-wal")
    if log_file.exists() and log_file.stat().st_size > 0:
        raise QualkitError(
            f"{destination} has a write-ahead log ({log_file.name}), so a program has it open "
            "or crashed while writing it. Close that program, or give another name."
        )
    if not destination.parent.is_dir():
        raise QualkitError(f"Folder {destination.parent} not found. Create it first.")

    partial = _temporary_name(destination)
    try:
        digest, counts = _copy_snapshot(db.conn, partial)
        os.replace(partial, destination)
    except StoreError as error:
        raise StoreError(
            f"Backup to {destination} failed: {error} Nothing was written to {destination}. "
            "Run 'qualkit check' on the database, then try again."
        ) from error
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    log.info("Backed up %s to %s (content hash %s)", source_path, destination, digest)
    return BackupResult(destination, digest, counts)


# Check -----------------------------------------------------------------------


def _finding(check: str, table: str, row_id: Any, detail: str) -> dict[str, Any]:
    return {"check": check, "table": table, "row_id": None if row_id is None else str(row_id), "detail": detail}


def _integrity(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    rows = [row[0] for row in db.execute("PRAGMA integrity_check")]
    if rows == ["ok"]:
        return []
    return [_finding("integrity", "", None, message) for message in rows]


def _foreign_keys(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """List rows whose foreign key names a missing row, with the column and value."""
    findings = []
    for table, rowid, parent, key_id in db.execute("PRAGMA foreign_key_check").fetchall():
        columns = [
            (row[3], row[4])
            for row in db.execute(f"PRAGMA foreign_key_list([{table}])")
            if row[0] == key_id
        ]
        names = ", ".join(column for column, _ in columns)
        values = db.execute(
            f"SELECT {', '.join(f'[{column}]' for column, _ in columns)} FROM [{table}] WHERE rowid = ?",
            [rowid],
        ).fetchone()
        value_text = ", ".join(repr(value) for value in values) if values else "?"
        detail = f"{names} = {value_text} not found in {parent}"
        findings.append(_finding("orphan", table, _row_label(db, table, rowid), detail))
    return findings


def _row_label(db: sqlite_utils.Database, table: str, rowid: int | None) -> str:
    """Return the primary key of a row as text, or its rowid when the table has none of its own."""
    keys = db[table].pks
    if rowid is None or keys == ["rowid"]:
        return str(rowid)
    values = db.execute(
        f"SELECT {', '.join(f'[{key}]' for key in keys)} FROM [{table}] WHERE rowid = ?", [rowid]
    ).fetchone()
    return "/".join(str(value) for value in values) if values else str(rowid)


# Memos name what they are about in (about, about_id) without a foreign key.
MEMO_TARGETS = {"source": "sources", "code": "codes", "coding": "codings"}


def _memo_targets(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    findings = []
    for about, table in MEMO_TARGETS.items():
        # codings.id is an integer while memos.about_id is text, so compare as text.
        rows = db.execute(
            f"SELECT m.id, m.about_id FROM memos m WHERE m.about = ? AND NOT EXISTS "
            f"(SELECT 1 FROM [{table}] t WHERE CAST(t.id AS TEXT) = m.about_id) ORDER BY m.id",
            [about],
        )
        for memo_id, about_id in rows:
            findings.append(_finding("orphan", "memos", memo_id, f"memo about {about} {about_id!r}, which is not in {table}"))
    return findings


def _coding_offsets(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """List codings past the end of their source text, and stored quotes that differ from the text."""
    findings = []
    rows = db.execute(
        "SELECT c.id, c.source_id, c.start_offset, c.end_offset, length(s.text), "
        "c.quote = substr(s.text, c.start_offset + 1, c.end_offset - c.start_offset) "
        "FROM codings c JOIN sources s ON s.id = c.source_id "
        "WHERE c.end_offset > length(s.text) "
        "OR c.quote IS NOT substr(s.text, c.start_offset + 1, c.end_offset - c.start_offset) "
        "ORDER BY c.id"
    )
    # SQLite's substr and length count characters (code points), like the offsets.
    for coding_id, source_id, start, end, length, _ in rows:
        if end > length:
            detail = f"span {start}:{end} ends past the end of source {source_id} ({length} characters)"
            findings.append(_finding("offset_past_end", "codings", coding_id, detail))
        else:
            detail = f"stored quote differs from source {source_id} text at {start}:{end}"
            findings.append(_finding("quote_mismatch", "codings", coding_id, detail))
    return findings


def _segment_offsets(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    findings = []
    past_end = db.execute(
        "SELECT g.id, g.source_id, g.start_offset, g.end_offset, length(s.text) "
        "FROM segments g JOIN sources s ON s.id = g.source_id "
        "WHERE g.end_offset > length(s.text) ORDER BY g.id"
    )
    for segment_id, source_id, start, end, length in past_end:
        detail = f"span {start}:{end} ends past the end of source {source_id} ({length} characters)"
        findings.append(_finding("offset_past_end", "segments", segment_id, detail))

    # The turns (or paragraphs) of one source must not overlap,
    # and neither may its sentences.
    overlaps = db.execute(
        "SELECT id, source_id, kind, start_offset, previous_id, previous_end FROM ("
        "  SELECT id, source_id, kind, start_offset,"
        "    lag(id) OVER w AS previous_id, lag(end_offset) OVER w AS previous_end"
        "  FROM segments"
        "  WINDOW w AS (PARTITION BY source_id, kind ORDER BY start_offset, end_offset, id)"
        ") WHERE previous_end > start_offset ORDER BY id"
    )
    for segment_id, source_id, kind, start, previous_id, previous_end in overlaps:
        detail = (
            f"{kind} starting at {start} in source {source_id} overlaps {kind} "
            f"{previous_id}, which ends at {previous_end}"
        )
        findings.append(_finding("segment_overlap", "segments", segment_id, detail))

    outside = db.execute(
        "SELECT g.id, g.start_offset, g.end_offset, p.id, p.start_offset, p.end_offset "
        "FROM segments g JOIN segments p ON p.id = g.parent_id "
        "WHERE g.start_offset < p.start_offset OR g.end_offset > p.end_offset "
        "OR g.source_id != p.source_id ORDER BY g.id"
    )
    for segment_id, start, end, parent_id, parent_start, parent_end in outside:
        detail = f"span {start}:{end} is outside its parent segment {parent_id} ({parent_start}:{parent_end})"
        findings.append(_finding("segment_outside_parent", "segments", segment_id, detail))
    return findings


def _link_offsets(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    rows = db.execute(
        "SELECT l.coding_id, l.target_id, l.alias_start, l.alias_end, c.source_id, length(s.text) "
        "FROM quote_links l JOIN codings c ON c.id = l.coding_id JOIN sources s ON s.id = c.source_id "
        "WHERE l.alias_end > length(s.text) OR l.alias_start < 0 OR l.alias_end <= l.alias_start "
        "ORDER BY l.coding_id, l.target_id"
    )
    return [
        _finding(
            "offset_past_end",
            "quote_links",
            f"{coding_id}/{target_id}",
            f"alias span {start}:{end} is not inside source {source_id} ({length} characters)",
        )
        for coding_id, target_id, start, end, source_id, length in rows
    ]


def _schema_version(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    version = store.get_meta(db, "schema_version")
    if version == str(store.SCHEMA_VERSION):
        return []
    return [
        _finding("schema_version", "meta", "schema_version", f"version {version!r}, expected {store.SCHEMA_VERSION}")
    ]


# Checks that read rows, run only on a file that passed the integrity check,
# because a damaged index or page makes their queries miss or invent rows.
ROW_CHECKS = (
    ("schema_version", _schema_version),
    ("foreign_key", _foreign_keys),
    ("memo", _memo_targets),
    ("coding", _coding_offsets),
    ("segment", _segment_offsets),
    ("quote_link", _link_offsets),
)


def check_database(db: sqlite_utils.Database) -> pd.DataFrame:
    """Return one row per problem found in the database (no rows when it is sound).

    Columns: check, table, row_id (the primary key as text), detail. When
    SQLite's integrity check fails, only its findings are returned, with a
    "skipped" row in place of the row checks. A check that SQLite cannot run
    becomes a finding of its own, and the other checks still run.
    """
    try:
        findings = _integrity(db)
    except sqlite3.DatabaseError as error:
        findings = [_finding("integrity", "", None, f"check could not run: {error}")]
    if findings:
        findings.append(
            _finding(
                "skipped", "", None,
                "The row checks were not run because the integrity check failed, "
                "which makes their results unreliable.",
            )
        )
        return pd.DataFrame(findings, columns=list(FINDING_COLUMNS))
    for name, run in ROW_CHECKS:
        try:
            findings.extend(run(db))
        except sqlite3.DatabaseError as error:
            findings.append(_finding(name, "", None, f"check could not run: {error}"))
    return pd.DataFrame(findings, columns=list(FINDING_COLUMNS))


# Repair ----------------------------------------------------------------------

REPAIR_COLUMNS = ("check", "table", "row_id", "action")


def repair_database(db: sqlite_utils.Database) -> pd.DataFrame:
    """Make the safe repairs for what ``check_database`` finds, in one transaction.

    Only two kinds of problem are repaired, because neither loses a coder's
    work. A coding whose stored quote differs from its source text gets the
    quote that its offsets select and is flagged for review. Rows that
    qualkit derives from other data and rebuilds are deleted when what they
    point at is gone: quote-target links (rebuilt by ``qualkit link``),
    auto-coding state (``qualkit autocode``) and segments of missing sources
    (``qualkit import``). Codings and memos are never deleted. Changes to
    codings and links go to the audit log under the coder ``qualkit``, so
    ``qualkit undo --coder qualkit`` reverts them.

    Returns one row per repair. Raises QualkitError when the file fails the
    integrity check, which no row-level repair can make safe.
    """
    from qualkit.audit import SYSTEM_CODER, ChangeRecorder

    if _integrity(db):
        raise QualkitError(
            "The database failed SQLite's integrity check, so --fix changed nothing. "
            "Restore the file from a backup ('qualkit backup' makes one)."
        )
    repairs: list[dict[str, Any]] = []
    with store.transaction(db):
        recorder = ChangeRecorder(db, SYSTEM_CODER, "check --fix")
        now = store.utc_now()
        for finding in _coding_offsets(db):
            if finding["check"] != "quote_mismatch":
                continue
            coding_id = int(finding["row_id"])
            (quote,) = db.execute(
                "SELECT substr(s.text, c.start_offset + 1, c.end_offset - c.start_offset) "
                "FROM codings c JOIN sources s ON s.id = c.source_id WHERE c.id = ?",
                [coding_id],
            ).fetchone()
            recorder.update("codings", coding_id, {"quote": quote, "needs_review": 1, "updated_at": now})
            repairs.append(
                {"check": "quote_mismatch", "table": "codings", "row_id": str(coding_id),
                 "action": "quote set from the source text; flagged for review"}
            )

        links = db.execute(
            "SELECT coding_id, target_id FROM quote_links l "
            "WHERE NOT EXISTS (SELECT 1 FROM codings c WHERE c.id = l.coding_id) "
            "OR NOT EXISTS (SELECT 1 FROM targets t WHERE t.id = l.target_id) "
            "ORDER BY coding_id, target_id"
        ).fetchall()
        for coding_id, target_id in links:
            recorder.delete("quote_links", (coding_id, target_id))
            repairs.append(
                {"check": "orphan", "table": "quote_links", "row_id": f"{coding_id}/{target_id}",
                 "action": "deleted (run 'qualkit link' to rebuild links)"}
            )

        for table, action in (
            ("autocode_state", "deleted (the next 'qualkit autocode' recomputes it)"),
            ("segments", "deleted (the source is gone)"),
        ):
            rows = db.execute(
                f"SELECT rowid, source_id FROM [{table}] t "
                "WHERE NOT EXISTS (SELECT 1 FROM sources s WHERE s.id = t.source_id) ORDER BY rowid"
            ).fetchall()
            for rowid, _ in rows:
                repairs.append({"check": "orphan", "table": table, "row_id": _row_label(db, table, rowid), "action": action})
            db.execute(
                f"DELETE FROM [{table}] WHERE rowid IN (SELECT rowid FROM [{table}] t "
                "WHERE NOT EXISTS (SELECT 1 FROM sources s WHERE s.id = t.source_id))"
            )
        if repairs:
            store.touch(db)
    return pd.DataFrame(repairs, columns=list(REPAIR_COLUMNS))
