"""Import transcripts as sources: text, metadata, speaker turns and sentences.

An import reads and validates every file before it writes anything. Then,
file by file, it stores the interview's metadata, the text and its
segments. A source imported again with changed text keeps its codings on
their words (``qualkit.anchoring``); one imported again unchanged is left
as it was.
"""

from __future__ import annotations

import glob
import json
import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils

from qualkit import store
from qualkit.anchoring import FlaggedCoding, reanchor_codings
from qualkit.cases import (
    DEFAULT_LEVELS,
    case_ids_by_file,
    clean_metadata,
    read_manifest,
    store_case,
    store_manifest,
)
from qualkit.errors import QualkitError, TranscriptError
from qualkit.nlp import detect_language, load_pipeline
from qualkit.readers import SUFFIXES
from qualkit.store import text_hash, utc_now
from qualkit.transcripts import Transcript, Turn, find_turns, read_transcript

log = logging.getLogger(__name__)

# The origin recorded for metadata given as import options.
OPTIONS_ORIGIN = "import options"
# Metadata that import options may set.
OPTION_KEYS = ("id", "province", "level", "date", "language")


@dataclass
class ImportFailure:
    """A file that could not be imported, and why."""

    path: Path
    message: str
    error: QualkitError | None = field(default=None, repr=False)


@dataclass
class ImportResult:
    """The outcome of an import, source by source.

    ``flagged_codings`` lists the codings whose words changed in a re-import;
    ``moved_codings`` counts those that moved with unchanged words.
    ``failures`` is filled only when the import keeps going past bad files.
    """

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    flagged_codings: list[FlaggedCoding] = field(default_factory=list)
    moved_codings: int = 0
    failures: list[ImportFailure] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    encodings: dict[str, str] = field(default_factory=dict)
    metadata_changed: bool = False

    @property
    def changed(self) -> bool:
        """Whether the import wrote anything."""
        return bool(self.added or self.updated or self.metadata_changed)


class ImportFailed(QualkitError):
    """Several files could not be imported; the message lists each."""

    def __init__(self, failures: list[ImportFailure]) -> None:
        self.failures = failures
        lines = [f"{len(failures)} files could not be imported, so nothing was imported:"]
        lines += [f"  {failure.message}" for failure in failures]
        lines.append("Fix them, or pass --keep-going to import the others.")
        super().__init__("\n".join(lines))


@dataclass
class _Prepared:
    transcript: Transcript
    source_id: str
    case_id: str
    metadata: dict[str, Any]
    turns: list[Turn]
    digest: str
    detected_language: str | None = None

    def detect_language(self) -> str:
        """Return the language guessed from the text, computed once."""
        if self.detected_language is None:
            self.detected_language = detect_language(self.transcript.text)
        return self.detected_language


def find_transcripts(patterns: Iterable[str | Path]) -> list[Path]:
    """Expand files, folders and glob patterns into transcript files, in order, without repeats.

    A file named as it is is kept whatever its suffix, so that an
    unsupported one is reported. Folders (searched recursively) and glob
    patterns give only files with a supported suffix, leaving out hidden
    files and the ``~$`` lock files that Word leaves beside open documents.
    Raises TranscriptError for a path or pattern that matches nothing.
    """
    found: dict[Path, None] = {}
    for pattern in patterns:
        path = Path(pattern)
        if path.is_file():
            found[path] = None
            continue
        if path.is_dir():
            matches = sorted(item for item in path.rglob("*") if item.is_file())
        elif glob.has_magic(str(pattern)):
            matches = sorted(Path(item) for item in glob.glob(str(pattern), recursive=True))
            matches = [item for item in matches if item.is_file()]
        else:
            raise TranscriptError("file or folder not found.", path=path)
        transcripts = [item for item in matches if _is_transcript_name(item)]
        if not transcripts:
            raise TranscriptError(
                f"no transcript files found (looked for {', '.join(SUFFIXES)}).", path=path
            )
        found.update(dict.fromkeys(transcripts))
    return list(found)


def _is_transcript_name(path: Path) -> bool:
    name = path.name
    return path.suffix.lower() in SUFFIXES and not name.startswith((".", "~$"))


