"""Appendix tables for a paper: interviews, negotiability, regression, typology, codebook, frequencies.

``appendix_tables`` reads the project database into format-neutral
``qualkit.tables.Table`` objects, with the redactor already applied to
every string. ``write_appendix`` writes one file per table and format
(HTML, Markdown, LaTeX, Word), each escaped by its renderer.
"""

from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import sqlite_utils

import qualkit
from qualkit import store
from qualkit.errors import InputError
from qualkit.negotiability import EXPECTED_RESPONSES
from qualkit.tables import LINE_BREAK, Cell, Table, Text, cell, clean_text, join_cells
from qualkit.tables import html as html_renderer
from qualkit.tables import latex as latex_renderer
from qualkit.tables import markdown as markdown_renderer
from qualkit.tables import word as word_renderer

log = logging.getLogger(__name__)

FORMATS = {"html": "html", "md": "md", "tex": "tex", "docx": "docx"}
DEFAULT_FORMATS = ("html", "md", "tex", "docx")
DEFAULT_STATUSES = ("accepted", "suggested")
COUNT_UNITS = ("codings", "interviews")
# Government levels from the top down. Other levels follow in alphabetical order.
LEVEL_ORDER = ("central", "province", "city", "county", "township", "village")
# The ``meta`` key under which ``qualkit scores regress`` stores its last regression table.
REGRESSION_META_KEY = "last_regression"
MISSING = "unknown"


def appendix_tables(
    db: sqlite_utils.Database,
    *,
    redactor: Any = None,
    statuses: tuple[str, ...] = DEFAULT_STATUSES,
    quoted: set[str] | None = None,
    quotes_per_target: int = 5,
    count: str = "codings",
) -> dict[str, Table]:
    """Build every appendix table, keyed by file name stem, in the order a paper shows them.

    ``quoted`` is the set of interview (case) ids to mark as quoted. By
    default it contains the interviews of the quotes that ``joint_displays``
    selects with ``quotes_per_target``. ``count`` is what the frequency
    tables count: "codings" or "interviews". The regression table is
    present only after ``qualkit scores regress`` has stored a result.
    """
    if count not in COUNT_UNITS:
        raise InputError(
            f"Unknown count unit {count!r}.",
            fix=f"Use one of: {', '.join(COUNT_UNITS)}.",
        )
    if not statuses:
        raise InputError(
            "No coding statuses given.", fix="Pass at least one of accepted, suggested."
        )
    if quoted is None:
        quoted = quoted_interviews(
            db, statuses=statuses, quotes_per_target=quotes_per_target
        )

    tables = [interview_table(db, quoted), negotiability_table(db)]
    regression = regression_table(db)
    if regression is not None:
        tables.append(regression)
    tables += [
        typology_table(db),
        codebook_table(db, statuses),
        frequency_table(db, "province", statuses, count),
        frequency_table(db, "level", statuses, count),
    ]
    result = {}
    for table in tables:
        cleaned = table.map_text(clean_text)
        if redactor:
            cleaned = cleaned.map_text(redactor.apply)
        result[table.name] = cleaned
    return result


def write_appendix(
    db: sqlite_utils.Database,
    out_dir: str | Path,
    formats: tuple[str, ...] = DEFAULT_FORMATS,
    *,
    redactor: Any = None,
    statuses: tuple[str, ...] = DEFAULT_STATUSES,
    quoted: set[str] | None = None,
    quotes_per_target: int = 5,
    count: str = "codings",
    html_fragment: bool = False,
) -> list[Path]:
    """Write each appendix table in each format to ``out_dir``; return the files written.

    Files are named ``<table>.<format>``, e.g. ``interviews.tex``. HTML files
    are standalone pages unless ``html_fragment`` is set. Writing the same
    data twice gives the same bytes: the files carry the time of the data's
    last change, not the time of writing.
    """
    if isinstance(formats, str):
        formats = (formats,)
    formats = tuple(dict.fromkeys(formats))
    unknown = [name for name in formats if name not in FORMATS]
    if unknown:
        raise InputError(
            f"Unknown appendix format {unknown[0]!r}.",
            fix=f"Use: {', '.join(FORMATS)}.",
        )
    tables = appendix_tables(
        db,
        redactor=redactor,
        statuses=statuses,
        quoted=quoted,
        quotes_per_target=quotes_per_target,
        count=count,
    )
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    as_of = _data_time(db)
    comment = f"Written by qualkit {qualkit.__version__} from data as of {as_of.isoformat() if as_of else 'unknown'}."

    written = []
    for table in tables.values():
        for name in formats:
            path = folder / f"{table.name}.{FORMATS[name]}"
            if name == "docx":
                word_renderer.write(table, path, as_of=as_of)
            else:
                path.write_text(
                    _render_text(table, name, comment, html_fragment), encoding="utf-8"
                )
            written.append(path)
    return written


