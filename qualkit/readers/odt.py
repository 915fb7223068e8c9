"""OpenDocument text (.odt) files, read with odfpy.

The same rules as for Word files apply: paragraphs, headings and list items
in document order, tables row by row with cells joined by tabs, a blank line
between blocks. Comments (annotations), footnotes, drawings and the table
of contents are left out. Tracked changes are read as if accepted, because
an .odt file keeps deleted text apart from the body.
"""

from __future__ import annotations

import io
import xml.sax
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from qualkit.errors import TranscriptError
from qualkit.readers.common import (
    ZIP_SIGNATURES,
    Document,
    damaged_zip,
    reject_ole2,
    unreadable,
)

_TEXT = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
_TABLE = "urn:oasis:names:tc:opendocument:xmlns:table:1.0"
_OFFICE = "urn:oasis:names:tc:opendocument:xmlns:office:1.0"
_DRAW = "urn:oasis:names:tc:opendocument:xmlns:drawing:1.0"
_TEXT_MIMETYPE = "application/vnd.oasis.opendocument.text"

# Containers of block elements that are read in order.
_BLOCK_CONTAINERS = {(_TEXT, name) for name in ("list", "list-item", "list-header", "section")}
_ROW_CONTAINERS = {
    (_TABLE, name) for name in ("table-header-rows", "table-rows", "table-row-group")
}

# The text is walked recursively, so deeper nesting is rejected before the
# walk reaches Python's recursion limit. libxml2, which reads .docx files,
# stops at the same depth by default.
MAX_ELEMENT_DEPTH = 256
# A <text:s text:c="N"/> element represents N spaces. Real documents use a
# few, but a hostile count would build a string of gigabytes.
MAX_SPACE_RUN = 10_000


@dataclass
class _Skipped:
    """Counts of what the reader left out, for the warnings."""

    comments: int = 0
    changes: int = 0
    notes: int = 0

    def warnings(self) -> list[str]:
        found = []
        if self.comments:
            found.append(f"{self.comments} comment(s) left out of the text.")
        if self.changes:
            found.append(
                f"{self.changes} tracked change(s) read as accepted; accept or reject them "
                "in the word processor and import again if that is not the text to code."
            )
        if self.notes:
            found.append(f"{self.notes} footnote(s) or endnote(s) left out of the text.")
        return found


def read(path: Path, data: bytes, encoding: str | None) -> Document:
    """Return the text of the document body."""
    from odf.opendocument import load

    fix = "Open it in LibreOffice or Word and save it again as an .odt file."
    reject_ole2(path, data, ".odt")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except NotImplementedError as error:  # a zip version or method Python cannot read
        raise unreadable(path, "OpenDocument", error, fix) from None
    except zipfile.BadZipFile as error:
        if data.startswith(ZIP_SIGNATURES):
            raise damaged_zip(path, "OpenDocument", fix) from None
        raise unreadable(path, "OpenDocument", error, fix) from None
    with archive:
        try:
            _reject_encrypted(path, archive)
        except (zipfile.BadZipFile, EOFError, zlib.error, NotImplementedError, RuntimeError) as error:
            # zipfile raises RuntimeError for a member encrypted with a zip password.
            raise unreadable(path, "OpenDocument", error, fix) from None
    try:
        document = load(io.BytesIO(data))
    except (
        zipfile.BadZipFile,
        KeyError,
        IndexError,
        ValueError,
        EOFError,
        zlib.error,
        xml.sax.SAXException,
        LookupError,  # an XML declaration naming an unknown encoding
        NotImplementedError,  # a zip compression method Python cannot read
        RuntimeError,  # a member encrypted with a zip password
    ) as error:
        raise unreadable(path, "OpenDocument", error, fix) from None
    if not str(document.mimetype).startswith(_TEXT_MIMETYPE):
        raise unreadable(path, "OpenDocument text", f"its type is {document.mimetype}", fix)
    if document.text is None:
        raise unreadable(path, "OpenDocument", "it has no text body", fix)
    if _depth_exceeds(document.text, MAX_ELEMENT_DEPTH):
        raise unreadable(
            path, "OpenDocument", f"elements are nested deeper than {MAX_ELEMENT_DEPTH} levels", fix
        )
    skipped = _Skipped()
    try:
        blocks = [block for block in _blocks(document.text, skipped) if block.strip()]
    except _InvalidContent as error:
        raise unreadable(path, "OpenDocument", error, fix) from None
    return Document(text="\n\n".join(blocks), format="odt", warnings=skipped.warnings())


