"""Quantitized export: a case-by-code matrix for regression, as CSV, Excel or Stata.

One row per case (interview) that has a transcript, with its metadata, and
per code one column for each measure:

- ``presence``: 1 if the case has a coding of the code, else 0;
- ``count``: the number of codings of the code in the case;
- ``share``: the share of the case's characters that the code covers, with
  overlapping codings of the code counted once.
"""

from __future__ import annotations

import csv

import io
import re
import warnings
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import sqlite_utils
from pandas.io.stata import InvalidColumnName

from qualkit.coding import (
    CASE_COLUMNS,
    CODING_FROM,
    CodingFilter,
    filter_clause,
    metadata_expression,
)
from qualkit.errors import InputError

MEASURES = ("presence", "count", "share")
FORMATS = {".csv": "csv", ".xlsx": "xlsx", ".dta": "dta"}
# A spreadsheet may run a cell that starts with one of these as a formula.
# OWASP ASVS requirement 1.2.10 lists = + - @ tab and NUL, and a leading
# carriage return is escaped too. A leading apostrophe makes the cell text.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\0")
# Stata's limits on variable names and labels, in characters
# (stata.com/products/comparison-of-limits).
STATA_NAME_LENGTH = 32
STATA_LABEL_LENGTH = 80


@dataclass
class CaseCodeMatrix:
    """The matrix and, per column, its code and measure (None for metadata columns)."""

    frame: pd.DataFrame
    columns: dict[str, tuple[str | None, str | None]]

    def labels(self) -> dict[str, str]:
        """Return a readable label per column, for Stata variable labels."""
        labels = {}
        for column, (code, measure) in self.columns.items():
            labels[column] = f"{measure} of {code}" if code else column
        return labels


def case_code_matrix(
    db: sqlite_utils.Database,
    selection: CodingFilter,
    *,
    measures: tuple[str, ...] = ("count",),
    depth: int | None = None,
    attributes: tuple[str, ...] = (),
) -> CaseCodeMatrix:
    """Build the case-by-code matrix from the codings that ``selection`` takes.

    Columns are named by code id when one measure is asked for, and
    ``code:measure`` otherwise. ``depth`` rolls codes up to their ancestors
    at that depth. ``attributes`` adds front matter fields as columns.
    """
    for measure in measures:
        if measure not in MEASURES:
            raise InputError(
                f"unknown measure {measure!r}.",
                fix=f"Use one of: {', '.join(MEASURES)}.",
            )
    cases = _cases(db, attributes, selection)
    labels = _labels(db, depth)
    where, params = filter_clause(db, selection)
    codings = db.execute(
        f"SELECT k.id, c.source_id, c.code_id, c.start_offset, c.end_offset {CODING_FROM} WHERE {where}",
        params,
    ).fetchall()
    counts: dict[tuple[str, str], int] = defaultdict(int)
    spans: dict[tuple[str, str, str], list[tuple[int, int]]] = defaultdict(list)
    for case_id, source_id, code_id, start, end in codings:
        label = code_id if depth is None else ".".join(code_id.split(".")[:depth])
        if label not in labels:
            labels.append(label)
        counts[case_id, label] += 1
        spans[case_id, source_id, label].append((start, end))
    covered: dict[tuple[str, str], int] = defaultdict(int)
    for (case_id, _, label), intervals in spans.items():
        covered[case_id, label] += _union_length(intervals)
    frame = cases.copy()
    columns: dict[str, tuple[str | None, str | None]] = {
        name: (None, None) for name in frame.columns
    }
    new_columns = {}
    for label in labels:
        for measure in measures:
            name = label if len(measures) == 1 else f"{label}:{measure}"
            values = []
            for case_id, characters in zip(frame["case_id"], frame["characters"]):
                count = counts.get((case_id, label), 0)
                if measure == "presence":
                    values.append(int(count > 0))
                elif measure == "count":
                    values.append(count)
                else:
                    values.append(
                        covered.get((case_id, label), 0) / characters
                        if characters
                        else 0.0
                    )
            new_columns[name] = pd.Series(
                values,
                index=frame.index,
                dtype="float64" if measure == "share" else "int64",
            )
            columns[name] = (label, measure)
    frame = pd.concat([frame, pd.DataFrame(new_columns, index=frame.index)], axis=1)
    return CaseCodeMatrix(frame, columns)


def _cases(
    db: sqlite_utils.Database, attributes: tuple[str, ...], selection: CodingFilter
) -> pd.DataFrame:
    extra, extra_params = [], []
    for name in attributes:
        expression, expression_params = metadata_expression(db, name.lower())
        extra.append(f"max({expression}) AS [{name.lower()}]")
        extra_params += expression_params
    case_filter, filter_params = [], []
    if selection.sources:
        case_filter.append(f"s.id IN ({', '.join('?' for _ in selection.sources)})")
        filter_params += list(selection.sources)
    for name, values in selection.where:
        expression, expression_params = metadata_expression(db, name)
        case_filter.append(
            f"lower({expression}) IN ({', '.join('lower(?)' for _ in values)})"
        )
        filter_params += expression_params + list(values)
    where = ("WHERE " + " AND ".join(case_filter)) if case_filter else ""
    select_extra = "".join(", " + item for item in extra)
    return pd.read_sql_query(
        f"SELECT k.id AS case_id, {', '.join(f'k.[{c}]' for c in CASE_COLUMNS)}{select_extra}, "
        "count(s.id) AS sources, sum(length(s.text)) AS characters "
        f"FROM cases k JOIN sources s ON s.case_id = k.id {where} GROUP BY k.id ORDER BY k.id",
        db.conn,
        params=extra_params + filter_params,
    )


