"""Export the whole project as a REFI-QDA ``.qdpx`` archive.

The archive contains ``project.qde`` and one UTF-8 ``sources/<GUID>.txt`` per
source. A selection's ``startPosition`` and ``endPosition`` are qualkit's
offsets unchanged: Unicode code points from 0, end exclusive, in the stored
text (line endings are ``\\n``). Only accepted codings are exported, because
suggestions and rejected codings are qualkit's review state, which the
standard has no place for. The same data always gives the same bytes: GUIDs
come from ``guid_for``, rows are sorted, and every zip member has a fixed
timestamp.
"""

from __future__ import annotations

import json
import zipfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element, SubElement

import sqlite_utils

from qualkit.cases import CASE_FIELDS
from qualkit.refi.codebook import (
    add_code_elements,
    check_valid,
    code_colours,
    exported_codes,
)
from qualkit.refi.common import (
    ORIGIN,
    PROJECT_NAMESPACE,
    guid_for,
    serialize,
    xml_text,
    xsd_datetime,
)

# The date of every zip member: the earliest that the zip format can store.
ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)
EXPORTED_STATUS = "accepted"


@dataclass
class ExportSummary:
    """Counts of what an export wrote, and of the codings it left out by status."""

    path: Path
    sources: int = 0
    codes: int = 0
    codings: int = 0
    cases: int = 0
    users: int = 0
    notes: int = 0
    codings_not_exported: dict[str, int] = field(default_factory=dict)


def _rows(
    db: sqlite_utils.Database, sql: str, params: list[Any] | None = None
) -> list[dict[str, Any]]:
    cursor = db.execute(sql, params or [])
    columns = [d[0] for d in cursor.description]
    return [dict(zip(columns, row)) for row in cursor.fetchall()]


def _coding_key(coding: dict[str, Any]) -> str:
    return f"{coding['source_id']}:{coding['start_offset']}:{coding['end_offset']}:{coding['code_id']}:{coding['coder']}"


def _memo_subjects(
    db: sqlite_utils.Database, memos: list[dict[str, Any]], exported: set[int]
) -> list[tuple[str, str | None, str]]:
    """Return each memo's (about, about_id, stable key) as the export places it.

    A coding's row id differs between projects, so a memo about a coding is
    keyed by the coding's source, span, code and coder. A memo about a
    coding that is not exported (a suggestion or a rejected coding) goes to
    that coding's source, so it is not lost.
    """
    codings = {
        row["id"]: row
        for row in _rows(
            db,
            "SELECT id, source_id, start_offset, end_offset, code_id, coder FROM codings",
        )
    }
    subjects = []
    for memo in memos:
        about, about_id = memo["about"], memo["about_id"]
        if about == "coding" and about_id is not None and int(about_id) in codings:
            coding = codings[int(about_id)]
            if coding["id"] in exported:
                subjects.append((about, about_id, f"coding:{_coding_key(coding)}"))
            else:
                subjects.append(
                    ("source", coding["source_id"], f"coding:{_coding_key(coding)}")
                )
            continue
        subjects.append((about, about_id, f"{about}:{about_id or ''}"))
    return subjects


def _memo_guid(memo: dict[str, Any], key: str) -> str:
    return guid_for(
        "memo",
        json.dumps(
            [key, memo["coder"], memo["created_at"], memo["text"]], ensure_ascii=False
        ),
    )


