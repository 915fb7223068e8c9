"""Render the evidence report from the database with Jinja templates.

HTML output is autoescaped; Markdown output escapes every value through the
``md`` filter. The report states the data's content hash and the time of the
last change to the data, not the time of rendering, so rendering the same
data twice gives the same files.
"""

from __future__ import annotations

import json
import re
import statistics
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import jinja2
import sqlite_utils

import qualkit
from qualkit import store
from qualkit.errors import QualkitError
from qualkit.resources import resource_dir

FORMATS = {"html": "report.html.j2", "md": "report.md.j2"}
DEFAULT_CITATION = "Interview #{id}, {level}-level official, {province}"
# Codes whose co-occurrence with a target is shown beside its quotes.
EVIDENCE_DIMENSIONS = ("strategy", "channel")


def render_report(
    db: sqlite_utils.Database,
    out: Path,
    *,
    formats: tuple[str, ...] = ("html", "md"),
    settings: dict[str, Any] | None = None,
    title: str = "qualkit report",
) -> list[Path]:
    """Write the report in each format to ``out``; return the files written."""
    settings = settings or {}
    unknown = [name for name in formats if name not in FORMATS]
    if unknown:
        raise QualkitError(f"Unknown report format {unknown[0]!r}. Use: {', '.join(FORMATS)}.")
    context = report_context(db, settings, title)
    environment = _environment(settings.get("templates"))
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in formats:
        template = environment.get_template(FORMATS[name])
        path = out / f"report.{name}"
        path.write_text(template.render(**context), encoding="utf-8")
        written.append(path)
    return written


def _environment(folder: str | None) -> jinja2.Environment:
    search = [str(folder)] if folder else []
    search.append(str(resource_dir("templates")))
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(search),
        autoescape=jinja2.select_autoescape(["html", "html.j2"], default=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters["md"] = markdown_escape
    environment.filters["number"] = _number
    return environment


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]#|<>&~])")


def markdown_escape(value: Any) -> str:
    """Escape Markdown and inline HTML characters so a value renders as text."""
    text = " ".join(str(value if value is not None else "").split())
    return _MD_SPECIAL.sub(r"\\\1", text)


def _number(value: Any, digits: int = 2) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer() and digits == 0:
        return str(int(value))
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def report_context(db: sqlite_utils.Database, settings: dict[str, Any], title: str) -> dict[str, Any]:
    """Gather everything the templates show into plain dicts and lists."""
    statuses = tuple(settings.get("statuses", ("accepted", "suggested")))
    citation = settings.get("citation", DEFAULT_CITATION)
    per_target = int(settings.get("quotes_per_target", 5))
    cases = _cases(db)
    sections = _target_sections(db, cases, statuses, citation, per_target)
    quoted = {quote["source_id"] for section in sections for quote in section["quotes"]}
    scores = _scores(db)
    eligible = [row for row in scores if row["eligible"]]

    return {
        "title": title,
        "qualkit_version": qualkit.__version__,
        "codebooks": [dict(zip(("id", "version"), row)) for row in db.execute("SELECT id, version FROM codebooks ORDER BY id, version")],
        "content_hash": store.content_hash(db),
        "data_as_of": store.get_meta(db, "updated_at"),
        "statuses": statuses,
        "appendix": _appendix(cases, quoted),
        "conflicts": [dict(zip(("case_id", "field", "kept_value", "kept_origin", "other_value", "other_origin"), row)) for row in db.execute("SELECT case_id, field, kept_value, kept_origin, other_value, other_origin FROM metadata_conflicts ORDER BY 1, 2")],
        "scores": [row for row in scores if row["eligible"]],
        "ineligible": [row for row in scores if not row["eligible"]],
        "typology": _typology(scores),
        "cuts": _cuts(eligible, settings),
        "quotes_per_target": per_target,
        "sections": sections,
        "counts": _counts(db, statuses),
    }


def _cases(db: sqlite_utils.Database) -> dict[str, dict[str, Any]]:
    rows = db.execute(
        "SELECT c.id, c.province, c.level, c.date, c.appendix_group, "
        "EXISTS (SELECT 1 FROM sources s WHERE s.case_id = c.id) FROM cases c ORDER BY c.id"
    )
    keys = ("id", "province", "level", "date", "group", "has_transcript")
    return {row[0]: dict(zip(keys, row)) for row in rows}


def _appendix(cases: dict[str, dict[str, Any]], quoted: set[str]) -> list[dict[str, Any]]:
    """Group interviews as the study's appendix does: by group, else place and level."""
    groups: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for case in cases.values():
        key = case["group"] or f"{case['province']}|{case['level']}"
        groups[key].append({**case, "quoted": case["id"] in quoted})
    rows = []
    for members in groups.values():
        first = members[0]
        rows.append(
            {
                "interviews": members,
                "province": first["province"],
                "level": first["level"],
                "order": _group_order(first["group"]),
            }
        )
    rows.sort(key=lambda row: (row["order"], row["province"] or "", row["level"] or ""))
    return rows


def _group_order(group: Any) -> tuple[int, Any]:
    text = str(group) if group is not None else ""
    return (0, int(text)) if text.isdigit() else (1, text)


