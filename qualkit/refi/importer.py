"""Import a REFI-QDA ``.qdc`` or ``.qdpx`` file into the current project, in one transaction.

The file is read and checked whole before anything is written. Some
problems are errors: a selection that is empty, reversed, negative or past
the end of its text, a coding of a code the file does not define, and a
source whose text cannot be read. They reject the import unless
``skip_invalid`` is set, and then they are skipped and listed. Elements
that qualkit has no place for (PDF and media sources, sets, links, graphs)
are listed in the report as not imported.

Sources go through qualkit's source storage (cases, text, turns and
sentences) and codes into the ``codes`` table. Codes, codings and memos are
recorded in the audit log under the importing coder.
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import sqlite_utils

from qualkit import store
from qualkit.audit import RESERVED_CODERS, ChangeRecorder
from qualkit.cases import DEFAULT_LEVELS, clean_metadata, store_case
from qualkit.codebook import CODE_ID
from qualkit.coding import settle_coding
from qualkit.errors import InputError
from qualkit.nlp import detect_language
from qualkit.refi.codebook import parse_description, store_code_colours
from qualkit.refi.reader import (
    ParsedCode,
    ParsedCoding,
    ParsedFile,
    ParsedSource,
    ReportRow,
    read_refi_file,
    unread_elements,
)
from qualkit.refi.xmlsafe import ReadLimits
from qualkit.sources import _assign_roles, store_segments
from qualkit.store import text_hash, utc_now
from qualkit.transcripts import find_turns

log = logging.getLogger(__name__)

DEFAULT_CODER = "refi-import"
IMPORT_COMMAND = "refi import"
# Codebook id and version of imported codes when the project has no codebook yet.
IMPORTED_CODEBOOK = ("refi_import", "1")
# The number of errors an InputError lists before it only counts the rest.
LISTED_ERRORS = 20
# Variable names that other programs use for qualkit's case fields.
FIELD_ALIASES = {"appendix group": "appendix_group", "appendix-group": "appendix_group"}
# Ids made from names are cut to these lengths. The label contains the whole name.
MAX_ID_LENGTH = 100
MAX_SLUG_LENGTH = 60


@dataclass
class ImportReport:
    """The outcome of a REFI-QDA import: counts and one row per notable element."""

    path: Path
    dry_run: bool = False
    rows: list[ReportRow] = field(default_factory=list)
    counts: dict[str, int] = field(
        default_factory=lambda: {
            "codes": 0,
            "cases": 0,
            "sources": 0,
            "codings": 0,
            "memos": 0,
        }
    )

    def frame(self) -> pd.DataFrame:
        """Return the report rows as a DataFrame (element, name, action, detail)."""
        return pd.DataFrame(
            [vars(row) for row in self.rows],
            columns=["element", "name", "action", "detail"],
        )

    def summary(self) -> str:
        """Return one line with what was imported."""
        verb = "Would import" if self.dry_run else "Imported"
        counted = ", ".join(f"{count} {name}" for name, count in self.counts.items())
        return f"{verb} from {self.path.name}: {counted}."


class _DryRun(Exception):
    """Raised inside the transaction to roll a dry run back."""


def import_refi(
    db: sqlite_utils.Database,
    path: str | Path,
    *,
    coder: str = DEFAULT_CODER,
    skip_invalid: bool = False,
    dry_run: bool = False,
    limits: ReadLimits | None = None,
    levels: tuple[str, ...] = DEFAULT_LEVELS,
    model: str | None = None,
) -> ImportReport:
    """Import the codes, cases, sources, codings and notes of a REFI-QDA file.

    ``coder`` is recorded in the audit log and given to codings and notes
    that name no user. Everything is written in one transaction, and a dry
    run rolls it back after building the report. Raises InputError, with
    the database unchanged, for an unsafe or unreadable file and, unless
    ``skip_invalid`` is set, for invalid selections and codings.
    """
    path = Path(path)
    parsed, root = read_refi_file(path, limits or ReadLimits())
    report = ImportReport(path=path, dry_run=dry_run)
    report.rows.extend(parsed.report)
    report.rows.extend(unread_elements(root))
    _check_code_references(parsed)
    if parsed.errors and not skip_invalid:
        raise _rejection(path, parsed.errors)
    for row in parsed.errors:
        report.rows.append(ReportRow(row.element, row.name, "skipped", row.detail))
    try:
        with store.transaction(db):
            writer = _Writer(db, parsed, report, coder, levels, model)
            writer.write()
            if dry_run:
                raise _DryRun
            store.touch(db)
    except _DryRun:
        pass
    return report


def _rejection(path: Path, errors: list[ReportRow]) -> InputError:
    lines = [
        f"  {row.element} {row.name}: {row.detail}" for row in errors[:LISTED_ERRORS]
    ]
    if len(errors) > LISTED_ERRORS:
        lines.append(f"  ... and {len(errors) - LISTED_ERRORS} more")
    return InputError(
        f"{len(errors)} invalid element(s), so nothing was imported:\n"
        + "\n".join(lines),
        path=path,
        fix="Fix them in the other program and export again, or pass --skip-invalid "
        "to import everything else and list them in the report.",
    )


def _check_code_references(parsed: ParsedFile) -> None:
    """Add an error for each coding that names no code or a code the file does not define."""
    known = {code.guid for code in parsed.codes}
    for source in parsed.sources:
        codings = [(f"{source.name} (whole source)", c) for c in source.whole_codings]
        codings += [
            (s.label or f"{source.name} [{s.start}:{s.end}]", c)
            for s in source.selections
            if s.valid
            for c in s.codings
        ]
        for label, coding in codings:
            if coding.code_guid is None:
                detail = "the coding has no CodeRef"
            elif coding.code_guid not in known:
                detail = f"the coding refers to code {coding.code_guid}, which the file does not define"
            else:
                continue
            coding.code_guid = None
            parsed.errors.append(ReportRow("Coding", label, "rejected", detail))


_INVALID_ID_CHARACTERS = re.compile(r"[^\w.\-]+")


def _safe_id(name: str) -> str:
    """Turn a name from another program into a case or source id (letters, digits, '.', '_', '-')."""
    stem = re.sub(
        r"\.(txt|docx?|pdf|rtf|odt|md)$", "", name.strip(), flags=re.IGNORECASE
    )
    cleaned = _INVALID_ID_CHARACTERS.sub("_", stem).strip("_.") or "source"
    return cleaned[:MAX_ID_LENGTH].rstrip("_.")


def _code_slug(name: str) -> str:
    """Turn a code name into the part of a qualkit code id: lowercase ASCII letters, digits, '_'."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "_", ascii_name.lower()).strip("_")
    if slug and not slug[0].isalpha():
        slug = "code_" + slug
    return slug[:MAX_SLUG_LENGTH].rstrip("_")