def run_import(
    db: sqlite_utils.Database,
    paths: Iterable[str | Path],
    *,
    manifest: str | Path | None = None,
    manifest_encoding: str | None = None,
    levels: tuple[str, ...] = DEFAULT_LEVELS,
    model: str | None = None,
    progress: Callable[[int], None] | None = None,
    encoding: str | None = None,
    options: dict[str, Any] | None = None,
    keep_going: bool = False,
    replace: bool = False,
) -> ImportResult:
    """Store a manifest's interviews, then import the transcripts. The caller opens the transaction."""
    conflicts = []
    if manifest is not None:
        rows = read_manifest(manifest, levels=levels, encoding=manifest_encoding)
        conflicts = store_manifest(db, rows, origin=Path(manifest).name)
    result = import_sources(
        db,
        paths,
        levels=levels,
        model=model,
        progress=progress,
        encoding=encoding,
        options=options,
        keep_going=keep_going,
        replace=replace,
    )
    result.conflicts[:0] = conflicts
    return result


def import_sources(
    db: sqlite_utils.Database,
    paths: Iterable[str | Path],
    *,
    levels: tuple[str, ...] = DEFAULT_LEVELS,
    model: str | None = None,
    progress: Callable[[int], None] | None = None,
    encoding: str | None = None,
    options: dict[str, Any] | None = None,
    keep_going: bool = False,
    on_segmented: SegmentedHook | None = None,
    parallel_languages: tuple[str, ...] = ("zh",),
    replace: bool = False,
) -> ImportResult:
    """Import transcript files. The caller wraps this in one transaction.

    ``encoding`` overrides detection for plain-text and RTF files.
    ``options`` contains metadata given on the command line (keys in
    ``OPTION_KEYS``); an ``id`` needs exactly one file. Every file is read
    and validated before anything is written. An invalid file raises, and
    nothing is stored, unless ``keep_going`` is set: then each file is
    stored in a savepoint of its own and the failures are listed in the
    result. ``on_segmented`` is called for each added or updated source
    after its segments and codings are stored, with the spaCy docs of its
    turns, so a caller can auto-code them without tokenizing again.
    Sources in ``parallel_languages`` may be split into sentences in a
    second process when there is enough of their text; they then reach
    ``on_segmented`` without docs. A file whose id is stored from a file with
    another name and whose text differs is invalid unless ``replace`` is set.
    """
    paths = [Path(path) for path in paths]
    option_metadata = _clean_options(options or {}, paths, levels)
    result = ImportResult()
    by_file = case_ids_by_file(db)
    prepared: list[_Prepared] = []
    seen = _SeenItems()
    for path in paths:
        try:
            item = _prepare(path, levels, encoding, option_metadata, by_file)
            _check_duplicates(db, item, seen, replace)
        except QualkitError as error:
            result.failures.append(ImportFailure(path, str(error), error))
            if progress is not None:
                progress(1)
            continue
        prepared.append(item)
        seen.add(item)
    if len(result.failures) == 1 and not keep_going:
        raise result.failures[0].error
    if result.failures and not keep_going:
        raise ImportFailed(result.failures)
    with _SentenceWorker.start(db, prepared, model, parallel_languages) as worker:
        for item in prepared:
            try:
                with _savepoint(db, keep_going):
                    _store_source(db, item, option_metadata, result, model, on_segmented, worker)
            except QualkitError as error:
                if not keep_going:
                    raise
                result.failures.append(ImportFailure(item.transcript.path, str(error), error))
            if progress is not None:
                progress(1)

    return result


# A second process splits sentences only when there is at least this much
# text in its languages to segment, because starting it and loading jieba's
# dictionary there (about a second) cost more than a small import saves.
# NOTE: an estimate from a few runs of bench/run.py, not a measured
# break-even point.
PARALLEL_MIN_CHARACTERS = 400_000
# Sources handed to the second process ahead of the one being stored, so
# memory stays bounded however many sources the import has.
PARALLEL_WINDOW = 16


