"""Readers that turn transcript files into text, one module per format.

``read_document`` picks the reader from the file's suffix, or from its
first bytes when they show another supported format (a Word file saved as
RTF under a .docx name is common). Each reader module has a function
``read(path, data, encoding) -> Document``; modules load on first use, so
a project without PDF files never imports pypdf.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path

from qualkit.errors import TranscriptError
from qualkit.readers.common import Document, read_bytes

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
    warnings = []
    if READERS[actual][1] != READERS[suffix][1]:
        warnings.append(
            f"the file is {READERS[actual][0].upper()} despite its {suffix} suffix; "
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
    return None
