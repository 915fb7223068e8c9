"""Reading panel files: values, points and evaluation forms from CSV or Excel.

Four layouts are read, chosen by the header:

- long values: ``target, unit, year, value``, one row per observation;
- wide values: ``unit`` (and ``target``, unless one target is given for the
  whole file) plus one column per year such as ``2011`` or ``2011年``;
- points: ``target, year, points``;
- an evaluation form: ``category, item, points`` and optionally ``provider``
  and ``year``, with subtotal rows (item ``subtotal`` or ``小计``) and an
  optional total row (item ``total``, ``合计`` or ``总计``).

Unit names are normalized through a table of aliases when one is given, so
that 长沙市 and Changsha are one unit. Nothing here writes to the database.
"""

from __future__ import annotations

import csv
import math
import re
import unicodedata
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pandas as pd

from qualkit.errors import PanelError

VALUE_COLUMNS = ("target", "unit", "year", "value")
POINT_COLUMNS = ("target", "year", "points")
FORM_COLUMNS = ("category", "item", "points")
EXCEL_SUFFIXES = (".xlsx", ".xlsm")
SUBTOTAL_LABELS = frozenset({"subtotal", "小计"})
TOTAL_LABELS = frozenset({"total", "合计", "总计"})
# Header names of evaluation forms as they appear in Chinese tables.
HEADER_ALIASES = {
    "类别": "category",
    "指标类别": "category",
    "指标": "item",
    "考核指标": "item",
    "指标名称": "item",
    "分值": "points",
    "分数": "points",
    "数据提供单位": "provider",
    "数据来源": "provider",
    "data provider": "provider",
    "年份": "year",
    "年度": "year",
}
MAX_LISTED_ERRORS = 20
_YEAR_HEADER = re.compile(r"^(\d{4})\s*年?$")
_YEAR = re.compile(r"[0-9]{4}")
_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")
_POINTS_SUFFIX = re.compile(r"\s*(分|points?)$", re.IGNORECASE)
_HEADER_SEARCH_ROWS = 10


@dataclass
class PanelImport:
    """Result of importing one panel file: rows stored and rows skipped.

    ``unlinked`` lists evaluation-form items that match no target; their
    points are not stored. ``checks`` lists the subtotal checks that passed.
    """

    path: str
    kind: str
    stored: int = 0
    skipped: list[str] = field(default_factory=list)
    unlinked: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class UnitAliases:
    """Unit names mapped to canonical ones, e.g. 长沙市 -> Changsha.

    ``names`` maps a normalized name (see ``normalize_name``) to the canonical
    unit. Every canonical unit is also an alias of itself.
    """

    names: Mapping[str, str]
    source: str = ""

    @property
    def units(self) -> frozenset[str]:
        """The canonical unit names."""
        return frozenset(self.names.values())

    def canonical(self, name: str) -> str | None:
        """Return the canonical unit for ``name``, or None for an unknown name."""
        return self.names.get(normalize_name(name))


@dataclass
class PanelTable:
    """Rows read from one file, with the header located and normalized.

    Each row is its line in the file (its row for Excel, named by
    ``line_word``) and its cells by column name.
    """

    path: Path
    header: list[str]
    rows: list[tuple[int, dict[str, str]]]
    line_word: str = "line"


@dataclass
class _Parsed:
    """One file's valid records and its problems, before anything is stored."""

    result: PanelImport
    table: str = ""
    key: tuple[str, ...] = ()
    records: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def normalize_name(text: str) -> str:
    """Normalize a unit or item name for lookups.

    Applies Unicode NFKC (full-width letters and digits become ASCII), trims
    and collapses whitespace, and folds case.
    """
    folded = unicodedata.normalize("NFKC", str(text))

    return " ".join(folded.split()).casefold()