class _SentenceWorker:
    """Splits some sources' turns into sentences in a second process.

    While the main process stores and auto-codes the English sources, a
    forked process runs the word segmenter over the Chinese ones and sends
    back only sentence offsets. The sentences equal those of
    ``store_segments`` because the worker runs the same pipeline and the same
    ``sentence_spans``. Sources it handles get no spaCy docs, so they are
    tokenized again if auto-coding needs their tokens, and callers leave out
    languages whose rules need tokens.

    NOTE: words that auto-coding adds to jieba during the import (the
    codebook's Chinese keywords) do not reach the forked worker. Sentence
    starts follow punctuation tokens, so this should matter only for a
    keyword that contains punctuation, which the tests do not cover.
    """

    def __init__(self, pool: Any, items: list[tuple[_Prepared, str]], model: str | None) -> None:
        self.pool = pool
        self.model = model
        self.waiting = list(reversed(items))
        self.pending: dict[str, Any] = {}

    @classmethod
    @contextmanager
    def start(
        cls,
        db: sqlite_utils.Database,
        prepared: list[_Prepared],
        model: str | None,
        languages: tuple[str, ...],
    ) -> Iterator[_SentenceWorker | None]:
        items = _items_to_segment(db, prepared, languages)
        characters = sum(len(item.transcript.text) for item, _ in items)
        if characters < PARALLEL_MIN_CHARACTERS or not _can_fork():
            yield None
            return
        import concurrent.futures
        import multiprocessing

        log.info("Splitting %d sources into sentences in a second process", len(items))
        import os

        pool = concurrent.futures.ProcessPoolExecutor(
            1,
            mp_context=multiprocessing.get_context("fork"),
            initializer=_exit_with_parent,
            initargs=(os.getpid(),),
        )
        worker = cls(pool, items, model)
        try:
            worker._top_up()
            yield worker
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _top_up(self) -> None:
        while self.waiting and len(self.pending) < PARALLEL_WINDOW:
            item, language = self.waiting.pop()
            texts = [item.transcript.text[turn.start : turn.end] for turn in item.turns]
            future = self.pool.submit(turn_sentence_spans, language, self.model, texts)
            self.pending[item.source_id] = (future, language, item.digest)

    def spans(self, item: _Prepared, language: str) -> list[list[tuple[int, int]]] | None:
        """Return the sentences of each turn of ``item``, or None when the worker does not have them."""
        entry = self.pending.pop(item.source_id, None)
        self._top_up()
        if entry is None:
            return None
        future, expected_language, digest = entry
        if (expected_language, digest) != (language, item.digest):
            future.cancel()
            return None
        return future.result()


def _exit_with_parent(parent: int) -> None:
    """In the worker: end when the importing process is gone.

    A worker blocks on its task queue, so a killed import (SIGKILL) would
    otherwise leave it running, holding the database's files open.
    """
    import os
    import threading
    import time

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _can_fork() -> bool:
    import os
    import sys

    # Only Linux: on macOS a forked child of a process that loaded system
    # frameworks can crash, and Windows cannot fork.
    if not sys.platform.startswith("linux"):
        return False
    return len(os.sched_getaffinity(0)) >= 2


def _items_to_segment(
    db: sqlite_utils.Database, prepared: list[_Prepared], languages: tuple[str, ...]
) -> list[tuple[_Prepared, str]]:
    """Return the new or changed sources whose language is in ``languages``, with that language.

    The language is guessed as ``_store_source`` decides it. A wrong guess
    only means that the main process splits that source itself.
    """
    if not languages:
        return []
    stored = dict(db.execute("SELECT id, content_hash FROM sources").fetchall())
    chosen = []
    for item in prepared:
        if stored.get(item.source_id) == item.digest:
            continue
        language = (
            item.metadata.get("language")
            or _case_language(db, item.case_id)
            or item.detect_language()
        )
        if language in languages:
            chosen.append((item, language))
    return chosen


def turn_sentence_spans(language: str, model: str | None, texts: list[str]) -> list[list[tuple[int, int]]]:
    """Return the trimmed sentence offsets of each text, as ``store_segments`` finds them."""
    nlp = load_pipeline(language, model)
    return [sentence_spans(doc, text) for doc, text in zip(nlp.pipe(texts), texts)]


# Called with source id, language, text, content hash, the docs of its turns
# in position order (None when another process split the sentences), and
# the pipeline name (None for the blank pipeline).
SegmentedHook = Callable[[str, str, str, str, list[Any] | None, str | None], None]


