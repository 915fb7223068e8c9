"""Target values and points: CSV import, storage and negotiability scores.

Values come as a long CSV (``target, unit, year, value``); points as
``target, year, points``. A file with any invalid row stores nothing unless
``skip_invalid`` is set, and every invalid row is reported with its line.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import asdict, dataclass, field
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

VALUE_COLUMNS = ("target", "unit", "year", "value")
POINT_COLUMNS = ("target", "year", "points")


@dataclass
class PanelImport:
    """What a panel file import stored and which rows it skipped."""

    path: str
    kind: str
    stored: int = 0
    skipped: list[str] = field(default_factory=list)


def import_panel_file(
    db: sqlite_utils.Database, path: str | Path, *, skip_invalid: bool = False
) -> PanelImport:
    """Store a values or points CSV, chosen by its header; the caller holds the transaction."""
    path = Path(path)
    header, rows = _read_csv(path)
    if set(VALUE_COLUMNS) <= set(header):
        kind, table, columns, number = "values", "target_values", VALUE_COLUMNS, "value"
    elif set(POINT_COLUMNS) <= set(header):
        kind, table, columns, number = "points", "target_points", POINT_COLUMNS, "points"
    else:
        raise PanelError(
            f"unrecognized columns {', '.join(header)}.",
            path=path,
            line=1,
            fix="Use target,unit,year,value for values or target,year,points for points.",
        )
    known = {row[0] for row in db.execute("SELECT id FROM targets")}
    good, errors = _validate(rows, columns, number, known, path)
    if errors and not skip_invalid:
        raise PanelError(
            f"{len(errors)} invalid row(s), nothing stored:\n  " + "\n  ".join(errors[:20]),
            path=path,
            fix="Correct the rows, or pass --skip-invalid to store only the valid ones.",
        )
    key = ("target_id", "unit", "year") if kind == "values" else ("target_id", "year")
    db[table].upsert_all(good, pk=key)

    return PanelImport(str(path), kind, stored=len(good), skipped=errors)


def _read_csv(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            header = [name.strip().lower() for name in reader.fieldnames or []]
            reader.fieldnames = header
            rows = [(reader.line_num, row) for row in reader]
    except FileNotFoundError:
        raise PanelError("file not found.", path=path) from None
    except UnicodeDecodeError:
        raise PanelError("not valid UTF-8.", path=path, fix="Save the file as UTF-8 CSV.") from None
    return header, rows


def _validate(
    rows: list[tuple[int, dict[str, str]]],
    columns: tuple[str, ...],
    number: str,
    known: set[str],
    path: Path,
) -> tuple[list[dict[str, Any]], list[str]]:
    good: list[dict[str, Any]] = []
    errors: list[str] = []
    seen: dict[tuple[Any, ...], int] = {}
    for line, row in rows:
        values = {name: (row.get(name) or "").strip() for name in columns}
        problem = _row_problem(values, number, known)
        key = tuple(values[name] for name in columns if name != number)
        if problem is None and key in seen:
            problem = f"duplicate of line {seen[key]}"
        if problem is not None:
            errors.append(f"line {line}: {problem}")
            continue
        seen[key] = line
        record: dict[str, Any] = {
            "target_id": values["target"],
            "year": int(values["year"]),
            number: float(values[number]),
            "source_file": path.name,
            "line": line,
        }
        if "unit" in values:
            record["unit"] = values["unit"]
        good.append(record)
    return good, errors


def _row_problem(values: dict[str, str], number: str, known: set[str]) -> str | None:
    if values["target"] not in known:
        return f"unknown target {values['target']!r} (declare it in targets.yaml)"
    if "unit" in values and not values["unit"]:
        return "missing unit"
    if not values["year"].isdigit():
        return f"year {values['year']!r} is not a whole number"
    try:
        parsed = float(values[number])
    except ValueError:
        return f"{number} {values[number]!r} is not a number"
    if not math.isfinite(parsed):
        return f"{number} {values[number]!r} is not a finite number"
    return None


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


def compute_scores(
    db: sqlite_utils.Database,
    options: NegotiabilityOptions = NegotiabilityOptions(),
    *,
    priority_cut: float | None = None,
    negotiability_cut: float | None = None,
) -> pd.DataFrame:
    """Compute negotiability for every target with values and store it in ``scores``."""
    values, points = panel_frames(db)
    targets = db.execute("SELECT id, higher_is_harder, options FROM targets").fetchall()
    directions = {row[0]: bool(row[1]) for row in targets}
    per_target = {
        row[0]: options_from_mapping(json.loads(row[2]), options)
        for row in targets
        if json.loads(row[2])
    }
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
