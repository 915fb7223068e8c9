"""Word .docx files, read with python-docx.

The body is read in document order: paragraphs (headings included), and
tables row by row with the cells of a row joined by tabs. Blocks are
separated by a blank line. Headers, footers, text boxes and the table of
contents are left out, and so are comments and footnotes, with a warning.
Tracked changes are read as if accepted, with a warning: inserted text is
kept and deleted text is dropped, which is what Word shows with markup
hidden.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from qualkit.readers.common import (
    ZIP_SIGNATURES,
    Document,
    damaged_zip,
    reject_ole2,
    unreadable,
)

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"

# Inline elements whose children are read as part of the paragraph.
_INLINE_CONTAINERS = {
    f"{_W}{name}" for name in ("hyperlink", "smartTag", "customXml", "fldSimple", "bdo", "dir")
}
_RUN_TEXT = {f"{_W}tab": "\t", f"{_W}ptab": "\t", f"{_W}br": "\n", f"{_W}cr": "\n", f"{_W}noBreakHyphen": "-"}


@dataclass
class _Skipped:
    """Counts of what the reader left out, for the warnings."""

    comments: int = 0
    insertions: int = 0
    deletions: int = 0
    notes: int = 0

    def warnings(self) -> list[str]:
        found = []
        if self.comments:
            found.append(f"{self.comments} comment(s) left out of the text.")
        if self.insertions or self.deletions:
            found.append(
                f"tracked changes read as accepted ({self.insertions} insertion(s) kept, "
                f"{self.deletions} deletion(s) dropped); accept or reject them in Word "
                "and import again if that is not the text to code."
            )
        if self.notes:
            found.append(f"{self.notes} footnote or endnote reference(s); the notes are left out.")
        return found


def read(path: Path, data: bytes, encoding: str | None) -> Document:
    """Return the text of the document body."""
    import docx
    from docx.opc.exceptions import PackageNotFoundError
    from lxml import etree

    fix = "Open it in Word and save it again as a .docx file."
    reject_ole2(path, data, ".docx")
    if not zipfile.is_zipfile(io.BytesIO(data)):
        if data.startswith(ZIP_SIGNATURES):
            raise damaged_zip(path, "Word", fix)
        raise unreadable(path, "Word", "it is not a zip archive, as .docx files are", fix)
    try:
        document = docx.Document(io.BytesIO(data))
        body = document.element.body
    except (
        PackageNotFoundError,
        zipfile.BadZipFile,
        KeyError,
        ValueError,
        EOFError,
        zlib.error,
        etree.XMLSyntaxError,
        NotImplementedError,  # a zip compression method Python cannot read
        RuntimeError,  # a member encrypted with a zip password
    ) as error:
        raise unreadable(path, "Word", error, fix) from None
    except AttributeError:
        # python-docx returns a plain element when the root is not w:document.
        reason = "its main part does not contain a Word document"
        raise unreadable(path, "Word", reason, fix) from None
    if body is None:
        raise unreadable(path, "Word", "the document has no body", fix)
    skipped = _Skipped()
    blocks = [block for block in _blocks(body, skipped) if block.strip()]
    return Document(text="\n\n".join(blocks), format="docx", warnings=skipped.warnings())


def _blocks(container: object, skipped: _Skipped) -> Iterator[str]:
    for child in container.iterchildren():
        tag = child.tag
        if tag == f"{_W}p":
            yield _inline_text(child, skipped)
        elif tag == f"{_W}tbl":
            yield from _table_rows(child, skipped)
        elif tag == f"{_W}sdt" and not _is_table_of_contents(child):
            content = child.find(f"{_W}sdtContent")
            if content is not None:
                yield from _blocks(content, skipped)
        elif tag == f"{_W}customXml":
            yield from _blocks(child, skipped)


def _is_table_of_contents(control: object) -> bool:
    gallery = control.find(f"{_W}sdtPr/{_W}docPartObj/{_W}docPartGallery")
    return gallery is not None and gallery.get(f"{_W}val") == "Table of Contents"


def _table_rows(table: object, skipped: _Skipped) -> Iterator[str]:
    for row in _rows(table):
        cells = []
        for cell in row.iterchildren(f"{_W}tc"):
            text = "\n".join(block for block in _blocks(cell, skipped) if block.strip())
            if text.strip():
                cells.append(text.strip())
        if cells:
            yield "\t".join(cells)


def _rows(container: object) -> Iterator[object]:
    """Yield the table's own rows, also those wrapped in content controls."""
    for child in container.iterchildren():
        if child.tag == f"{_W}tr":
            yield child
        elif child.tag in (f"{_W}sdt", f"{_W}sdtContent", f"{_W}customXml"):
            yield from _rows(child)


def _inline_text(element: object, skipped: _Skipped) -> str:
    parts = []
    for child in element.iterchildren():
        tag = child.tag
        if tag == f"{_W}r":
            parts.append(_run_text(child, skipped))
        elif tag in _INLINE_CONTAINERS:
            parts.append(_inline_text(child, skipped))
        elif tag == f"{_W}sdt":
            content = child.find(f"{_W}sdtContent")
            if content is not None:
                parts.append(_inline_text(content, skipped))
        elif tag in (f"{_W}ins", f"{_W}moveTo"):
            skipped.insertions += 1
            parts.append(_inline_text(child, skipped))
        elif tag in (f"{_W}del", f"{_W}moveFrom"):
            skipped.deletions += 1
    return "".join(parts)


def _run_text(run: object, skipped: _Skipped) -> str:
    parts = []
    for child in run.iterchildren():
        tag = child.tag
        if tag == f"{_W}t":
            parts.append(child.text or "")
        elif tag in _RUN_TEXT:
            parts.append(_RUN_TEXT[tag])
        elif tag == f"{_W}commentReference":
            skipped.comments += 1
        elif tag in (f"{_W}footnoteReference", f"{_W}endnoteReference"):
            skipped.notes += 1
    return "".join(parts)