def load_unit_aliases(path: str | Path) -> UnitAliases:
    """Read a CSV of unit aliases with the columns ``unit`` and ``alias``.

    Raises PanelError for a missing file or column, an empty cell, or an alias
    given for two different units.
    """
    path = Path(path)
    table = read_table(path, required=("unit", "alias"))
    names: dict[str, str] = {}
    lines: dict[str, int] = {}
    errors = []
    for line, row in table.rows:
        unit = " ".join(unicodedata.normalize("NFKC", row.get("unit", "")).split())
        alias = row.get("alias", "")
        if not unit or not alias.strip():
            errors.append(f"line {line}: unit and alias must both be given")
            continue
        for name in (unit, alias):
            key = normalize_name(name)
            if names.get(key, unit) != unit:
                errors.append(
                    f"line {line}: {name!r} is already an alias of {names[key]!r} "
                    f"(line {lines[key]})"
                )
                continue
            names[key] = unit
            lines.setdefault(key, line)
    if errors:
        raise PanelError(
            "invalid unit aliases:\n  " + "\n  ".join(errors[:MAX_LISTED_ERRORS]),
            path=path,
            fix="Give each alias one unit.",
        )

    return UnitAliases(names, source=str(path))


def unit_aliases_from_settings(
    settings: Mapping[str, Any], root: str | Path
) -> UnitAliases | None:
    """Load the aliases named by ``unit_aliases`` in the ``[scores]`` settings.

    ``root`` is the folder that relative paths start from. Returns None when
    the setting is absent.
    """
    name = settings.get("unit_aliases")
    if not name:
        return None

    return load_unit_aliases(Path(root) / str(name))


def _parse_file(
    path: Path,
    known: dict[str, str],
    aliases: UnitAliases | None,
    target: str | None,
    year: int | None,
    sheet: str | int | None,
) -> _Parsed:
    table = read_table(path, sheet=sheet)
    columns = set(table.header)
    if set(FORM_COLUMNS) <= columns and "target" not in columns:
        return _parse_form(table, known, year)
    if set(VALUE_COLUMNS) <= columns:
        return _parse_long(table, known, aliases)
    if set(POINT_COLUMNS) <= columns and "unit" not in columns:
        return _parse_points(table, known)
    if "unit" in columns and _year_columns(table.header):
        return _parse_wide(table, known, aliases, target)

    raise PanelError(
        f"unrecognized columns {', '.join(table.header)}.",
        path=path,
        line=1,
        fix=(
            "Use target,unit,year,value for values, unit plus one column per year "
            "for wide values, target,year,points for points, or "
            "category,item,points for an evaluation form."
        ),
    )


# Reading files


def read_table(
    path: str | Path, *, sheet: str | int | None = None, required: tuple[str, ...] = ()
) -> PanelTable:
    """Read a CSV or Excel file; the header is the first row with known columns.

    Known columns are ``required`` when given, else those of a panel layout.
    Rows above the header (a title copied from a PDF, say) are ignored, and
    so are empty rows. Raises PanelError when no header row is found.
    """
    path = Path(path)
    if not path.is_file():
        raise PanelError("file not found.", path=path)
    if path.suffix.lower() in EXCEL_SUFFIXES:
        raw, word = _excel_rows(path, sheet), "row"
    elif path.suffix.lower() == ".xls":
        raise PanelError(
            "old Excel .xls files cannot be read.",
            path=path,
            fix="Save the sheet as .xlsx or as UTF-8 CSV.",
        )
    else:
        raw, word = _csv_rows(path), "line"

    for index, (line, cells) in enumerate(raw[:_HEADER_SEARCH_ROWS]):
        header = [_header_name(cell) for cell in cells]
        if _is_header(header, required):
            rows = [
                (number, _row_dict(header, values))
                for number, values in raw[index + 1 :]
                if any(value.strip() for value in values)
            ]
            return PanelTable(path, [name for name in header if name], rows, word)

    first = raw[0][1] if raw else []
    raise PanelError(
        f"no header row found; the first row reads {', '.join(first) or '(empty)'}.",
        path=path,
        line=raw[0][0] if raw else 1,
        fix=(
            f"Name the columns {', '.join(required)}."
            if required
            else "Give the file a header row; see docs/negotiability.md for the layouts."
        ),
    )


def _csv_rows(path: Path) -> list[tuple[int, list[str]]]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            rows = []
            start = 1
            for cells in reader:
                rows.append((start, cells))
                start = reader.line_num + 1
            return rows
    except UnicodeDecodeError:
        raise PanelError(
            "not valid UTF-8.", path=path, fix="Save the file as UTF-8 CSV."
        ) from None
    except csv.Error as error:
        raise PanelError(f"invalid CSV: {error}.", path=path) from None


