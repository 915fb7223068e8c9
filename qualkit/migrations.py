"""Upgrading a project database written by an earlier qualkit.

``migrate`` first copies the file next to itself (``NAME.v1-backup`` for a
version-1 file) with SQLite's online backup API, then runs every step from
the file's version to the current one inside one write transaction together
with the new version number. A crash or an error therefore leaves the file at
its old version with its data untouched, and the copy stays for the user.

To add version N + 1: change ``store.SCHEMA``, add ``MIGRATIONS[N]`` that
brings a version-N file to exactly that schema, and keep
tests/test_migrations.py comparing an upgraded file with a new one.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path

import sqlite_utils

from qualkit.errors import StoreError

log = logging.getLogger(__name__)


def _upgrade_to_version_2(db: sqlite_utils.Database) -> None:
    from qualkit.store import HISTORY_SCHEMA, schema_statements

    # A coding may carry a number (an ordinal or interval rating), which
    # agreement coefficients for ordinal and interval data compare.
    db.execute("ALTER TABLE codings ADD COLUMN value REAL")
    # Files made by early version-1 releases lack the audit and review
    # tables. The statements use IF NOT EXISTS, so other files keep theirs.
    for statement in schema_statements(HISTORY_SCHEMA):
        db.execute(statement)
    db.execute("CREATE INDEX IF NOT EXISTS sources_content_hash ON sources (content_hash)")


# MIGRATIONS[n] upgrades a version-n database to version n + 1. A step runs
# inside the caller's transaction, so it must not commit (no executescript).
MIGRATIONS: dict[int, Callable[[sqlite_utils.Database], None]] = {
    1: _upgrade_to_version_2,
}


def backup_path(path: Path, version: int) -> Path:
    """Return a free file name for the pre-upgrade copy of ``path``.

    The first choice is ``NAME.vN-backup`` next to the file. An existing copy
    from an earlier upgrade attempt is kept, and the new one gets ``-2``,
    ``-3`` and so on.
    """
    candidate = path.with_name(f"{path.name}.v{version}-backup")
    number = 2
    while candidate.exists():
        candidate = path.with_name(f"{path.name}.v{version}-backup-{number}")
        number += 1
    return candidate


def migrate(db: sqlite_utils.Database, path: Path, version: int) -> Path | None:
    """Upgrade the database at ``path`` from ``version`` to the current one.

    Returns the backup copy written before the upgrade, or None when another
    process upgraded the file first. Raises StoreError for a version that no
    qualkit release wrote, or when a step fails. The file is then unchanged.
    """
    from qualkit.maintenance import write_backup
    from qualkit.store import SCHEMA_VERSION, read_schema_version, set_meta, transaction

    path = Path(path)
    missing = [step for step in range(version, SCHEMA_VERSION) if step not in MIGRATIONS]
    if version < 1 or missing:
        known = ", ".join(str(step) for step in sorted(MIGRATIONS)) or "none"
        raise StoreError(
            f"{path} has schema version {version}, which this qualkit cannot upgrade "
            f"(it upgrades versions: {known}). Restore the file from a backup, or pass "
            "another --db. It was not changed."
        )
    with transaction(db):
        # Re-read under the write lock: another process may have upgraded the
        # file while this one waited.
        version = read_schema_version(db, path)
        if version >= SCHEMA_VERSION:
            return None
        copy = backup_path(path, version)
        try:
            write_backup(path, copy)
        except (StoreError, sqlite3.Error, OSError) as error:
            raise StoreError(
                f"Could not write the copy of {path} that is kept before upgrading it to "
                f"{copy} ({error}). The file was not changed. Free disk space or fix the "
                "folder's permissions, and open the project again."
            ) from error
        log.warning(
            "Upgrading %s from schema version %d to %d. A copy of the version-%d file "
            "is at %s; delete it once the project works.",
            path,
            version,
            SCHEMA_VERSION,
            version,
            copy,
        )
        try:
            for step in range(version, SCHEMA_VERSION):
                log.info("Schema step %d to %d on %s", step, step + 1, path)
                MIGRATIONS[step](db)
                set_meta(db, "schema_version", str(step + 1))
        except Exception as error:
            raise StoreError(
                f"Upgrading {path} from schema version {version} failed ({error}). The "
                f"file was left at version {version}; a copy is at {copy}. Report this "
                "with the qualkit version."
            ) from error
    return copy
