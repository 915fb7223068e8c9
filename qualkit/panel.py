"""Target values and points: import, storage and negotiability scores.

The files are read by ``qualkit.panel_files``. Every invalid row is reported
with its file and line (rows for Excel), and nothing is stored while any file
of an import has errors, unless ``skip_invalid`` is set.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd
import sqlite_utils

from qualkit.errors import PanelError
from qualkit.negotiability import (
    NegotiabilityOptions,
    options_from_mapping,
    summarize,
    typology,
)
from qualkit.panel_files import (  # noqa: F401 - re-exported for callers of qualkit.panel
    MAX_LISTED_ERRORS,
    PanelImport,
    PanelTable,
    UnitAliases,
    _parse_file,
    _Parsed,
    canonical_unit,
    load_unit_aliases,
    normalize_name,
    parse_number,
    parse_year,
    read_table,
    unit_aliases_from_settings,
)

log = logging.getLogger(__name__)


# Import


def import_panel_file(
    db: sqlite_utils.Database,
    path: str | Path,
    *,
    skip_invalid: bool = False,
    aliases: UnitAliases | None = None,
    target: str | None = None,
    year: int | None = None,
    sheet: str | int | None = None,
) -> PanelImport:
    """Store one panel file; the caller must run this inside a transaction.

    See ``import_panel_files`` for the options.
    """
    return import_panel_files(
        db,
        [path],
        skip_invalid=skip_invalid,
        aliases=aliases,
        target=target,
        year=year,
        sheet=sheet,
    )[0]


def import_panel_files(
    db: sqlite_utils.Database,
    paths: Iterable[str | Path],
    *,
    skip_invalid: bool = False,
    aliases: UnitAliases | None = None,
    target: str | None = None,
    year: int | None = None,
    sheet: str | int | None = None,
) -> list[PanelImport]:
    """Validate every file, then store them all, inside the caller's transaction.

    ``aliases`` normalizes unit names, and a unit that is not among them is
    invalid. ``target`` is the target of wide files without a target column,
    ``year`` the year of evaluation forms without a year column, and ``sheet``
    the Excel sheet to read (the first by default).

    Raises PanelError listing the invalid rows of every file unless
    ``skip_invalid`` is set, in which case only the valid rows are stored and
    the invalid ones are returned in ``PanelImport.skipped``. An evaluation
    form with any problem, such as items that do not add up to a subtotal,
    raises even with ``skip_invalid``, because its sums cannot be trusted.
    """
    known = _known_targets(db)
    parsed = [
        _parse_file(Path(path), known, aliases, target, year, sheet) for path in paths
    ]
    failed = [item for item in parsed if item.errors]
    blocking = [item for item in failed if item.result.kind == "form" or not skip_invalid]
    if blocking:
        raise _errors_report(blocking, skip_invalid)
    _check_across_files(parsed)

    for item in parsed:
        if item.records:
            _warn_replaced(db, item)
            db[item.table].upsert_all(item.records, pk=item.key)
        item.result.stored = len(item.records)
        item.result.skipped = item.errors

    return [item.result for item in parsed]


def _warn_replaced(db: sqlite_utils.Database, item: _Parsed) -> None:
    """Log a warning for each stored value that ``item`` replaces with a different one.

    Only values stored from a file with another name are reported, because
    importing an edited file again is the usual way to correct it. The first
    MAX_LISTED_ERRORS replacements are logged one by one, the rest as a count.
    """
    if not db[item.table].exists():
        return
    number_column = "points" if item.table == "target_points" else "value"
    key_columns = ", ".join(item.key)
    stored = {
        tuple(row[:-3]): row[-3:]
        for row in db.execute(
            f"SELECT {key_columns}, {number_column}, source_file, line FROM {item.table}"
        )
    }
    replaced = 0
    for record in item.records:
        old = stored.get(tuple(record[name] for name in item.key))
        if old is None:
            continue
        old_number, old_file, old_line = old
        if old_number == record[number_column] or old_file == record["source_file"]:
            continue
        replaced += 1
        if replaced > MAX_LISTED_ERRORS:
            continue
        where = ", ".join(f"{name.removesuffix('_id')} {record[name]}" for name in item.key)
        log.warning(
            "%s: stored %s %s (%s, line %s) replaced by %s (%s, line %s).",
            where,
            number_column,
            _number_text(old_number),
            old_file,
            old_line,
            _number_text(record[number_column]),
            record["source_file"],
            record["line"],
        )
    if replaced > MAX_LISTED_ERRORS:
        log.warning(
            "%d more stored %s value(s) replaced by %s.",
            replaced - MAX_LISTED_ERRORS,
            number_column,
            item.result.path,
        )


def _number_text(number: float) -> str:
    """Format a stored value without a trailing '.0' for whole numbers."""
    return str(int(number)) if float(number).is_integer() else repr(float(number))


def _check_across_files(parsed: list[_Parsed]) -> None:
    """Raise PanelError when two files give different numbers for one key.

    Within a file a repeated key is already an invalid row; across files the
    later file would silently overwrite the earlier one.
    """
    seen: dict[tuple[Any, ...], tuple[str, Any, Any]] = {}
    clashes = []
    for item in parsed:
        for record in item.records:
            key = (item.table, *(record[name] for name in item.key))
            number = record.get("value", record.get("points"))
            where = f"{record.get('source_file')}, line {record.get('line')}"
            if key in seen and seen[key][1] != number:
                clashes.append(
                    f"{where}: {number} for {', '.join(map(str, key[1:]))}, "
                    f"but {seen[key][0]} gives {seen[key][1]}"
                )
            seen.setdefault(key, (where, number, item))
    if clashes:
        raise PanelError(
            f"{len(clashes)} value(s) differ between files, nothing stored:\n  "
            + "\n  ".join(clashes[:20]),
            fix="Keep each target-unit-year in one file, or correct the one that is wrong.",
        )


def _errors_report(failed: list[_Parsed], skip_invalid: bool) -> PanelError:
    count = sum(len(item.errors) for item in failed)
    fix = (
        "Correct the form so that its items add up to each stated subtotal."
        if skip_invalid
        else "Correct the rows, or pass --skip-invalid to store only the valid ones."
    )
    if len(failed) == 1:
        errors = failed[0].errors
        return PanelError(
            f"{count} invalid row(s), nothing stored:\n  "
            + "\n  ".join(errors[:MAX_LISTED_ERRORS])
            + _more(errors),
            path=failed[0].result.path,
            fix=fix,
        )

    sections = [
        f"{item.result.path}:\n    "
        + "\n    ".join(item.errors[:MAX_LISTED_ERRORS])
        + _more(item.errors)
        for item in failed
    ]
    return PanelError(
        f"{count} invalid row(s) in {len(failed)} files, nothing stored:\n  "
        + "\n  ".join(sections),
        fix=fix,
    )


def _more(errors: list[str]) -> str:
    hidden = len(errors) - MAX_LISTED_ERRORS
    return f"\n  ... and {hidden} more" if hidden > 0 else ""


def _known_targets(db: sqlite_utils.Database) -> dict[str, str]:
    """Map every target id, name and alias (normalized) to the target id."""
    known: dict[str, str] = {}
    for target_id, name in db.execute("SELECT id, name FROM targets"):
        known[normalize_name(target_id)] = target_id
        known.setdefault(normalize_name(name), target_id)
    for target_id, alias in db.execute("SELECT target_id, alias FROM target_aliases"):
        known.setdefault(normalize_name(alias), target_id)

    return known


# Reading the stored panel


def panel_frames(db: sqlite_utils.Database) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return the stored values and points as the DataFrames negotiability expects."""
    values = pd.read_sql_query(
        "SELECT target_id AS target, unit, year, value FROM target_values ORDER BY 1, 3, 2",
        db.conn,
    )
    points = pd.read_sql_query(
        "SELECT target_id AS target, year, points FROM target_points ORDER BY 1, 2", db.conn
    )
    return values, points