@contextmanager
def _savepoint(db: sqlite_utils.Database, enabled: bool) -> Iterator[None]:
    if not enabled:
        yield
        return
    with store.transaction(db):
        yield


def _clean_options(
    options: dict[str, Any], paths: list[Path], levels: tuple[str, ...]
) -> dict[str, Any]:
    unknown = sorted(set(options) - set(OPTION_KEYS))
    if unknown:
        raise TranscriptError(
            f"unknown import option(s): {', '.join(unknown)}.",
            fix=f"Use: {', '.join(OPTION_KEYS)}.",
        )
    supplied = {key: value for key, value in options.items() if value not in (None, "")}
    if not supplied:
        return {}
    if "id" in supplied and len(paths) != 1:
        raise TranscriptError(
            f"an interview id given as an option needs exactly one file, not {len(paths)}.",
            fix="Import the file on its own, or put the id in its front matter or the manifest.",
        )
    return clean_metadata(supplied, path=None, levels=levels)


def _prepare(
    path: Path,
    levels: tuple[str, ...],
    encoding: str | None,
    option_metadata: dict[str, Any],
    by_file: dict[str, str],
) -> _Prepared:
    transcript = read_transcript(path, encoding=encoding)
    if not transcript.text.strip():
        raise TranscriptError("the transcript has no text.", path=path)
    metadata = clean_metadata(
        transcript.metadata, path=path, lines=transcript.metadata_lines, levels=levels
    )
    source_id = _source_id(path, metadata, option_metadata, by_file, transcript.metadata_lines)
    metadata["id"] = source_id
    turns = find_turns(transcript.text)
    _assign_roles(turns, metadata.get("attributes", {}))

    return _Prepared(
        transcript=transcript,
        source_id=source_id,
        case_id=metadata.get("case") or source_id,
        metadata=metadata,
        turns=turns,
        digest=text_hash(transcript.text),
    )


def _source_id(
    path: Path,
    metadata: dict[str, Any],
    option_metadata: dict[str, Any],
    by_file: dict[str, str],
    lines: dict[str, int],
) -> str:
    """Return the interview id: front matter, then options, then manifest, then file name."""
    candidates = {
        "the front matter": metadata.get("id"),
        "the --id option": option_metadata.get("id"),
        "the manifest's file column": by_file.get(path.name),
    }
    found = {origin: value for origin, value in candidates.items() if value}
    if len(set(found.values())) > 1:
        listed = ", ".join(f"{value!r} in {origin}" for origin, value in found.items())
        raise TranscriptError(
            f"the interview id is given differently: {listed}.",
            path=path,
            line=lines.get("id"),
            fix="Make them agree, or remove all but one.",
        )
    return next(iter(found.values()), path.stem)


def _assign_roles(turns: list[Turn], attributes: dict[str, str]) -> None:
    """Give speakers named in the ``interviewer``/``respondent`` metadata their role."""
    names = {
        str(attributes[role]).strip().lower(): role
        for role in ("interviewer", "respondent")
        if attributes.get(role)
    }
    if not names:
        return
    for turn in turns:
        if turn.role is None and turn.speaker and turn.speaker.lower() in names:
            turn.role = names[turn.speaker.lower()]


@dataclass
class _SeenItems:
    """The files prepared so far, by interview id and by text hash, with their order."""

    by_id: dict[str, tuple[int, _Prepared]] = field(default_factory=dict)
    by_digest: dict[str, tuple[int, _Prepared]] = field(default_factory=dict)
    count: int = 0

    def add(self, item: _Prepared) -> None:
        self.by_id.setdefault(item.source_id, (self.count, item))
        self.by_digest.setdefault(item.digest, (self.count, item))
        self.count += 1