def _render_text(table: Table, name: str, comment: str, html_fragment: bool) -> str:
    if name == "html":
        if html_fragment:
            return html_renderer.render_fragment(table)
        return html_renderer.render_page(
            table, generator=f"qualkit {qualkit.__version__}"
        )
    if name == "md":
        return markdown_renderer.render(table)
    return latex_renderer.render(table, comment=comment)


def _data_time(db: sqlite_utils.Database) -> datetime | None:
    stamp = store.get_meta(db, "updated_at")
    if not stamp:
        return None
    try:
        return datetime.fromisoformat(stamp).replace(tzinfo=None)
    except ValueError:
        return None


# Interviews ------------------------------------------------------------------------


def quoted_interviews(
    db: sqlite_utils.Database,
    *,
    statuses: tuple[str, ...] = DEFAULT_STATUSES,
    quotes_per_target: int = 5,
) -> set[str]:
    """Return the ids of the interviews whose quotes the joint displays select."""
    from qualkit.triangulation import joint_displays

    displays = joint_displays(
        db, statuses=statuses, quotes_per_target=quotes_per_target
    )
    return {quote["case_id"] for display in displays for quote in display["quotes"]}


def interview_groups(db: sqlite_utils.Database) -> list[list[dict[str, Any]]]:
    """Group the interviews into the rows of the interview table.

    Interviews with the same ``appendix_group`` share a row. The others
    share a row with those of the same province and level. Rows follow the
    group numbers, then groups without a number by province and level.
    Within a row, interviews keep the order of the manifest that imported them.
    """
    rows = db.execute(
        "SELECT id, province, level, appendix_group FROM cases ORDER BY rowid"
    ).fetchall()
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for case_id, province, level, group in rows:
        key = (
            f"group:{group}" if group not in (None, "") else f"place:{province}|{level}"
        )
        groups[key].append(
            {"id": case_id, "province": province, "level": level, "group": group}
        )

    def order(members: list[dict[str, Any]]) -> tuple[Any, ...]:
        group = members[0]["group"]
        text = "" if group is None else str(group)
        number = (0, int(text), "") if text.isdigit() else (1, 0, text)
        return (*number, members[0]["province"] or "", members[0]["level"] or "")

    return sorted(groups.values(), key=order)


def interview_table(db: sqlite_utils.Database, quoted: set[str]) -> Table:
    """Build the interview table: interview ids, location and level, quoted interviews in bold."""
    rows = []
    for members in interview_groups(db):
        ids = join_cells(
            cell(Text(member["id"], member["id"] in quoted)) for member in members
        )
        provinces = _distinct(member["province"] for member in members)
        levels = _distinct(member["level"] for member in members)
        rows.append((ids, cell(provinces), cell(levels)))
    notes = ["Interviews in bold are quoted."] if quoted else []
    return Table(
        name="interviews",
        title="Interviews",
        columns=("Interview", "Location", "Government level"),
        rows=tuple(rows),
        notes=tuple(notes),
    )


def _distinct(values: Any) -> str:
    """Join the distinct values in order of appearance with " / ", so a conflict stays visible."""
    return " / ".join(dict.fromkeys(value or MISSING for value in values))


# Scores --------------------------------------------------------------------------------


def _score_rows(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    cursor = db.execute(
        "SELECT t.name, s.* FROM scores s JOIN targets t ON t.id = s.target_id WHERE s.eligible = 1 "
        "ORDER BY coalesce(t.researcher_order, s.variation_order, 999999), t.name"
    )
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row)) for row in cursor]


def format_number(value: float | None, digits: int = 1) -> str:
    """Format a number with at most ``digits`` decimals and no trailing zeros (3.5, 4, 15.5)."""
    if value is None or pd.isna(value):
        return ""
    text = f"{value:.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def negotiability_table(db: sqlite_utils.Database) -> Table:
    """Build the negotiability table: one row per eligible target, in the researcher's order or by degree of variation."""
    rows = []
    scored = _score_rows(db)
    for number, score in enumerate(scored, start=1):
        range_text = ""
        if score["range_min"] is not None and score["range_max"] is not None:
            range_text = f"({format_number(score['range_min'], 0)},{format_number(score['range_max'], 0)})"
        frequency = ""
        if score["frequency"] is not None:
            frequency = (
                f"{score['frequency']:.2f} ({score['observed']}/{score['possible']})"
            )
        rows.append(
            (
                cell(number),
                cell(score["name"]),
                cell(score["years"]),
                cell(format_number(score["mean_points"])),
                cell(score["units_changed"]),
                cell(range_text),
                cell(frequency),
            )
        )
    total = db.execute("SELECT count(*) FROM scores").fetchone()[0]
    note = (
        f"{len(scored)} of {total} scored targets have values for at least two years for every unit. "
        "Points: mean weight of the target. Cities: units whose rank changed at least once. "
        "Range: largest fall and largest rise in rank. Frequency: observed / possible rank changes."
    )
    return Table(
        name="negotiability",
        title="Negotiability of targets from the variation in ranking",
        columns=("#", "Target", "Years", "Points", "Cities", "Range", "Frequency"),
        rows=tuple(rows),
        align=("r", "l", "l", "r", "r", "r", "r"),
        notes=(note,),
    )


