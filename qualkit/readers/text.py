"""Plain-text transcripts: .txt, .md (front matter is split off later), .srt, .vtt.

Subtitle files are stored as they are; ``qualkit.transcripts.find_turns``
recognizes their cues.
"""

from __future__ import annotations

from pathlib import Path

from qualkit.readers.common import Document
from qualkit.readers.encoding import decode_bytes


def read(path: Path, data: bytes, encoding: str | None) -> Document:
    """Decode the file's bytes (see ``qualkit.readers.encoding``)."""
    text, used = decode_bytes(data, path=path, encoding=encoding)
    return Document(text=text, format="text", encoding=used)