def project_document(
    db: sqlite_utils.Database, name: str
) -> tuple[bytes, dict[str, str], ExportSummary]:
    """Build ``project.qde`` and the source texts by member name; the summary's path is unset."""
    summary = ExportSummary(path=Path())
    codings = _rows(
        db,
        "SELECT * FROM codings WHERE status = ? ORDER BY source_id, start_offset, end_offset, code_id, coder",
        [EXPORTED_STATUS],
    )
    for status, count in db.execute(
        "SELECT status, count(*) FROM codings WHERE status != ? GROUP BY status ORDER BY status",
        [EXPORTED_STATUS],
    ).fetchall():
        summary.codings_not_exported[status] = count
    memos = _rows(db, "SELECT * FROM memos")
    sources = _rows(db, "SELECT id, case_id, text FROM sources ORDER BY id")
    cases = _rows(db, "SELECT * FROM cases ORDER BY id")
    codes = exported_codes(db, {row["code_id"] for row in codings})

    coders = sorted({row["coder"] for row in codings} | {row["coder"] for row in memos})
    user_guid = {coder: guid_for("user", coder) for coder in coders}
    subjects = _memo_subjects(db, memos, {row["id"] for row in codings})
    placed = sorted(
        zip(memos, subjects),
        key=lambda pair: (
            pair[1][2],
            pair[0]["created_at"],
            pair[0]["coder"],
            pair[0]["text"],
        ),
    )
    notes = []
    note_refs: dict[tuple[str, str | None], list[str]] = defaultdict(list)
    for memo, (about, about_id, key) in placed:
        guid = _memo_guid(memo, key)
        notes.append((memo, guid, key))
        note_refs[(about, about_id)].append(guid)

    root = Element(
        "Project",
        {"xmlns": PROJECT_NAMESPACE, "name": xml_text(name), "origin": ORIGIN},
    )
    if coders:
        users = SubElement(root, "Users")
        for coder in coders:
            SubElement(
                users, "User", {"guid": user_guid[coder], "name": xml_text(coder)}
            )
    if codes:
        codebook = SubElement(root, "CodeBook")
        code_notes = {
            about_id: guids
            for (about, about_id), guids in note_refs.items()
            if about == "code"
        }
        add_code_elements(codebook, codes, code_colours(db), code_notes)

    variables = _add_variables(root, cases)
    _add_cases(root, cases, sources, variables)
    texts = _add_sources(root, sources, codings, note_refs, user_guid)
    _add_notes(root, notes, user_guid)
    for guid in note_refs.get(("project", None), []):
        SubElement(root, "NoteRef", {"targetGUID": guid})

    summary.sources = len(sources)
    summary.codes = len(codes)
    summary.codings = len(codings)
    summary.cases = len(cases)
    summary.users = len(coders)
    summary.notes = len(memos)
    return serialize(root), texts, summary