def _scores(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    cursor = db.execute(
        "SELECT t.name, t.researcher_order, t.note, s.* FROM scores s "
        "JOIN targets t ON t.id = s.target_id "
        "ORDER BY s.eligible DESC, coalesce(t.researcher_order, s.variation_order, 999), t.name"
    )
    names = [column[0] for column in cursor.description]
    rows = [dict(zip(names, row)) for row in cursor]
    for row in rows:
        row["options"] = json.loads(row["options"] or "{}")
    return rows


def _typology(scores: list[dict[str, Any]]) -> list[dict[str, Any]]:
    cells: dict[tuple[str, str], dict[str, Any]] = {}
    for row in scores:
        if not row["eligible"] or not row.get("cell"):
            continue
        key = (row["negotiability_level"], row["priority_level"])
        cell = cells.setdefault(key, {"negotiability": key[0], "priority": key[1], "response": row["expected_response"], "targets": []})
        cell["targets"].append(row["name"])
    order = [("more", "low"), ("more", "high"), ("less", "low"), ("less", "high")]
    return [cells[key] for key in order if key in cells]


def _cuts(eligible: list[dict[str, Any]], settings: dict[str, Any]) -> dict[str, Any]:
    """Return the typology's cut points and whether each is the median split."""
    priorities = [row["mean_points"] for row in eligible if row["mean_points"] is not None]
    frequencies = [row["frequency"] for row in eligible if row["frequency"] is not None]
    priority_cut = settings.get("priority_cut")
    negotiability_cut = settings.get("negotiability_cut")

    return {
        "priority": _cut_or_median(priority_cut, priorities),
        "priority_rule": "given" if priority_cut is not None else "median",
        "negotiability": _cut_or_median(negotiability_cut, frequencies),
        "negotiability_rule": "given" if negotiability_cut is not None else "median",
    }


def _cut_or_median(cut: float | None, values: list[float]) -> float | None:
    if cut is not None:
        return cut
    if not values:
        return None
    return statistics.median(values)


def _target_sections(
    db: sqlite_utils.Database,
    cases: dict[str, dict[str, Any]],
    statuses: tuple[str, ...],
    citation: str,
    per_target: int,
) -> list[dict[str, Any]]:
    marks = ",".join("?" for _ in statuses)
    scores = {row["target_id"]: row for row in _scores(db)}
    sections = []
    for target_id, name, category in db.execute("SELECT id, name, category FROM targets ORDER BY coalesce(researcher_order, 999), name").fetchall():
        quotes = _quotes(db, target_id, marks, statuses, cases, citation)
        if not quotes and target_id not in scores:
            continue
        codes = Counter(code for quote in quotes for code in quote["evidence_codes"])
        quotes.sort(key=lambda q: (-q["key_quote"], q["status"] != "accepted", -len(q["evidence_codes"]), q["source_id"], q["start"]))
        sections.append(
            {
                "id": target_id,
                "name": name,
                "category": category,
                "score": scores.get(target_id),
                "quote_count": len(quotes),
                "interview_count": len({q["source_id"] for q in quotes}),
                "levels": sorted({q["level"] for q in quotes if q["level"]}),
                "provinces": sorted({q["province"] for q in quotes if q["province"]}),
                "codes": codes.most_common(),
                "quotes": quotes[:per_target],
            }
        )
    return sections


def _quotes(
    db: sqlite_utils.Database,
    target_id: str,
    marks: str,
    statuses: tuple[str, ...],
    cases: dict[str, dict[str, Any]],
    citation: str,
) -> list[dict[str, Any]]:
    rows = db.execute(
        "SELECT c.source_id, c.start_offset, c.end_offset, c.quote, c.status, c.key_quote, "
        "group_concat(DISTINCT c.code_id), s.case_id FROM quote_links l "
        "JOIN codings c ON c.id = l.coding_id JOIN sources s ON s.id = c.source_id "
        f"WHERE l.target_id = ? AND c.status IN ({marks}) "
        "GROUP BY c.source_id, c.start_offset, c.end_offset ORDER BY c.source_id, c.start_offset",
        [target_id, *statuses],
    ).fetchall()
    quotes = []
    for source_id, start, end, quote, status, key_quote, codes, case_id in rows:
        case = cases.get(case_id, {})
        all_codes = sorted(codes.split(","))
        quotes.append(
            {
                "source_id": source_id,
                "start": start,
                "end": end,
                "text": quote,
                "status": status,
                "key_quote": key_quote,
                "codes": all_codes,
                "evidence_codes": [c for c in all_codes if c.split(".")[0] in EVIDENCE_DIMENSIONS],
                "level": case.get("level"),
                "province": case.get("province"),
                "citation": _cite(citation, case_id, case),
            }
        )
    return quotes


def _cite(template: str, case_id: str, case: dict[str, Any]) -> str:
    values = {"id": case_id, "level": case.get("level") or "unknown", "province": case.get("province") or "unknown province"}
    try:
        return template.format(**values)
    except (KeyError, IndexError, ValueError) as error:
        raise QualkitError(
            f"Invalid citation format {template!r} ({error}). Use the fields {{id}}, {{level}} and {{province}}."
        ) from None


def _counts(db: sqlite_utils.Database, statuses: tuple[str, ...]) -> dict[str, int]:
    marks = ",".join("?" for _ in statuses)
    return {
        "sources": db["sources"].count,
        "cases": db["cases"].count,
        "codings": db.execute(f"SELECT count(*) FROM codings WHERE status IN ({marks})", list(statuses)).fetchone()[0],
        "suggested": db.execute("SELECT count(*) FROM codings WHERE status = 'suggested'").fetchone()[0],
        "links": db["quote_links"].count,
    }
