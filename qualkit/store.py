"""The project database: one SQLite file opened through sqlite-utils.

Offsets in ``segments``, ``codings`` and ``quote_links`` count Unicode code
points in ``sources.text`` (Python ``str`` indices), with the end exclusive,
so ``text[start_offset:end_offset]`` is the quote.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sqlite3
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import sqlite_utils

from qualkit.errors import StoreError

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2

# Seconds a writer waits for another process's write lock (also the
# QUALKIT_BUSY_TIMEOUT environment variable). Coding commands hold the lock
# for well under a second, while an import or auto-coding run of a large
# corpus may hold it for minutes.
DEFAULT_BUSY_TIMEOUT = 30.0
BUSY_TIMEOUT_VARIABLE = "QUALKIT_BUSY_TIMEOUT"
# A day: SQLite takes the timeout in milliseconds as a 32-bit integer.
MAX_BUSY_TIMEOUT = 86400.0
# Seconds of waiting for the lock before the command logs that it is waiting.
FIRST_LOCK_WAIT = 2.0

SCHEMA = """
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE cases (
    id TEXT PRIMARY KEY,
    province TEXT,
    level TEXT,
    date TEXT,
    language TEXT,
    appendix_group TEXT,
    attributes TEXT NOT NULL DEFAULT '{}',
    origin TEXT NOT NULL
);
CREATE TABLE metadata_conflicts (
    case_id TEXT NOT NULL REFERENCES cases(id) ON DELETE CASCADE,
    field TEXT NOT NULL,
    kept_value TEXT,
    kept_origin TEXT NOT NULL,
    other_value TEXT,
    other_origin TEXT NOT NULL,
    PRIMARY KEY (case_id, field, other_origin)
);
CREATE TABLE sources (
    id TEXT PRIMARY KEY,
    case_id TEXT NOT NULL REFERENCES cases(id),
    path TEXT,
    format TEXT NOT NULL,
    language TEXT NOT NULL,
    text TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}',
    imported_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