def _check_duplicates(
    db: sqlite_utils.Database, item: _Prepared, seen: _SeenItems, replace: bool = False
) -> None:
    path = item.transcript.path
    same_id = seen.by_id.get(item.source_id)
    same_text = seen.by_digest.get(item.digest)
    # Report the earlier of the two files, as a scan in file order would.
    if same_id is not None and (same_text is None or same_id[0] <= same_text[0]):
        other = same_id[1]
        raise TranscriptError(
            f"interview id {item.source_id!r} is also used by {other.transcript.path}.",
            path=path,
            fix="Give each transcript its own id in the front matter or the manifest.",
        )
    if same_text is not None:
        other = same_text[1]
        raise TranscriptError(
            f"the text is the same as that of {other.transcript.path} "
            f"(interview {other.source_id!r}).",
            path=path,
            fix="Remove the duplicate file.",
        )
    row = db.execute(
        "SELECT id, path FROM sources WHERE content_hash = ? AND id != ?",
        [item.digest, item.source_id],
    ).fetchone()
    if row is not None:
        raise TranscriptError(
            f"the text is the same as that of source {row[0]!r}, already imported from {row[1]}.",
            path=path,
            fix=f"Give the file the id {row[0]!r} to update that source, or remove the duplicate.",
        )
    if not replace:
        _check_same_file(db, item)


def _check_same_file(db: sqlite_utils.Database, item: _Prepared) -> None:
    """Raise TranscriptError when the id is stored from a file with another name and other text.

    Replacing the text would move the source's codings onto unrelated words,
    so a different file needs ``replace``. Files are compared by name, not by
    folder, so a transcript moved to another folder still updates its source.
    """
    row = db.execute(
        "SELECT path, content_hash FROM sources WHERE id = ?", [item.source_id]
    ).fetchone()
    if row is None or not row[0] or row[1] == item.digest:
        return
    stored_path = Path(row[0])
    if stored_path.name == item.transcript.path.name:
        return
    raise TranscriptError(
        f"interview id {item.source_id!r} is already stored from {stored_path}, "
        "which has a different text.",
        path=item.transcript.path,
        fix="Give this file its own id, or pass --replace to replace the stored "
        "transcript with this file (its codings are moved onto the new text and "
        "flagged for review where their words changed).",
    )


def _store_source(
    db: sqlite_utils.Database,
    item: _Prepared,
    option_metadata: dict[str, Any],
    result: ImportResult,
    model: str | None,
    on_segmented: SegmentedHook | None = None,
    worker: _SentenceWorker | None = None,
) -> None:
    path = item.transcript.path
    text = item.transcript.text
    before = _case_row(db, item.case_id)
    result.conflicts.extend(store_case(db, item.case_id, item.metadata, origin=path.name))
    if option_metadata:
        case_options = {key: value for key, value in option_metadata.items() if key != "id"}
        result.conflicts.extend(store_case(db, item.case_id, case_options, origin=OPTIONS_ORIGIN))
    if _case_row(db, item.case_id) != before and before is not None:
        result.metadata_changed = True
    language = _case_language(db, item.case_id) or item.detect_language()
    # A detected language belongs to the case too, so matrices and filters see it.
    db.execute(
        "UPDATE cases SET language = ? WHERE id = ? AND language IS NULL", [language, item.case_id]
    )
    attributes = json.dumps(item.metadata.get("attributes", {}), ensure_ascii=False, sort_keys=True)
    for warning in item.transcript.warnings:
        result.warnings.append(f"{path.name}: {warning}")
    if item.transcript.encoding:
        result.encodings[item.source_id] = item.transcript.encoding
        log.info("%s: decoded as %s", path, item.transcript.encoding)

    # The old text is read only when it changed, since most sources in a
    # re-import are unchanged.
    existing = db.execute(
        "SELECT content_hash, language, metadata, path FROM sources WHERE id = ?",
        [item.source_id],
    ).fetchone()
    if existing is not None and (existing[0], existing[1]) == (item.digest, language):
        if existing[2] != attributes:
            db["sources"].update(item.source_id, {"metadata": attributes, "updated_at": utc_now()})
            result.metadata_changed = True
        result.unchanged.append(item.source_id)
        return
    now = utc_now()
    row = {
        "id": item.source_id,
        "case_id": item.case_id,
        "path": str(path),
        "format": item.transcript.format,
        "language": language,
        "text": text,
        "content_hash": item.digest,
        "metadata": attributes,
        "updated_at": now,
    }
    spans = worker.spans(item, language) if worker is not None else None
    if existing is None:
        db["sources"].insert({**row, "imported_at": now})
        docs = store_segments(db, item.source_id, text, item.turns, language, model, spans)
        result.added.append(item.source_id)
        if on_segmented is not None:
            on_segmented(item.source_id, language, text, item.digest, docs, model)
        return
    if existing[3] and Path(existing[3]).name != path.name:
        message = f"{item.source_id} was imported from {Path(existing[3]).name} and is now updated from {path.name}."
        result.warnings.append(message)
        log.warning("%s", message)
    old_text = db.execute("SELECT text FROM sources WHERE id = ?", [item.source_id]).fetchone()[0]
    db["sources"].update(item.source_id, row)
    docs = store_segments(db, item.source_id, text, item.turns, language, model, spans)
    if existing[0] != item.digest:
        anchoring = reanchor_codings(
            db, item.source_id, old_text, text, origin=f"re-import of {path.name}"
        )
        result.moved_codings += anchoring.moved
        result.flagged_codings.extend(anchoring.flagged)
        log.info(
            "%s changed: %d codings moved with their words, %d flagged for review",
            item.source_id,
            anchoring.moved,
            len(anchoring.flagged),
        )
    result.updated.append(item.source_id)
    if on_segmented is not None:
        on_segmented(item.source_id, language, text, item.digest, docs, model)