def typology_table(db: sqlite_utils.Database) -> Table:
    """Build the 2x2 typology: negotiability by priority, the expected response and example targets per cell."""
    examples: dict[tuple[str, str], list[str]] = defaultdict(list)
    responses: dict[tuple[str, str], str] = {}
    for score in _score_rows(db):
        key = (score["negotiability_level"], score["priority_level"])
        if key not in EXPECTED_RESPONSES:
            continue
        examples[key].append(score["name"])
        responses.setdefault(key, score["expected_response"] or EXPECTED_RESPONSES[key])

    rows = []
    for negotiability in ("more", "less"):
        cells: list[Cell] = [
            cell(f"{negotiability.capitalize()} negotiable", bold=True)
        ]
        for priority in ("low", "high"):
            key = (negotiability, priority)
            response = responses.get(key, EXPECTED_RESPONSES[key])
            names = ", ".join(examples.get(key, [])) or "none"
            cells.append(cell(Text(response.capitalize(), True), LINE_BREAK, names))
        rows.append(tuple(cells))
    return Table(
        name="typology",
        title="Typology of targets: negotiability, priority and the expected response",
        columns=("", "Low priority", "High priority"),
        rows=tuple(rows),
        align=("l", "p", "p"),
        widths=(None, 0.38, 0.38),
        notes=(
            "Each cell: the expected bureaucratic response, then the targets in it.",
        ),
    )


def store_regression(
    db: sqlite_utils.Database,
    table: pd.DataFrame,
    *,
    names: dict[str, str],
    options: dict[str, Any],
) -> None:
    """Store a regression table (``qualkit.regression.regression_table``) as the last regression run."""
    record = {
        "columns": [str(column) for column in table.columns],
        "rows": [
            ["" if value is None else str(value) for value in row]
            for row in table.itertuples(index=False)
        ],
        "names": names,
        "options": options,
        "stored_at": store.utc_now(),
    }
    with store.transaction(db):
        store.set_meta(
            db,
            REGRESSION_META_KEY,
            json.dumps(record, ensure_ascii=False, sort_keys=True),
        )


def load_regression(db: sqlite_utils.Database) -> dict[str, Any] | None:
    """Return the last stored regression run, or None if there is none or it is unreadable."""
    text = store.get_meta(db, REGRESSION_META_KEY)
    if not text:
        return None
    try:
        record = json.loads(text)
    except json.JSONDecodeError:
        log.warning(
            "The stored regression result is not valid JSON; run 'qualkit scores regress' again."
        )
        return None
    if not isinstance(record, dict) or not record.get("columns"):
        return None
    return record


def regression_table(db: sqlite_utils.Database) -> Table | None:
    """Build the regression table from the last ``qualkit scores regress`` run, or return None if none is stored."""
    record = load_regression(db)
    if record is None:
        return None
    columns = record["columns"]
    names = record.get("names", {})
    headers = [
        "" if column == "term" else names.get(column, column) for column in columns
    ]
    rows = tuple(tuple(cell(value) for value in row) for row in record["rows"])

    options = record.get("options", {})
    described = ", ".join(f"{key}={value}" for key, value in sorted(options.items()))
    estimator = (
        "OLS" if options.get("correlation") == "independent" else "Prais-Winsten"
    )
    method = (
        f"{estimator} regression of the standardized target value, panel-corrected standard errors "
        "in parentheses. * p < .05, ** p < .01, *** p < .001."
    )
    notes = [method]
    if described:
        notes.append(f"Options: {described}.")

    return Table(
        name="regression",
        title="Personal connection and the targets a city receives",
        columns=tuple(headers),
        rows=rows,
        align=("l", *("r" for _ in headers[1:])),
        notes=tuple(notes),
    )


# Codebook and frequencies ---------------------------------------------------------------------


