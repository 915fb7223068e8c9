"""Read transcript files into text, metadata and speaker turns.

The text that qualkit stores, and that every offset counts in, is the
transcript body after the front matter, with line endings normalized to
``\\n`` and without a byte order mark. The readers in ``qualkit.readers``
turn each file format into such text; this module splits off the front
matter and finds the turns.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qualkit.errors import InputError, TranscriptError
from qualkit.readers import READERS, read_document
from qualkit.yamlfile import parse_yaml

log = logging.getLogger(__name__)

# Front matter is parsed by PyYAML's pure-Python scanner, which needs
# seconds per megabyte, so a block that no metadata needs is rejected
# before parsing.
MAX_FRONT_MATTER_CHARACTERS = 100_000

# Suffix -> format name stored in sources.format.
FORMATS = {suffix: format_name for suffix, (format_name, _) in READERS.items()}
# Formats whose stored text is the file's own text, so that line numbers in
# error messages point into the file.
_LINE_FORMATS = {"text", "markdown", "srt", "vtt"}

# Speaker labels with a known role, matched at the start of a line. English
# words are matched in any letter case and may carry a number ("Respondent 2").
_INTERVIEWER_WORDS = ("Interviewer", "Moderator")
_RESPONDENT_WORDS = ("Respondent", "Interviewee")
_INTERVIEWER_MARKS = ("Q", "I", "问", "問", "访谈者", "访谈人", "采访者")
# "B" is the respondent ("Befragte") in the f4/f5 transcription conventions.
_RESPONDENT_MARKS = ("A", "R", "B", "答", "受访者", "被访者")
_ROLES = {
    **{word.lower(): "interviewer" for word in _INTERVIEWER_WORDS + _INTERVIEWER_MARKS},
    **{word.lower(): "respondent" for word in _RESPONDENT_WORDS + _RESPONDENT_MARKS},
}
_KNOWN_LABEL = (
    r"(?i:" + "|".join(_INTERVIEWER_WORDS + _RESPONDENT_WORDS) + r")(?:[ \t]?\d{1,2})?"
    r"|(?:" + "|".join(sorted(_INTERVIEWER_MARKS + _RESPONDENT_MARKS, key=len, reverse=True)) + ")"
)

# A time stamp: [00:07:35], [07:35], (00:07:35), 00:07:35.000, and the
# #00:07:35-0# marks that the f4/f5 transcription programs write.
_STAMP = (
    r"\[(?:\d{1,2}:)?\d{1,2}:\d{2}(?:[.,]\d{1,3})?\]"
    r"|\((?:\d{1,2}:)?\d{1,2}:\d{2}(?:[.,]\d{1,3})?\)"
    r"|\#\d{1,2}:\d{2}:\d{2}(?:-\d{1,2})?\#"
    r"|\d{1,2}:\d{2}:\d{2}(?:[.,]\d{1,3})?(?![\d:])"
)
_STAMP_PARTS = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")
_TRAILING_STAMP = re.compile(r"(?P<newline>\n[ \t]*)?(?P<stamp>" + _STAMP + r")[ \t]*$")
_LINE_STAMP = re.compile(r"^[ \t]*(?P<stamp>" + _STAMP + r")[ \t]*", re.MULTILINE)

# Bracketed text at the start of a line that is a time or a transcriber's
# note, not a speaker.
_NOT_A_NAME = (
    r"[\d:.,\s-]+|(?i:inaudible|unclear|crosstalk|laughs?|laughter|pause|silence|"
    r"interruption|overlapping|background noise|music|sic)|笑|听不清|停顿|沉默"
)

# A speaker name followed by a colon, counted in a first pass: a name that
# starts two or more lines is a speaker label. A known label or a [Name]
# may also be followed by a tab, as in a table row read from a Word file.
_NAME_CANDIDATE = re.compile(
    r"^[ \t]*(?:\*\*)?(?P<name>[A-Z][\w.'-]*(?: [A-Z][\w.'-]*){0,2}(?: \d{1,2})?"
    r"|[\u4e00-\u9fff]{2,4})(?:\*\*)?(?:[ \t]*\([^)\n]{1,12}\))?(?:\*\*)?[ \t]*[:：]",
    re.MULTILINE,
)
# Words that start a line with a colon in transcripts without being speakers.
_NOT_SPEAKERS = {
    "note", "notes", "nb", "comment", "comments", "translation", "translator",
    "transcriber", "source", "date", "time", "place", "location", "duration",
    "participants", "subject", "title", "topic", "summary", "keywords",
    "注", "备注", "注释", "时间", "地点", "日期", "主题",
}

_CUE_TIMING = re.compile(
    r"^[ \t]*(?P<start>(?:\d{1,2}:)?\d{2}:\d{2}[.,]\d{3})[ \t]+-->[ \t]+"
    r"(?:\d{1,2}:)?\d{2}:\d{2}[.,]\d{3}[^\n]*$",
    re.MULTILINE,
)
_CUE_VOICE = re.compile(r"<v(?:\.[\w.-]+)*[ \t]+(?P<name>[^>\n]{1,60})>[ \t]*")
_CUE_VOICE_END = re.compile(r"[ \t]*</v>$")
_BLANK_LINE = re.compile(r"\n[ \t]*\n")
_PARAGRAPH = re.compile(r"\S(?:.|\n(?![ \t]*\n))*")


@dataclass
class Turn:
    """A stretch of the text spoken by one speaker, label and time stamps excluded.

    ``kind`` is ``turn`` for labelled or timed stretches and ``paragraph``
    for text without either.
    """

    start: int
    end: int
    speaker: str | None
    role: str | None
    timestamp: str | None = None
    kind: str = "turn"


@dataclass
class Transcript:
    """A transcript file read into memory.

    ``encoding`` is the codec that decoded a plain-text file; ``warnings``
    lists what the reader left out (comments, tracked changes, pages
    without text).
    """

    path: Path
    format: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)
    metadata_lines: dict[str, int] = field(default_factory=dict)
    encoding: str | None = None
    warnings: list[str] = field(default_factory=list)


def normalize_text(text: str) -> str:
    """Drop a byte order mark and turn CRLF, CR, NEL and Unicode line breaks into LF."""
    if text.startswith("\ufeff"):
        text = text[1:]
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.translate({0x85: "\n", 0x2028: "\n", 0x2029: "\n"})


def read_transcript(path: str | Path, *, encoding: str | None = None) -> Transcript:
    """Read a transcript file of any supported format with its front matter metadata.

    ``encoding`` overrides detection for plain-text and RTF files.
    """
    path = Path(path)
    document = read_document(path, encoding=encoding)
    text = normalize_text(document.text)
    # Plain-text files with NUL bytes are rejected when decoded, but RTF and
    # PDF text can still carry NUL characters, which many tools and C
    # libraries read as the end of a string.
    nul_count = text.count("\0")
    if nul_count:
        text = text.replace("\0", "")
        document.warnings.append(f"{nul_count} NUL character(s) removed from the text.")
        log.warning("%s: %s", path, document.warnings[-1])
    transcript = _split_front_matter(text, path, document.format)
    transcript.encoding = document.encoding
    transcript.warnings = document.warnings
    return transcript


def _split_front_matter(text: str, path: Path, transcript_format: str) -> Transcript:
    if not text.startswith("---\n"):
        return Transcript(path=path, format=transcript_format, text=text)
    with_lines = transcript_format in _LINE_FORMATS
    closing = re.search(r"^(?:---|\.\.\.)[ \t]*$", text[4:], re.MULTILINE)
    if closing is None:
        raise TranscriptError(
            "front matter starts with '---' on line 1 but is never closed.",
            path=path,
            line=1 if with_lines else None,
            fix="Add a line with '---' after the metadata.",
        )
    block = text[4 : 4 + closing.start()]
    if len(block) > MAX_FRONT_MATTER_CHARACTERS:
        raise TranscriptError(
            f"the front matter is {len(block):,} characters long, over the limit of "
            f"{MAX_FRONT_MATTER_CHARACTERS:,}.",
            path=path,
            line=1 if with_lines else None,
            fix="Keep metadata to short 'key: value' lines, and put long notes in a memo.",
        )
    try:
        metadata = parse_yaml(block, path=path, first_line=2)
    except InputError as error:
        raise TranscriptError(
            f"invalid front matter: {error.message}",
            path=path,
            line=error.line if with_lines else None,
            fix=error.fix,
        ) from None
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise TranscriptError(
            "front matter must be a mapping of keys to values.",
            path=path,
            line=2 if with_lines else None,
            fix="Write one 'key: value' per line.",
        )
    body = text[4 + closing.end() :].lstrip("\n")
    lines = dict(getattr(metadata, "key_lines", {})) if with_lines else {}

    return Transcript(
        path=path,
        format=transcript_format,
        text=body,
        metadata=dict(metadata),
        metadata_lines=lines,
    )


# Turns


def find_turns(text: str) -> list[Turn]:
    """Split ``text`` into speaker turns, cues, timed stretches or paragraphs.

    In order of precedence: subtitle cues (SRT, WebVTT), lines that start
    with a speaker label, lines that start with a time stamp, and else
    paragraphs (blocks between blank lines). Text before the first label
    becomes paragraphs. Every span is trimmed of whitespace.
    """
    if _is_subtitle(text):
        return _cue_turns(text)
    labels = list(_label_pattern(text).finditer(text))
    if labels:
        return _labelled_turns(text, labels)
    stamps = list(_LINE_STAMP.finditer(text))
    if stamps:
        return _stamped_turns(text, stamps)
    return _paragraphs(text, 0, len(text))


def normalize_timestamp(stamp: str) -> str:
    """Return a time stamp as HH:MM:SS; fractions of a second are dropped.

    A stamp with two parts, as in ``[07:35]``, is minutes and seconds.
    """
    hours, minutes, seconds = _STAMP_PARTS.search(stamp).groups()
    if seconds is None:
        hours, minutes, seconds = "0", hours, minutes
    return f"{int(hours):02d}:{int(minutes):02d}:{int(seconds):02d}"


def role_of(speaker: str) -> str | None:
    """Return ``interviewer`` or ``respondent`` for a known label, else None."""
    base = re.sub(r"[ \t]?\d{1,2}$", "", speaker).lower()
    return _ROLES.get(base)


def _label_pattern(text: str) -> re.Pattern[str]:
    names = _recurring_names(text)
    label = _KNOWN_LABEL + "".join("|" + re.escape(name) for name in names)
    return re.compile(
        r"^[ \t]*(?:(?P<lead>" + _STAMP + r")[ \t]*)?(?:\*\*)?"
        r"(?:\[(?P<bracketed>(?!\s*(?:" + _NOT_A_NAME + r")\s*\])[^\]\n]{1,40})\]"
        r"(?:\*\*)?(?:[ \t]*[:：])?"
        r"|(?P<label>" + label + r")(?![\w'-])(?:\*\*)?"
        r"(?:[ \t]*\((?P<inner>(?:\d{1,2}:)?\d{1,2}:\d{2}(?:[.,]\d{1,3})?)\))?"
        r"(?:\*\*)?(?:[ \t]*[:：]|\t))"
        r"(?:\*\*)?[ \t]*(?:(?P<after>" + _STAMP + r")[ \t]*)?",
        re.MULTILINE,
    )


def _recurring_names(text: str) -> list[str]:
    counts: dict[str, int] = {}
    for match in _NAME_CANDIDATE.finditer(text):
        name = match.group("name")
        if name.lower() in _NOT_SPEAKERS or role_of(name) is not None:
            continue
        counts[name] = counts.get(name, 0) + 1
    # Longest first, so that "Li Wei" wins over a name "Li".
    return sorted((name for name, count in counts.items() if count >= 2), key=len, reverse=True)


def _labelled_turns(text: str, labels: list[re.Match[str]]) -> list[Turn]:
    preamble_start, preamble_end = _trim(text, 0, labels[0].start())
    carried: str | None = None
    whole_stamp = _LINE_STAMP.fullmatch(text, preamble_start, preamble_end)
    if whole_stamp is not None:
        # A time stamp on its own line above the first label is that turn's.
        carried = whole_stamp.group("stamp")
        turns = []
    else:
        preamble_start, preamble_end, _, carried = _split_trailing_stamp(text, 0, labels[0].start())
        turns = _paragraphs(text, preamble_start, preamble_end)
    for index, match in enumerate(labels):
        end = labels[index + 1].start() if index + 1 < len(labels) else len(text)
        speaker = (match.group("label") or match.group("bracketed")).strip()
        stamp = match.group("lead") or match.group("inner") or match.group("after") or carried
        start, stop, trailing, carried = _split_trailing_stamp(text, match.end(), end)
        timestamp = normalize_timestamp(stamp) if stamp else trailing
        if stop > start:
            turns.append(Turn(start, stop, speaker, role_of(speaker), timestamp))
    return turns


def _stamped_turns(text: str, stamps: list[re.Match[str]]) -> list[Turn]:
    turns = _paragraphs(text, 0, stamps[0].start())
    for index, match in enumerate(stamps):
        end = stamps[index + 1].start() if index + 1 < len(stamps) else len(text)
        start, stop, _, _ = _split_trailing_stamp(text, match.end(), end)
        if stop > start:
            turns.append(Turn(start, stop, None, None, normalize_timestamp(match.group("stamp"))))
    return turns


def _split_trailing_stamp(
    text: str, start: int, end: int
) -> tuple[int, int, str | None, str | None]:
    """Trim a span and remove a time stamp at its end.

    Returns (start, end, stamp of this span, stamp of the next span). An
    f4-style ``#hh:mm:ss-d#`` mark closes the turn it ends; any other stamp
    on a line of its own belongs to the turn that follows.
    """
    start, end = _trim(text, start, end)
    found = _TRAILING_STAMP.search(text, start, end)
    if found is None or found.start("stamp") == start:
        return start, end, None, None
    stamp = found.group("stamp")
    _, stop = _trim(text, start, found.start())
    if stamp.startswith("#"):
        return start, stop, normalize_timestamp(stamp), None
    if found.group("newline") is not None:
        return start, stop, None, stamp
    return start, end, None, None


def _is_subtitle(text: str) -> bool:
    stripped = text.lstrip()
    if stripped.startswith("WEBVTT"):
        return True
    first_block = stripped.split("\n\n", 1)[0].split("\n")
    return (
        len(first_block) >= 2
        and first_block[0].strip().isdigit()
        and _CUE_TIMING.match(first_block[1]) is not None
    )


def _cue_turns(text: str) -> list[Turn]:
    """Return one turn per subtitle cue, timed by the cue's start.

    The speaker is a WebVTT voice (``<v Name>``) or a speaker label at the
    start of the cue. A cue without one continues the previous speaker,
    because transcription services name the speaker only when it changes.
    """
    labels = _label_pattern(text)
    turns = []
    speaker: str | None = None
    for timing in _CUE_TIMING.finditer(text):
        start = timing.end() + 1
        blank = _BLANK_LINE.search(text, start)
        end = blank.start() if blank else len(text)
        if start >= end:
            continue
        voice = _CUE_VOICE.match(text, start, end)
        label = labels.match(text, start, end) if voice is None else None
        if voice is not None:
            speaker, start = voice.group("name").strip(), voice.end()
        elif label is not None:
            speaker = (label.group("label") or label.group("bracketed")).strip()
            start = label.end()
        closing = _CUE_VOICE_END.search(text, start, end)
        if closing is not None:
            end = closing.start()
        start, end = _trim(text, start, end)
        if end > start:
            role = role_of(speaker) if speaker else None
            turns.append(Turn(start, end, speaker, role, normalize_timestamp(timing.group("start"))))
    return turns


def _paragraphs(text: str, start: int, end: int) -> list[Turn]:
    turns = []
    for match in _PARAGRAPH.finditer(text, start, end):
        first, last = _trim(text, match.start(), match.end())
        if last > first:
            turns.append(Turn(first, last, None, None, kind="paragraph"))
    return turns


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end