def _variable_names(cases: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Return (name, typeOfVariable) of every variable that some case has a value for."""
    names: list[tuple[str, str]] = []
    for column in CASE_FIELDS:
        if any(case[column] for case in cases):
            names.append((column, "Date" if column == "date" else "Text"))
    attribute_names = sorted(
        {key for case in cases for key in json.loads(case["attributes"] or "{}")}
    )
    names.extend((key, "Text") for key in attribute_names if key not in CASE_FIELDS)
    return names


def _add_variables(root: Element, cases: list[dict[str, Any]]) -> list[tuple[str, str]]:
    variables = _variable_names(cases)
    if variables:
        element = SubElement(root, "Variables")
        for name, kind in variables:
            SubElement(
                element,
                "Variable",
                {
                    "guid": guid_for("variable", name),
                    "name": xml_text(name),
                    "typeOfVariable": kind,
                },
            )
    return variables


def _add_cases(
    root: Element,
    cases: list[dict[str, Any]],
    sources: list[dict[str, Any]],
    variables: list[tuple[str, str]],
) -> None:
    if not cases:
        return
    sources_by_case: dict[str, list[str]] = defaultdict(list)
    for source in sources:
        sources_by_case[source["case_id"]].append(source["id"])
    element = SubElement(root, "Cases")
    for case in cases:
        case_element = SubElement(
            element,
            "Case",
            {"guid": guid_for("case", case["id"]), "name": xml_text(case["id"])},
        )
        attributes = json.loads(case["attributes"] or "{}")
        for name, kind in variables:
            value = case[name] if name in CASE_FIELDS else attributes.get(name)
            if value is None or str(value) == "":
                continue
            value_element = SubElement(case_element, "VariableValue")
            SubElement(
                value_element, "VariableRef", {"targetGUID": guid_for("variable", name)}
            )
            typed = SubElement(
                value_element, "DateValue" if kind == "Date" else "TextValue"
            )
            typed.text = xml_text(str(value))
        for source_id in sources_by_case.get(case["id"], []):
            SubElement(
                case_element, "SourceRef", {"targetGUID": guid_for("source", source_id)}
            )


def _add_sources(
    root: Element,
    sources: list[dict[str, Any]],
    codings: list[dict[str, Any]],
    note_refs: dict[tuple[str, str | None], list[str]],
    user_guid: dict[str, str],
) -> dict[str, str]:
    if not sources:
        return {}
    by_span: dict[tuple[str, int, int], list[dict[str, Any]]] = defaultdict(list)
    for coding in codings:
        by_span[
            (coding["source_id"], coding["start_offset"], coding["end_offset"])
        ].append(coding)
    spans_by_source: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for source_id, start, end in by_span:
        spans_by_source[source_id].append((start, end))

    texts: dict[str, str] = {}
    element = SubElement(root, "Sources")
    for source in sources:
        guid = guid_for("source", source["id"])
        member = f"{guid}.txt"
        texts[f"sources/{member}"] = source["text"]
        source_element = SubElement(
            element,
            "TextSource",
            {
                "guid": guid,
                "name": xml_text(source["id"]),
                "plainTextPath": f"internal://{member}",
            },
        )
        for start, end in spans_by_source.get(source["id"], []):
            group = by_span[(source["id"], start, end)]
            selection = SubElement(
                source_element,
                "PlainTextSelection",
                {
                    "guid": guid_for("selection", f"{source['id']}:{start}:{end}"),
                    "name": xml_text(group[0]["quote"]),
                    "startPosition": str(start),
                    "endPosition": str(end),
                },
            )
            first = min(group, key=lambda row: (row["created_at"], row["coder"]))
            selection.set("creatingUser", user_guid[first["coder"]])
            created = xsd_datetime(first["created_at"])
            if created:
                selection.set("creationDateTime", created)
            for coding in group:
                _add_coding(selection, coding, note_refs, user_guid)
        for note_guid in note_refs.get(("source", source["id"]), []):
            SubElement(source_element, "NoteRef", {"targetGUID": note_guid})
    return texts


def _add_coding(
    selection: Element,
    coding: dict[str, Any],
    note_refs: dict[tuple[str, str | None], list[str]],
    user_guid: dict[str, str],
) -> None:
    attributes = {
        "guid": guid_for("coding", _coding_key(coding)),
        "creatingUser": user_guid[coding["coder"]],
    }
    created = xsd_datetime(coding["created_at"])
    if created:
        attributes["creationDateTime"] = created
    element = SubElement(selection, "Coding", attributes)
    SubElement(element, "CodeRef", {"targetGUID": guid_for("code", coding["code_id"])})
    for note_guid in note_refs.get(("coding", str(coding["id"])), []):
        SubElement(element, "NoteRef", {"targetGUID": note_guid})


def _add_notes(
    root: Element,
    notes: list[tuple[dict[str, Any], str, str]],
    user_guid: dict[str, str],
) -> None:
    if not notes:
        return
    element = SubElement(root, "Notes")
    for memo, guid, key in notes:
        attributes = {
            "guid": guid,
            "name": xml_text(f"Memo on {key.rstrip(':')}"),
            "creatingUser": user_guid[memo["coder"]],
        }
        created = xsd_datetime(memo["created_at"])
        if created:
            attributes["creationDateTime"] = created
        note = SubElement(element, "Note", attributes)
        content = SubElement(note, "PlainTextContent")
        content.text = xml_text(memo["text"])


def write_archive(path: Path, members: dict[str, bytes]) -> None:
    """Write a zip archive with members in the given order and fixed timestamps."""
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=ZIP_TIMESTAMP)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)


def export_project(
    db: sqlite_utils.Database, path: str | Path, *, name: str, validate: bool = True
) -> ExportSummary:
    """Write the project to ``path`` as a REFI-QDA ``.qdpx`` archive.

    With ``validate`` the ``project.qde`` document is checked against
    Project.xsd first, and an invalid one raises instead of being written.
    """
    document, texts, summary = project_document(db, name)
    if validate:
        check_valid(document, "Project.xsd")
    members = {"project.qde": document}
    for member in sorted(texts):
        members[member] = texts[member].encode("utf-8")
    path = Path(path)
    write_archive(path, members)
    summary.path = path
    return summary
