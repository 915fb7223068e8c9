"""Upgrading a project database written by an earlier qualkit.

Each step takes the schema from one version to the next and runs in its own
transaction together with the new version number, so a crash leaves the
database at the old version or the new one, never in between.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import sqlite_utils

from qualkit.errors import StoreError

log = logging.getLogger(__name__)


def _add_coding_value(db: sqlite_utils.Database) -> None:
    # Version 2: a coding may carry a number (an ordinal or interval rating),
    # which agreement coefficients for ordinal and interval data compare.
    db.execute("ALTER TABLE codings ADD COLUMN value REAL")


# MIGRATIONS[n] upgrades a version-n database to version n + 1.
MIGRATIONS: dict[int, Callable[[sqlite_utils.Database], None]] = {
    1: _add_coding_value,
}


def migrate(db: sqlite_utils.Database, path: Path, version: int) -> None:
    """Upgrade the database at ``path`` from ``version`` to the current one."""
    from qualkit.store import SCHEMA_VERSION, set_meta, transaction

    if version < 1 or version not in MIGRATIONS and version < SCHEMA_VERSION:
        raise StoreError(
            f"{path} has schema version {version}, which no qualkit release wrote. "
            "Restore the file from a backup, or pass another --db."
        )
    while version < SCHEMA_VERSION:
        log.info("Upgrading %s from schema version %d to %d", path, version, version + 1)
        with transaction(db):
            MIGRATIONS[version](db)
            set_meta(db, "schema_version", str(version + 1))
        version += 1