def _match_code(
    name: str,
    qualkit_id: str | None,
    parent_id: str | None,
    existing: dict[str, dict[str, Any]],
    by_label: dict[str, list[str]],
    claimed: set[str],
    copies_in_file: int,
) -> str | None:
    """Return the project code that a file's code is, or None for a new code.

    A ``qualkit id:`` line decides when it names a code that no other code
    of the file took. Without one, the label (ignoring case) matches a code
    the project had before the import: one under the same parent, or else
    the only code with that label when the file also has it only once.
    """
    if qualkit_id is not None:
        if qualkit_id in existing and qualkit_id not in claimed:
            return qualkit_id
        return None
    candidates = [
        code_id
        for code_id in by_label.get(name.casefold(), [])
        if code_id not in claimed
    ]
    for code_id in candidates:
        if existing[code_id]["parent_id"] == parent_id:
            return code_id
    if (
        copies_in_file == 1
        and len(candidates) == 1
        and len(by_label[name.casefold()]) == 1
    ):
        return candidates[0]
    return None


class _Writer:
    """The writing half of an import; every method runs inside the import's transaction."""

    def __init__(
        self,
        db: sqlite_utils.Database,
        parsed: ParsedFile,
        report: ImportReport,
        coder: str,
        levels: tuple[str, ...],
        model: str | None,
    ) -> None:
        self.db = db
        self.parsed = parsed
        self.report = report
        self.default_coder = coder
        self.levels = levels
        self.model = model
        self.origin = parsed.path.name
        self.recorder = ChangeRecorder(db, coder, IMPORT_COMMAND)
        self.code_ids: dict[str, str] = {}
        self.code_versions: dict[str, str] = {}
        self.source_ids: dict[str, str] = {}
        self.coders: dict[str, str] = {}
        # Note GUID -> (about, about_id) for notes that something refers to.
        self.note_subjects: dict[str, tuple[str, str | None]] = {}

    def note(self, element: str, name: str, action: str, detail: str) -> None:
        self.report.rows.append(ReportRow(element, name, action, detail))

    def write(self) -> None:
        self._resolve_coders()
        self._write_codes()
        case_of_source = self._write_cases()
        for source in self.parsed.sources:
            self._write_source(source, case_of_source.get(source.guid))
        for source in self.parsed.sources:
            if source.guid in self.source_ids:
                self._write_codings(source)
        self._write_notes()

    # Coders -------------------------------------------------------------

    def _resolve_coders(self) -> None:
        """Map user GUIDs to coder names, reusing a project coder's spelling when only case differs."""
        existing = [
            row[0]
            for row in self.db.execute(
                "SELECT DISTINCT coder FROM codings UNION SELECT DISTINCT coder FROM memos"
            ).fetchall()
        ]
        by_folded = {name.casefold(): name for name in sorted(existing)}
        for guid, name in self.parsed.users.items():
            chosen = (name or "").strip() or f"user-{guid[:8].lower()}"
            if chosen in RESERVED_CODERS:
                renamed = f"{chosen}-imported"
                self.note(
                    "User",
                    chosen,
                    "converted",
                    f"the name is reserved in qualkit; stored as {renamed!r}",
                )
                chosen = renamed
            folded = chosen.casefold()
            if folded in by_folded and by_folded[folded] != chosen:
                self.note(
                    "User",
                    chosen,
                    "merged",
                    f"matched the project's coder {by_folded[folded]!r}",
                )
                chosen = by_folded[folded]
            by_folded.setdefault(folded, chosen)
            self.coders[guid] = chosen

    def _coder(self, guid: str | None, element: str, name: str) -> str:
        if guid is None:
            return self.default_coder
        if guid not in self.coders:
            self.note(
                element,
                name,
                "warning",
                f"user {guid} is not in <Users>; recorded as {self.default_coder!r}",
            )
            self.coders[guid] = self.default_coder
        return self.coders[guid]

    # Codes --------------------------------------------------------------

    def _codebook_version(self) -> tuple[str, str]:
        """Return the codebook id and version that imported codes join."""
        row = self.db.execute(
            "SELECT codebook_id, codebook_version FROM codes WHERE active = 1 "
            "GROUP BY codebook_id, codebook_version ORDER BY count(*) DESC LIMIT 1"
        ).fetchone()
        if row is not None:
            return row[0], row[1]
        codebook_id, version = IMPORTED_CODEBOOK
        if (
            self.db.execute(
                "SELECT 1 FROM codebooks WHERE id = ? AND version = ?",
                [codebook_id, version],
            ).fetchone()
            is None
        ):
            self.recorder.insert(
                "codebooks",
                {
                    "id": codebook_id,
                    "version": version,
                    "title": f"Imported from {self.origin}",
                    "path": str(self.parsed.path),
                    "content_hash": text_hash(self.origin),
                    "loaded_at": utc_now(),
                },
            )
        return codebook_id, version

    def _write_codes(self) -> None:
        """Match each parsed code to a project code, or insert it as a new code."""
        if not self.parsed.codes:
            return

        cursor = self.db.execute("SELECT * FROM codes")
        columns = [d[0] for d in cursor.description]
        existing = {row[0]: dict(zip(columns, row)) for row in cursor.fetchall()}

        # Only codes the project had before this import are matched by label,
        # so two distinct codes of one file never become one.
        by_label: dict[str, list[str]] = {}
        for code_id, row in sorted(existing.items()):
            by_label.setdefault(row["label"].casefold(), []).append(code_id)
        labels_in_file = Counter(code.name.casefold() for code in self.parsed.codes)
        claimed: set[str] = set()

        codebook_id, version = self._codebook_version()
        position = (
            self.db.execute("SELECT max(position) FROM codes").fetchone()[0] or -1
        ) + 1
        colours: dict[str, str] = {}

        for code in self.parsed.codes:
            fields = parse_description(code.description)
            parent_id = (
                self.code_ids.get(code.parent_guid) if code.parent_guid else None
            )
            code_id = _match_code(
                code.name,
                fields.qualkit_id,
                parent_id,
                existing,
                by_label,
                claimed,
                labels_in_file[code.name.casefold()],
            )
            if code_id is not None:
                claimed.add(code_id)
                self.code_ids[code.guid] = code_id
                self.code_versions[code_id] = existing[code_id]["codebook_version"]
                self._compare_code(code.name, existing[code_id], fields, parent_id)
                continue

            code_id = self._new_code_id(code, fields.qualkit_id, parent_id, existing)
            claimed.add(code_id)
            if fields.qualkit_id is not None and code_id != fields.qualkit_id:
                self._note_replaced_id(code.name, fields.qualkit_id, code_id)

            row = {
                "id": code_id,
                "parent_id": parent_id,
                "label": code.name,
                "definition": fields.definition,
                "when_to_use": fields.when_to_use,
                "when_not_to_use": fields.when_not_to_use,
                "example": fields.example,
                "rules": "{}",
                "position": position,
                "codebook_id": codebook_id,
                "codebook_version": version,
                "active": 1,
            }
            self.recorder.insert("codes", row)
            position += 1
            existing[code_id] = row
            self.code_ids[code.guid] = code_id
            self.code_versions[code_id] = version
            self.report.counts["codes"] += 1
            if code.colour:
                colours[code_id] = code.colour
            if fields.qualkit_id is None:
                self.note("Code", code.name, "imported", f"as code {code_id!r}")

        store_code_colours(self.db, colours)

    def _note_replaced_id(self, name: str, qualkit_id: str, code_id: str) -> None:
        """Report a new code whose ``qualkit id:`` line could not be used as its id."""
        if CODE_ID.match(qualkit_id):
            reason = "another code of this file already has"
        else:
            reason = "it has an invalid"
        self.note(
            "Code",
            name,
            "converted",
            f"{reason} qualkit id {qualkit_id[:60]!r}, so it is stored as {code_id!r}",
        )

    def _compare_code(
        self, name: str, row: dict[str, Any], fields: Any, parent_id: str | None
    ) -> None:
        differences = [
            column
            for column, value in (
                ("label", name),
                ("definition", fields.definition),
                ("when_to_use", fields.when_to_use),
                ("when_not_to_use", fields.when_not_to_use),
                ("example", fields.example),
                ("parent_id", parent_id),
            )
            if (row[column] or None) != (value or None)
        ]
        detail = f"the project already has code {row['id']!r}"
        if differences:
            detail += f"; kept the project's {', '.join(differences)}"
        self.note("Code", name, "merged", detail)

    def _new_code_id(
        self,
        code: ParsedCode,
        qualkit_id: str | None,
        parent_id: str | None,
        existing: dict[str, Any],
    ) -> str:
        """Return the id of a new code: its ``qualkit id:`` line, or one made from its name.

        A name without ASCII letters (a Chinese name, say) gives ``code_``
        and the start of the code's GUID.
        """
        if (
            qualkit_id is not None
            and CODE_ID.match(qualkit_id)
            and qualkit_id not in existing
        ):
            return qualkit_id
        slug = _code_slug(code.name) or f"code_{code.guid[:8].lower()}"
        if not CODE_ID.match(slug):
            slug = f"code_{code.guid[:8].lower()}"
        base = f"{parent_id}.{slug}" if parent_id else slug
        candidate, number = base, 2
        while candidate in existing:
            candidate = f"{base}_{number}"
            number += 1
        return candidate

    # Cases and sources --------------------------------------------------

    def _write_cases(self) -> dict[str, str]:
        """Store the cases and return the case id of each source GUID they name."""
        case_of_source: dict[str, str] = {}
        for case in self.parsed.cases:
            case_id = _safe_id(case.name or f"case-{case.guid[:8].lower()}")
            if case.name and case_id != case.name:
                self.note(
                    "Case", case.name, "converted", f"stored as case id {case_id!r}"
                )
            metadata = self._case_metadata(case.name or case_id, case.values)
            conflicts = store_case(self.db, case_id, metadata, origin=self.origin)
            for conflict in conflicts:
                self.note(
                    "Case",
                    case_id,
                    "warning",
                    f"{conflict['field']} is {conflict['other_value']!r} in the file but "
                    f"{conflict['kept_value']!r} in the project; kept the project's value",
                )
            self.report.counts["cases"] += 1
            for source_guid in case.source_guids:
                if (
                    source_guid in case_of_source
                    and case_of_source[source_guid] != case_id
                ):
                    self.note(
                        "Case",
                        case_id,
                        "warning",
                        f"source {source_guid} also belongs to case {case_of_source[source_guid]!r}, "
                        "which is kept; a qualkit source has one case",
                    )
                    continue
                case_of_source[source_guid] = case_id
        return case_of_source

    def _case_metadata(self, name: str, values: dict[str, str]) -> dict[str, Any]:
        """Validate variable values field by field, so one invalid value does not lose the others."""
        metadata: dict[str, Any] = {"attributes": {}}
        for variable, value in values.items():
            key = FIELD_ALIASES.get(variable.strip().lower(), variable.strip().lower())
            if key in ("id", "case"):
                key = f"refi_{key}"
            try:
                cleaned = clean_metadata({key: value}, path=None, levels=self.levels)
            except InputError as error:
                self.note(
                    "Case/VariableValue",
                    f"{name}: {variable}",
                    "not imported",
                    error.message,
                )
                continue
            metadata["attributes"].update(cleaned.pop("attributes"))
            metadata.update(cleaned)
        return metadata

    def _write_source(self, source: ParsedSource, case_id: str | None) -> None:
        if not source.text.strip():
            self.note("TextSource", source.name, "skipped", "the text is empty")
            return
        digest = text_hash(source.text)
        same = self.db.execute(
            "SELECT id FROM sources WHERE content_hash = ?", [digest]
        ).fetchone()
        if same is not None:
            self.source_ids[source.guid] = same[0]
            self.note(
                "TextSource",
                source.name,
                "merged",
                f"the project already has this text as source {same[0]!r}; codings go there",
            )
            return

        base = source_id = _safe_id(source.name)
        number = 2
        while self.db.execute(
            "SELECT 1 FROM sources WHERE id = ?", [source_id]
        ).fetchone():
            source_id = f"{base}_{number}"
            number += 1
        if source_id != base:
            self.note(
                "TextSource",
                source.name,
                "converted",
                f"the project has a different source {base!r}; stored as {source_id!r}",
            )
        elif source_id != source.name:
            self.note(
                "TextSource",
                source.name,
                "converted",
                f"stored as source id {source_id!r}",
            )

        if case_id is None:
            case_id = source_id
            store_case(self.db, case_id, {}, origin=self.origin)
        case = self.db.execute(
            "SELECT language, attributes FROM cases WHERE id = ?", [case_id]
        ).fetchone()
        language = case[0] or detect_language(source.text)
        self.db.execute(
            "UPDATE cases SET language = ? WHERE id = ? AND language IS NULL",
            [language, case_id],
        )
        attributes = json.loads(case[1] or "{}")

        turns = find_turns(source.text)
        _assign_roles(turns, attributes)
        now = utc_now()
        self.db["sources"].insert(
            {
                "id": source_id,
                "case_id": case_id,
                "path": f"{self.parsed.path}#{source.name}",
                "format": "txt",
                "language": language,
                "text": source.text,
                "content_hash": digest,
                "metadata": json.dumps(attributes, ensure_ascii=False, sort_keys=True),
                "imported_at": now,
                "updated_at": now,
            }
        )
        store_segments(self.db, source_id, source.text, turns, language, self.model)
        self.source_ids[source.guid] = source_id
        self.report.counts["sources"] += 1

    # Codings and notes --------------------------------------------------

    def _write_codings(self, source: ParsedSource) -> None:
        source_id = self.source_ids[source.guid]
        for note_guid in source.note_guids:
            self.note_subjects.setdefault(note_guid, ("source", source_id))
        spans = [(0, len(source.text), None, coding) for coding in source.whole_codings]
        for selection in source.selections:
            if not selection.valid:
                continue
            if not selection.codings:
                for note_guid in selection.note_guids:
                    self.note_subjects.setdefault(note_guid, ("source", source_id))
                    self.note(
                        "PlainTextSelection",
                        f"{source.name} [{selection.start}:{selection.end}]",
                        "converted",
                        "a note on an uncoded selection is stored as a memo on its source",
                    )
                continue
            for index, coding in enumerate(selection.codings):
                # A selection's notes go to its first coding, since qualkit memos attach to codings.
                notes = selection.note_guids if index == 0 else []
                spans.append((selection.start, selection.end, notes, coding))
        for start, end, selection_notes, coding in spans:
            coding_id = self._write_coding(source, source_id, start, end, coding)
            if coding_id is None:
                continue
            for note_guid in [*coding.note_guids, *(selection_notes or [])]:
                self.note_subjects.setdefault(note_guid, ("coding", str(coding_id)))

    def _write_coding(
        self,
        source: ParsedSource,
        source_id: str,
        start: int,
        end: int,
        coding: ParsedCoding,
    ) -> int | None:
        if coding.code_guid is None:
            return None
        label = f"{source.name} [{start}:{end}]"
        code_id = self.code_ids[coding.code_guid]
        coder = self._coder(coding.user_guid, "Coding", label)
        values = {"codebook_version": self.code_versions[code_id]}
        if coding.created:
            values["created_at"] = coding.created
        change = settle_coding(
            self.recorder,
            source_id=source_id,
            code_id=code_id,
            coder=coder,
            start=start,
            end=end,
            on_overlap="merge",
            values=values,
        )
        if change.action == "added":
            self.report.counts["codings"] += 1
        elif change.action == "unchanged":
            self.note(
                "Coding",
                label,
                "merged",
                f"{coder} already has {code_id!r} on this text",
            )
        else:
            self.report.counts["codings"] += 1
            detail = f"{coder}'s overlapping codings of {code_id!r} were {change.action} into one"
            self.note(
                "Coding",
                label,
                change.action,
                detail + (f" ({change.note})" if change.note else ""),
            )
        return change.coding_id

    def _memo_exists(self, subject: tuple[str, str | None], coder: str, text: str) -> bool:
        # A note carries no identity qualkit keeps, so the same subject,
        # author and text mean the same memo: importing a file twice adds none.
        row = self.db.execute(
            "SELECT 1 FROM memos WHERE about = ? AND about_id IS ? AND coder = ? AND text = ?",
            [subject[0], subject[1], coder, text],
        ).fetchone()
        return row is not None

    def _write_notes(self) -> None:
        for guid in self.parsed.project_note_guids:
            self.note_subjects.setdefault(guid, ("project", None))
        for code_guid, note_guids in self.parsed.code_note_guids.items():
            for guid in note_guids:
                self.note_subjects.setdefault(
                    guid, ("code", self.code_ids.get(code_guid))
                )
        for guid, note in self.parsed.notes.items():
            subject = self.note_subjects.get(guid)
            label = note.name or guid
            text = note.text.strip()
            if not text:
                self.note("Note", label, "skipped", "the note is empty")
                continue
            if subject is None or (subject[0] != "project" and subject[1] is None):
                subject = ("project", None)
                self.note(
                    "Note",
                    label,
                    "converted",
                    "the note is not attached to anything qualkit keeps; stored as a project memo",
                )
            coder = self._coder(note.user_guid, "Note", label)
            if self._memo_exists(subject, coder, text):
                self.note("Note", label, "merged", "the project already has this memo")
                continue
            now = utc_now()
            self.recorder.insert(
                "memos",
                {
                    "about": subject[0],
                    "about_id": subject[1],
                    "coder": coder,
                    "text": text,
                    "created_at": note.created or now,
                    "updated_at": note.created or now,
                },
            )
            self.report.counts["memos"] += 1
        for guid in sorted(set(self.note_subjects) - set(self.parsed.notes)):
            subject = self.note_subjects[guid]
            where = subject[0] if subject[1] is None else f"{subject[0]} {subject[1]}"
            self.note(
                "NoteRef",
                guid,
                "warning",
                f"a reference from {where} names a note the file does not have",
            )
