"""PDF files with a text layer, read with pypdf.

Pages are separated by a blank line; within a page, lines come out as
pypdf extracts them. A PDF without any text (a scanned document that was
never run through OCR) is rejected, and so is one that needs a password to
open. A PDF that only restricts printing or copying (an owner password
with an empty user password) opens without one and is read.
"""

from __future__ import annotations

import io
import zlib
from pathlib import Path

from qualkit.errors import TranscriptError
from qualkit.readers.common import Document, unreadable


def read(path: Path, data: bytes, encoding: str | None) -> Document:
    """Return the text of every page."""
    from pypdf import PasswordType, PdfReader
    from pypdf.errors import DependencyError, PyPdfError

    fix = "Export the transcript from the program that made it as PDF, .docx or .txt again."
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
            raise TranscriptError(
                "the PDF is encrypted and needs a password to open.",
                path=path,
                fix="Remove the password (print or export it as an unprotected PDF) "
                "and import that file.",
            )
        pages = [page.extract_text() or "" for page in reader.pages]
    except DependencyError as error:
        raise TranscriptError(
            f"the PDF is encrypted with a method that needs another package ({error}).",
            path=path,
            fix="Install the cryptography package (pip install 'pypdf[crypto]').",
        ) from None
    except (
        PyPdfError,
        ValueError,
        KeyError,
        TypeError,
        IndexError,
        AttributeError,
        NotImplementedError,
        OverflowError,
        RecursionError,
        zlib.error,
    ) as error:
        # pypdf recovers from many defects and raises these for the rest,
        # NotImplementedError for a stream filter it does not know.
        raise unreadable(path, "PDF", f"{type(error).__name__}: {error}", fix) from None
    empty = [number for number, text in enumerate(pages, start=1) if not text.strip()]
    if len(empty) == len(pages):
        raise TranscriptError(
            "the PDF has no text layer (a scanned document?), so there is no text to import.",
            path=path,
            fix="Run OCR on it first (for example with ocrmypdf), or import the original document.",
        )
    warnings = []
    if empty:
        listed = ", ".join(str(number) for number in empty[:10])
        warnings.append(f"page(s) {listed} have no text layer and are left out.")
    text = "\n\n".join(page.strip("\n") for page in pages if page.strip())
    return Document(text=text, format="pdf", warnings=warnings)
