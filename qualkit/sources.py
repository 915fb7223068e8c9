"""Import transcripts as sources: text, metadata, speaker turns and sentences."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils

from qualkit.anchoring import reanchor_codings
from qualkit.cases import DEFAULT_LEVELS, clean_metadata, store_case
from qualkit.errors import TranscriptError
from qualkit.nlp import detect_language, load_pipeline
from qualkit.store import text_hash, utc_now
from qualkit.transcripts import Transcript, Turn, find_turns, read_transcript

log = logging.getLogger(__name__)


@dataclass
class ImportResult:
    """What an import did, source by source."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    flagged_codings: list[int] = field(default_factory=list)


@dataclass
class _Prepared:
    transcript: Transcript
    source_id: str
    metadata: dict[str, Any]
    turns: list[Turn]


def import_sources(
    db: sqlite_utils.Database,
    paths: Iterable[str | Path],
    *,
    levels: tuple[str, ...] = DEFAULT_LEVELS,
    model: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Import transcript files. The caller wraps this in one transaction.

    Every file is read and validated before anything is written, so an
    invalid file stops the import with nothing stored.
    """
    prepared = [_prepare(Path(path), levels) for path in paths]
    _check_duplicate_ids(prepared)
    result = ImportResult()
    for item in prepared:
        _store_source(db, item, result, model)
        if progress is not None:
            progress(1)

    return result


def _prepare(path: Path, levels: tuple[str, ...]) -> _Prepared:
    transcript = read_transcript(path)
    if not transcript.text.strip():
        raise TranscriptError("the transcript has no text.", path=path)
    metadata = clean_metadata(
        transcript.metadata, path=path, lines=transcript.metadata_lines, levels=levels
    )
    source_id = metadata.get("id") or path.stem
    language = metadata.get("language") or detect_language(transcript.text)
    if language not in ("en", "zh"):
        raise TranscriptError(
            f"language {language!r} is not supported.",
            path=path,
            line=transcript.metadata_lines.get("language"),
            fix="Use en or zh.",
        )
    metadata["id"] = source_id
    metadata["language"] = language

    return _Prepared(transcript, source_id, metadata, find_turns(transcript.text))


def _check_duplicate_ids(prepared: list[_Prepared]) -> None:
    seen: dict[str, Path] = {}
    for item in prepared:
        if item.source_id in seen:
            raise TranscriptError(
                f"interview id {item.source_id!r} is also used by {seen[item.source_id]}.",
                path=item.transcript.path,
                fix="Give each transcript its own id in the front matter.",
            )
        seen[item.source_id] = item.transcript.path


def _store_source(
    db: sqlite_utils.Database, item: _Prepared, result: ImportResult, model: str | None
) -> None:
    text = item.transcript.text
    digest = text_hash(text)
    case_id = item.metadata.get("case") or item.source_id
    result.conflicts.extend(
        store_case(db, case_id, item.metadata, origin=item.transcript.path.name)
    )
    existing = db.execute(
        "SELECT text, content_hash FROM sources WHERE id = ?", [item.source_id]
    ).fetchone()
    if existing is not None and existing[1] == digest:
        result.unchanged.append(item.source_id)
        return
    now = utc_now()
    row = {
        "id": item.source_id,
        "case_id": case_id,
        "path": str(item.transcript.path),
        "format": item.transcript.format,
        "language": item.metadata["language"],
        "text": text,
        "content_hash": digest,
        "metadata": json.dumps(item.metadata.get("attributes", {}), ensure_ascii=False, sort_keys=True),
        "updated_at": now,
    }
    if existing is None:
        db["sources"].insert({**row, "imported_at": now})
        result.added.append(item.source_id)
    else:
        db["sources"].update(item.source_id, row)
        result.flagged_codings.extend(
            reanchor_codings(db, item.source_id, existing[0], text)
        )
        result.updated.append(item.source_id)
        log.info("%s changed; its codings were re-anchored", item.source_id)
    store_segments(db, item.source_id, text, item.turns, item.metadata["language"], model)


def store_segments(
    db: sqlite_utils.Database,
    source_id: str,
    text: str,
    turns: list[Turn],
    language: str,
    model: str | None = None,
) -> None:
    """Replace the source's segments: its turns (or paragraphs) and their sentences."""
    db.execute("DELETE FROM segments WHERE source_id = ?", [source_id])
    kind = "turn" if any(turn.speaker for turn in turns) else "paragraph"
    nlp = load_pipeline(language, model)
    sentence_position = 0
    for position, (turn, doc) in enumerate(
        zip(turns, nlp.pipe(text[t.start : t.end] for t in turns))
    ):
        turn_id = db["segments"].insert(
            {
                "source_id": source_id,
                "kind": kind,
                "position": position,
                "start_offset": turn.start,
                "end_offset": turn.end,
                "speaker": turn.speaker,
                "role": turn.role,
                "timestamp": turn.timestamp,
            }
        ).last_pk
        rows = []
        for start, end in sentence_spans(doc):
            rows.append(
                {
                    "source_id": source_id,
                    "kind": "sentence",
                    "position": sentence_position,
                    "parent_id": turn_id,
                    "start_offset": turn.start + start,
                    "end_offset": turn.start + end,
                    "speaker": turn.speaker,
                    "role": turn.role,
                }
            )
            sentence_position += 1
        db["segments"].insert_all(rows)


def sentence_spans(doc: Any) -> list[tuple[int, int]]:
    """Return (start, end) character offsets of the doc's sentences, trimmed."""
    spans = []
    for sentence in doc.sents:
        start, end = sentence.start_char, sentence.end_char
        while start < end and doc.text[start].isspace():
            start += 1
        while end > start and doc.text[end - 1].isspace():
            end -= 1
        if end > start:
            spans.append((start, end))
    return spans