-- An import looks up each file's text hash to reject duplicates.
CREATE INDEX IF NOT EXISTS sources_content_hash ON sources (content_hash);
CREATE TABLE segments (
    id INTEGER PRIMARY KEY,
    source_id TEXT NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('turn', 'paragraph', 'sentence')),
    position INTEGER NOT NULL,
    parent_id INTEGER REFERENCES segments(id) ON DELETE CASCADE,
    start_offset INTEGER NOT NULL CHECK (start_offset >= 0),
    end_offset INTEGER NOT NULL CHECK (end_offset > start_offset),
    speaker TEXT,
    role TEXT CHECK (role IN ('interviewer', 'respondent')),
    timestamp TEXT,
    UNIQUE (source_id, kind, position)
);
CREATE INDEX segments_source_offsets ON segments (source_id, start_offset);
-- Without it, ON DELETE CASCADE scans the whole table for each deleted turn.
CREATE INDEX segments_parent ON segments (parent_id);
CREATE TABLE codebooks (
    id TEXT NOT NULL,
    version TEXT NOT NULL,
    title TEXT,
    path TEXT,
    content_hash TEXT NOT NULL,
    loaded_at TEXT NOT NULL,
    PRIMARY KEY (id, version)
);
CREATE TABLE codes (
    id TEXT PRIMARY KEY,
    parent_id TEXT REFERENCES codes(id),
    label TEXT NOT NULL,
    definition TEXT NOT NULL,
    when_to_use TEXT,
    when_not_to_use TEXT,
    example TEXT,
    rules TEXT NOT NULL DEFAULT '{}',
    position INTEGER NOT NULL,
    codebook_id TEXT NOT NULL,
    codebook_version TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 1
);
-- value (version 2) is the last column because ALTER TABLE ADD COLUMN puts it
-- there when an older file is upgraded, so both files have one column order.
CREATE TABLE codings (
    id INTEGER PRIMARY KEY,
    source_id TEXT NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
    start_offset INTEGER NOT NULL CHECK (start_offset >= 0),
    end_offset INTEGER NOT NULL CHECK (end_offset > start_offset),
    quote TEXT NOT NULL,
    code_id TEXT NOT NULL REFERENCES codes(id),
    coder TEXT NOT NULL,
    origin TEXT NOT NULL CHECK (origin IN ('manual', 'auto')),
    status TEXT NOT NULL CHECK (status IN ('suggested', 'accepted', 'rejected')),
    codebook_version TEXT NOT NULL,
    rule TEXT,
    matched_text TEXT,
    needs_review INTEGER NOT NULL DEFAULT 0,
    key_quote INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    value REAL,
    UNIQUE (source_id, start_offset, end_offset, code_id, coder)
);
CREATE INDEX codings_code ON codings (code_id, status);
CREATE INDEX codings_source ON codings (source_id, start_offset);
CREATE TABLE autocode_state (
    source_id TEXT PRIMARY KEY REFERENCES sources(id) ON DELETE CASCADE,
    fingerprint TEXT NOT NULL
);
CREATE TABLE memos (
    id INTEGER PRIMARY KEY,
    about TEXT NOT NULL CHECK (about IN ('project', 'source', 'code', 'coding')),
    about_id TEXT,
    coder TEXT NOT NULL,
    text TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE targets (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    category TEXT NOT NULL,
    higher_is_harder INTEGER NOT NULL DEFAULT 1,
    researcher_order INTEGER,
    options TEXT NOT NULL DEFAULT '{}',
    note TEXT
);
CREATE TABLE target_aliases (
    target_id TEXT NOT NULL REFERENCES targets(id) ON DELETE CASCADE,
    alias TEXT NOT NULL,
    language TEXT NOT NULL,
    PRIMARY KEY (target_id, alias)
);
CREATE TABLE quote_links (
    coding_id INTEGER NOT NULL REFERENCES codings(id) ON DELETE CASCADE,
    target_id TEXT NOT NULL REFERENCES targets(id) ON DELETE CASCADE,
    alias TEXT NOT NULL,
    alias_start INTEGER NOT NULL,
    alias_end INTEGER NOT NULL,
    origin TEXT NOT NULL CHECK (origin IN ('manual', 'auto')),
    PRIMARY KEY (coding_id, target_id)
);
CREATE INDEX quote_links_target ON quote_links (target_id);
CREATE TABLE target_values (
    target_id TEXT NOT NULL REFERENCES targets(id) ON DELETE CASCADE,
    unit TEXT NOT NULL,
    year INTEGER NOT NULL,
    value REAL NOT NULL,
    source_file TEXT,
    line INTEGER,
    PRIMARY KEY (target_id, unit, year)
);
CREATE TABLE target_points (
    target_id TEXT NOT NULL REFERENCES targets(id) ON DELETE CASCADE,
    year INTEGER NOT NULL,
    points REAL NOT NULL,
    source_file TEXT,
    line INTEGER,
    PRIMARY KEY (target_id, year)
);
CREATE TABLE scores (
    target_id TEXT PRIMARY KEY REFERENCES targets(id) ON DELETE CASCADE,
    years TEXT,
    n_years INTEGER,
    n_units INTEGER,
    eligible INTEGER NOT NULL,
    ineligible_reason TEXT,
    units_changed INTEGER,
    range_min REAL,
    range_max REAL,
    observed INTEGER,
    possible INTEGER,
    frequency REAL,
    mean_points REAL,
    mean_cv REAL,
    variation_order INTEGER,
    priority_level TEXT,
    negotiability_level TEXT,
    cell TEXT,
    expected_response TEXT,
    options TEXT NOT NULL DEFAULT '{}'
);
"""

# The coding history: one row per changed row, grouped into batches (one
# command, or one decision in the interactive review), and each coder's place
# in the review. Written with IF NOT EXISTS because databases created before
# these tables get them from qualkit.audit.ensure_history_tables.
HISTORY_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_log (
    id INTEGER PRIMARY KEY,
    batch_id TEXT NOT NULL,
    coder TEXT NOT NULL,
    changed_at TEXT NOT NULL,
    command TEXT NOT NULL,
    table_name TEXT NOT NULL,
    row_id TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('insert', 'update', 'delete')),
    before TEXT,
    after TEXT,
    undone_by TEXT
);
CREATE INDEX IF NOT EXISTS audit_log_batch ON audit_log (batch_id);
CREATE INDEX IF NOT EXISTS audit_log_coder ON audit_log (coder, id);
CREATE TABLE IF NOT EXISTS review_state (
    coder TEXT NOT NULL,
    scope TEXT NOT NULL,
    coding_id INTEGER,
    sort_key TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (coder, scope)
);
"""

SCHEMA += HISTORY_SCHEMA


class DatabaseBusyError(StoreError):
    """Another process held the database's write lock for the whole busy timeout."""

    def __init__(self, path: str | Path, waited: float) -> None:
        self.path = str(path)
        self.waited = waited
        super().__init__(
            f"Another qualkit process is writing to {path}; waited {waited:g} s. "
            "Nothing was changed. Run the command again when the other command has "
            f"finished, or set {BUSY_TIMEOUT_VARIABLE} to a number of seconds to wait longer."
        )


def utc_now() -> str:
    """Return the current UTC time as an ISO 8601 string to the second."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def text_hash(text: str) -> str:
    """Return the SHA-256 hex digest of ``text`` encoded as UTF-8."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def busy_timeout_seconds() -> float:
    """Return how long a writer waits for another process's lock, in seconds.

    The value comes from the QUALKIT_BUSY_TIMEOUT environment variable, or
    DEFAULT_BUSY_TIMEOUT when it is unset or empty.
    """
    raw = os.environ.get(BUSY_TIMEOUT_VARIABLE, "").strip()
    if not raw:
        return DEFAULT_BUSY_TIMEOUT
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= MAX_BUSY_TIMEOUT:
        raise StoreError(
            f"{BUSY_TIMEOUT_VARIABLE} is {raw!r}, which is not a number of seconds "
            f"from 0 to {MAX_BUSY_TIMEOUT:g}. Set it to a number such as 30, or unset it."
        )
    return seconds


def open_database(
    path: str | Path, *, create: bool = True, busy_timeout: float | None = None
) -> sqlite_utils.Database:
    """Open the qualkit database at ``path``, creating its schema if it is new.

    Foreign keys are on and the journal is in WAL mode. A writer waits up to
    ``busy_timeout`` seconds (default: ``busy_timeout_seconds()``) for
    another process's lock before ``transaction`` raises DatabaseBusyError.
    A file at an older schema version is upgraded in place after a backup
    copy is written next to it (see qualkit.migrations). A file from a newer
    qualkit, or with an invalid version, raises StoreError unchanged.
    """
    path = Path(path)
    if not create and not path.exists():
        raise StoreError(
            f"Database {path} not found. Run 'qualkit init' first or pass --db."
        )
    if busy_timeout is None:
        busy_timeout = busy_timeout_seconds()
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = None
    try:
        conn = sqlite3.connect(str(path), timeout=busy_timeout)
        db = sqlite_utils.Database(conn)
        db.execute("PRAGMA foreign_keys = ON")
        _ensure_schema(db, path)
        if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            db.enable_wal()
    except sqlite3.OperationalError as error:
        _close_quietly(conn)
        if "readonly" in str(error) or "unable to open" in str(error):
            raise StoreError(
                f"Cannot write to {path} ({error}). qualkit needs write access to the "
                "database and its folder; fix the permissions or work on a copy."
            ) from error
        if _is_lock_error(error):
            raise DatabaseBusyError(path, busy_timeout) from error
        raise StoreError(
            f"Cannot open {path} as a qualkit database ({error}). Check that the "
            "file is a SQLite database written by qualkit, or pass another --db."
        ) from error
    except sqlite3.DatabaseError as error:
        _close_quietly(conn)
        raise StoreError(
            f"Cannot open {path} as a qualkit database ({error}). Check that the "
            "file is a SQLite database written by qualkit, or pass another --db."
        ) from error
    except BaseException:
        # A refused version or a failed upgrade: close the file untouched.
        _close_quietly(conn)
        raise

    return db


def _close_quietly(conn: sqlite3.Connection | None) -> None:
    if conn is None:
        return
    with contextlib.suppress(sqlite3.Error):
        if conn.in_transaction:
            conn.rollback()
        conn.close()


def _is_lock_error(error: sqlite3.OperationalError) -> bool:
    message = str(error)
    return "database is locked" in message or "database is busy" in message


def schema_statements(script: str = SCHEMA) -> list[str]:
    """Split a schema script into its statements, dropping comments between them."""
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        if not buffer and (not line.strip() or line.lstrip().startswith("--")):
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        raise ValueError(f"Unfinished SQL statement at the end of the schema: {buffer!r}")
    return statements


def _create_schema(db: sqlite_utils.Database) -> None:
    """Create the tables and the meta rows in one transaction.

    ``executescript`` would commit after each statement's batch, so a crash
    could leave tables without a schema version. Each statement runs on its
    own here, inside ``transaction``.
    """
    with transaction(db):
        if "meta" in db.table_names():
            # Another process created the schema while this one waited for the lock.
            return
        for statement in schema_statements():
            db.conn.execute(statement)
        now = utc_now()
        db.conn.executemany(
            "INSERT INTO meta (key, value) VALUES (?, ?)",
            [
                ("schema_version", str(SCHEMA_VERSION)),
                ("created_at", now),
                ("updated_at", now),
            ],
        )


def _ensure_schema(db: sqlite_utils.Database, path: Path) -> None:
    if "meta" not in db.table_names():
        if db.table_names():
            raise StoreError(
                f"{path} is a SQLite database but not a qualkit project "
                f"(it has tables {', '.join(db.table_names()[:5])}). Pass another --db."
            )
        # WAL before the first write, so that creating the schema already runs
        # in the mode where readers do not wait for the writer. A foreign file
        # was rejected above with its journal mode kept.
        db.enable_wal()
        _create_schema(db)
    version = read_schema_version(db, path)
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path} was written by a newer qualkit (schema version {version}, this "
            f"qualkit reads up to {SCHEMA_VERSION}). Upgrade qualkit to open it; "
            "the file was not changed."
        )
    if version < SCHEMA_VERSION:
        # Imported here because migrations use this module's helpers.
        from qualkit.migrations import migrate

        migrate(db, path, version)


