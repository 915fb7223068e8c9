"""Merging coders' copies of a project (see qualkit.clone) back into one database.

A merge reads each input file read-only and writes everything into the
target in one transaction, so either every file is merged or nothing is.

The rules, per coding of an input file:

- Auto-coding suggestions (coder ``autocode``) are not merged, because they
  are machine output that ``qualkit autocode`` rebuilds in the target.
- The coder's name is mapped by ``--map-coder`` first, then compared with
  the names already in the target without regard to case, surrounding
  whitespace or Unicode normalization (``qualkit.clone.coder_key``). The target's
  spelling is kept, and a name new to the target keeps the spelling of the
  first input file it appears in (the most frequent one if a file has
  several).
- A coding whose source is missing from the target, whose source text
  differs from the target's, or whose code is not an active code of the
  target's codebook is not merged and is listed as a conflict. A code that
  a newer codebook version dropped or replaced is inactive. Options import
  missing sources, or move codings of changed sources onto the target's
  text.
- A coding identical to one in the target (same source, span, code and
  coder, with the same status, value and key-quote mark) adds nothing.
- A coding with the same source, span, code and coder as one in the target
  but another status, value or key-quote mark is a conflict: the target's
  coding is kept and the input's is listed.
- Any other coding is added. If it overlaps a coding of the same coder and
  code that the target contained before this file, both are kept, the added one
  is flagged with ``needs_review = 1``, and the pair is listed.

A merge never changes or deletes a row already in the target, so a coding
removed in a copy stays in the target. Every coding of every input file is
therefore in the target afterwards or listed as a conflict, except
auto-coding suggestions, which are only counted. Memos, quote-target links
and review positions follow the codings they belong to. Every added coding, memo and link is recorded in the audit log, in one
batch per input file, so ``qualkit log`` shows where it came from and
``qualkit undo`` can take a file's merge back.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import pandas as pd
import sqlite_utils

from qualkit import store
from qualkit.anchoring import OffsetMap
from qualkit.audit import SYSTEM_CODER, ChangeRecorder, check_coder_name, snapshot
from qualkit.clone import AUTO_CODER, coder_key, database_path, same_file
from qualkit.errors import InputError, QualkitError

log = logging.getLogger(__name__)

MERGE_COMMAND = "merge"
# Fields that make two codings of one span, code and coder different decisions.
DECISION_FIELDS = ("status", "value", "key_quote")
# Tables that every merge reads. The quote_links and review_state tables are optional.
REQUIRED_INPUT_TABLES = frozenset({"codings", "sources", "codes", "memos"})
# Coder names that are not people and are never mapped.
MACHINE_CODERS = (AUTO_CODER, SYSTEM_CODER)

# Conflict kinds, in the order the report lists them.
MISSING_SOURCE = "missing_source"
CHANGED_SOURCE = "changed_source"
UNKNOWN_CODE = "unknown_code"
INVALID_SPAN = "invalid_span"
DIFFERENT_DECISION = "different_decision"
OVERLAPS_OWN_CODING = "overlaps_own_coding"
MEMO_EDITED = "memo_edited"
MEMO_SUBJECT_NOT_MERGED = "memo_subject_not_merged"
UNKNOWN_TARGET = "unknown_target"

NOT_MERGED = "not merged"
KEPT_TARGET = "kept the target's coding"
ADDED_FLAGGED = "added, flagged for review"


class _DryRun(Exception):
    """Exception raised at the end of a dry run to roll the transaction back."""


@dataclass
class MergeOptions:
    """Options of a merge: coder name mapping, changed and missing sources, dry run, auditing coder."""

    coder_map: dict[str, str] = field(default_factory=dict)
    allow_changed_sources: bool = False
    add_missing_sources: bool = False
    dry_run: bool = False
    merged_by: str = SYSTEM_CODER


@dataclass
class Conflict:
    """One row of an input file that was not merged as it stood."""

    file: str
    kind: str
    action: str
    coder: str | None = None
    source_id: str | None = None
    code_id: str | None = None
    start: int | None = None
    end: int | None = None
    detail: str = ""


@dataclass
class FileSummary:
    """The counts of one input file's merge."""

    file: str
    sources_matched: int = 0
    sources_changed: int = 0
    sources_missing: int = 0
    sources_added: int = 0
    codings_in_file: int = 0
    codings_added: int = 0
    codings_flagged: int = 0
    codings_reanchored: int = 0
    codings_unchanged: int = 0
    codings_conflicting: int = 0
    codings_not_merged: int = 0
    suggestions_skipped: int = 0
    memos_added: int = 0
    memos_unchanged: int = 0
    memos_not_merged: int = 0
    links_added: int = 0
    review_positions_added: int = 0
    conflicts: int = 0


