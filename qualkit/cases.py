"""Cases (interviews) and their metadata: validation, manifests and conflicts.

Metadata for one interview can come from a manifest CSV and from a
transcript's front matter. The first value stored is kept; a different value
from another origin is recorded in ``metadata_conflicts`` and reported.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path
from typing import Any

import sqlite_utils

from qualkit.errors import TranscriptError

CASE_FIELDS = ("province", "level", "date", "language", "appendix_group")
DEFAULT_LEVELS = ("province", "city", "county", "township")


def clean_metadata(
    raw: dict[str, Any],
    *,
    path: str | Path,
    lines: dict[str, int] | None = None,
    levels: tuple[str, ...] = DEFAULT_LEVELS,
) -> dict[str, Any]:
    """Validate metadata values and return them as strings, ``attributes`` apart.

    ``lines`` maps keys to file lines for error messages.
    """
    lines = lines or {}
    metadata: dict[str, Any] = {}
    attributes: dict[str, str] = {}
    for key, value in raw.items():
        name = str(key).strip().lower()
        if value is None or str(value).strip() == "":
            continue
        text = value.isoformat() if isinstance(value, dt.date) else str(value).strip()
        if name in ("id", "case", *CASE_FIELDS):
            metadata[name] = text
        else:
            attributes[name] = text
    where = {"path": path}
    if "level" in metadata:
        metadata["level"] = metadata["level"].lower()
        if metadata["level"] not in levels:
            raise TranscriptError(
                f"level {metadata['level']!r} is not one of the configured levels "
                f"({', '.join(levels)}).",
                line=lines.get("level"),
                fix="Correct the level, or add it to 'levels' in qualkit.toml.",
                **where,
            )
    if "date" in metadata:
        try:
            dt.date.fromisoformat(metadata["date"])
        except ValueError:
            raise TranscriptError(
                f"date {metadata['date']!r} is not an ISO date.",
                line=lines.get("date"),
                fix="Write it as YYYY-MM-DD.",
                **where,
            ) from None
    metadata["attributes"] = attributes

    return metadata


def store_case(
    db: sqlite_utils.Database, case_id: str, metadata: dict[str, Any], origin: str
) -> list[dict[str, Any]]:
    """Insert the case or record where ``metadata`` disagrees with it.

    Returns the conflicts found, as rows of ``metadata_conflicts``.
    """
    existing = db.execute(
        "SELECT province, level, date, language, appendix_group, origin "
        "FROM cases WHERE id = ?",
        [case_id],
    ).fetchone()
    if existing is None:
        db["cases"].insert(
            {
                "id": case_id,
                **{name: metadata.get(name) for name in CASE_FIELDS},
                "attributes": json.dumps(metadata.get("attributes", {}), ensure_ascii=False, sort_keys=True),
                "origin": origin,
            }
        )
        return []
    conflicts = []
    kept_origin = existing[-1]
    for name, kept in zip(CASE_FIELDS, existing[:-1]):
        other = metadata.get(name)
        if other is None:
            continue
        if kept is None:
            db.execute(f"UPDATE cases SET [{name}] = ? WHERE id = ?", [other, case_id])
        elif kept != other and origin != kept_origin:
            conflicts.append(
                {
                    "case_id": case_id,
                    "field": name,
                    "kept_value": kept,
                    "kept_origin": kept_origin,
                    "other_value": other,
                    "other_origin": origin,
                }
            )
    if conflicts:
        db["metadata_conflicts"].upsert_all(
            conflicts, pk=("case_id", "field", "other_origin")
        )
    return conflicts


def import_manifest(
    db: sqlite_utils.Database, path: str | Path, *, levels: tuple[str, ...] = DEFAULT_LEVELS
) -> int:
    """Store the cases listed in a manifest CSV (columns id, province, level, date...).

    Returns the number of rows read. Raises TranscriptError naming the line of
    the first invalid row.
    """
    path = Path(path)
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except FileNotFoundError:
        raise TranscriptError("manifest file not found.", path=path) from None
    with handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or "id" not in [n.strip().lower() for n in reader.fieldnames]:
            raise TranscriptError(
                "the manifest has no 'id' column.",
                path=path,
                line=1,
                fix="Add a header row with at least: id, province, level, date.",
            )
        rows = list(reader)
    seen: dict[str, int] = {}
    for number, row in enumerate(rows, start=2):
        line_of = {str(key).strip().lower(): number for key in row}
        metadata = clean_metadata(row, path=path, lines=line_of, levels=levels)
        _check_row_line(metadata, path, number, seen)
        store_case(db, metadata["id"], metadata, origin=path.name)
    return len(rows)


def _check_row_line(metadata: dict[str, Any], path: Path, line: int, seen: dict[str, int]) -> None:
    case_id = metadata.get("id")
    if not case_id:
        raise TranscriptError("row has no id.", path=path, line=line, fix="Fill in the id column.")
    if case_id in seen:
        raise TranscriptError(
            f"interview id {case_id!r} is listed twice (first on line {seen[case_id]}).",
            path=path,
            line=line,
            fix="Keep one row per interview.",
        )
    seen[case_id] = line