def _excel_rows(path: Path, sheet: str | int | None) -> list[tuple[int, list[str]]]:
    try:
        frame = pd.read_excel(
            path, sheet_name=0 if sheet is None else sheet, header=None, dtype=object
        )
    except ValueError as error:  # an unknown sheet name or a file that is not Excel
        raise PanelError(f"cannot read the sheet: {error}.", path=path) from None
    except (
        zipfile.BadZipFile,
        zlib.error,
        EOFError,
        KeyError,
        TypeError,
        IndexError,
        AttributeError,
        NotImplementedError,
        RuntimeError,
        OSError,
        ElementTree.ParseError,
    ) as error:
        # An .xlsx file is a zip archive of XML parts, and zipfile and openpyxl
        # raise these for a damaged or truncated one (OSError for a seek to a
        # negative member offset).
        raise PanelError(
            f"not a readable Excel file ({type(error).__name__}: {error}).",
            path=path,
            fix="Open it in Excel and save it again as .xlsx, or save the sheet as UTF-8 CSV.",
        ) from None
    except ImportError:
        raise PanelError(
            "reading Excel files needs the openpyxl package.",
            path=path,
            fix="Install it with 'pip install openpyxl', or save the sheet as CSV.",
        ) from None

    return [
        (index + 1, [_cell_text(value) for value in row])
        for index, row in enumerate(frame.itertuples(index=False, name=None))
    ]