@dataclass
class CoderSummary:
    """The counts of one coder's codings in one input file."""

    file: str
    coder_in_file: str
    coder: str
    note: str = ""
    in_target_before: int = 0
    codings_in_file: int = 0
    added: int = 0
    unchanged: int = 0
    conflicting: int = 0
    not_merged: int = 0


@dataclass
class MergeReport:
    """The outcome of a merge (or of a dry run) per file, per coder and per conflict."""

    target: str
    dry_run: bool
    files: list[FileSummary] = field(default_factory=list)
    coders: list[CoderSummary] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)

    def files_frame(self) -> pd.DataFrame:
        """Return one row per input file."""
        return _frame(self.files, FileSummary)

    def coders_frame(self) -> pd.DataFrame:
        """Return one row per coder name in each input file."""
        return _frame(self.coders, CoderSummary)

    def conflicts_frame(self) -> pd.DataFrame:
        """Return one row per conflict."""
        return _frame(self.conflicts, Conflict)

    def to_dict(self) -> dict[str, Any]:
        """Return the whole report as JSON-ready data."""
        return {
            "target": self.target,
            "dry_run": self.dry_run,
            "files": [asdict(row) for row in self.files],
            "coders": [asdict(row) for row in self.coders],
            "conflicts": [asdict(row) for row in self.conflicts],
        }


def _frame(rows: Sequence[Any], kind: type) -> pd.DataFrame:
    columns = [item.name for item in fields(kind)]
    return pd.DataFrame([asdict(row) for row in rows], columns=columns)


# Coder names -------------------------------------------------------------------


def parse_coder_map(items: Iterable[str]) -> dict[str, str]:
    """Parse ``OLD=NEW`` items into a dict keyed by ``coder_key`` of the old name.

    Raises InputError on an item without ``=``, an empty or reserved name, or
    one old name mapped to two new names.
    """
    mapping: dict[str, str] = {}
    for item in items:
        old, separator, new = item.partition("=")
        if not separator or not old.strip() or not new.strip():
            raise InputError(
                f"--map-coder {item!r} is not OLD=NEW.",
                fix="Write the coder name in the file, '=', and the name to use, e.g. --map-coder AL=alice.",
            )
        try:
            new_name = check_coder_name(new)
        except QualkitError as error:
            raise InputError(f"--map-coder {item!r}: {error}") from None
        key = coder_key(old)
        if key in mapping and mapping[key] != new_name:
            raise InputError(
                f"--map-coder maps {old.strip()!r} to both {mapping[key]!r} and {new_name!r}.",
                fix="Give each coder name one mapping.",
            )
        mapping[key] = new_name
    return mapping


class CoderNames:
    """The canonical spelling of each coder, shared by all the files of one merge."""

    def __init__(self, db: sqlite_utils.Database, explicit: dict[str, str]) -> None:
        self.explicit = explicit
        self.used_explicit: set[str] = set()
        spellings = Counter()
        for table in ("codings", "memos"):
            for name, count in db.execute(
                f"SELECT coder, count(*) FROM [{table}] GROUP BY coder"
            ).fetchall():
                spellings[name] += count
        self.canonical: dict[str, str] = {}
        self.in_target: set[str] = set()
        # The most frequent spelling in the target wins, ties by sort order.
        for name, _ in sorted(spellings.items(), key=lambda item: (-item[1], item[0])):
            if name in MACHINE_CODERS:
                continue
            self.canonical.setdefault(coder_key(name), name)
            self.in_target.add(coder_key(name))

    def resolve(self, name: str, file_spellings: Counter[str]) -> tuple[str, str]:
        """Return the name to store for ``name`` and a note on how it was chosen."""
        if name in MACHINE_CODERS:
            return name, ""
        folded = coder_key(name)
        note = ""
        mapped = name
        if folded in self.explicit:
            self.used_explicit.add(folded)
            mapped = self.explicit[folded]
            note = f"mapped by --map-coder {name}={mapped}"
        mapped_folded = coder_key(mapped)
        if mapped_folded not in self.canonical:
            if mapped == name:
                # A new coder: the file's most frequent spelling of the name.
                # The name itself counts too, for a coder who only wrote memos.
                same = [
                    (count, spelling)
                    for spelling, count in file_spellings.items()
                    if coder_key(spelling) == folded
                ] or [(0, name)]
                mapped = min(same, key=lambda item: (-item[0], item[1]))[1]
            # A new spelling is stored without surrounding whitespace, in NFC.
            mapped = unicodedata.normalize("NFC", mapped.strip())
            self.canonical[mapped_folded] = mapped
        stored = self.canonical[mapped_folded]
        if stored != mapped or (stored != name and not note):
            where = (
                "the target's spelling"
                if mapped_folded in self.in_target
                else "the spelling first seen in the merge"
            )
            ignored = (
                "case ignored"
                if name.casefold() == stored.casefold()
                else "case, surrounding spaces and Unicode form ignored"
            )
            case_note = f"same coder as {stored!r} ({ignored}), {where} kept"
            note = f"{note}; {case_note}" if note else case_note
        return stored, note

    def unused(self) -> list[str]:
        """Return the --map-coder names that matched no coder in any file."""
        return sorted(set(self.explicit) - self.used_explicit)


