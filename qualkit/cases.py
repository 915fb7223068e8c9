"""Cases (interviews) and their metadata: validation, manifests and conflicts.

Metadata for one interview can come from a manifest CSV, from a
transcript's front matter and from import options. The first value stored is
kept, and a different value from another origin is recorded in
``metadata_conflicts`` and reported. An origin that changes its own value
(an edited manifest or front matter imported again) updates it.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
import re
from pathlib import Path
from typing import Any

import sqlite_utils

from qualkit.errors import TranscriptError
from qualkit.readers.common import read_bytes
from qualkit.readers.encoding import decode_bytes

log = logging.getLogger(__name__)

CASE_FIELDS = ("province", "level", "date", "language", "appendix_group")
DEFAULT_LEVELS = ("province", "city", "county", "township")
LANGUAGES = ("en", "zh")
# The manifest column that names an interview's transcript file.
FILE_COLUMN = "file"


# Ids become command-line arguments and file names in exports, so they are
# limited to letters, digits, '.', '_' and '-' (any script's letters).
_VALID_ID = re.compile(r"^[\w.\-]+$")
# Ids taken from file names are not held to _VALID_ID, so "Interview 1.md"
# keeps working, but no id may contain a control character (a line break
# or a terminal escape) or a path separator, or be "." or "..".
_UNSAFE_IN_ID = re.compile(r"[\x00-\x1f\x7f-\x9f/\\]")


def _check_id(name: str, value: Any, text: str, path: str | Path | None, line: int | None) -> None:
    if not isinstance(value, str):
        # YAML reads 0123 as the number 83 and 1.10 as 1.1.
        raise TranscriptError(
            f"{name} {text!r} was read as a {type(value).__name__}, not as text.",
            path=path,
            line=line,
            fix=f'Quote it, for example {name}: "0123".',
        )
    if not _VALID_ID.match(text) or text in (".", ".."):
        raise TranscriptError(
            f"{name} {text!r} has characters other than letters, digits, '.', '_' and '-'.",
            path=path,
            line=line,
            fix="Use an id such as G16S011.",
        )


def check_safe_id(case_id: str) -> None:
    """Raise TranscriptError for an id that is unsafe in file names and terminals."""
    if _UNSAFE_IN_ID.search(case_id) or case_id.strip() in ("", ".", ".."):
        raise TranscriptError(
            f"interview id {case_id!r} contains a control character or a path separator, "
            "or is empty, '.' or '..'.",
            fix="Rename the file, or give the id in its front matter or the manifest "
            "(letters, digits, '.', '_' and '-').",
        )


def clean_metadata(
    raw: dict[str, Any],
    *,
    path: str | Path | None,
    lines: dict[str, int] | None = None,
    levels: tuple[str, ...] = DEFAULT_LEVELS,
) -> dict[str, Any]:
    """Validate metadata values and return them as strings, ``attributes`` apart.

    ``lines`` maps keys to file lines for error messages; ``path`` is None
    for values given as import options. Languages are normalized to ``en``
    or ``zh`` (``zh-CN`` becomes ``zh``).
    """
    lines = lines or {}
    metadata: dict[str, Any] = {}
    attributes: dict[str, str] = {}
    for key, value in raw.items():
        name = str(key).strip().lower()
        if value is None or str(value).strip() == "":
            continue
        if name in CASE_FIELDS and isinstance(value, (list, tuple, set, dict)):
            # str() would store the Python repr, e.g. "['a', 'b']".
            kind = "mapping" if isinstance(value, dict) else "list"
            raise TranscriptError(
                f"{name} is a {kind}, but it takes a single value.",
                path=path,
                line=lines.get(name),
                fix=f"Give {name} one value, or move the {kind} to a key of its own.",
            )
        text = value.isoformat() if isinstance(value, dt.date) else str(value).strip()
        if name in ("id", "case"):
            _check_id(name, value, text, path, lines.get(name))
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
    if "language" in metadata:
        language = metadata["language"].lower().replace("_", "-").split("-")[0]
        if language not in LANGUAGES:
            raise TranscriptError(
                f"language {metadata['language']!r} is not supported.",
                line=lines.get("language"),
                fix=f"Use one of: {', '.join(LANGUAGES)}.",
                **where,
            )
        metadata["language"] = language
    metadata["attributes"] = attributes

    return metadata


def store_case(
    db: sqlite_utils.Database, case_id: str, metadata: dict[str, Any], origin: str
) -> list[dict[str, Any]]:
    """Insert the case, or reconcile ``metadata`` from ``origin`` with the stored case.

    A field that is still empty is filled in. A value from the origin that
    stored the case replaces the stored one, because that origin was
    edited. A different value from another origin is recorded as a
    conflict, and a conflict that ``origin`` no longer has is removed.
    Returns the conflicts found, as rows of ``metadata_conflicts``.
    """
    check_safe_id(case_id)
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
                "attributes": json.dumps(
                    metadata.get("attributes", {}), ensure_ascii=False, sort_keys=True
                ),
                "origin": origin,
            }
        )
        return []
    conflicts = []
    kept_origin = existing[-1]
    for name, kept in zip(CASE_FIELDS, existing[:-1]):
        other = metadata.get(name)
        if other is None or other == kept:
            if other is not None:
                _resolve_conflict(db, case_id, name, origin)
            continue
        if kept is None or origin == kept_origin:
            db.execute(f"UPDATE cases SET [{name}] = ? WHERE id = ?", [other, case_id])
            if kept is not None:
                log.info("%s: %s changed from %r to %r in %s", case_id, name, kept, other, origin)
                _refresh_conflicts(db, case_id, name, other)
            continue
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


def _resolve_conflict(db: sqlite_utils.Database, case_id: str, name: str, origin: str) -> None:
    db.execute(
        "DELETE FROM metadata_conflicts WHERE case_id = ? AND field = ? AND other_origin = ?",
        [case_id, name, origin],
    )


def _refresh_conflicts(db: sqlite_utils.Database, case_id: str, name: str, kept: str) -> None:
    db.execute(
        "DELETE FROM metadata_conflicts WHERE case_id = ? AND field = ? AND other_value = ?",
        [case_id, name, kept],
    )
    db.execute(
        "UPDATE metadata_conflicts SET kept_value = ? WHERE case_id = ? AND field = ?",
        [kept, case_id, name],
    )


def read_manifest(
    path: str | Path, *, levels: tuple[str, ...] = DEFAULT_LEVELS, encoding: str | None = None
) -> list[dict[str, Any]]:
    """Read and validate a manifest CSV (columns id, province, level, date, ...).

    Returns one cleaned metadata dict per row; a ``file`` column lands in
    ``attributes``. Unless ``encoding`` is given, the encoding is detected
    as for transcripts, so a CSV saved by Excel on Chinese Windows (GBK)
    reads correctly. Raises TranscriptError naming the line of the first
    invalid row.
    """
    path = Path(path)
    text, _ = decode_bytes(read_bytes(path), path=path, encoding=encoding)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        return _manifest_rows(reader, path, levels)
    except csv.Error as error:
        # A cell over the csv module's field size limit (128 KiB), for example.
        raise TranscriptError(
            f"invalid CSV: {error}.", path=path, line=reader.line_num or None,
            fix="Check for an unclosed double quote or a very long cell.",
        ) from None


def _manifest_rows(
    reader: csv.DictReader, path: Path, levels: tuple[str, ...]
) -> list[dict[str, Any]]:
    columns = [str(name).strip().lower() for name in reader.fieldnames or []]
    if "id" not in columns:
        raise TranscriptError(
            "the manifest has no 'id' column.",
            path=path,
            line=1,
            fix="Add a header row with at least: id, province, level, date.",
        )
    seen: dict[str, int] = {}
    files: dict[str, int] = {}
    rows = []
    for row in reader:
        number = reader.line_num
        _check_no_line_break(row, path, number)
        line_of = {str(key).strip().lower(): number for key in row}
        metadata = clean_metadata(row, path=path, lines=line_of, levels=levels)
        _check_row_line(metadata, path, number, seen)
        _check_file_cell(metadata, path, number, files)
        rows.append(metadata)
    return rows


def _check_no_line_break(row: dict[str, Any], path: Path, line: int) -> None:
    # An unclosed quote makes the csv module read the rest of the file as one
    # value. Metadata values have no line breaks, so one is the sign.
    for key, value in row.items():
        if isinstance(value, str) and "\n" in value:
            raise TranscriptError(
                f"the {key!r} value of the row ending on this line spans several lines.",
                path=path,
                line=line,
                fix='Look for an unclosed double quote (") above this line.',
            )


def store_manifest(
    db: sqlite_utils.Database, rows: list[dict[str, Any]], origin: str
) -> list[dict[str, Any]]:
    """Store the cases of a manifest read by ``read_manifest``; return the conflicts."""
    conflicts = []
    for metadata in rows:
        conflicts.extend(store_case(db, metadata["id"], metadata, origin=origin))
    return conflicts


def import_manifest(
    db: sqlite_utils.Database, path: str | Path, *, levels: tuple[str, ...] = DEFAULT_LEVELS
) -> int:
    """Store the cases listed in a manifest CSV; return the number of rows read."""
    rows = read_manifest(path, levels=levels)
    store_manifest(db, rows, origin=Path(path).name)
    return len(rows)


def case_ids_by_file(db: sqlite_utils.Database) -> dict[str, str]:
    """Return the case id of each transcript file name listed in a manifest's file column."""
    found = {}
    for case_id, attributes in db.execute("SELECT id, attributes FROM cases"):
        name = json.loads(attributes or "{}").get(FILE_COLUMN)
        if name:
            found[_file_name(name)] = case_id
    return found


def _file_name(value: str) -> str:
    return value.replace("\\", "/").rsplit("/", 1)[-1]


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


def _check_file_cell(metadata: dict[str, Any], path: Path, line: int, files: dict[str, int]) -> None:
    name = metadata["attributes"].get(FILE_COLUMN)
    if not name:
        return
    key = _file_name(name)
    if key in files:
        raise TranscriptError(
            f"file {name!r} is listed twice (first on line {files[key]}).",
            path=path,
            line=line,
            fix="Give each transcript file one row.",
        )
    files[key] = line