def _code_counts(
    db: sqlite_utils.Database, statuses: tuple[str, ...]
) -> dict[str, tuple[int, int]]:
    marks = ",".join("?" for _ in statuses)
    rows = db.execute(
        "SELECT c.code_id, count(*), count(DISTINCT s.case_id) FROM codings c "
        f"JOIN sources s ON s.id = c.source_id WHERE c.status IN ({marks}) GROUP BY c.code_id",
        list(statuses),
    ).fetchall()
    return {code_id: (codings, interviews) for code_id, codings, interviews in rows}


def codebook_table(db: sqlite_utils.Database, statuses: tuple[str, ...]) -> Table:
    """Build the codebook table: each active code's label, definition, when to use, example and counts."""
    counts = _code_counts(db, statuses)
    rows = []
    for code_id, label, definition, when_to_use, example in db.execute(
        "SELECT id, label, definition, when_to_use, example FROM codes WHERE active = 1 ORDER BY position, id"
    ):
        codings, interviews = counts.get(code_id, (0, 0))
        rows.append(
            (
                cell(Text(label, True), LINE_BREAK, code_id),
                cell(definition),
                cell(when_to_use),
                cell(example),
                cell(codings),
                cell(interviews),
            )
        )
    versions = ", ".join(
        f"{codebook_id} {version}"
        for codebook_id, version in db.execute(
            "SELECT DISTINCT codebook_id, codebook_version FROM codes WHERE active = 1 ORDER BY 1, 2"
        )
    )
    notes = [
        f"Codings and interviews count codings with status {' or '.join(statuses)}."
    ]
    if versions:
        notes.insert(0, f"Codebook: {versions}.")
    return Table(
        name="codebook",
        title="Codebook",
        columns=(
            "Code",
            "Definition",
            "When to use",
            "Example",
            "Codings",
            "Interviews",
        ),
        rows=tuple(rows),
        align=("p", "p", "p", "p", "r", "r"),
        widths=(0.14, 0.26, 0.22, 0.2, None, None),
        notes=tuple(notes),
        long=True,
    )


def _level_key(level: str) -> tuple[int, str]:
    if level in LEVEL_ORDER:
        return (LEVEL_ORDER.index(level), "")
    return (len(LEVEL_ORDER), level)


def frequency_table(
    db: sqlite_utils.Database, by: str, statuses: tuple[str, ...], count: str
) -> Table:
    """Build the table of code frequencies by ``by`` ("province" or "level"), one row per coded code."""
    if by not in ("province", "level"):
        raise InputError(f"Cannot count codes by {by!r}.", fix="Use province or level.")
    marks = ",".join("?" for _ in statuses)
    measure = "count(*)" if count == "codings" else "count(DISTINCT s.case_id)"
    rows = db.execute(
        f"SELECT c.code_id, coalesce(cs.{by}, ''), {measure} FROM codings c "
        "JOIN sources s ON s.id = c.source_id JOIN cases cs ON cs.id = s.case_id "
        f"WHERE c.status IN ({marks}) GROUP BY 1, 2",
        list(statuses),
    ).fetchall()
    totals_rows = db.execute(
        f"SELECT c.code_id, {measure} FROM codings c JOIN sources s ON s.id = c.source_id "
        f"WHERE c.status IN ({marks}) GROUP BY 1",
        list(statuses),
    ).fetchall()
    interviews = Counter(
        value or MISSING
        for (value,) in db.execute(
            f"SELECT cs.{by} FROM cases cs WHERE EXISTS (SELECT 1 FROM sources s WHERE s.case_id = cs.id)"
        )
    )
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    for code_id, value, number in rows:
        counts[code_id][value or MISSING] = number
    values = sorted(
        interviews, key=_level_key if by == "level" else (lambda value: value)
    )
    for extra in sorted(
        {value for per_code in counts.values() for value in per_code} - set(values)
    ):
        values.append(extra)

    order = {
        code_id: position
        for position, code_id in db.execute("SELECT id, position FROM codes")
    }
    body = []
    for code_id in sorted(
        counts, key=lambda code_id: (order.get(code_id, 1 << 30), code_id)
    ):
        per_value = counts[code_id]
        body.append(
            (
                cell(code_id),
                *(cell(per_value.get(value, 0)) for value in values),
                cell(dict(totals_rows)[code_id]),
            )
        )
    columns = (
        "Code",
        *(f"{value} (n={interviews.get(value, 0)})" for value in values),
        "Total",
    )
    unit = "codings" if count == "codings" else "interviews with the code"
    notes = (
        f"Cells count {unit} (status {' or '.join(statuses)}); n is the number of interviews with a transcript.",
    )
    return Table(
        name=f"frequencies_{by}",
        title=f"Code frequencies by {by}",
        columns=columns,
        rows=tuple(body),
        align=("l", *("r" for _ in columns[1:])),
        notes=notes,
        long=True,
    )
