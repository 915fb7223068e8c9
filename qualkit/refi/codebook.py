"""The codebook in REFI-QDA form: ``<Code>`` trees, descriptions, colours and ``.qdc`` export.

A code's ``Description`` carries its definition, then its when-to-use,
when-not-to-use and example paragraphs, and last a ``qualkit id:`` line.
qualkit's importer reads the paragraphs back, so an exported codebook comes back with the same ids and
fields. The matching rules used for auto-coding have no place in the
standard and are not exported.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element, SubElement

import sqlite_utils

from qualkit.errors import QualkitError
from qualkit.refi.common import (
    CODEBOOK_NAMESPACE,
    ORIGIN,
    guid_for,
    schema,
    serialize,
    xml_text,
)
from qualkit.store import get_meta, set_meta

# The meta key that stores code colours as JSON ({code id: "#RRGGBB"}), because
# the codes table has no colour column.
COLOURS_META_KEY = "refi_code_colours"

# Description paragraphs after the definition, as (codes column, heading).
DESCRIPTION_FIELDS = (
    ("when_to_use", "When to use:"),
    ("when_not_to_use", "When not to use:"),
    ("example", "Example:"),
)
ID_HEADING = "qualkit id:"


@dataclass(frozen=True)
class CodeFields:
    """The code fields that a REFI-QDA description contains."""

    definition: str
    when_to_use: str | None = None
    when_not_to_use: str | None = None
    example: str | None = None
    qualkit_id: str | None = None


def code_description(row: dict[str, Any]) -> str:
    """Return the ``Description`` text of a stored code row."""
    paragraphs = [row["definition"].strip()]
    for column, heading in DESCRIPTION_FIELDS:
        if row.get(column):
            paragraphs.append(f"{heading} {row[column].strip()}")
    paragraphs.append(f"{ID_HEADING} {row['id']}")
    return "\n\n".join(paragraphs)


def parse_description(text: str | None) -> CodeFields:
    """Split a ``Description`` into the definition and the paragraphs that ``code_description`` adds.

    Headed paragraphs are read from the end backwards, so a definition that
    happens to contain such a heading in its middle stays whole.
    """
    paragraphs = [
        p.strip() for p in re.split(r"\n\s*\n", (text or "").replace("\r\n", "\n"))
    ]
    paragraphs = [p for p in paragraphs if p]
    found: dict[str, str] = {}
    headings = [("qualkit_id", ID_HEADING), *DESCRIPTION_FIELDS]
    while paragraphs:
        last = paragraphs[-1]
        match = next(
            (
                (column, heading)
                for column, heading in headings
                if column not in found and last.lower().startswith(heading.lower())
            ),
            None,
        )
        if match is None:
            break
        found[match[0]] = last[len(match[1]) :].strip()
        paragraphs.pop()
    return CodeFields(
        definition="\n\n".join(paragraphs),
        when_to_use=found.get("when_to_use") or None,
        when_not_to_use=found.get("when_not_to_use") or None,
        example=found.get("example") or None,
        qualkit_id=found.get("qualkit_id") or None,
    )


def exported_codes(
    db: sqlite_utils.Database, used: set[str] | None = None
) -> list[dict[str, Any]]:
    """Return the code rows to export, parents before children, in codebook order.

    These are the active codes, the inactive codes in ``used`` (codes that
    exported codings refer to), and the ancestors of both.
    """
    cursor = db.execute("SELECT * FROM codes ORDER BY position, id")
    columns = [d[0] for d in cursor.description]
    rows = {row[0]: dict(zip(columns, row)) for row in cursor.fetchall()}
    selected = {code_id for code_id, row in rows.items() if row["active"]} | (
        used or set()
    )
    for code_id in list(selected):
        parent = rows.get(code_id, {}).get("parent_id")
        while parent and parent not in selected and parent in rows:
            selected.add(parent)
            parent = rows[parent]["parent_id"]
    return [row for code_id, row in rows.items() if code_id in selected]


def code_colours(db: sqlite_utils.Database) -> dict[str, str]:
    """Return the stored code colours by code id (empty when none were imported)."""
    stored = get_meta(db, COLOURS_META_KEY)
    return json.loads(stored) if stored else {}


def store_code_colours(db: sqlite_utils.Database, colours: dict[str, str]) -> None:
    """Add ``colours`` to the stored code colours. The caller opens the transaction."""
    if not colours:
        return
    merged = {**code_colours(db), **colours}
    set_meta(
        db, COLOURS_META_KEY, json.dumps(merged, ensure_ascii=False, sort_keys=True)
    )


def add_code_elements(
    parent: Element,
    codes: list[dict[str, Any]],
    colours: dict[str, str],
    note_refs: dict[str, list[str]] | None = None,
) -> None:
    """Append a ``<Codes>`` element with the code tree to ``parent``.

    ``note_refs`` maps code ids to the GUIDs of notes about them. The
    codebook schema has no ``NoteRef`` in a code, so ``.qdc`` export passes None.
    """
    codes_element = SubElement(parent, "Codes")
    known = {row["id"] for row in codes}
    children: dict[str | None, list[dict[str, Any]]] = {}
    for row in codes:
        parent_id = row["parent_id"] if row["parent_id"] in known else None
        children.setdefault(parent_id, []).append(row)

    def add(container: Element, row: dict[str, Any]) -> None:
        attributes = {
            "guid": guid_for("code", row["id"]),
            "name": xml_text(row["label"]),
            "isCodable": "true",
        }
        if row["id"] in colours:
            attributes["color"] = colours[row["id"]]
        element = SubElement(container, "Code", attributes)
        description = SubElement(element, "Description")
        description.text = xml_text(code_description(row))
        for note_guid in (note_refs or {}).get(row["id"], []):
            SubElement(element, "NoteRef", {"targetGUID": note_guid})
        # The schema puts child codes after the description and note references.
        for child in children.get(row["id"], []):
            add(element, child)

    for row in children.get(None, []):
        add(codes_element, row)


def codebook_document(db: sqlite_utils.Database) -> bytes:
    """Return the project's codebook as ``.qdc`` XML bytes, valid against Codebook.xsd."""
    codes = exported_codes(db)
    if not codes:
        raise QualkitError(
            "The project has no codes to export. Apply a codebook first with "
            "'qualkit codebook apply' or import one with 'qualkit refi import'."
        )
    # Tags are written without a prefix, and the root declares the default
    # namespace as a plain attribute, so ElementTree's global prefix registry
    # is not involved.
    root = Element("CodeBook", {"xmlns": CODEBOOK_NAMESPACE, "origin": ORIGIN})
    add_code_elements(root, codes, code_colours(db))
    return serialize(root)


def export_codebook(
    db: sqlite_utils.Database, path: str | Path, *, validate: bool = True
) -> Path:
    """Write the project's codebook to ``path`` as a REFI-QDA ``.qdc`` file and return the path.

    With ``validate`` the document is checked against Codebook.xsd before it
    is written, and an invalid one raises instead of reaching the file.
    """
    data = codebook_document(db)
    if validate:
        check_valid(data, "Codebook.xsd")
    path = Path(path)
    path.write_bytes(data)
    return path


def check_valid(data: bytes, schema_name: str) -> None:
    """Raise QualkitError when ``data`` is not valid against the bundled schema ``schema_name``."""
    from xml.etree import ElementTree

    errors = list(schema(schema_name).iter_errors(ElementTree.fromstring(data)))
    if errors:
        raise QualkitError(
            f"The export is not valid against {schema_name}, so it was not written: "
            f"{errors[0].reason} at {errors[0].path}. This is a qualkit bug; please report it."
        )