def read_schema_version(db: sqlite_utils.Database, path: str | Path) -> int:
    """Return the schema version in the ``meta`` table, or raise StoreError if it is invalid."""
    raw = get_meta(db, "schema_version")
    try:
        version = int(raw) if raw is not None else None
    except ValueError:
        version = None
    if version is None or version < 1:
        raise StoreError(
            f"{path} has the schema version {raw!r}, which no qualkit release writes "
            "(versions start at 1). The file is damaged or was edited by hand; restore "
            "it from a backup, or pass another --db. It was not changed."
        )
    return version


def get_meta(db: sqlite_utils.Database, key: str) -> str | None:
    """Return the ``meta`` value stored under ``key``, or None."""
    row = db.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
    return row[0] if row else None


def set_meta(db: sqlite_utils.Database, key: str, value: str) -> None:
    """Store ``value`` under ``key`` in the ``meta`` table."""
    db["meta"].upsert({"key": key, "value": value}, pk="key")


def database_path(db: sqlite_utils.Database) -> str:
    """Return the file name of the connection's main database ('' for a memory database)."""
    for _, name, file in db.conn.execute("PRAGMA database_list"):
        if name == "main":
            return file
    return ""


@contextlib.contextmanager
def transaction(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """Run the block as one transaction: all of its writes land, or none do.

    The outermost block starts with ``BEGIN IMMEDIATE``, so it takes the
    write lock at once and waits (up to the busy timeout) for another
    process to finish. A deferred transaction would instead fail with
    "database is locked" when it first writes. When the lock stays taken,
    DatabaseBusyError is raised before the block runs. Nested blocks become
    savepoints (sqlite-utils' ``atomic``).
    """
    if db.conn.in_transaction:
        with db.atomic():
            yield db
        return
    _begin_immediate(db)
    try:
        yield db
    except BaseException:
        if db.conn.in_transaction:
            db.conn.rollback()
        raise
    else:
        db.conn.commit()


def _begin_immediate(db: sqlite_utils.Database) -> None:
    """Take the write lock, waiting up to the connection's busy timeout.

    The wait is split in two, so that after FIRST_LOCK_WAIT seconds the
    command logs which file is locked and how long it keeps retrying,
    instead of hanging without a word.
    """
    total_ms = db.conn.execute("PRAGMA busy_timeout").fetchone()[0]
    first_ms = min(total_ms, int(FIRST_LOCK_WAIT * 1000))
    try:
        db.conn.execute(f"PRAGMA busy_timeout = {first_ms}")
        try:
            db.conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as error:
            if not _is_lock_error(error) or first_ms == total_ms:
                _raise_lock_error(db, error, total_ms)
                raise
        log.warning(
            "Another qualkit process is writing to %s; retrying for up to %g s more.",
            database_path(db),
            (total_ms - first_ms) / 1000,
        )
        db.conn.execute(f"PRAGMA busy_timeout = {total_ms - first_ms}")
        try:
            db.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            _raise_lock_error(db, error, total_ms)
            raise
    finally:
        db.conn.execute(f"PRAGMA busy_timeout = {total_ms}")


def _raise_lock_error(db: sqlite_utils.Database, error: sqlite3.OperationalError, waited_ms: int) -> None:
    if _is_lock_error(error):
        raise DatabaseBusyError(database_path(db), waited_ms / 1000) from error


def touch(db: sqlite_utils.Database) -> None:
    """Record that the project's data changed, for reports' "data as of" line."""
    set_meta(db, "updated_at", utc_now())


# Rows that content_hash encodes and hashes at a time.
HASH_BATCH_ROWS = 10_000


def content_hash(db: sqlite_utils.Database) -> str:
    """Return a SHA-256 digest of every research table's rows, in key order.

    Timestamps and file paths are left out, so the digest changes only when
    the data does, not when a project is moved or rebuilt later.
    """
    digest = hashlib.sha256()
    encode_row = json.JSONEncoder(ensure_ascii=False, default=str).encode
    for table in (
        "cases",
        "sources",
        "segments",
        "codes",
        "codings",
        "memos",
        "targets",
        "target_aliases",
        "quote_links",
        "target_values",
        "target_points",
        "scores",
    ):
        columns = [
            column.name
            for column in db[table].columns
            if not column.name.endswith("_at") and column.name != "path"
        ]
        # Row ids are assigned by insertion order, so order by content instead.
        order = ", ".join(f"[{c}]" for c in columns if c != "id") or "rowid"
        select = ", ".join(f"[{c}]" for c in columns if c != "id")
        digest.update(table.encode())
        cursor = db.execute(f"SELECT {select} FROM [{table}] ORDER BY {order}")
        # The digest covers each row's json.dumps text in turn, as it always
        # did. Reusing one encoder and hashing a batch of rows per update
        # avoids building an encoder and calling update for every row.
        while rows := cursor.fetchmany(HASH_BATCH_ROWS):
            digest.update("".join(map(encode_row, rows)).encode())

    return digest.hexdigest()
