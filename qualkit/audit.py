"""The audit log: who changed which row, when, and what it held before and after.

Every write that a coder makes goes through a ``ChangeRecorder``. The
recorder makes the change and stores one ``audit_log`` row per changed row,
with full JSON snapshots of the row before and after. The rows of one
command (or of one decision in the interactive review) share a batch id.
``undo_last`` reverts a coder's latest batch by writing the ``before``
snapshots back, after checking that nothing has changed those rows since.

Auto-coding suggestions, imports and quote-target links are machine output
and are not recorded here.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import sqlite_utils

from qualkit import store
from qualkit.errors import QualkitError

# The primary key columns of the tables whose changes are recorded.
PRIMARY_KEYS: dict[str, tuple[str, ...]] = {
    "codings": ("id",),
    "memos": ("id",),
    "quote_links": ("coding_id", "target_id"),
    "codes": ("id",),
    "codebooks": ("id", "version"),
}
# Tables whose one-column key is an integer row id.
INTEGER_KEYS = ("codings", "memos")
RESERVED_CODERS = ("autocode",)
UNDO_COMMAND = "undo"
SYSTEM_CODER = "qualkit"


def ensure_history_tables(db: sqlite_utils.Database) -> None:
    """Create the audit and review tables in a database made before they existed.

    Statements run one by one, because ``executescript`` would commit an
    open transaction.
    """
    if "audit_log" in db.table_names() and "review_state" in db.table_names():
        return
    for statement in store.HISTORY_SCHEMA.split(";"):
        if statement.strip():
            db.execute(statement)


def check_coder_name(coder: str) -> str:
    """Return the coder name stripped, or raise QualkitError if it cannot be used."""
    name = coder.strip()
    if not name:
        raise QualkitError(
            "The coder name is empty. Pass --coder NAME or set QUALKIT_CODER."
        )
    if name in RESERVED_CODERS:
        raise QualkitError(
            f"The coder name {name!r} is reserved for auto-coding suggestions. "
            "Pass your own name with --coder or QUALKIT_CODER."
        )
    return name


def row_key(table: str, pk: Any) -> tuple[Any, ...]:
    """Return ``pk`` as a tuple of primary key values for ``table``."""
    values = pk if isinstance(pk, tuple) else (pk,)
    if len(values) != len(PRIMARY_KEYS[table]):
        raise ValueError(f"{table} needs a key of {PRIMARY_KEYS[table]}, got {pk!r}")
    return values


def row_id_text(table: str, pk: Any) -> str:
    """Return the text stored in ``audit_log.row_id`` for a primary key."""
    values = row_key(table, pk)
    if len(values) == 1:
        return str(values[0])
    return json.dumps(list(values), ensure_ascii=False)


def snapshot(db: sqlite_utils.Database, table: str, pk: Any) -> dict[str, Any] | None:
    """Return the row of ``table`` with primary key ``pk`` as a dict, or None."""
    columns = PRIMARY_KEYS[table]
    where = " AND ".join(f"[{column}] = ?" for column in columns)
    cursor = db.execute(
        f"SELECT * FROM [{table}] WHERE {where}", list(row_key(table, pk))
    )
    row = cursor.fetchone()
    if row is None:
        return None
    return dict(zip([d[0] for d in cursor.description], row))


def _dump(row: dict[str, Any] | None) -> str | None:
    return None if row is None else json.dumps(row, ensure_ascii=False, sort_keys=True)


class ChangeRecorder:
    """Make changes to recorded tables and log each one in one batch.

    The caller opens the transaction. Create one recorder per command, or
    per decision in the interactive review.
    """

    def __init__(self, db: sqlite_utils.Database, coder: str, command: str) -> None:
        ensure_history_tables(db)
        self.db = db
        self.coder = coder
        self.command = command
        self.batch_id = uuid.uuid4().hex[:12]
        self.changed_at = store.utc_now()
        self.entries = 0

    def record(
        self,
        table: str,
        pk: Any,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
    ) -> None:
        """Log a change already made to one row; nothing is logged if the row is unchanged."""
        if before == after:
            return
        if before is None:
            action = "insert"
        elif after is None:
            action = "delete"
        else:
            action = "update"
        self.db.execute(
            "INSERT INTO audit_log (batch_id, coder, changed_at, command, table_name, "
            "row_id, action, before, after) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                self.batch_id,
                self.coder,
                self.changed_at,
                self.command,
                table,
                row_id_text(table, pk),
                action,
                _dump(before),
                _dump(after),
            ],
        )
        self.entries += 1

    def insert(self, table: str, row: dict[str, Any]) -> Any:
        """Insert ``row`` and return its primary key: one value for one-column keys, else a tuple."""
        columns = list(row)
        marks = ", ".join("?" for _ in columns)
        names = ", ".join(f"[{c}]" for c in columns)
        cursor = self.db.execute(
            f"INSERT INTO [{table}] ({names}) VALUES ({marks})",
            [row[c] for c in columns],
        )
        key_columns = PRIMARY_KEYS[table]
        if key_columns == ("id",) and "id" not in row:
            pk: Any = cursor.lastrowid
        else:
            pk = tuple(row[c] for c in key_columns)
            pk = pk[0] if len(pk) == 1 else pk
        self.record(table, pk, None, snapshot(self.db, table, pk))
        return pk

    def update(self, table: str, pk: Any, values: dict[str, Any]) -> bool:
        """Set ``values`` on one row; return False if the row did not change."""
        before = snapshot(self.db, table, pk)
        if before is None:
            raise QualkitError(f"{table} row {row_id_text(table, pk)} not found.")
        if all(before.get(column) == value for column, value in values.items()):
            return False
        assignments = ", ".join(f"[{column}] = ?" for column in values)
        where = " AND ".join(f"[{column}] = ?" for column in PRIMARY_KEYS[table])
        self.db.execute(
            f"UPDATE [{table}] SET {assignments} WHERE {where}",
            [*values.values(), *row_key(table, pk)],
        )
        self.record(table, pk, before, snapshot(self.db, table, pk))
        return True

    def delete(self, table: str, pk: Any) -> dict[str, Any] | None:
        """Delete one row and return what it held (None if it did not exist).

        Rows that a foreign key cascade would delete with it are not logged,
        so delete them through the recorder first (``coding.delete_coding``).
        """
        before = snapshot(self.db, table, pk)
        if before is None:
            return None
        where = " AND ".join(f"[{column}] = ?" for column in PRIMARY_KEYS[table])
        self.db.execute(
            f"DELETE FROM [{table}] WHERE {where}", list(row_key(table, pk))
        )
        self.record(table, pk, before, None)
        return before


@dataclass
class UndoResult:
    """The batch that ``undo_last`` reverted and the rows it restored."""

    batch_id: str
    command: str
    changed_at: str
    undo_batch_id: str
    reverted: list[tuple[str, str, str]] = field(default_factory=list)


def undo_last(
    db: sqlite_utils.Database, coder: str, *, dry_run: bool = False
) -> UndoResult:
    """Revert the latest batch of ``coder`` that is not undone; the caller opens the transaction.

    Undo batches themselves are skipped, so repeated calls walk further back.
    Raises QualkitError when a row of the batch has changed since (by another
    coder, or by an import or auto-coding run). The caller's transaction then
    discards the rows restored before the check failed.
    """
    ensure_history_tables(db)
    latest = db.execute(
        "SELECT batch_id, command, changed_at FROM audit_log WHERE coder = ? "
        "AND undone_by IS NULL AND command != ? ORDER BY id DESC LIMIT 1",
        [coder, UNDO_COMMAND],
    ).fetchone()
    if latest is None:
        raise QualkitError(
            f"Coder {coder!r} has no change left to undo. See 'qualkit log'."
        )
    batch_id, command, changed_at = latest
    entries = db.execute(
        "SELECT id, table_name, row_id, action, before, after FROM audit_log "
        "WHERE batch_id = ? ORDER BY id DESC",
        [batch_id],
    ).fetchall()
    recorder = ChangeRecorder(db, coder, UNDO_COMMAND)
    result = UndoResult(batch_id, command, changed_at, recorder.batch_id)
    for entry_id, table, row_id, action, before_json, after_json in entries:
        pk = _parse_row_id(table, row_id)
        before = json.loads(before_json) if before_json else None
        after = json.loads(after_json) if after_json else None
        current = snapshot(db, table, pk)
        if current != after:
            raise QualkitError(
                _changed_since_message(db, table, row_id, entry_id, batch_id)
            )
        result.reverted.append((table, row_id, action))
        if dry_run:
            continue
        _restore(db, table, pk, before)
        recorder.record(table, pk, current, snapshot(db, table, pk))
    if not dry_run:
        db.execute(
            "UPDATE audit_log SET undone_by = ? WHERE batch_id = ?",
            [recorder.batch_id, batch_id],
        )
        store.touch(db)
    return result


def _parse_row_id(table: str, row_id: str) -> Any:
    if len(PRIMARY_KEYS[table]) > 1:
        return tuple(json.loads(row_id))
    return int(row_id) if table in INTEGER_KEYS else row_id


def _restore(
    db: sqlite_utils.Database, table: str, pk: Any, before: dict[str, Any] | None
) -> None:
    # An existing row is updated in place, because deleting it would fail on
    # foreign keys that point at it or cascade to rows that reference it.
    where = " AND ".join(f"[{column}] = ?" for column in PRIMARY_KEYS[table])
    key = list(row_key(table, pk))
    if before is None:
        db.execute(f"DELETE FROM [{table}] WHERE {where}", key)
        return
    names = list(before)
    if snapshot(db, table, pk) is not None:
        assignments = ", ".join(f"[{name}] = ?" for name in names)
        db.execute(
            f"UPDATE [{table}] SET {assignments} WHERE {where}",
            [before[n] for n in names] + key,
        )
        return
    db.execute(
        f"INSERT INTO [{table}] ({', '.join(f'[{n}]' for n in names)}) "
        f"VALUES ({', '.join('?' for _ in names)})",
        [before[n] for n in names],
    )


def _changed_since_message(
    db: sqlite_utils.Database, table: str, row_id: str, entry_id: int, batch_id: str
) -> str:
    later = db.execute(
        "SELECT batch_id, coder, command FROM audit_log WHERE table_name = ? AND row_id = ? "
        "AND id > ? AND batch_id != ? AND undone_by IS NULL ORDER BY id DESC LIMIT 1",
        [table, row_id, entry_id, batch_id],
    ).fetchone()
    row_label = f"{table} row {row_id}"
    if later is None:
        return (
            f"Cannot undo batch {batch_id}: {row_label} was changed since by a command that is "
            "not in the log (an import or auto-coding run). Change it back by hand instead."
        )
    return (
        f"Cannot undo batch {batch_id}: {row_label} was changed since by {later[1]!r} "
        f"({later[2]}, batch {later[0]}). That change must be undone first."
    )


def history(
    db: sqlite_utils.Database,
    *,
    coder: str | None = None,
    batch: str | None = None,
    table: str | None = None,
    limit: int | None = 50,
) -> pd.DataFrame:
    """Return audit log entries, newest first, with a one-line summary of each change."""
    ensure_history_tables(db)
    clauses, params = [], []
    for column, value in (("coder", coder), ("batch_id", batch), ("table_name", table)):
        if value:
            clauses.append(f"{column} = ?")
            params.append(value)
    where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
    limit_sql = f"LIMIT {int(limit)}" if limit else ""
    rows = db.execute(
        "SELECT id, batch_id, changed_at, coder, command, table_name, row_id, action, "
        f"before, after, undone_by FROM audit_log {where} ORDER BY id DESC {limit_sql}",
        params,
    ).fetchall()
    records = [
        {
            "batch": batch_id,
            "changed_at": changed_at,
            "coder": who,
            "command": command,
            "table": table_name,
            "row": row_id,
            "action": action,
            "change": summarize_change(before, after),
            "undone_by": undone_by or "",
        }
        for (
            _,
            batch_id,
            changed_at,
            who,
            command,
            table_name,
            row_id,
            action,
            before,
            after,
            undone_by,
        ) in rows
    ]
    columns = [
        "batch",
        "changed_at",
        "coder",
        "command",
        "table",
        "row",
        "action",
        "change",
        "undone_by",
    ]
    return pd.DataFrame(records, columns=columns)


# Columns that identify a row, in the order a summary lists them.
SUMMARY_COLUMNS = (
    "code_id",
    "source_id",
    "start_offset",
    "end_offset",
    "status",
    "coder",
    "about",
    "about_id",
    "target_id",
    "label",
)
SKIPPED_COLUMNS = ("created_at", "updated_at", "loaded_at", "quote", "text", "rules")


def summarize_change(before_json: str | None, after_json: str | None) -> str:
    """Describe a change in one line: the fields that changed, or what was inserted or deleted."""
    before = json.loads(before_json) if before_json else None
    after = json.loads(after_json) if after_json else None
    if before is not None and after is not None:
        changed = [
            f"{column}: {before.get(column)!r} -> {after.get(column)!r}"
            for column in after
            if before.get(column) != after.get(column) and column not in SKIPPED_COLUMNS
        ]
        if "text" in after and before.get("text") != after.get("text"):
            changed.append("text edited")
        return "; ".join(changed) or "timestamps only"
    row = after if after is not None else before or {}
    parts = [
        f"{column}={row[column]!r}"
        for column in SUMMARY_COLUMNS
        if row.get(column) is not None
    ]
    return ", ".join(parts)