# Input files -------------------------------------------------------------------


def open_input(path: Path, target: Path) -> sqlite3.Connection:
    """Open an input file read-only after checking that it is a qualkit database.

    Raises InputError naming the file when it is missing, is the target,
    is not a qualkit database, lacks a table that the merge reads, is
    locked by a writer, is damaged, or was written by a newer qualkit.
    """
    if not path.exists():
        raise InputError(
            "file not found.", path=path, fix="Check the path of the coder's copy."
        )
    if path.is_dir():
        raise InputError(
            "is a folder, not a database file.",
            path=path,
            fix="Give the .db file of a coder's copy.",
        )
    if same_file(path, target):
        raise InputError(
            "is the target database itself, which cannot be merged into itself.",
            path=path,
            fix="Give the coders' copies as inputs, and the project with --into or --db.",
        )
    connection = sqlite3.connect(
        f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None
    )
    try:
        # One read transaction for the whole file, so a coder still writing
        # to it cannot change it between the reads of its tables.
        connection.execute("BEGIN")
        tables = {
            row[0]
            for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
            )
        }
        version_row = None
        if "meta" in tables:
            version_row = connection.execute(
                "SELECT value FROM meta WHERE key = 'schema_version'"
            ).fetchone()
    except sqlite3.OperationalError as error:
        connection.close()
        if "locked" not in str(error):
            raise InputError(
                f"is not a SQLite database ({error}).",
                path=path,
                fix="Give the .db file of a coder's copy.",
            ) from None
        raise InputError(
            f"cannot be read because another program is writing to it ({error}).",
            path=path,
            fix="Close the program that has the copy open (for example a running 'qualkit review'), "
            "then merge again.",
        ) from None
    except sqlite3.DatabaseError as error:
        connection.close()
        raise InputError(
            f"is not a SQLite database ({error}).",
            path=path,
            fix="Give the .db file of a coder's copy.",
        ) from None
    if (
        version_row is None
        or not str(version_row[0]).isdigit()
        or not {"codings", "sources", "codes"} <= tables
    ):
        connection.close()
        raise InputError(
            "is a SQLite database but not a qualkit project (no qualkit schema version or codings table).",
            path=path,
            fix="Give the .db file of a coder's copy made with 'qualkit clone'.",
        )
    version = int(version_row[0])
    if version > store.SCHEMA_VERSION:
        connection.close()
        raise InputError(
            f"was written by a newer qualkit (schema version {version}). This qualkit reads up to "
            f"schema version {store.SCHEMA_VERSION}.",
            path=path,
            fix="Upgrade qualkit, then merge again.",
        )
    missing = sorted(REQUIRED_INPUT_TABLES - tables)
    if missing:
        connection.close()
        raise InputError(
            f"has no {', '.join(missing)} table, so it is not a complete qualkit project.",
            path=path,
            fix="Give the .db file of a coder's copy made with 'qualkit clone'.",
        )
    _check_input_pages(connection, path)
    return connection


def _check_input_pages(connection: sqlite3.Connection, path: Path) -> None:
    """Raise InputError naming the file when SQLite's quick check finds damage in it.

    The check reads every page once, so a damaged page stops the merge here
    with a message instead of half-way through with a traceback.
    """
    try:
        problems = [row[0] for row in connection.execute("PRAGMA quick_check(5)")]
    except sqlite3.DatabaseError as error:
        problems = [str(error)]
    if problems == ["ok"]:
        return
    connection.close()
    raise InputError(
        f"is damaged ({'; '.join(problems)}).",
        path=path,
        fix="Ask the coder for an intact copy, or try 'sqlite3 FILE .recover' on a copy of it, "
        "then merge again.",
    )


def _columns(
    connection: sqlite3.Connection | sqlite_utils.Database, table: str
) -> list[str]:
    return [
        row[1] for row in connection.execute(f"PRAGMA table_info([{table}])").fetchall()
    ]


