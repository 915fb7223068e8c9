"""Readers that turn transcript files into text, one module per format.

``read_document`` picks the reader from the file's suffix, or from its
first bytes when they show another supported format (a Word file saved as
RTF under a .docx name is common). Each reader module has a function
``read(path, data, encoding) -> Document``; modules load on first use, so
a project without PDF files never imports pypdf.
"""

from __future__ import annotations

import importlib
import io
import logging
import zipfile
import zlib
from pathlib import Path

from qualkit.errors import TranscriptError
from qualkit.readers.common import ZIP_SIGNATURES, Document, read_bytes, reject_ole2

log = logging.getLogger(__name__)

# Suffix -> (format name stored in sources.format, reader module).
READERS = {
    ".txt": ("text", "text"),
    ".md": ("markdown", "text"),
    ".markdown": ("markdown", "text"),
    ".srt": ("srt", "text"),
    ".vtt": ("vtt", "text"),
    ".docx": ("docx", "docx"),
    ".odt": ("odt", "odt"),
    ".rtf": ("rtf", "rtf"),
    ".pdf": ("pdf", "pdf"),
}
SUFFIXES = tuple(sorted(READERS))

_SIGNATURES = (
    (b"%PDF-", ".pdf"),
    (b"{\\rtf", ".rtf"),
)

# Format names for the warning about a file whose content differs from its suffix.
_FORMAT_NAMES = {
    ".docx": "a Word document (.docx)",
    ".odt": "an OpenDocument text (.odt)",
    ".pdf": "a PDF",
    ".rtf": "RTF",
}

# Member names that mark a zip archive as a Word or OpenDocument text file.
# In a truncated archive they are still found in the local file headers.
_WORD_MEMBER = b"word/document.xml"
_ODT_MIMETYPE = b"application/vnd.oasis.opendocument.text"

__all__ = ["Document", "READERS", "SUFFIXES", "read_document"]


def read_document(path: str | Path, *, encoding: str | None = None) -> Document:
    """Read a transcript file of any supported format into text.

    ``encoding`` applies to plain-text and RTF files. Raises TranscriptError
    naming the file and the reason when it cannot be read.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in READERS:
        raise TranscriptError(
            f"unsupported file type {path.suffix or '(none)'!r}.",
            path=path,
            fix=f"Convert it to one of: {', '.join(SUFFIXES)}.",
        )
    data = read_bytes(path)
    actual = _suffix_from_content(data) or suffix
    if READERS[actual][1] == "text":
        _reject_binary(path, data)
    warnings = []
    if READERS[actual][1] != READERS[suffix][1]:
        warnings.append(
            f"the file is {_FORMAT_NAMES[actual]} despite its {suffix} suffix; "
            f"it was read as {READERS[actual][0].upper()}."
        )
    format_name, module_name = READERS[actual]
    module = importlib.import_module(f"qualkit.readers.{module_name}")
    document = module.read(path, data, encoding)
    document.format = format_name
    document.warnings[:0] = warnings
    for warning in document.warnings:
        log.warning("%s: %s", path, warning)

    return document


def _suffix_from_content(data: bytes) -> str | None:
    for signature, suffix in _SIGNATURES:
        if data.startswith(signature):
            return suffix
    if data.startswith(ZIP_SIGNATURES):
        return _zip_suffix(data)
    return None


def _zip_suffix(data: bytes) -> str | None:
    """Return .docx or .odt for a zip archive that is one of them, else None."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
            if _WORD_MEMBER.decode() in names:
                return ".docx"
            if "mimetype" in names and archive.read("mimetype").startswith(_ODT_MIMETYPE):
                return ".odt"
            return None
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        OSError,
        ValueError,
        EOFError,
        NotImplementedError,
        RuntimeError,
        zlib.error,
    ):
        pass
    # A damaged archive: look for the names in the local file headers, so
    # the reader of that format reports the damage.
    if _WORD_MEMBER in data:
        return ".docx"
    # An OpenDocument file must store its "mimetype" member first and uncompressed.
    if b"mimetype" + _ODT_MIMETYPE in data[:200]:
        return ".odt"
    return None


def _reject_binary(path: Path, data: bytes) -> None:
    """Raise for an office file or zip archive given a plain-text suffix.

    Without this, decoding reports NUL bytes and suggests UTF-16, which
    sends the user the wrong way.
    """
    reject_ole2(path, data, ".docx")
    if data.startswith(ZIP_SIGNATURES):
        raise TranscriptError(
            "the file is a zip archive, not text.",
            path=path,
            fix="Unpack it and import the transcripts inside, or save the document "
            f"as one of: {', '.join(SUFFIXES)}.",
        )
