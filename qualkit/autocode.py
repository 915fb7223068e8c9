"""Apply the codebook's rules to sources and store the hits as suggestions.

A suggestion is a coding with origin ``auto`` and status ``suggested`` by the
coder ``autocode``. Re-running replaces suggestions that no longer match but
never touches a coding a coder has accepted, rejected or made by hand.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import sqlite_utils

from qualkit.codebook import Codebook
from qualkit.errors import QualkitError
from qualkit.nlp import add_words_to_segmenter, load_pipeline
from qualkit.store import utc_now

if TYPE_CHECKING:
    from qualkit.rules import Match, RuleSet

log = logging.getLogger(__name__)

AUTO_CODER = "autocode"
UNITS = ("sentence", "turn", "match")


@dataclass(frozen=True)
class AutocodeOptions:
    """Options that turn rule hits into codings.

    ``unit``: the span coded around a hit: its sentence (default), its whole
    turn, or only the matched words. ``include_interviewer``: also code the
    interviewer's turns (off by default, since questions echo the codebook's
    words without being evidence).
    """

    unit: str = "sentence"
    include_interviewer: bool = False
    model: str | None = None

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise QualkitError(
                f"Unknown auto-coding unit {self.unit!r}. Use one of: {', '.join(UNITS)}."
            )


@dataclass
class AutocodeResult:
    """Counts of what an auto-coding run changed."""

    sources: int = 0
    skipped: int = 0
    added: int = 0
    removed: int = 0
    kept: int = 0
    per_code: dict[str, int] = field(default_factory=dict)


def autocode(
    db: sqlite_utils.Database,
    codebook: Codebook,
    options: AutocodeOptions = AutocodeOptions(),
    *,
    source_ids: Iterable[str] | None = None,
    force: bool = False,
    progress: Callable[[int], None] | None = None,
) -> AutocodeResult:
    """Suggest codings in the sources; the caller wraps this in a transaction.

    Sources whose text, codebook and options are unchanged since their last
    run are skipped unless ``force`` is set.
    """
    result = AutocodeResult()
    rule_sets: dict[str, RuleSet] = {}
    query = "SELECT id, language, text, content_hash FROM sources"
    rows = db.execute(query + " ORDER BY id").fetchall()
    wanted = set(source_ids) if source_ids is not None else None
    for source_id, language, text, digest in rows:
        if wanted is not None and source_id not in wanted:
            continue
        fingerprint = _fingerprint(digest, codebook, options)
        if not force and _fingerprint_stored(db, source_id) == fingerprint:
            result.skipped += 1
        else:
            rules = rule_sets.get(language) or _rule_set(rule_sets, codebook, language, options)
            spans = _suggestions(db, source_id, text, rules, options)
            _store(db, source_id, text, spans, codebook.version, result)
            db["autocode_state"].upsert(
                {"source_id": source_id, "fingerprint": fingerprint}, pk="source_id"
            )
            result.sources += 1
        if progress is not None:
            progress(1)

    return result


def _fingerprint(digest: str, codebook: Codebook, options: AutocodeOptions) -> str:
    parts = [digest, codebook.content_hash, repr(options)]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def _fingerprint_stored(db: sqlite_utils.Database, source_id: str) -> str | None:
    row = db.execute(
        "SELECT fingerprint FROM autocode_state WHERE source_id = ?", [source_id]
    ).fetchone()
    return row[0] if row else None


def _rule_set(
    cache: dict[str, RuleSet], codebook: Codebook, language: str, options: AutocodeOptions
) -> RuleSet:
    from qualkit.rules import RuleSet

    nlp = load_pipeline(language, options.model)
    if language == "zh":
        words = [
            keyword
            for code in codebook.codes.values()
            for keyword in (code.rules.get("zh").keywords if "zh" in code.rules else ())
        ]
        add_words_to_segmenter(words)
    cache[language] = RuleSet(codebook, nlp, language)
    return cache[language]


def _suggestions(
    db: sqlite_utils.Database,
    source_id: str,
    text: str,
    rules: RuleSet,
    options: AutocodeOptions,
) -> dict[tuple[int, int, str], Match]:
    """Return the first hit for each (start, end, code) span to suggest."""
    turns = db.execute(
        "SELECT id, start_offset, end_offset, role FROM segments "
        "WHERE source_id = ? AND kind IN ('turn', 'paragraph') ORDER BY position",
        [source_id],
    ).fetchall()
    sentences = db.execute(
        "SELECT parent_id, start_offset, end_offset FROM segments "
        "WHERE source_id = ? AND kind = 'sentence' ORDER BY position",
        [source_id],
    ).fetchall()
    by_turn: dict[int, list[tuple[int, int]]] = {}
    for parent_id, start, end in sentences:
        by_turn.setdefault(parent_id, []).append((start, end))
    selected = [
        turn for turn in turns if options.include_interviewer or turn[3] != "interviewer"
    ]
    turn_texts = (text[start:end] for _, start, end, _ in selected)
    if rules.needs_tokens:
        matches = (rules.match(doc) for doc in rules.nlp.pipe(turn_texts))
    else:
        matches = (rules.match_text(turn_text) for turn_text in turn_texts)
    spans: dict[tuple[int, int, str], Match] = {}
    for (turn_id, turn_start, turn_end, _), turn_matches in zip(selected, matches):
        for match in turn_matches:
            start, end = turn_start + match.start, turn_start + match.end
            unit = _unit_span(options.unit, start, end, turn_start, turn_end, by_turn.get(turn_id, []))
            if _excluded(text[unit[0] : unit[1]], rules.excludes.get(match.code_id, ())):
                continue
            key = (unit[0], unit[1], match.code_id)
            located = dataclasses.replace(match, start=start, end=end)
            if key not in spans or located.start < spans[key].start:
                spans[key] = located
    return spans


def _unit_span(
    unit: str,
    start: int,
    end: int,
    turn_start: int,
    turn_end: int,
    sentences: list[tuple[int, int]],
) -> tuple[int, int]:
    if unit == "match":
        return start, end
    if unit == "turn" or not sentences:
        return turn_start, turn_end
    covering = [s for s in sentences if s[0] < end and start < s[1]]
    if not covering:
        return turn_start, turn_end
    return covering[0][0], covering[-1][1]


def _excluded(unit_text: str, phrases: tuple[str, ...]) -> bool:
    lowered = unit_text.lower()
    return any(phrase in lowered for phrase in phrases)


def _store(
    db: sqlite_utils.Database,
    source_id: str,
    text: str,
    spans: dict[tuple[int, int, str], Match],
    codebook_version: str,
    result: AutocodeResult,
) -> None:
    existing = {
        (row[1], row[2], row[3]): (row[0], row[4])
        for row in db.execute(
            "SELECT id, start_offset, end_offset, code_id, status FROM codings "
            "WHERE source_id = ? AND coder = ?",
            [source_id, AUTO_CODER],
        )
    }
    decided = {
        (row[0], row[1], row[2])
        for row in db.execute(
            "SELECT start_offset, end_offset, code_id FROM codings "
            "WHERE source_id = ? AND coder != ? AND status != 'suggested'",
            [source_id, AUTO_CODER],
        )
    }
    for key, (coding_id, status) in existing.items():
        if key not in spans and status == "suggested":
            db.execute("DELETE FROM codings WHERE id = ?", [coding_id])
            result.removed += 1
    now = utc_now()
    rows = []
    for key, match in sorted(spans.items()):
        if key in existing:
            result.kept += 1
            continue
        if key in decided:
            continue
        start, end, code_id = key
        rows.append(
            {
                "source_id": source_id,
                "start_offset": start,
                "end_offset": end,
                "quote": text[start:end],
                "code_id": code_id,
                "coder": AUTO_CODER,
                "origin": "auto",
                "status": "suggested",
                "codebook_version": codebook_version,
                "rule": match.rule,
                "matched_text": text[match.start : match.end],
                "created_at": now,
                "updated_at": now,
            }
        )
        result.per_code[code_id] = result.per_code.get(code_id, 0) + 1
    db["codings"].insert_all(rows)
    result.added += len(rows)