def _rows(
    connection: sqlite3.Connection, sql: str, params: Sequence[Any] = ()
) -> list[dict[str, Any]]:
    cursor = connection.execute(sql, params)
    names = [item[0] for item in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def _active_codes(db: sqlite_utils.Database) -> set[str]:
    """Return the ids of the codes in the target's current codebook version.

    A code that a newer version dropped or replaced stays in ``codes`` with
    ``active = 0``, for the codings made under it, but takes no new codings.
    """
    if "active" not in _columns(db, "codes"):
        return {row[0] for row in db.execute("SELECT id FROM codes")}
    return {row[0] for row in db.execute("SELECT id FROM codes WHERE active = 1")}


def _has_table(connection: sqlite3.Connection, table: str) -> bool:
    found = connection.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", [table]
    )
    return found.fetchone() is not None


# Merging ------------------------------------------------------------------------


def merge_projects(
    db: sqlite_utils.Database,
    paths: Sequence[str | Path],
    options: MergeOptions | None = None,
) -> MergeReport:
    """Merge the coders' work in ``paths`` into ``db`` in one transaction and return the report.

    With ``options.dry_run`` the transaction is rolled back after the report
    is made, so the report shows exactly what a real merge would do.
    Raises InputError naming the file when an input cannot be read or a row
    of it cannot be written. The target is then unchanged.
    """
    options = options or MergeOptions()
    if not paths:
        raise InputError(
            "no input files given.",
            fix="Give one or more coders' copies: qualkit merge A.db B.db.",
        )
    target = database_path(db)
    report = MergeReport(target=str(target), dry_run=options.dry_run)
    inputs = []
    try:
        for path in paths:
            inputs.append((Path(path), open_input(Path(path), target)))
        names = CoderNames(db, options.coder_map)
        try:
            with store.transaction(db):
                for path, connection in inputs:
                    _FileMerge(db, path, connection, names, options, report).run()
                if any(
                    row.codings_added
                    or row.memos_added
                    or row.sources_added
                    or row.links_added
                    for row in report.files
                ):
                    store.touch(db)
                if options.dry_run:
                    raise _DryRun
        except _DryRun:
            pass
    finally:
        for _, connection in inputs:
            connection.close()
    for unused in names.unused():
        log.warning("--map-coder %s matched no coder in the input files", unused)
    return report