def _reject_encrypted(path: Path, archive: zipfile.ZipFile) -> None:
    try:
        manifest = archive.read("META-INF/manifest.xml")
    except KeyError:
        return  # load() reports the missing manifest
    if b"encryption-data" in manifest:
        raise TranscriptError(
            "the file is password-protected (encrypted).",
            path=path,
            fix="Open it in LibreOffice, remove the password, and save it again.",
        )


def _blocks(element: object, skipped: _Skipped) -> Iterator[str]:
    for child in _elements(element):
        qname = child.qname
        if qname in ((_TEXT, "p"), (_TEXT, "h")):
            yield _inline_text(child, skipped)
        elif qname in _BLOCK_CONTAINERS:
            yield from _blocks(child, skipped)
        elif qname == (_TABLE, "table"):
            yield from _table_rows(child, skipped)
        elif qname == (_TEXT, "tracked-changes"):
            skipped.changes += sum(1 for _ in _elements(child))


def _table_rows(table: object, skipped: _Skipped) -> Iterator[str]:
    for row in _rows(table):
        cells = []
        for cell in _elements(row):
            if cell.qname != (_TABLE, "table-cell"):
                continue  # covered cells of merged ranges are empty
            text = "\n".join(block for block in _blocks(cell, skipped) if block.strip())
            if text.strip():
                cells.append(text.strip())
        if cells:
            yield "\t".join(cells)


def _rows(container: object) -> Iterator[object]:
    for child in _elements(container):
        if child.qname == (_TABLE, "table-row"):
            yield child
        elif child.qname in _ROW_CONTAINERS:
            yield from _rows(child)


def _inline_text(element: object, skipped: _Skipped) -> str:
    parts = []
    for child in element.childNodes:
        if child.nodeType == child.TEXT_NODE:
            parts.append(child.data)
            continue
        if child.nodeType != child.ELEMENT_NODE:
            continue
        namespace, name = child.qname
        if namespace == _TEXT and name == "s":
            parts.append(" " * _space_count(child.getAttrNS(_TEXT, "c")))
        elif namespace == _TEXT and name == "tab":
            parts.append("\t")
        elif namespace == _TEXT and name == "line-break":
            parts.append("\n")
        elif namespace == _OFFICE and name == "annotation":
            skipped.comments += 1
        elif namespace == _TEXT and name == "note":
            skipped.notes += 1
        elif namespace == _DRAW or (namespace == _OFFICE and name == "annotation-end"):
            continue
        else:
            parts.append(_inline_text(child, skipped))
    return "".join(parts)


def _space_count(value: str | None) -> int:
    """Return the number of spaces that a <text:s> element represents."""
    if not value:
        return 1
    try:
        count = int(value)
    except ValueError:
        raise _InvalidContent(f"a space count of {value[:20]!r} is not a number") from None
    if not 1 <= count <= MAX_SPACE_RUN:
        raise _InvalidContent(f"a space count of {count} is outside 1 to {MAX_SPACE_RUN:,}")
    return count


class _InvalidContent(ValueError):
    """The document body breaks a rule of the format."""


def _depth_exceeds(root: object, limit: int) -> bool:
    """Return True when elements under ``root`` nest more than ``limit`` levels deep."""
    stack = [(root, 0)]
    while stack:
        element, depth = stack.pop()
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in _elements(element))
    return False


def _elements(element: object) -> Iterator[object]:
    for child in element.childNodes:
        if child.nodeType == child.ELEMENT_NODE:
            yield child