def _labels(db: sqlite_utils.Database, depth: int | None) -> list[str]:
    labels: list[str] = []
    for (code_id,) in db.execute(
        "SELECT id FROM codes WHERE active = 1 ORDER BY position"
    ):
        label = code_id if depth is None else ".".join(code_id.split(".")[:depth])
        if label not in labels:
            labels.append(label)
    return labels


def _union_length(intervals: list[tuple[int, int]]) -> int:
    total, reach = 0, None
    for start, end in sorted(intervals):
        if reach is None or start >= reach:
            total += end - start
            reach = end
        elif end > reach:
            total += end - reach
            reach = end
    return total


# Writing -----------------------------------------------------------------------------


def neutralize_cell(value: Any) -> Any:
    """Prefix a text cell that a spreadsheet would run as a formula with an apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def neutralize_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """Return a copy of ``frame`` whose text cells and headers cannot start a formula.

    Number columns are left alone, so a negative number stays a number.
    """
    safe = frame.copy()
    for column in safe.columns:
        if not pd.api.types.is_numeric_dtype(safe[column]):
            safe[column] = safe[column].map(neutralize_cell)
    safe.columns = [neutralize_cell(str(column)) for column in safe.columns]
    return safe


def csv_quoting(frame: pd.DataFrame) -> int:
    """Return the csv quoting that keeps each of ``frame``'s rows on one line.

    pandas quotes a field containing "\n" but not one containing a bare "\r",
    which readers take as a line break, so a frame with a "\r" anywhere
    quotes every field.
    """
    has_carriage_return = any(
        frame[column].map(lambda value: isinstance(value, str) and "\r" in value).any()
        for column in frame.columns
    )
    return csv.QUOTE_ALL if has_carriage_return else csv.QUOTE_MINIMAL


def stata_names(columns: list[str]) -> dict[str, str]:
    """Map column names to unique valid Stata variable names (32 characters at most)."""
    names: dict[str, str] = {}
    used: set[str] = set()
    for column in columns:
        base = re.sub(r"[^A-Za-z0-9_]", "_", column)
        if not re.match(r"[A-Za-z_]", base):
            base = "v_" + base
        base = base[:STATA_NAME_LENGTH]
        name, number = base, 1
        while name in used:
            number += 1
            suffix = f"_{number}"
            name = base[: STATA_NAME_LENGTH - len(suffix)] + suffix
        used.add(name)
        names[column] = name
    return names


def redact_matrix(matrix: CaseCodeMatrix, redactor: Any) -> CaseCodeMatrix:
    """Return a copy of the matrix with the redactor applied to every text cell.

    ``redactor`` is a ``qualkit.redaction.Redactor``. Column names are code
    ids and attribute names, not interview text, and are kept.
    """
    frame = matrix.frame.copy()
    for column in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[column]):
            frame[column] = frame[column].map(redactor.apply)
    return CaseCodeMatrix(frame, dict(matrix.columns))


def export_matrix(
    matrix: CaseCodeMatrix,
    path: str | Path,
    file_format: str | None = None,
    *,
    redactor: Any = None,
) -> Path:
    """Write the matrix as CSV, Excel (.xlsx) or Stata 14+ (.dta, format 118); return the path.

    The format comes from ``file_format`` or the file suffix. A
    ``redactor`` is applied to every text cell first. CSV and Excel cells
    are neutralized against formula injection. Stata gets valid variable
    names, and each variable's label gives the code and measure.
    """
    if redactor:
        matrix = redact_matrix(matrix, redactor)
    path = Path(path)
    chosen = file_format or FORMATS.get(path.suffix.lower())
    if chosen not in FORMATS.values():
        raise InputError(
            f"cannot tell the export format of {path.name!r}.",
            fix="Name the file .csv, .xlsx or .dta, or pass --format.",
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = matrix.frame
    if chosen == "csv":
        safe = neutralize_formulas(frame)
        safe.to_csv(path, index=False, quoting=csv_quoting(safe))
    elif chosen == "xlsx":
        variables = pd.DataFrame(
            [
                {
                    "column": column,
                    "code": code or "",
                    "measure": measure or "",
                    "label": label,
                }
                for (column, (code, measure)), label in zip(
                    matrix.columns.items(), matrix.labels().values()
                )
            ]
        )
        with pd.ExcelWriter(path, engine="openpyxl") as writer:
            neutralize_formulas(frame).to_excel(
                writer, sheet_name="matrix", index=False
            )
            neutralize_formulas(variables).to_excel(
                writer, sheet_name="variables", index=False
            )
    else:
        _write_stata(matrix, path)
    return path


def _pandas_stata_names(names: list[str]) -> dict[str, str]:
    """Return the names pandas will write for ``names``, found by writing an empty frame.

    pandas renames Stata and Mata reserved words (``do`` becomes ``_do``) and
    then drops their variable labels, so the labels must use its names.
    """
    probe = pd.DataFrame({name: pd.Series([], dtype="float64") for name in names})
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InvalidColumnName)
        probe.to_stata(buffer, write_index=False, version=118)
    buffer.seek(0)
    return dict(zip(names, pd.read_stata(buffer).columns))


def _write_stata(matrix: CaseCodeMatrix, path: Path) -> None:
    names = stata_names(list(matrix.frame.columns))
    final = _pandas_stata_names(list(names.values()))
    names = {column: final[name] for column, name in names.items()}
    frame = matrix.frame.rename(columns=names)
    for column in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[column]):
            frame[column] = frame[column].fillna("").astype(str)
    labels = {
        names[column]: label[:STATA_LABEL_LENGTH]
        for column, label in matrix.labels().items()
    }
    frame.to_stata(
        path,
        write_index=False,
        version=118,
        variable_labels=labels,
        data_label="qualkit case-by-code matrix",
    )
