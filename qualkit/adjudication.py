"""Adjudication: settling the coders' judgements into codings of a consensus coder.

For each unit and code that some coder applied, a rule decides whether the
consensus applies the code too:

- ``majority``: applied when more than half of the coders who coded the
  source applied it. A tie is settled by ``accept_from`` when that coder
  coded the source, and is otherwise left unresolved for a person.
- ``union``: applied when any coder applied it.
- ``intersection``: applied when every coder who coded the source applied it.
- ``coder``: the ``accept_from`` coder's judgement, and the majority rule
  where that coder did not code the source.

A decisions file overrides the rule for the units it lists. A consensus
coding takes its offsets from the codings of one coder who applied the code
(``accept_from`` if that coder did, otherwise the first compared coder who
did), clipped to the kept units. Pieces of one coding on consecutive kept
units are joined again, so a coding whose units were all kept keeps its
exact offsets.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import logging
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd
import sqlite_utils

from qualkit import store
from qualkit.agreement import (
    CONSENSUS_META_KEY,
    ReliabilityData,
    Selection,
    UnitJudgement,
    consensus_coders,
    fold_coder_name,
    load_reliability_data,
    shorten_quote,
    unit_judgements,
)
from qualkit.audit import ChangeRecorder, check_coder_name
from qualkit.coding import CodingChange, require_code, settle_coding
from qualkit.errors import InputError, QualkitError

log = logging.getLogger(__name__)

RULES = ("majority", "union", "intersection", "coder")
NO_CODES = ("-", "none")
# The CSV writer of 'qualkit disagreements' puts an apostrophe before a cell
# that starts with one of these, so that a spreadsheet shows it as text.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\0")


@dataclass(frozen=True)
class Piece:
    """A span of one source that the consensus codes with ``code_id``.

    ``coding_id`` is the coder's coding the span was clipped from, or None
    for a span that a decision added.
    """

    source_id: str
    code_id: str
    start: int
    end: int
    value: float | None
    coding_id: int | None


@dataclass
class AdjudicationPlan:
    """The consensus pieces to write and the (unit, code) pairs left for a person."""

    pieces: list[Piece] = field(default_factory=list)
    unresolved: list[dict[str, Any]] = field(default_factory=list)
    decided_units: int = 0


@dataclass
class AdjudicationResult:
    """The changes of an adjudication (none on a dry run) and the ties still open."""

    into: str
    rule: str
    coders: list[str]
    plan: AdjudicationPlan
    changes: list[CodingChange]
    batch_id: str | None

    def counts(self) -> dict[str, int]:
        """Count the changes by action (added, merged, unchanged, accepted)."""
        counted: dict[str, int] = {}
        for change in self.changes:
            counted[change.action] = counted.get(change.action, 0) + 1
        return counted

    def unresolved_frame(self) -> pd.DataFrame:
        """Return the ties left for a person, one row per unit and code."""
        columns = [
            "unit_id",
            "source",
            "start",
            "end",
            "code",
            "applied_by",
            "not_applied_by",
            "quote",
        ]
        return pd.DataFrame(self.plan.unresolved, columns=columns)


# Decisions file ---------------------------------------------------------------------


def read_decisions(
    path: str | Path, data: ReliabilityData
) -> dict[str, dict[str, float | None]]:
    """Read a decisions CSV: per unit id, the codes (with optional =VALUE) the consensus applies.

    The file is the disagreements CSV with its ``decision`` column filled
    in. An empty decision leaves the unit to the rule, and "-" or "none"
    means no code. Raises InputError naming the line of an unknown unit id
    or code, or a value that is not a number.
    """
    path = Path(path)
    known_units = set(all_unit_ids(data))
    known_codes = set(data.codes)
    decisions: dict[str, dict[str, float | None]] = {}
    lines: dict[str, int] = {}
    reader = csv.DictReader(io.StringIO(_decisions_text(path), newline=""))
    fields = reader.fieldnames or []
    absent = [name for name in ("unit_id", "decision") if name not in fields]
    if absent:
        raise InputError(
            f"the decisions file has no {' and no '.join(absent)} column "
            f"(found {', '.join(fields) or 'none'}).",
            path=path,
            line=1,
            fix="Start from 'qualkit disagreements --format csv' and fill in the decision column.",
        )
    for row in reader:
        line = reader.line_num
        unit_id = _unprotected((row.get("unit_id") or "").strip())
        text = (row.get("decision") or "").strip()
        if not text:
            continue
        if unit_id not in known_units:
            raise InputError(
                f"unit {unit_id!r} is not among the compared units.",
                path=path,
                line=line,
                fix="Run 'qualkit adjudicate' with the same --unit, --coder, --code and "
                "--source options as the 'qualkit disagreements' run that wrote the file.",
            )
        chosen = _parse_decision(text, known_codes, path, line)
        if unit_id in decisions and decisions[unit_id] != chosen:
            raise InputError(
                f"unit {unit_id!r} has a different decision on line {lines[unit_id]}.",
                path=path,
                line=line,
                fix="Keep one row per unit, or give the rows the same decision.",
            )
        decisions[unit_id] = chosen
        lines.setdefault(unit_id, line)
    return decisions


def _decisions_text(path: Path) -> str:
    """Return the text of a decisions file: UTF-8, or UTF-16 or UTF-32 with a BOM."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise InputError(
            f"cannot read the decisions file ({error.strerror}).",
            path=path,
            fix="Write it with 'qualkit disagreements --format csv > FILE' and fill in the decision column.",
        ) from error
    # The UTF-32 BOMs start with the UTF-16 ones, so they are tested first.
    encoding = "utf-8-sig"
    for bom, name in (
        (codecs.BOM_UTF32_LE, "utf-32"),
        (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if raw.startswith(bom):
            encoding = name
            break
    fix = "Save it as CSV UTF-8 (in Excel: 'CSV UTF-8 (Comma delimited)')."
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as error:
        raise InputError(
            f"the decisions file is not valid {encoding.removesuffix('-sig').upper()} "
            f"(byte {error.start}).",
            path=path,
            fix=fix,
        ) from error
    if "\0" in text:
        # UTF-16 without a BOM decodes as UTF-8 with a NUL after each ASCII letter.
        raise InputError(
            "the decisions file contains NUL characters (UTF-16 without a BOM?).",
            path=path,
            fix=fix,
        )
    return text


def _unprotected(cell: str) -> str:
    """Remove the apostrophe that the disagreements CSV puts before a formula-like cell."""
    if cell.startswith("'") and cell[1:].startswith(FORMULA_PREFIXES):
        return cell[1:]
    return cell


def all_unit_ids(data: ReliabilityData) -> list[str]:
    """Return the ids of every unit of the compared sources, coded or not.

    Character units are listed as the runs that 'qualkit disagreements'
    prints, because single characters are not written to decisions files.
    """
    if data.unit == "character":
        return [judgement.unit_id for judgement in unit_judgements(data)]
    return [data.unit_id(index) for index in range(data.n_units)]


def _parse_decision(
    text: str, known_codes: set[str], path: Path, line: int
) -> dict[str, float | None]:
    if text.lower() in NO_CODES:
        return {}
    chosen: dict[str, float | None] = {}
    for item in text.replace(";", ",").split(","):
        item = item.strip()
        if not item:
            continue
        code, sep, number = item.partition("=")
        code = code.strip()
        if code not in known_codes:
            raise InputError(
                f"code {code!r} in the decision {text!r} is not one of the compared codes.",
                path=path,
                line=line,
                fix=f"Use codes from: {', '.join(sorted(known_codes))}. Separate them with commas, or write 'none'.",
            )
        value: float | None = None
        if sep:
            try:
                value = float(number)
            except ValueError:
                value = math.nan
            if not math.isfinite(value):
                raise InputError(
                    f"value {number.strip()!r} of code {code!r} is not a number.",
                    path=path,
                    line=line,
                    fix="Write CODE=NUMBER, e.g. tournament=3.",
                )
        if code in chosen:
            raise InputError(
                f"code {code!r} appears twice in the decision {text!r}.",
                path=path,
                line=line,
                fix="List each code once, with at most one =VALUE.",
            )
        chosen[code] = value
    return chosen


# Planning ------------------------------------------------------------------------------


def _decide(
    judgement: UnitJudgement, code: str, rule: str, accept_from: str | None
) -> bool | None:
    """Return whether the consensus applies ``code`` to the unit, or None for an unresolved tie."""
    judged = {c: codes for c, codes in judgement.by_coder.items() if codes is not None}
    applied = [coder for coder, codes in judged.items() if code in codes]
    if len(applied) == len(judged):
        return True
    if rule == "union":
        return bool(applied)
    if rule == "intersection":
        return False
    if rule == "coder" and accept_from in judged:
        return accept_from in applied
    if 2 * len(applied) > len(judged):
        return True
    if 2 * len(applied) < len(judged):
        return False
    if accept_from in judged:
        return accept_from in applied
    return None


def _span_coder(
    judgement: UnitJudgement, code: str, coders: list[str], accept_from: str | None
) -> str | None:
    applied = [
        coder
        for coder in coders
        if judgement.by_coder[coder] is not None and code in judgement.by_coder[coder]
    ]
    if accept_from in applied:
        return accept_from
    return applied[0] if applied else None


def _clipped_codings(
    db: sqlite_utils.Database,
    data: ReliabilityData,
    statuses: tuple[str, ...],
    judgement: UnitJudgement,
    code: str,
    coder: str,
) -> list[Piece]:
    names = data.coder_names[coder]
    rows = db.execute(
        "SELECT id, start_offset, end_offset, value FROM codings WHERE source_id = ? "
        f"AND code_id = ? AND coder IN ({', '.join('?' for _ in names)}) "
        f"AND status IN ({', '.join('?' for _ in statuses)}) "
        "AND start_offset < ? AND end_offset > ? ORDER BY id",
        [judgement.source_id, code, *names, *statuses, judgement.end, judgement.start],
    ).fetchall()
    return [
        Piece(
            judgement.source_id,
            code,
            max(start, judgement.start),
            min(end, judgement.end),
            value,
            coding_id,
        )
        for coding_id, start, end, value in rows
    ]


def plan_adjudication(
    db: sqlite_utils.Database,
    data: ReliabilityData,
    *,
    rule: str = "majority",
    accept_from: str | None = None,
    decisions: dict[str, dict[str, float | None]] | None = None,
    statuses: tuple[str, ...] = ("accepted",),
) -> AdjudicationPlan:
    """Decide every (unit, code) that some coder applied, and collect the consensus pieces."""
    decisions = decisions or {}
    plan = AdjudicationPlan()
    pieces: list[Piece] = []
    undisputed: list[str] = []
    seen: set[str] = set()
    for judgement in unit_judgements(data):
        seen.add(judgement.unit_id)
        applied_codes = sorted(
            {code for codes in judgement.by_coder.values() if codes for code in codes}
        )
        decided = decisions.get(judgement.unit_id)
        if decided is not None:
            plan.decided_units += 1
            if not judgement.disputed():
                undisputed.append(judgement.unit_id)
            for code, value in decided.items():
                pieces += _decided_pieces(
                    db, data, statuses, judgement, code, value, accept_from
                )
            continue
        for code in applied_codes:
            keep = _decide(judgement, code, rule, accept_from)
            if keep is None:
                plan.unresolved.append(_unresolved_row(data, judgement, code))
                continue
            coder = _span_coder(judgement, code, data.coders, accept_from)
            if keep and coder is not None:
                pieces += _clipped_codings(db, data, statuses, judgement, code, coder)

    uncoded = {
        unit_id: decided
        for unit_id, decided in decisions.items()
        if unit_id not in seen
    }
    plan.decided_units += len(uncoded)
    undisputed += uncoded
    pieces += _whole_unit_pieces(data, uncoded)
    if undisputed:
        log.warning(
            "Decisions applied to units on which the coders do not disagree: %s.",
            ", ".join(undisputed),
        )
    plan.pieces = _join_pieces(pieces, data.texts)
    return plan


def _whole_unit_pieces(
    data: ReliabilityData, decisions: dict[str, dict[str, float | None]]
) -> list[Piece]:
    """Code whole units for decisions on units where no coder applies a code.

    That happens for an uncoded sentence, or after the only coding on a unit
    was removed. Only sentence, turn and source unit ids can name such units.
    """
    if not decisions:
        return []
    pieces = []
    for index in range(data.n_units):
        decided = decisions.get(data.unit_id(index))
        if decided is None:
            continue
        source_id = data.sources[data.unit_source[index]]
        start, end = int(data.unit_start[index]), int(data.unit_end[index])
        for code, value in decided.items():
            pieces.append(Piece(source_id, code, start, end, value, None))
    return pieces


def _decided_pieces(
    db: sqlite_utils.Database,
    data: ReliabilityData,
    statuses: tuple[str, ...],
    judgement: UnitJudgement,
    code: str,
    value: float | None,
    accept_from: str | None,
) -> list[Piece]:
    coder = _span_coder(judgement, code, data.coders, accept_from)
    if coder is None:
        # No coder applied the code here, so the decision codes the whole unit.
        return [
            Piece(
                judgement.source_id, code, judgement.start, judgement.end, value, None
            )
        ]
    found = _clipped_codings(db, data, statuses, judgement, code, coder)
    if value is None:
        return found
    return [
        Piece(p.source_id, p.code_id, p.start, p.end, value, p.coding_id) for p in found
    ]


def _unresolved_row(
    data: ReliabilityData, judgement: UnitJudgement, code: str
) -> dict[str, Any]:
    judged = {c: codes for c, codes in judgement.by_coder.items() if codes is not None}
    text = data.texts[judgement.source_id][judgement.start : judgement.end]
    return {
        "unit_id": judgement.unit_id,
        "source": judgement.source_id,
        "start": judgement.start,
        "end": judgement.end,
        "code": code,
        "applied_by": ", ".join(c for c, codes in judged.items() if code in codes),
        "not_applied_by": ", ".join(
            c for c, codes in judged.items() if code not in codes
        ),
        "quote": shorten_quote(text),
    }


def _join_pieces(pieces: list[Piece], texts: dict[str, str]) -> list[Piece]:
    """Join pieces of one coding separated only by whitespace, and drop duplicates."""
    ordered = sorted(
        set(pieces),
        key=lambda p: (p.source_id, p.code_id, p.coding_id or -1, p.start, p.end),
    )
    joined: list[Piece] = []
    for piece in ordered:
        last = joined[-1] if joined else None
        same_coding = (
            last is not None
            and piece.coding_id is not None
            and (last.source_id, last.code_id, last.coding_id, last.value)
            == (piece.source_id, piece.code_id, piece.coding_id, piece.value)
        )
        if same_coding and last is not None:
            gap = texts[piece.source_id][last.end : piece.start]
            if piece.start <= last.end or not gap.strip():
                joined[-1] = Piece(
                    last.source_id,
                    last.code_id,
                    last.start,
                    max(last.end, piece.end),
                    last.value,
                    last.coding_id,
                )
                continue
        joined.append(piece)
    return joined


def _trimmed(text: str, start: int, end: int) -> tuple[int, int] | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None


# Writing -----------------------------------------------------------------------------


def _existing_spelling(db: sqlite_utils.Database, name: str) -> str:
    """Return the stored spelling of a coder name compared without case, or ``name`` if new."""
    for (stored,) in db.execute("SELECT DISTINCT coder FROM codings ORDER BY coder"):
        if fold_coder_name(stored) == fold_coder_name(name):
            return stored
    return name


def _check_into(db: sqlite_utils.Database, into: str) -> None:
    """Raise QualkitError when ``into`` names a coder with codings of their own."""
    folded = fold_coder_name(into)
    if folded in {fold_coder_name(name) for name in consensus_coders(db)}:
        return
    own = sum(
        count
        for name, count in db.execute("SELECT coder, count(*) FROM codings GROUP BY coder")
        if fold_coder_name(name) == folded
    )
    if own:
        raise QualkitError(
            f"The consensus coder {into!r} already has {own} codings of their own, so "
            "consensus codings would mix with them and later agreement runs would leave "
            "that coder out. Pass a new name with --into, e.g. --into consensus."
        )


def adjudicate(
    db: sqlite_utils.Database,
    selection: Selection,
    *,
    into: str,
    by: str,
    rule: str = "majority",
    accept_from: str | None = None,
    decisions_path: str | Path | None = None,
    dry_run: bool = False,
    command: str = "adjudicate",
) -> AdjudicationResult:
    """Write the consensus coder's codings in one transaction, recorded for 'qualkit undo'.

    ``by`` is the person recorded in the audit log, so 'qualkit undo
    --coder BY' takes the whole adjudication back. Raises QualkitError for
    an unknown rule, an ``into`` name that is one of the compared coders or
    has codings of its own without being a consensus coder, or a missing
    ``accept_from`` coder.
    """
    if rule not in RULES:
        raise QualkitError(f"Unknown rule {rule!r}. Use one of: {', '.join(RULES)}.")
    into = _existing_spelling(db, check_coder_name(into))
    selection = replace(selection, exclude_coders=(*selection.exclude_coders, into))
    data = load_reliability_data(db, selection)
    folded = {fold_coder_name(coder): coder for coder in data.coders}
    if fold_coder_name(into) in folded:
        raise QualkitError(
            f"The consensus coder {into!r} is one of the compared coders. Pass another "
            "name with --into, e.g. --into consensus."
        )
    _check_into(db, into)
    if rule == "coder" and not accept_from:
        raise QualkitError(
            "--rule coder takes the judgements of one coder. Name it with --accept-from CODER."
        )
    if accept_from is not None:
        if fold_coder_name(accept_from) not in folded:
            raise QualkitError(
                f"--accept-from {accept_from!r} is not one of the compared coders "
                f"({', '.join(data.coders)}). Pass one of them, or add it with --coder."
            )
        accept_from = folded[fold_coder_name(accept_from)]
    decisions = read_decisions(decisions_path, data) if decisions_path else None
    plan = plan_adjudication(
        db,
        data,
        rule=rule,
        accept_from=accept_from,
        decisions=decisions,
        statuses=selection.statuses,
    )
    result = AdjudicationResult(into, rule, data.coders, plan, [], None)
    if dry_run:
        return result
    with store.transaction(db):
        recorder = ChangeRecorder(db, by, command)
        for piece in plan.pieces:
            span = _trimmed(data.texts[piece.source_id], piece.start, piece.end)
            if span is None:
                continue
            code = require_code(db, piece.code_id, active=False)
            result.changes.append(
                settle_coding(
                    recorder,
                    source_id=piece.source_id,
                    code_id=piece.code_id,
                    coder=into,
                    start=span[0],
                    end=span[1],
                    on_overlap="merge",
                    values={
                        "codebook_version": code["codebook_version"],
                        "value": piece.value,
                    },
                )
            )
        known = consensus_coders(db)
        if fold_coder_name(into) not in {fold_coder_name(name) for name in known}:
            store.set_meta(
                db, CONSENSUS_META_KEY, json.dumps([*known, into], ensure_ascii=False)
            )
        if recorder.entries:
            store.touch(db)
        result.batch_id = recorder.batch_id if recorder.entries else None
    return result