def _cell_text(value: Any) -> str:
    """Turn an Excel cell into the text a CSV file would hold."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))

    return str(value)


def _header_name(cell: str) -> str:
    name = " ".join(unicodedata.normalize("NFKC", cell).split()).lower()
    return HEADER_ALIASES.get(name, name)


def _is_header(header: list[str], required: tuple[str, ...]) -> bool:
    names = set(header)
    if required:
        return set(required) <= names
    layouts = (set(FORM_COLUMNS), set(VALUE_COLUMNS), set(POINT_COLUMNS))
    if any(layout <= names for layout in layouts):
        return True

    return "unit" in names and bool(_year_columns(header))


def _row_dict(header: list[str], values: list[str]) -> dict[str, str]:
    row = {}
    for name, value in zip(header, values):
        if name and name not in row:
            row[name] = value.strip()

    return row


def _year_columns(header: list[str]) -> dict[str, int]:
    """Map each year column of a wide file to its year."""
    years = {}
    for name in header:
        match = _YEAR_HEADER.match(name)
        if match:
            years[name] = int(match.group(1))

    return years


# Cell checks


def parse_number(text: str) -> float | None:
    """Parse a number as written in a table; None when it is not one."""
    cleaned = unicodedata.normalize("NFKC", text).strip()
    if _THOUSANDS.match(cleaned):
        cleaned = cleaned.replace(",", "")
    try:
        number = float(cleaned)
    except ValueError:
        return None

    return number if math.isfinite(number) else None


def parse_year(text: str) -> int | None:
    """Parse a year such as 2011 or 2011年; None when it is not one."""
    cleaned = unicodedata.normalize("NFKC", text).strip().removesuffix("年")
    # Four ASCII digits: str.isdigit() also accepts digits that int() rejects
    # (such as Ethiopic ፩), and a longer number overflows SQLite's INTEGER.
    return int(cleaned) if _YEAR.fullmatch(cleaned) else None


def _target_problem(text: str, known: dict[str, str]) -> tuple[str | None, str | None]:
    """Return (target id, None) or (None, the problem)."""
    if not text:
        return None, "missing target"
    target_id = known.get(normalize_name(text))
    if target_id is None:
        return None, f"unknown target {text!r} (declare it in targets.yaml)"

    return target_id, None


def canonical_unit(text: str, aliases: UnitAliases | None) -> tuple[str | None, str | None]:
    """Return (canonical unit, None) for a unit cell, or (None, the problem).

    Without aliases every name is accepted, with its whitespace normalized.
    """
    if not text:
        return None, "missing unit"
    if aliases is None:
        return " ".join(unicodedata.normalize("NFKC", text).split()), None
    unit = aliases.canonical(text)
    if unit is None:
        return None, f"unknown unit {text!r} (add it to the unit aliases {aliases.source})"

    return unit, None


# Layouts


def _parse_long(
    table: PanelTable, known: dict[str, str], aliases: UnitAliases | None
) -> _Parsed:
    parsed = _Parsed(
        PanelImport(str(table.path), "values"),
        "target_values",
        ("target_id", "unit", "year"),
    )
    seen: dict[tuple[str, str, int], int] = {}
    for line, row in table.rows:
        where = f"{table.line_word} {line}"
        target_id, problem = _target_problem(row.get("target", ""), known)
        unit, bad_unit = canonical_unit(row.get("unit", ""), aliases)
        problem = problem or bad_unit
        year = parse_year(row.get("year", ""))
        value = parse_number(row.get("value", ""))
        if problem is None and year is None:
            problem = f"year {row.get('year', '')!r} is not a four-digit year"
        if problem is None and value is None:
            problem = f"value {row.get('value', '')!r} is not a number"
        if problem is None:
            key = (target_id, unit, year)
            if key in seen:
                problem = f"duplicate of {table.line_word} {seen[key]}"
            else:
                seen[key] = line
        if problem is not None:
            parsed.errors.append(f"{where}: {problem}")
            continue
        parsed.records.append(_value_record(target_id, unit, year, value, table, line))

    return parsed


def _parse_wide(
    table: PanelTable,
    known: dict[str, str],
    aliases: UnitAliases | None,
    target: str | None,
) -> _Parsed:
    parsed = _Parsed(
        PanelImport(str(table.path), "values"),
        "target_values",
        ("target_id", "unit", "year"),
    )
    years = _year_columns(table.header)
    if "target" not in table.header and target is None:
        raise PanelError(
            "a wide file without a target column needs the target it holds.",
            path=table.path,
            line=1,
            fix="Add a target column, or pass --target ID.",
        )
    seen: dict[tuple[str, str, int], int] = {}
    for line, row in table.rows:
        where = f"{table.line_word} {line}"
        target_id, problem = _target_problem(row.get("target", target or ""), known)
        unit, bad_unit = canonical_unit(row.get("unit", ""), aliases)
        problem = problem or bad_unit
        if problem is not None:
            parsed.errors.append(f"{where}: {problem}")
            continue
        for column, year in years.items():
            text = row.get(column, "")
            if not text:
                continue
            value = parse_number(text)
            key = (target_id, unit, year)
            if value is None:
                parsed.errors.append(
                    f"{where}, column {column}: value {text!r} is not a number"
                )
            elif key in seen:
                parsed.errors.append(
                    f"{where}, column {column}: duplicate of {table.line_word} {seen[key]}"
                )
            else:
                seen[key] = line
                parsed.records.append(
                    _value_record(target_id, unit, year, value, table, line)
                )

    return parsed


def _value_record(
    target_id: str, unit: str, year: int, value: float, table: PanelTable, line: int
) -> dict[str, Any]:
    return {
        "target_id": target_id,
        "unit": unit,
        "year": year,
        "value": value,
        "source_file": table.path.name,
        "line": line,
    }


def _parse_points(table: PanelTable, known: dict[str, str]) -> _Parsed:
    parsed = _Parsed(
        PanelImport(str(table.path), "points"), "target_points", ("target_id", "year")
    )
    seen: dict[tuple[str, int], int] = {}
    for line, row in table.rows:
        target_id, problem = _target_problem(row.get("target", ""), known)
        year = parse_year(row.get("year", ""))
        points = parse_number(row.get("points", ""))
        if problem is None and year is None:
            problem = f"year {row.get('year', '')!r} is not a four-digit year"
        if problem is None and points is None:
            problem = f"points {row.get('points', '')!r} is not a number"
        if problem is None and (target_id, year) in seen:
            problem = f"duplicate of {table.line_word} {seen[(target_id, year)]}"
        if problem is not None:
            parsed.errors.append(f"{table.line_word} {line}: {problem}")
            continue
        seen[(target_id, year)] = line
        parsed.records.append(_points_record(target_id, year, points, table, line))

    return parsed


def _points_record(
    target_id: str, year: int, points: float, table: PanelTable, line: int
) -> dict[str, Any]:
    return {
        "target_id": target_id,
        "year": year,
        "points": points,
        "source_file": table.path.name,
        "line": line,
    }


# Evaluation forms


@dataclass
class _Category:
    """Items and stated subtotal of one category of an evaluation form."""

    name: str
    line: int
    items: float = 0.0
    subtotal: float | None = None
    subtotal_line: int = 0


def _parse_form(table: PanelTable, known: dict[str, str], year: int | None) -> _Parsed:
    """Check an evaluation form's sums and collect the points of known targets.

    A blank category cell continues the category above it, as in a table whose
    merged cells were copied from a PDF. A row with a category but neither item
    nor points is the category's title, and a row with points but no item
    states the category's subtotal.
    """
    parsed = _Parsed(
        PanelImport(str(table.path), "form"), "target_points", ("target_id", "year")
    )
    categories: dict[str, _Category] = {}
    stated_total: tuple[float, int] | None = None
    linked: dict[tuple[str, int], int] = {}
    current = ""
    for line, row in table.rows:
        where = f"{table.line_word} {line}"
        label = normalize_name(row.get("item", ""))
        points_text = row.get("points", "")
        if not label and not points_text:
            current = row.get("category") or current  # a category's title row
            continue
        points = parse_number(_POINTS_SUFFIX.sub("", points_text))
        if points is None:
            parsed.errors.append(f"{where}: points {points_text!r} is not a number")
            continue
        if label in TOTAL_LABELS or (
            not label and normalize_name(row.get("category", "")) in TOTAL_LABELS
        ):
            stated_total = (points, line)
            continue
        current = row.get("category") or current
        if not current:
            parsed.errors.append(f"{where}: item {row.get('item', '')!r} has no category")
            continue
        category = categories.setdefault(current, _Category(current, line))
        if label in SUBTOTAL_LABELS or not label:  # a blank item states the subtotal
            category.subtotal, category.subtotal_line = points, line
            continue
        category.items += points
        form_year = parse_year(row.get("year", "")) or year
        if form_year is None:
            parsed.errors.append(f"{where}: no year for this form")
            continue
        target_id = known.get(label)
        if target_id is None:
            parsed.result.unlinked.append(f"{where}: {row.get('item', '')}")
            continue
        key = (target_id, form_year)
        if key in linked:
            parsed.errors.append(
                f"{where}: target {target_id} already appears on {table.line_word} "
                f"{linked[key]}"
            )
            continue
        linked[key] = line
        parsed.records.append(_points_record(target_id, form_year, points, table, line))

    parsed.errors += _sum_problems(categories, stated_total, table.line_word, parsed.result)

    return parsed


def _sum_problems(
    categories: dict[str, _Category],
    stated_total: tuple[float, int] | None,
    line_word: str,
    result: PanelImport,
) -> list[str]:
    """Compare each category's items with its subtotal, and subtotals with the total."""
    problems = []
    for category in categories.values():
        if category.subtotal is None:
            result.checks.append(f"{category.name}: no subtotal row, not checked")
            continue
        difference = category.items - category.subtotal
        if abs(difference) > 1e-6:
            problems.append(
                f"category {category.name!r} ({line_word} {category.subtotal_line}): "
                f"items add up to {category.items:g}, subtotal {category.subtotal:g}, "
                f"difference {difference:+g}"
            )
        else:
            result.checks.append(f"{category.name}: items add up to {category.items:g}")

    if stated_total is not None:
        total, line = stated_total
        counted = sum(
            c.subtotal if c.subtotal is not None else c.items for c in categories.values()
        )
        difference = counted - total
        if abs(difference) > 1e-6:
            problems.append(
                f"total ({line_word} {line}): categories add up to {counted:g}, "
                f"stated total {total:g}, difference {difference:+g}"
            )
        else:
            result.checks.append(f"total: categories add up to {counted:g}")

    return problems