def _case_row(db: sqlite_utils.Database, case_id: str) -> tuple[Any, ...] | None:
    return db.execute("SELECT * FROM cases WHERE id = ?", [case_id]).fetchone()


def _case_language(db: sqlite_utils.Database, case_id: str) -> str | None:
    row = db.execute("SELECT language FROM cases WHERE id = ?", [case_id]).fetchone()
    return row[0] if row else None


def store_segments(
    db: sqlite_utils.Database,
    source_id: str,
    text: str,
    turns: list[Turn],
    language: str,
    model: str | None = None,
    spans: list[list[tuple[int, int]]] | None = None,
) -> list[Any] | None:
    """Replace the source's segments: its turns and paragraphs, and their sentences.

    ``spans`` contains each turn's sentence offsets when another process
    found them (``turn_sentence_spans``). Returns the spaCy doc of each turn,
    in the order of ``turns``, or None when ``spans`` was given.
    """
    db.execute("DELETE FROM segments WHERE source_id = ?", [source_id])
    turn_texts = [text[turn.start : turn.end] for turn in turns]
    docs = None
    if spans is None:
        nlp = load_pipeline(language, model)
        docs = list(nlp.pipe(turn_texts))
        spans = [sentence_spans(doc, turn_text) for doc, turn_text in zip(docs, turn_texts)]
    sentence_position = 0
    # Plain statements: sqlite-utils' insert() inspects the table on every
    # call, which costs more than the tokenizer on long transcripts.
    for position, (turn, turn_spans) in enumerate(zip(turns, spans)):
        turn_id = db.execute(
            "INSERT INTO segments (source_id, kind, position, start_offset, end_offset, "
            "speaker, role, timestamp) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [source_id, turn.kind, position, turn.start, turn.end, turn.speaker, turn.role, turn.timestamp],
        ).lastrowid
        rows = []
        for start, end in turn_spans:
            rows.append(
                (
                    source_id,
                    sentence_position,
                    turn_id,
                    turn.start + start,
                    turn.start + end,
                    turn.speaker,
                    turn.role,
                )
            )
            sentence_position += 1
        db.conn.executemany(
            "INSERT INTO segments (source_id, kind, position, parent_id, start_offset, "
            "end_offset, speaker, role) VALUES (?, 'sentence', ?, ?, ?, ?, ?, ?)",
            rows,
        )
    return docs


def sentence_spans(doc: Any, text: str | None = None) -> list[tuple[int, int]]:
    """Return (start, end) character offsets of the doc's sentences, trimmed.

    ``text`` is the string the doc was made from (``doc.text``); passing it
    saves rebuilding the text from the tokens.
    """
    from qualkit.rules import TokenOffsets

    if text is None:
        text = doc.text
    spans = []
    for start, end in TokenOffsets(doc).sentences():
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if end > start:
            spans.append((start, end))
    return spans
