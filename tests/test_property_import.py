"""Properties of importing generated transcripts into a real project database.

- Import raises nothing but ``QualkitError`` subclasses.
- A failed import leaves the database as it was (``qualkit.store.content_hash``).
- Every stored segment and coding lies within its source text, a sentence
  lies within its turn, and a coding's quote is ``text[start:end]``.
- Front matter written by a YAML emitter reads back as the same metadata.

The budget is fixed and derandomized for CI; QUALKIT_FUZZ_EXAMPLES raises it.
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from qualkit import store
from qualkit.errors import QualkitError
from qualkit.project import Project
from qualkit.transcripts import read_transcript

EXAMPLES = int(os.environ.get("QUALKIT_FUZZ_EXAMPLES", "30"))
PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

SPEAKERS = ["Interviewer", "Respondent", "I", "R", "Q", "A", "采访者", "受访者", "Dr. Wang", ""]
# Pieces that stress line handling, offsets and segmentation: line
# separators, a byte order mark, combining marks, characters outside the
# Basic Multilingual Plane, control characters and markup look-alikes.
PIECES = [
    "\r\n", "\r", "\u2028", "\u2029", "\x85", "\ufeff", "e\u0301", "😀", "𠀋", "\t", "\x0b",
    "\x1b[31m", "---", "...", "00:00:01,000 --> 00:00:02,000", "[00:01:02]", "WEBVTT",
    "Interviewer:", "：", "。", ". ", "? ", "\n\n", " " * 30, "=SUM(A1)",
]
TEXT_CHARACTERS = st.characters(codec="utf-8", exclude_categories=("Cs",))


@st.composite
def turn_texts(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.one_of(st.text(TEXT_CHARACTERS, max_size=40), st.sampled_from(PIECES)), max_size=8))
    return "".join(parts)


@st.composite
def transcripts(draw: st.DrawFn) -> str:
    lines = []
    for _ in range(draw(st.integers(0, 6))):
        speaker = draw(st.sampled_from(SPEAKERS))
        stamp = draw(st.sampled_from(["", "[00:00:05] ", "00:12 "]))
        separator = draw(st.sampled_from([": ", "：", ":"]))
        label = f"{stamp}{speaker}{separator}" if speaker else stamp
        lines.append(label + draw(turn_texts()))
    body = draw(st.sampled_from(["\n\n", "\n", "\r\n\r\n"])).join(lines)
    if not draw(st.booleans()):
        return body
    metadata = draw(front_matter())
    return "---\n" + yaml.safe_dump(metadata, allow_unicode=True) + "---\n\n" + body


@st.composite
def front_matter(draw: st.DrawFn) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if draw(st.booleans()):
        values["id"] = draw(st.from_regex(r"[A-Za-z][A-Za-z0-9_-]{0,11}", fullmatch=True))
    if draw(st.booleans()):
        values["province"] = draw(st.text(TEXT_CHARACTERS, max_size=12))
    if draw(st.booleans()):
        values["level"] = draw(st.sampled_from(["city", "county", "province", "village", ""]))
    if draw(st.booleans()):
        values["date"] = draw(st.one_of(st.dates(), st.text(max_size=10)))
    if draw(st.booleans()):
        values["language"] = draw(st.sampled_from(["en", "zh", "fr", ""]))
    if draw(st.booleans()):
        values[draw(st.text(TEXT_CHARACTERS, min_size=1, max_size=8))] = draw(
            st.one_of(st.text(TEXT_CHARACTERS, max_size=12), st.integers(), st.floats(allow_nan=False), st.none())
        )
    return values


@st.composite
def transcript_files(draw: st.DrawFn) -> tuple[str, bytes]:
    text = draw(transcripts())
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "gb18030"]))
    suffix = draw(st.sampled_from([".txt", ".md", ".srt", ".vtt"]))
    return suffix, text.encode(encoding)


def _check_offsets(db: Any) -> None:
    """Assert that every stored segment and coding lies within its source text."""
    texts = dict(db.execute("SELECT id, text FROM sources").fetchall())
    for source_id, text in texts.items():
        assert "\x00" not in text
        assert "\r" not in text
    turns: dict[int, tuple[int, int]] = {}
    for row_id, source_id, kind, parent, start, end in db.execute(
        "SELECT id, source_id, kind, parent_id, start_offset, end_offset FROM segments ORDER BY id"
    ):
        assert 0 <= start < end <= len(texts[source_id]), (source_id, kind, start, end)
        if parent is None:
            turns[row_id] = (start, end)
        else:
            parent_start, parent_end = turns[parent]
            assert parent_start <= start < end <= parent_end, (source_id, start, end, parent_start, parent_end)
    for source_id, start, end, quote in db.execute(
        "SELECT source_id, start_offset, end_offset, quote FROM codings"
    ):
        assert 0 <= start < end <= len(texts[source_id])
        assert texts[source_id][start:end] == quote


@pytest.fixture
def empty_project(tmp_path: Path) -> Any:
    opened = Project(tmp_path / "qualkit.db")
    yield opened
    opened.close()


@PROPERTY
@given(file=transcript_files())
def test_import_offsets_or_clean_error(
    empty_project: Any, tmp_path: Path, file: tuple[str, bytes]
) -> None:
    suffix, data = file
    path = tmp_path / f"generated{suffix}"
    path.write_bytes(data)
    before = store.content_hash(empty_project.db)
    try:
        empty_project.import_sources([path])
    except QualkitError as error:
        event(f"rejected: {str(error).split(': ', 1)[-1][:40]}")
        assert str(error).strip()
        assert store.content_hash(empty_project.db) == before
        return
    event("imported")
    _check_offsets(empty_project.db)


@PROPERTY
@given(file=transcript_files())
def test_failed_batch_writes_nothing(
    empty_project: Any, tmp_path: Path, file: tuple[str, bytes]
) -> None:
    good = tmp_path / "good.md"
    good.write_text("---\nid: GOOD\n---\n\nInterviewer: Hello.\n\nRespondent: Hi.\n", encoding="utf-8")
    suffix, data = file
    generated = tmp_path / f"generated{suffix}"
    generated.write_bytes(data)
    before = store.content_hash(empty_project.db)
    try:
        empty_project.import_sources([good, generated])
    except QualkitError:
        assert store.content_hash(empty_project.db) == before
        return
    _check_offsets(empty_project.db)


@pytest.fixture
def edited_sample(sample_copy: Path) -> Any:
    opened = Project.open(sample_copy)
    yield opened, sample_copy
    opened.close()


@st.composite
def edits(draw: st.DrawFn, text: str) -> str:
    """Insert, delete or replace a few stretches of ``text``."""
    for _ in range(draw(st.integers(1, 4))):
        start = draw(st.integers(0, len(text)))
        end = draw(st.integers(start, min(len(text), start + 200)))
        replacement = draw(st.one_of(st.just(""), turn_texts()))
        text = text[:start] + replacement + text[end:]
    return text


# Each example re-imports and re-anchors a sample transcript, so fewer are run.
@settings(PROPERTY, max_examples=max(EXAMPLES // 3, 10))
@given(data=st.data())
def test_reimport_keeps_codings_in_text(edited_sample: Any, data: st.DataObject) -> None:
    project, folder = edited_sample
    (path,) = project.db.execute(
        "SELECT s.path FROM sources s JOIN codings c ON c.source_id = s.id "
        "GROUP BY s.id ORDER BY count(*) DESC LIMIT 1"
    ).fetchone()
    path = Path(path) if Path(path).is_absolute() else folder / path
    original = path.read_text(encoding="utf-8")
    header_end = original.index("\n---", 3) + 4
    edited = original[:header_end] + data.draw(edits(original[header_end:]), label="body")
    path.write_text(edited, encoding="utf-8")
    before = store.content_hash(project.db)
    try:
        project.import_sources([path])
        event("imported")
    except QualkitError as error:
        event(f"rejected: {str(error).split(': ', 1)[-1][:40]}")
        assert store.content_hash(project.db) == before
    finally:
        path.write_text(original, encoding="utf-8")
    _check_offsets(project.db)


# Keys and values that survive the text normalization applied to a whole
# transcript file: line breaks (CR, NEL, U+2028, U+2029) become "\n" even
# inside quoted front matter values, so they are left out here.
_ROUND_TRIP_CHARACTERS = st.characters(
    codec="utf-8", exclude_categories=("Cs",), exclude_characters="\r\x85\u2028\u2029\ufeff\x00"
)


@PROPERTY
@given(
    metadata=st.dictionaries(
        st.text(_ROUND_TRIP_CHARACTERS, min_size=1, max_size=10),
        st.one_of(
            st.text(_ROUND_TRIP_CHARACTERS, max_size=20),
            st.integers(-(10**12), 10**12),
            st.booleans(),
            st.dates(min_value=datetime.date(1900, 1, 1)),
            st.lists(st.text(_ROUND_TRIP_CHARACTERS, max_size=5), max_size=3),
        ),
        max_size=5,
    ),
    body=st.text(_ROUND_TRIP_CHARACTERS, min_size=1, max_size=60).map(lambda text: "Interviewer: " + text),
)
def test_front_matter_round_trips(tmp_path: Path, metadata: dict[str, Any], body: str) -> None:
    rendered = "---\n" + yaml.safe_dump(metadata, allow_unicode=True) + "---\n\n" + body
    path = tmp_path / "round.md"
    path.write_bytes(rendered.encode("utf-8"))
    transcript = read_transcript(path)

    assert transcript.metadata == metadata
    assert transcript.text == body.replace("\r\n", "\n")