def target_settings(
    db: sqlite_utils.Database, options: NegotiabilityOptions = NegotiabilityOptions()
) -> tuple[dict[str, bool], dict[str, NegotiabilityOptions]]:
    """Return each target's direction and the options of targets that override them."""
    targets = db.execute("SELECT id, higher_is_harder, options FROM targets").fetchall()
    directions = {row[0]: bool(row[1]) for row in targets}
    per_target = {
        row[0]: options_from_mapping(json.loads(row[2]), options)
        for row in targets
        if json.loads(row[2] or "{}")
    }

    return directions, per_target


def compute_scores(
    db: sqlite_utils.Database,
    options: NegotiabilityOptions = NegotiabilityOptions(),
    *,
    priority_cut: float | None = None,
    negotiability_cut: float | None = None,
) -> pd.DataFrame:
    """Compute negotiability for every target with values and store it in ``scores``."""
    values, points = panel_frames(db)
    directions, per_target = target_settings(db, options)
    db.execute("DELETE FROM scores")
    if values.empty:
        return pd.DataFrame()
    summary = summarize(values, points, directions, options, per_target=per_target)
    cells = typology(summary, priority_cut=priority_cut, negotiability_cut=negotiability_cut)
    merged = summary.merge(
        cells[["target", "priority_level", "negotiability_level", "cell", "expected_response"]],
        on="target",
        how="left",
    )
    columns = {column.name for column in db["scores"].columns}
    rows = _score_rows(merged, options, per_target)
    db["scores"].insert_all([{k: v for k, v in row.items() if k in columns} for row in rows])

    return merged


def _score_rows(
    merged: pd.DataFrame,
    options: NegotiabilityOptions,
    per_target: dict[str, NegotiabilityOptions],
) -> list[dict[str, Any]]:
    rows = []
    for record in merged.to_dict("records"):
        used = per_target.get(record["target"], options)
        row = {"target_id": record.pop("target"), "options": json.dumps(asdict(used), sort_keys=True)}
        for name, value in record.items():
            if isinstance(value, float) and math.isnan(value):
                value = None
            elif hasattr(value, "item"):
                value = value.item()
            row[name] = value
        row["eligible"] = int(bool(row.get("eligible")))
        rows.append(row)
    return rows
