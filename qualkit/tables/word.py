"""Write a ``Table`` as a Word document (.docx) through python-docx.

The document contains the title as a caption, one real Word table whose first
row is a repeating header row, and the notes below it. python-docx writes
text as XML text nodes, so no value needs escaping. Control characters,
most of which XML 1.0 does not allow, are removed when the table is built.
"""

from __future__ import annotations

import io
import zipfile
from datetime import datetime
from pathlib import Path
from typing import Any

import docx
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Pt

from qualkit.tables import Cell, Table, Text

# Time stamp of every member of the .docx archive, so that the same table
# written twice gives the same bytes (the ZIP format cannot store earlier dates).
ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def _fill_cell(target: Any, value: Cell) -> None:
    paragraph = target.paragraphs[0]
    for run_value in value:
        for index, line in enumerate(run_value.text.split("\n")):
            if index:
                paragraph.add_run().add_break()
            run = paragraph.add_run(line)
            run.bold = run_value.bold or None


def _mark_header_row(row: Any) -> None:
    properties = row._tr.get_or_add_trPr()
    header = OxmlElement("w:tblHeader")
    header.set(qn("w:val"), "true")
    properties.append(header)


def build_document(
    table: Table, *, author: str = "qualkit", as_of: datetime | None = None
) -> Any:
    """Return a python-docx Document containing the table; ``as_of`` sets its created and modified dates."""
    document = docx.Document()
    properties = document.core_properties
    properties.author = author
    properties.last_modified_by = author
    properties.title = table.title
    properties.revision = 1
    stamp = as_of or datetime(2000, 1, 1)
    properties.created = stamp
    properties.modified = stamp

    document.add_paragraph(table.title, style="Caption")
    word_table = document.add_table(rows=1, cols=len(table.columns))
    word_table.style = "Table Grid"
    header = word_table.rows[0]
    _mark_header_row(header)
    for target, column in zip(header.cells, table.columns):
        _fill_cell(target, (Text(column, True),))
    for row in table.rows:
        cells = word_table.add_row().cells
        for target, value in zip(cells, row):
            _fill_cell(target, value)
    for note in table.notes:
        paragraph = document.add_paragraph()
        run = paragraph.add_run(note)
        run.font.size = Pt(9)
    return document


def write(table: Table, path: Path, *, as_of: datetime | None = None) -> Path:
    """Write the table to ``path`` as .docx with fixed archive time stamps."""
    buffer = io.BytesIO()
    build_document(table, as_of=as_of).save(buffer)
    path.write_bytes(_normalize_archive(buffer.getvalue()))
    return path


def _normalize_archive(data: bytes) -> bytes:
    """Rewrite the .docx archive with fixed member dates, keeping member order and contents."""
    source = zipfile.ZipFile(io.BytesIO(data))
    output = io.BytesIO()
    with zipfile.ZipFile(output, "w", compression=zipfile.ZIP_DEFLATED) as target:
        for member in source.infolist():
            info = zipfile.ZipInfo(member.filename, date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = member.external_attr
            target.writestr(info, source.read(member.filename))
    return output.getvalue()
