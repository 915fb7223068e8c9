"""Read transcript files into text, metadata and speaker turns.

The text that qualkit stores, and that every offset counts in, is the
transcript body after the front matter, with line endings normalized to
``\\n`` and without a byte order mark.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qualkit.errors import InputError, TranscriptError
from qualkit.yamlfile import parse_yaml

FORMATS = {".txt": "text", ".md": "markdown", ".markdown": "markdown", ".docx": "docx"}

# A speaker label at the start of a line: "Interviewer:", "Q:", "问：", "[Li Wei]",
# optionally in Markdown bold. The colon may be ASCII or full-width.
_TURN_LABEL = re.compile(
    r"^[ \t]*(?:\*\*)?(?:\[(?P<bracketed>[^\]\n]{1,40})\]|"
    r"(?P<label>Interviewer|Respondent|Interviewee|Q|A|I|R|问|答))"
    r"(?:\*\*)?(?(bracketed)[ \t]*[:：]?|[ \t]*[:：])(?:\*\*)?[ \t]*",
    re.MULTILINE,
)
_INTERVIEWER_LABELS = {"interviewer", "q", "i", "问"}
_RESPONDENT_LABELS = {"respondent", "interviewee", "a", "r", "答"}
# Used with Pattern.match(text, pos), which anchors at pos, so no "^".
_TIMESTAMP = re.compile(r"\[?(?P<time>\d{1,2}:\d{2}:\d{2})(?:[.,]\d+)?\]?[ \t]*")


@dataclass
class Turn:
    """A stretch of the text spoken by one speaker, label excluded."""

    start: int
    end: int
    speaker: str | None
    role: str | None
    timestamp: str | None = None


@dataclass
class Transcript:
    """A transcript file read into memory."""

    path: Path
    format: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)
    metadata_lines: dict[str, int] = field(default_factory=dict)


def normalize_text(text: str) -> str:
    """Drop a byte order mark and turn CRLF and CR line endings into LF."""
    if text.startswith("\ufeff"):
        text = text[1:]
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_transcript(path: str | Path) -> Transcript:
    """Read a .txt, .md or .docx transcript with its front matter metadata."""
    path = Path(path)
    transcript_format = FORMATS.get(path.suffix.lower())
    if transcript_format is None:
        raise TranscriptError(
            f"unsupported file type {path.suffix or '(none)'!r}.",
            path=path,
            fix=f"Convert it to one of: {', '.join(sorted(FORMATS))}.",
        )
    if transcript_format == "docx":
        raw = _read_docx(path)
    else:
        raw = _read_text_file(path)

    return _split_front_matter(normalize_text(raw), path, transcript_format)


def _read_text_file(path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise TranscriptError("file not found.", path=path) from None
    except IsADirectoryError:
        raise TranscriptError("is a folder, not a file.", path=path) from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise TranscriptError(
            f"the file is not valid UTF-8 (byte {error.start}).",
            path=path,
            line=line,
            fix="Save it as UTF-8 and import it again.",
        ) from None


def _read_docx(path: Path) -> str:
    import zipfile

    import docx

    try:
        document = docx.Document(str(path))
    except (zipfile.BadZipFile, KeyError, ValueError) as error:
        raise TranscriptError(
            f"not a readable Word file ({error}).",
            path=path,
            fix="Open it in Word and save it again as .docx.",
        ) from None
    return "\n\n".join(paragraph.text for paragraph in document.paragraphs)


def _split_front_matter(text: str, path: Path, transcript_format: str) -> Transcript:
    if not text.startswith("---\n"):
        return Transcript(path=path, format=transcript_format, text=text)
    closing = re.search(r"^(?:---|\.\.\.)[ \t]*$", text[4:], re.MULTILINE)
    if closing is None:
        raise TranscriptError(
            "front matter starts with '---' on line 1 but is never closed.",
            path=path,
            line=1,
            fix="Add a line with '---' after the metadata.",
        )
    block = text[4 : 4 + closing.start()]
    try:
        metadata = parse_yaml(block, path=path, first_line=2)
    except InputError as error:
        raise TranscriptError(
            f"front matter is {error.message}", path=path, line=error.line, fix=error.fix
        ) from None
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise TranscriptError(
            "front matter must be a mapping of keys to values.",
            path=path,
            line=2,
            fix="Write one 'key: value' per line.",
        )
    body = text[4 + closing.end() :].lstrip("\n")
    lines = dict(getattr(metadata, "key_lines", {}))

    return Transcript(
        path=path,
        format=transcript_format,
        text=body,
        metadata=dict(metadata),
        metadata_lines=lines,
    )


def find_turns(text: str) -> list[Turn]:
    """Split ``text`` into speaker turns, or paragraphs if it has no labels.

    A turn runs from the end of its label to the next label; its end is
    trimmed of whitespace. Paragraphs are blocks between blank lines.
    """
    labels = list(_TURN_LABEL.finditer(text))
    if not labels:
        return _paragraphs(text)
    turns = []
    for index, match in enumerate(labels):
        end = labels[index + 1].start() if index + 1 < len(labels) else len(text)
        speaker = (match.group("label") or match.group("bracketed")).strip()
        start, stop = _trim(text, match.end(), end)
        timestamp = None
        stamp = _TIMESTAMP.match(text, start, stop)
        if stamp:
            timestamp = stamp.group("time")
            start = stamp.end()
        if stop > start:
            turns.append(Turn(start, stop, speaker, _role(speaker), timestamp))
    return turns


def _role(speaker: str) -> str | None:
    key = speaker.lower()
    if key in _INTERVIEWER_LABELS:
        return "interviewer"
    if key in _RESPONDENT_LABELS:
        return "respondent"
    return None


def _paragraphs(text: str) -> list[Turn]:
    turns = []
    for match in re.finditer(r"\S(?:.|\n(?![ \t]*\n))*", text):
        start, stop = _trim(text, match.start(), match.end())
        if stop > start:
            turns.append(Turn(start, stop, None, None))
    return turns


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end