class _FileMerge:
    """The merge of one input file into the target, inside the caller's transaction."""

    def __init__(
        self,
        db: sqlite_utils.Database,
        path: Path,
        connection: sqlite3.Connection,
        names: CoderNames,
        options: MergeOptions,
        report: MergeReport,
    ) -> None:
        self.db = db
        self.path = path
        self.input = connection
        self.names = names
        self.options = options
        self.report = report
        self.summary = FileSummary(file=str(path))
        self.recorder = ChangeRecorder(
            db, options.merged_by, f"{MERGE_COMMAND} {path.name}"
        )

        # Input source id -> "matched", "changed", "added" or "missing".
        self.source_state: dict[str, str] = {}
        self.offset_maps: dict[str, OffsetMap] = {}
        self.target_texts: dict[str, str] = {}
        # Input coding id -> target coding id, for the memos and links that name it.
        self.coding_ids: dict[int, int] = {}
        # Target codings that this file added or matched exactly, whose links are copied.
        self.linkable: set[int] = set()
        self.coders: dict[str, CoderSummary] = {}

        self.known_codes = _active_codes(db)
        self.retired_codes = {
            row[0] for row in db.execute("SELECT id FROM codes")
        } - self.known_codes
        # Codings with a larger id were added by this merge.
        self.last_before = db.execute(
            "SELECT coalesce(max(id), 0) FROM codings"
        ).fetchone()[0]
        # Coder -> (source, code) -> live codings that the target contained before this file.
        self.earlier_spans: dict[
            str, dict[tuple[str, str], list[tuple[int, int, int]]]
        ] = {}

    def run(self) -> None:
        log.info("Merging %s into %s", self.path, self.report.target)
        try:
            self._merge_sources()
            self._merge_codings()
            self._merge_memos()
            self._merge_links()
            self._merge_review_positions()
        except sqlite3.IntegrityError as error:
            raise InputError(
                f"a row cannot be written to the target ({error}), so nothing was merged.",
                path=self.path,
                fix=f"Run 'qualkit --db {self.path} check' to find the invalid rows, "
                "or leave the file out of the merge.",
            ) from error
        except sqlite3.DatabaseError as error:
            # open_input checked the file, so this is damage that the quick
            # check missed, or a failure to write the target.
            raise InputError(
                f"the merge of this file failed ({error}), so nothing was merged.",
                path=self.path,
                fix="Check the file with 'sqlite3 FILE \"PRAGMA integrity_check\"', "
                "or leave it out of the merge.",
            ) from error
        self.summary.conflicts = sum(
            1 for row in self.report.conflicts if row.file == str(self.path)
        )
        self.report.files.append(self.summary)
        self.report.coders.extend(self.coders.values())

    def _conflict(self, kind: str, action: str, **values: Any) -> None:
        self.report.conflicts.append(
            Conflict(file=str(self.path), kind=kind, action=action, **values)
        )

    # Sources ----------------------------------------------------------------

    def _merge_sources(self) -> None:
        target_hashes = dict(
            self.db.execute("SELECT id, content_hash FROM sources").fetchall()
        )
        for source_id, digest in self.input.execute(
            "SELECT id, content_hash FROM sources ORDER BY id"
        ):
            if source_id not in target_hashes:
                if self.options.add_missing_sources:
                    self._add_source(source_id)
                    self.source_state[source_id] = "added"
                    self.summary.sources_added += 1
                else:
                    self.source_state[source_id] = "missing"
                    self.summary.sources_missing += 1
            elif target_hashes[source_id] != digest:
                self.source_state[source_id] = "changed"
                self.summary.sources_changed += 1
            else:
                self.source_state[source_id] = "matched"
                self.summary.sources_matched += 1

    def _add_source(self, source_id: str) -> None:
        """Copy a source with its case and segments. Imports are not in the audit log."""
        source = _rows(self.input, "SELECT * FROM sources WHERE id = ?", [source_id])[0]
        case_id = source["case_id"]
        if (
            self.db.execute("SELECT 1 FROM cases WHERE id = ?", [case_id]).fetchone()
            is None
        ):
            for case in _rows(
                self.input, "SELECT * FROM cases WHERE id = ?", [case_id]
            ):
                self._insert_plain("cases", case)
        self._insert_plain("sources", source)
        segment_ids: dict[int, int] = {}
        # Segments without a parent (turns, paragraphs) first, so that each
        # sentence's parent already has its new id.
        for segment in _rows(
            self.input,
            "SELECT * FROM segments WHERE source_id = ? ORDER BY parent_id IS NOT NULL, id",
            [source_id],
        ):
            old_id = segment.pop("id")
            if segment.get("parent_id") is not None:
                segment["parent_id"] = segment_ids[segment["parent_id"]]
            segment_ids[old_id] = self._insert_plain("segments", segment)

    def _insert_plain(self, table: str, row: dict[str, Any]) -> int:
        allowed = set(_columns(self.db, table))
        values = {key: value for key, value in row.items() if key in allowed}
        names = ", ".join(f"[{key}]" for key in values)
        marks = ", ".join("?" for _ in values)
        cursor = self.db.execute(
            f"INSERT INTO [{table}] ({names}) VALUES ({marks})", list(values.values())
        )
        return cursor.lastrowid

    def _target_text(self, source_id: str) -> str:
        if source_id not in self.target_texts:
            row = self.db.execute(
                "SELECT text FROM sources WHERE id = ?", [source_id]
            ).fetchone()
            self.target_texts[source_id] = row[0]
        return self.target_texts[source_id]

    # Codings ----------------------------------------------------------------

    def _coder(self, name: str) -> CoderSummary:
        if name not in self.coders:
            spellings: Counter[str] = Counter()
            for table in ("codings", "memos"):
                for spelling, count in self.input.execute(
                    f"SELECT coder, count(*) FROM [{table}] GROUP BY coder"
                ).fetchall():
                    spellings[spelling] += count
            stored, note = self.names.resolve(name, spellings)
            before = self.db.execute(
                "SELECT count(*) FROM codings WHERE coder = ? AND id <= ?",
                [stored, self.last_before],
            ).fetchone()[0]
            self.coders[name] = CoderSummary(
                file=str(self.path),
                coder_in_file=name,
                coder=stored,
                note=note,
                in_target_before=before,
            )
        return self.coders[name]

    def _merge_codings(self) -> None:
        target_columns = set(_columns(self.db, "codings"))
        for row in _rows(self.input, "SELECT * FROM codings ORDER BY id"):
            self.summary.codings_in_file += 1
            if row["coder"] == AUTO_CODER:
                self.summary.suggestions_skipped += 1
                continue
            coder = self._coder(row["coder"])
            coder.codings_in_file += 1
            incoming = {
                key: value for key, value in row.items() if key in target_columns
            }
            incoming.setdefault("value", None)
            incoming["coder"] = coder.coder
            outcome = self._place(row, incoming, coder)
            if outcome == "added":
                coder.added += 1
            elif outcome == "unchanged":
                coder.unchanged += 1
            elif outcome == "conflicting":
                coder.conflicting += 1
            else:
                coder.not_merged += 1

    def _place(
        self,
        row: dict[str, Any],
        incoming: dict[str, Any],
        coder: CoderSummary,
    ) -> str:
        """Merge one coding and return added, unchanged, conflicting or not merged."""
        where = {
            "coder": coder.coder,
            "source_id": row["source_id"],
            "code_id": row["code_id"],
            "start": row["start_offset"],
            "end": row["end_offset"],
        }
        state = self.source_state.get(row["source_id"], "missing")
        if not self._mergeable(row, state, where) or not self._span_in_text(
            row, state, where
        ):
            self.summary.codings_not_merged += 1
            return NOT_MERGED
        reanchor_note = ""
        if state == "changed":
            self.summary.codings_reanchored += 1
            if not self._reanchor(row, incoming):
                reanchor_note = f"its words changed in the target's text (they were {row['quote']!r} in the file)"
        else:
            # The quote is derived from the text, which is the same in the
            # file and the target, so a quote that disagrees with it is not copied.
            text = self._target_text(row["source_id"])
            incoming["quote"] = text[incoming["start_offset"] : incoming["end_offset"]]
        where.update(start=incoming["start_offset"], end=incoming["end_offset"])
        existing = self._existing(incoming)
        if existing is not None:
            return self._compare(row, incoming, existing, where)
        return self._add(row, incoming, where, reanchor_note)

    def _mergeable(
        self, row: dict[str, Any], state: str, where: dict[str, Any]
    ) -> bool:
        """Return whether the coding's source and code allow a merge, listing the conflict if not."""
        if state == "missing":
            self._conflict(
                MISSING_SOURCE,
                NOT_MERGED,
                **where,
                detail="The source is not in the target. Pass --add-missing-sources to import it.",
            )
            return False
        if row["code_id"] in self.retired_codes:
            self._conflict(
                UNKNOWN_CODE,
                NOT_MERGED,
                **where,
                detail="The code was dropped or replaced in the target's current codebook. Apply that "
                f"codebook to the copy ('qualkit --db {self.path} codebook apply FILE'), then merge again.",
            )
            return False
        if row["code_id"] not in self.known_codes:
            self._conflict(
                UNKNOWN_CODE,
                NOT_MERGED,
                **where,
                detail="The code is not in the target's codebook. Apply the codebook that has it, then merge again.",
            )
            return False
        if state == "changed" and not self.options.allow_changed_sources:
            self._conflict(
                CHANGED_SOURCE,
                NOT_MERGED,
                **where,
                detail="The source text differs from the target's. Pass --allow-changed-sources to move "
                "the coding onto the target's text.",
            )
            return False
        return True

    def _span_in_text(
        self, row: dict[str, Any], state: str, where: dict[str, Any]
    ) -> bool:
        """Return whether the coding's offsets lie inside its source's text in the file, listing the conflict if not."""
        if state == "changed":
            length = self._input_text_length(row["source_id"])
        else:
            length = len(self._target_text(row["source_id"]))
        if 0 <= row["start_offset"] < row["end_offset"] <= length:
            return True
        self._conflict(
            INVALID_SPAN,
            NOT_MERGED,
            **where,
            detail=f"The span {row['start_offset']}:{row['end_offset']} lies outside the source's text "
            f"of {length} characters. Fix or remove the coding in the copy, then merge again.",
        )
        return False

    def _input_text_length(self, source_id: str) -> int:
        found = self.input.execute(
            "SELECT length(text) FROM sources WHERE id = ?", [source_id]
        ).fetchone()
        return int(found[0] or 0)

    def _compare(
        self,
        row: dict[str, Any],
        incoming: dict[str, Any],
        existing: dict[str, Any],
        where: dict[str, Any],
    ) -> str:
        """Match a coding with the target's coding of the same key and return unchanged or conflicting."""
        self.coding_ids[row["id"]] = existing["id"]
        differences = [
            name for name in DECISION_FIELDS if existing.get(name) != incoming.get(name)
        ]
        if not differences:
            self.linkable.add(existing["id"])
            self.summary.codings_unchanged += 1
            return "unchanged"
        self.summary.codings_conflicting += 1
        detail = "; ".join(
            f"{name}: target {existing.get(name)!r}, file {incoming.get(name)!r}"
            for name in differences
        )
        self._conflict(
            DIFFERENT_DECISION,
            KEPT_TARGET,
            **where,
            detail=f"Coding #{existing['id']} in the target. {detail}.",
        )
        return "conflicting"

    def _add(
        self,
        row: dict[str, Any],
        incoming: dict[str, Any],
        where: dict[str, Any],
        reanchor_note: str,
    ) -> str:
        """Insert a coding the target lacks, flagged when it overlaps the coder's own or its words changed."""
        overlapping = self._overlapping(incoming)
        if overlapping or reanchor_note:
            incoming["needs_review"] = 1
            self.summary.codings_flagged += 1
        incoming.pop("id", None)
        target_id = self.recorder.insert("codings", incoming)
        self.coding_ids[row["id"]] = target_id
        self.linkable.add(target_id)
        self.summary.codings_added += 1
        if overlapping:
            spans = ", ".join(
                f"#{item[0]} at {item[1]}:{item[2]}" for item in overlapping
            )
            self._conflict(
                OVERLAPS_OWN_CODING,
                ADDED_FLAGGED,
                **where,
                detail=f"Added as #{target_id}; it overlaps the coder's own coding of the code in the target ({spans}).",
            )
        if reanchor_note:
            self._conflict(
                CHANGED_SOURCE,
                ADDED_FLAGGED,
                **where,
                detail=f"Added as #{target_id}; {reanchor_note}.",
            )
            self._note_reanchored(target_id, row["quote"])
        return "added"

    def _existing(self, incoming: dict[str, Any]) -> dict[str, Any] | None:
        found = self.db.execute(
            "SELECT id FROM codings WHERE source_id = ? AND start_offset = ? AND end_offset = ? "
            "AND code_id = ? AND coder = ?",
            [
                incoming[key]
                for key in (
                    "source_id",
                    "start_offset",
                    "end_offset",
                    "code_id",
                    "coder",
                )
            ],
        ).fetchone()
        return snapshot(self.db, "codings", found[0]) if found else None

    def _overlapping(self, incoming: dict[str, Any]) -> list[tuple[int, int, int]]:
        """Return the coder's live codings of the code that overlap and were in the target before this file."""
        if incoming["status"] == "rejected":
            return []
        coder = incoming["coder"]
        if coder not in self.earlier_spans:
            # One scan per coder and file: a range query per coding would read
            # every coding that starts before it in a long source.
            spans: dict[tuple[str, str], list[tuple[int, int, int]]] = {}
            for source_id, code_id, coding_id, start, end in self.db.execute(
                "SELECT source_id, code_id, id, start_offset, end_offset FROM codings "
                "WHERE coder = ? AND status != 'rejected' AND id <= ?",
                [coder, self.last_before],
            ):
                spans.setdefault((source_id, code_id), []).append(
                    (coding_id, start, end)
                )
            self.earlier_spans[coder] = spans
        candidates = self.earlier_spans[coder].get(
            (incoming["source_id"], incoming["code_id"]), []
        )
        found = [
            item
            for item in candidates
            if item[1] < incoming["end_offset"] and item[2] > incoming["start_offset"]
        ]
        return sorted(found, key=lambda item: item[1])

    def _reanchor(self, row: dict[str, Any], incoming: dict[str, Any]) -> bool:
        """Move the coding onto the target's text and return False if its words changed."""
        source_id = row["source_id"]
        new = self._target_text(source_id)
        if source_id not in self.offset_maps:
            old = self.input.execute(
                "SELECT text FROM sources WHERE id = ?", [source_id]
            ).fetchone()[0]
            self.offset_maps[source_id] = OffsetMap(old, new)
        mapping = self.offset_maps[source_id]
        exact = mapping.span(row["start_offset"], row["end_offset"])
        if exact is not None:
            start, end = exact
        else:
            start, end = self._estimated_span(
                source_id, new, mapping, row["start_offset"], row["end_offset"]
            )
        incoming.update(start_offset=start, end_offset=end, quote=new[start:end])
        return exact is not None

    def _estimated_span(
        self, source_id: str, new: str, mapping: OffsetMap, start: int, end: int
    ) -> tuple[int, int]:
        """Return the span that took the place of changed words, or the sentence where deleted ones stood."""
        first = mapping.start_position(start)
        last = mapping.end_position(end)
        while first < last and new[first].isspace():
            first += 1
        while last > first and new[last - 1].isspace():
            last -= 1
        if last > first:
            return first, last
        sentence = self.db.execute(
            "SELECT start_offset, end_offset FROM segments WHERE source_id = ? AND kind = 'sentence' "
            "ORDER BY abs(start_offset - ?) LIMIT 1",
            [source_id, first],
        ).fetchone()
        if sentence is not None:
            return sentence[0], sentence[1]
        return 0, max(len(new), 1)

    def _note_reanchored(self, coding_id: int, old_quote: str) -> None:
        now = store.utc_now()
        self.recorder.insert(
            "memos",
            {
                "about": "coding",
                "about_id": str(coding_id),
                "coder": SYSTEM_CODER,
                "text": f"Merged from {self.path.name}, where the source text differed. "
                f"The coded words there were: {old_quote}",
                "created_at": now,
                "updated_at": now,
            },
        )

    # Memos, links, review positions -------------------------------------------

    def _merge_memos(self) -> None:
        memos = _rows(self.input, "SELECT * FROM memos ORDER BY id")
        texts_in_file = {
            (memo["about"], memo["about_id"], memo["coder"], memo["text"])
            for memo in memos
        }
        for memo in memos:
            about, about_id = memo["about"], memo["about_id"]
            coder = (
                memo["coder"]
                if memo["coder"] in MACHINE_CODERS
                else self._coder(memo["coder"]).coder
            )
            reason = self._memo_subject_problem(about, about_id)
            if reason:
                self.summary.memos_not_merged += 1
                self._conflict(
                    MEMO_SUBJECT_NOT_MERGED,
                    NOT_MERGED,
                    coder=coder,
                    source_id=about_id if about == "source" else None,
                    code_id=about_id if about == "code" else None,
                    detail=f"Memo #{memo['id']} about {about} {about_id}: {reason}. Its text: {memo['text']}",
                )
                continue
            if about == "coding":
                about_id = str(self.coding_ids[int(about_id)])
            same = self.db.execute(
                "SELECT id FROM memos WHERE about = ? AND about_id IS ? AND coder = ? AND text = ?",
                [about, about_id, coder, memo["text"]],
            ).fetchone()
            if same is not None:
                self.summary.memos_unchanged += 1
                continue
            # A memo edited in the copy keeps its creation time. Two memos on one
            # subject written in the same second are distinguished because the
            # file contains both texts.
            edited = next(
                (
                    memo_id
                    for memo_id, text in self.db.execute(
                        "SELECT id, text FROM memos WHERE about = ? AND about_id IS ? AND coder = ? "
                        "AND created_at = ?",
                        [about, about_id, coder, memo["created_at"]],
                    ).fetchall()
                    if (memo["about"], memo["about_id"], memo["coder"], text)
                    not in texts_in_file
                ),
                None,
            )
            row = {key: value for key, value in memo.items() if key != "id"}
            memo_id = self.recorder.insert(
                "memos", {**row, "about_id": about_id, "coder": coder}
            )
            self.summary.memos_added += 1
            if edited is not None:
                self._conflict(
                    MEMO_EDITED,
                    "added; the target's memo kept too",
                    coder=coder,
                    detail=f"Memo #{memo_id} is an edited version of memo #{edited} in the target.",
                )

    def _memo_subject_problem(self, about: str, about_id: str | None) -> str:
        if about == "source" and self.source_state.get(str(about_id)) in (
            None,
            "missing",
        ):
            return "the source is not in the target"
        if about == "code" and about_id not in self.known_codes:
            return "the code is not in the target's codebook"
        if about == "coding" and (
            not str(about_id).isdigit() or int(about_id) not in self.coding_ids
        ):
            return "its coding was not merged"
        return ""

    def _merge_links(self) -> None:
        """Copy the quote-target links of the codings this file added or matched exactly."""
        if not _has_table(self.input, "quote_links"):
            return
        targets = {row[0] for row in self.db.execute("SELECT id FROM targets")}
        for link in _rows(
            self.input, "SELECT * FROM quote_links ORDER BY coding_id, target_id"
        ):
            coding_id = self.coding_ids.get(link["coding_id"])
            if coding_id is None or coding_id not in self.linkable:
                continue
            if link["target_id"] not in targets:
                self._conflict(
                    UNKNOWN_TARGET,
                    NOT_MERGED,
                    detail=f"The link of coding #{coding_id} to target {link['target_id']!r}: "
                    "the target is not in the project. Load the targets file that has it, then merge again.",
                )
                continue
            if (
                snapshot(self.db, "quote_links", (coding_id, link["target_id"]))
                is not None
            ):
                continue
            self.recorder.insert("quote_links", {**link, "coding_id": coding_id})
            self.summary.links_added += 1

    def _merge_review_positions(self) -> None:
        """Copy each coder's place in the review, unless the coder has one in the target for that filter."""
        if not _has_table(self.input, "review_state"):
            return
        for position in _rows(
            self.input, "SELECT * FROM review_state ORDER BY coder, scope"
        ):
            coder = self._coder(position["coder"]).coder
            has_position = self.db.execute(
                "SELECT 1 FROM review_state WHERE coder = ? AND scope = ?",
                [coder, position["scope"]],
            ).fetchone()
            if has_position is not None:
                continue
            coding_id = position["coding_id"]
            mapped = self.coding_ids.get(coding_id) if coding_id is not None else None
            self.db.execute(
                "INSERT INTO review_state (coder, scope, coding_id, sort_key, updated_at) VALUES (?, ?, ?, ?, ?)",
                [
                    coder,
                    position["scope"],
                    mapped,
                    position["sort_key"],
                    position["updated_at"],
                ],
            )
            self.summary.review_positions_added += 1


def merged_json(report: MergeReport) -> str:
    """Return the report as indented JSON."""
    return json.dumps(report.to_dict(), ensure_ascii=False, indent=2)
