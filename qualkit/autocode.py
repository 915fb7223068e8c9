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
    from spacy.tokens import Doc

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
    coder = Autocoder(db, codebook, options)
    return coder.code_stored(source_ids=source_ids, force=force, progress=progress)


class Autocoder:
    """Auto-codes sources one at a time with one codebook and one set of options.

    ``code_segmented`` codes a source that the import has just split into
    turns, reusing the import's spaCy docs so the text is tokenized once.
    ``code_stored`` then codes every other source whose fingerprint (text,
    codebook and options) changed since its last run.
    """

    def __init__(self, db: sqlite_utils.Database, codebook: Codebook, options: AutocodeOptions) -> None:
        self.db = db
        self.codebook = codebook
        self.options = options
        self.result = AutocodeResult()
        self.rule_sets: dict[str, RuleSet] = {}
        self.coded: set[str] = set()

    def code_stored(
        self,
        *,
        source_ids: Iterable[str] | None = None,
        force: bool = False,
        progress: Callable[[int], None] | None = None,
    ) -> AutocodeResult:
        """Code the stored sources that need it; return the counts of this coder's whole run."""
        requested = set(source_ids) if source_ids is not None else None
        # Texts are read one source at a time, so memory does not grow with
        # the corpus.
        rows = self.db.execute(
            "SELECT s.id, s.language, s.content_hash, a.fingerprint FROM sources s "
            "LEFT JOIN autocode_state a ON a.source_id = s.id ORDER BY s.id"
        ).fetchall()
        for source_id, language, digest, stored in rows:
            if requested is not None and source_id not in requested:
                continue
            current = self.fingerprint(digest)
            if source_id in self.coded and stored == current:
                # Coded from the import's docs earlier in this run. A source
                # whose import was rolled back keeps its old fingerprint, so
                # it is coded here.
                continue
            if not force and stored == current:
                self.result.skipped += 1
            else:
                text = self.db.execute("SELECT text FROM sources WHERE id = ?", [source_id]).fetchone()[0]
                self._code(source_id, language, text, digest, None)
            if progress is not None:
                progress(1)
        return self.result

    def code_segmented(
        self, source_id: str, language: str, text: str, digest: str, docs: list[Doc] | None, model: str | None
    ) -> None:
        """Code a source from the docs of its turns, in the order of their positions.

        ``model`` is the pipeline that made ``docs``. When it is not the one
        auto-coding uses, or when adding the codebook's Chinese words to the
        word segmenter could have changed the tokens, the docs are left aside
        and the turns are tokenized again.
        """
        new_rule_set = language not in self.rule_sets
        self._rules(language)
        usable = model == self.options.model and not (language == "zh" and new_rule_set)
        self._code(source_id, language, text, digest, docs if usable else None)

    def fingerprint(self, digest: str) -> str:
        """Return the hash of a source's text hash, the codebook and the options."""
        parts = [digest, self.codebook.content_hash, repr(self.options)]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()

    def _rules(self, language: str) -> RuleSet:
        if language not in self.rule_sets:
            self.rule_sets[language] = _rule_set(self.codebook, language, self.options)
        return self.rule_sets[language]

    def _code(
        self, source_id: str, language: str, text: str, digest: str, docs: list[Doc] | None
    ) -> None:
        rules = self._rules(language)
        spans = _suggestions(self.db, source_id, text, rules, self.options, docs)
        _store(self.db, source_id, text, spans, self.codebook.version, self.result)
        self.db.execute(
            "INSERT INTO autocode_state (source_id, fingerprint) VALUES (?, ?) "
            "ON CONFLICT (source_id) DO UPDATE SET fingerprint = excluded.fingerprint",
            [source_id, self.fingerprint(digest)],
        )
        self.coded.add(source_id)
        self.result.sources += 1


def needs_tokens(codebook: Codebook, language: str) -> bool:
    """Return whether auto-coding ``language`` needs the language's own tokens (``RuleSet.needs_tokens``)."""
    if language != "zh":
        return True
    return any(
        code.rules[language].patterns for code in codebook.codes.values() if language in code.rules
    )


def _rule_set(codebook: Codebook, language: str, options: AutocodeOptions) -> RuleSet:
    from qualkit.rules import RuleSet

    nlp = load_pipeline(language, options.model)
    if language == "zh":
        words = [
            keyword
            for code in codebook.codes.values()
            for keyword in (code.rules.get("zh").keywords if "zh" in code.rules else ())
        ]
        add_words_to_segmenter(words)
    return RuleSet(codebook, nlp, language)


def _suggestions(
    db: sqlite_utils.Database,
    source_id: str,
    text: str,
    rules: RuleSet,
    options: AutocodeOptions,
    docs: list[Doc] | None = None,
) -> dict[tuple[int, int, str], Match]:
    """Return the first hit for each (start, end, code) span to suggest.

    ``docs`` contains one doc per turn or paragraph, in position order, as the
    import made them; without it the selected turns are tokenized here.
    """
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
    keep = [options.include_interviewer or turn[3] != "interviewer" for turn in turns]
    selected = [turn for turn, kept in zip(turns, keep) if kept]
    turn_texts = [text[start:end] for _, start, end, _ in selected]
    if not rules.needs_tokens:
        matches: Iterable[list[Match]] = (rules.match_text(turn_text) for turn_text in turn_texts)
    elif docs is not None and len(docs) == len(turns):
        chosen = (doc for doc, kept in zip(docs, keep) if kept)
        matches = (rules.match(doc, turn_text) for doc, turn_text in zip(chosen, turn_texts))
    else:
        pairs = zip(rules.nlp.pipe(turn_texts), turn_texts)
        matches = (rules.match(doc, turn_text) for doc, turn_text in pairs)
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
    confirmed = []
    for key, match in sorted(spans.items()):
        if key in existing:
            result.kept += 1
            if existing[key][1] == "suggested":
                confirmed.append((text[key[0] : key[1]], now, existing[key][0]))
            continue
        if key in decided:
            continue
        start, end, code_id = key
        rows.append(
            (
                source_id,
                start,
                end,
                text[start:end],
                code_id,
                codebook_version,
                match.rule,
                text[match.start : match.end],
                now,
                now,
            )
        )
        result.per_code[code_id] = result.per_code.get(code_id, 0) + 1
    # A suggestion that re-anchoring flagged after a text change, and that its
    # rule produces again on the same span, is confirmed by this run.
    db.conn.executemany(
        "UPDATE codings SET needs_review = 0, quote = ?, updated_at = ? "
        "WHERE id = ? AND needs_review = 1",
        confirmed,
    )
    # A plain statement: sqlite-utils' insert_all() inspects the table on
    # every call, which adds up over thousands of sources.
    db.conn.executemany(
        "INSERT INTO codings (source_id, start_offset, end_offset, quote, code_id, coder, "
        "origin, status, codebook_version, rule, matched_text, created_at, updated_at) "
        f"VALUES (?, ?, ?, ?, ?, '{AUTO_CODER}', 'auto', 'suggested', ?, ?, ?, ?, ?)",
        rows,
    )
    result.added += len(rows)
