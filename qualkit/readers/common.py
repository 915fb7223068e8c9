"""The document type that every reader returns, and the errors the readers share."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from qualkit.errors import TranscriptError

# The first bytes of an OLE2 compound file: Word 97-2003 documents, and
# Office 2007+ documents encrypted with a password.
OLE2_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# The first bytes of a zip archive's first member (local file header), and
# of an empty archive. .docx and .odt files are zip archives.
ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")


@dataclass
class Document:
    """The text read from one file, before front matter is split off.

    ``encoding`` is the codec that decoded a plain-text file (None for
    formats that carry their own encoding). ``warnings`` lists what the
    reader left out or could not represent, one sentence each.
    """

    text: str
    format: str
    encoding: str | None = None
    warnings: list[str] = field(default_factory=list)


def read_bytes(path: Path) -> bytes:
    """Return the file's bytes, raising TranscriptError if it cannot be read."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise TranscriptError("file not found.", path=path) from None
    except IsADirectoryError:
        raise TranscriptError("is a folder, not a file.", path=path) from None
    except PermissionError:
        raise TranscriptError("permission denied.", path=path) from None


def unreadable(path: Path, kind: str, reason: object, fix: str) -> TranscriptError:
    """Return the error for a file that is not a readable ``kind`` file."""
    return TranscriptError(f"not a readable {kind} file ({reason}).", path=path, fix=fix)


def reject_ole2(path: Path, data: bytes, kind: str) -> None:
    """Raise if ``data`` is an OLE2 file: an encrypted or pre-2007 Office document."""
    if data.startswith(OLE2_SIGNATURE):
        raise TranscriptError(
            f"the file is password-protected (encrypted), or it is an old binary "
            f"Office file renamed to {path.suffix}.",
            path=path,
            fix=f"Open it in the word processor, remove the password, and save it as {kind}.",
        )


def damaged_zip(path: Path, kind: str, fix: str) -> TranscriptError:
    """Return the error for a file that starts like a zip archive but cannot be opened.

    A zip archive keeps its table of contents at the end, so a file that
    was cut off while copying or downloading starts right and fails here.
    """
    return TranscriptError(
        f"not a readable {kind} file: it is damaged or truncated. It starts as a "
        "zip archive, but the end of the archive is missing or corrupt, as in a "
        "cut-off copy or download.",
        path=path,
        fix="Copy the file again from where it came from. " + fix,
    )
