"""Manual coding: locating spans, adding, moving and removing codings, listing them.

Spans are Unicode code point offsets into ``sources.text`` with the end
exclusive, as everywhere in qualkit. One coder never has two codings of
the same code on overlapping spans. A new or moved span that overlaps the
coder's own coding of that code is merged into it (the union of the spans),
or the write stops with an error, as the caller chooses. Codings with
status rejected are decisions about a span, not claims, so they take no
part in merging.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import sqlite_utils

from qualkit.audit import ChangeRecorder, snapshot
from qualkit.errors import InputError, NotFoundError, QualkitError
from qualkit.store import utc_now

STATUSES = ("suggested", "accepted", "rejected")
ORIGINS = ("manual", "auto")
OVERLAP_POLICIES = ("merge", "error")
SEGMENT_UNITS = ("sentence", "turn")
# Case columns that --where can filter on; other names are looked up in the
# transcript's front matter attributes.
CASE_COLUMNS = ("province", "level", "date", "language", "appendix_group")
FIELD_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


# Looking things up ----------------------------------------------------------


def _suggest(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    return f" Did you mean {', '.join(close)}?" if close else ""


def source_text(db: sqlite_utils.Database, source_id: str) -> str:
    """Return the text of a source, or raise NotFoundError naming close ids."""
    row = db.execute("SELECT text FROM sources WHERE id = ?", [source_id]).fetchone()
    if row is None:
        known = [r[0] for r in db.execute("SELECT id FROM sources")]
        raise NotFoundError(
            f"Source {source_id!r} not found.{_suggest(source_id, known)} "
            "Run 'qualkit sources' to list the source ids."
        )
    return row[0]


def require_code(
    db: sqlite_utils.Database, code_id: str, *, active: bool = True
) -> dict[str, Any]:
    """Return the stored code ``code_id`` as a dict, or raise NotFoundError.

    With ``active`` set, a code dropped from the current codebook is an error too.
    """
    row = snapshot(db, "codes", code_id)
    if row is None:
        known = [r[0] for r in db.execute("SELECT id FROM codes WHERE active = 1")]
        if not known:
            raise NotFoundError(
                "No codebook is stored in this database. Run 'qualkit codebook apply FILE' "
                "or 'qualkit autocode' first."
            )
        raise NotFoundError(
            f"Code {code_id!r} not found in the codebook.{_suggest(code_id, known)} "
            "Run 'qualkit codebook show' to list the codes."
        )
    if active and not row["active"]:
        raise QualkitError(
            f"Code {code_id!r} is not in the current codebook (it was dropped or renamed). "
            "Run 'qualkit codebook show' to list the current codes."
        )
    return row


def require_coding(db: sqlite_utils.Database, coding_id: int) -> dict[str, Any]:
    """Return the coding with id ``coding_id`` as a dict, or raise NotFoundError."""
    row = snapshot(db, "codings", coding_id)
    if row is None:
        raise NotFoundError(
            f"Coding #{coding_id} not found. Run 'qualkit code list' for the ids."
        )
    return row


# Spans ------------------------------------------------------------------------


def check_span(text: str, source_id: str, start: int, end: int) -> tuple[int, int]:
    """Validate a span of ``text`` and return it without leading or trailing whitespace."""
    if start == end:
        raise InputError(
            f"span {start}:{end} is empty.",
            fix="Give START:END with END greater than START (the end is exclusive).",
        )
    # The range check comes first, so a negative offset is never "fixed" by
    # swapping it into another invalid span.
    if min(start, end) < 0 or max(start, end) > len(text):
        raise InputError(
            f"span {start}:{end} is outside source {source_id!r}, whose text has "
            f"{len(text)} characters (offsets 0 to {len(text)}).",
            fix="Offsets count Unicode characters from 0; the end is exclusive.",
        )
    if start > end:
        raise InputError(
            f"span {start}:{end} is reversed: the start is after the end.",
            fix=f"Did you mean {end}:{start}?",
        )
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if start == end:
        raise InputError(f"span of source {source_id!r} contains only whitespace.")
    return start, end


def segment_span(
    db: sqlite_utils.Database, source_id: str, position: int, unit: str = "sentence"
) -> tuple[int, int]:
    """Return the offsets of the sentence (or turn) at ``position`` of a source.

    Positions are those that ``list_segments`` shows, counted from 0 within
    the source. ``turn`` also finds paragraphs of transcripts without speakers.
    """
    source_text(db, source_id)
    kinds = ("sentence",) if unit == "sentence" else ("turn", "paragraph")
    marks = ", ".join("?" for _ in kinds)
    row = db.execute(
        f"SELECT start_offset, end_offset FROM segments WHERE source_id = ? "
        f"AND kind IN ({marks}) AND position = ?",
        [source_id, *kinds, position],
    ).fetchone()
    if row is None:
        count = db.execute(
            f"SELECT count(*) FROM segments WHERE source_id = ? AND kind IN ({marks})",
            [source_id, *kinds],
        ).fetchone()[0]
        valid = f"positions 0 to {count - 1}" if count else f"no {unit}s"
        raise NotFoundError(
            f"Source {source_id!r} has no {unit} at position {position} ({valid}). "
            f"Run 'qualkit code segments {source_id} --unit {unit}' to list them."
        )
    return row[0], row[1]


def match_span(
    text: str, source_id: str, match: str, occurrence: int | None = None
) -> tuple[int, int]:
    """Return the span of the ``occurrence``-th (from 1) exact occurrence of ``match``.

    Without ``occurrence`` the text must occur exactly once, so that a phrase
    repeated elsewhere in the interview is never coded by accident.
    """
    if not match.strip():
        raise InputError("the --match text is empty.", fix="Give the words to code.")
    starts = [found.start() for found in re.finditer(re.escape(match), text)]
    if not starts:
        hint = ""
        folded = text.casefold().find(match.casefold())
        if folded >= 0:
            hint = f" It occurs with other capitals as {text[folded : folded + len(match)]!r} at offset {folded}."
        raise InputError(
            f"text {match!r} does not occur in source {source_id!r}.{hint}",
            fix="Matching is exact (case, spaces and punctuation). Copy the words from "
            "'qualkit code segments' or search with 'qualkit query kwic'.",
        )
    if occurrence is None:
        if len(starts) > 1:
            where = ", ".join(str(s) for s in starts[:10])
            raise InputError(
                f"text {match!r} occurs {len(starts)} times in source {source_id!r} (at offsets {where}).",
                fix="Pass --occurrence K to choose one (1 is the first), or a longer --match text.",
            )
        occurrence = 1
    if occurrence < 1 or occurrence > len(starts):
        raise InputError(
            f"text {match!r} occurs {len(starts)} time(s) in source {source_id!r}, "
            f"so occurrence {occurrence} does not exist.",
            fix=f"Pass --occurrence between 1 and {len(starts)}.",
        )
    start = starts[occurrence - 1]
    return start, start + len(match)


def locate_span(
    db: sqlite_utils.Database,
    source_id: str,
    *,
    span: tuple[int, int] | None = None,
    segment: int | None = None,
    unit: str = "sentence",
    match: str | None = None,
    occurrence: int | None = None,
) -> tuple[int, int]:
    """Return the checked span given by exactly one of ``span``, ``segment`` or ``match``."""
    span_options = [
        name
        for name, value in (("span", span), ("segment", segment), ("match", match))
        if value is not None
    ]
    if len(span_options) != 1:
        raise InputError(
            "give the span with exactly one of --span, --segment or --match."
        )
    text = source_text(db, source_id)
    if span is not None:
        start, end = span
    elif segment is not None:
        start, end = segment_span(db, source_id, segment, unit)
    else:
        start, end = match_span(text, source_id, match or "", occurrence)
    return check_span(text, source_id, start, end)


# Filters ----------------------------------------------------------------------


@dataclass(frozen=True)
class CodingFilter:
    """Which codings a listing, review, query or export takes.

    ``codes`` include their child codes. ``where`` contains (field, values)
    pairs: a case column such as province or level, or a front matter
    attribute, compared without regard to case.
    """

    codes: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    coders: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    origins: tuple[str, ...] = ()
    where: tuple[tuple[str, tuple[str, ...]], ...] = ()
    targets: tuple[str, ...] = ()
    ids: tuple[int, ...] = ()
    needs_review: bool | None = None


def parse_where(
    items: tuple[str, ...] | list[str],
) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Parse ``FIELD=VALUE[,VALUE...]`` items into CodingFilter.where pairs."""
    pairs = []
    for item in items:
        name, sep, values = item.partition("=")
        name = name.strip().lower()
        if not sep or not name or not values.strip():
            raise InputError(
                f"metadata filter {item!r} is not FIELD=VALUE.",
                fix="Write for example --where province=Sichuan or --where level=city,county.",
            )
        if not FIELD_NAME.match(name):
            raise InputError(
                f"metadata field {name!r} is not a valid field name.",
                fix="Use lowercase letters, digits and underscores, as in the front matter.",
            )
        pairs.append((name, tuple(v.strip() for v in values.split(",") if v.strip())))
    return tuple(pairs)


def metadata_fields(db: sqlite_utils.Database) -> list[str]:
    """Return every metadata field a filter can use: case columns and front matter attributes."""
    names = set(CASE_COLUMNS) | {"case"}
    for (keys,) in db.execute(
        "SELECT DISTINCT key FROM sources, json_each(sources.metadata) "
        "UNION SELECT DISTINCT key FROM cases, json_each(cases.attributes)"
    ):
        names.add(str(keys))
    return sorted(names)


def metadata_expression(db: sqlite_utils.Database, name: str) -> tuple[str, list[Any]]:
    """Return SQL (over ``s`` sources and ``k`` cases) for a metadata field, with its parameters."""
    if name == "case":
        return "k.id", []
    if name in CASE_COLUMNS:
        return f"k.[{name}]", []
    if name not in metadata_fields(db):
        raise InputError(
            f"unknown metadata field {name!r}.",
            fix=f"Use one of: {', '.join(metadata_fields(db))}.",
        )
    path = f'$."{name}"'
    return "coalesce(json_extract(s.metadata, ?), json_extract(k.attributes, ?))", [
        path,
        path,
    ]


def code_clause(
    codes: tuple[str, ...] | list[str], column: str = "c.code_id"
) -> tuple[str, list[Any]]:
    """Return SQL matching any of ``codes`` or their child codes."""
    parts, params = [], []
    for code in codes:
        parts.append(f"({column} = ? OR {column} LIKE ? ESCAPE '\\')")
        params += [code, code.replace("_", "\\_") + ".%"]
    return "(" + " OR ".join(parts) + ")", params


def filter_clause(
    db: sqlite_utils.Database, selection: CodingFilter | None
) -> tuple[str, list[Any]]:
    """Return a WHERE clause (without the keyword) over ``c`` codings, ``s`` sources, ``k`` cases.

    Raises NotFoundError for codes, sources and targets that do not exist.
    """
    selection = selection or CodingFilter()
    clauses: list[str] = []
    params: list[Any] = []
    if selection.codes:
        for code in selection.codes:
            require_code(db, code, active=False)
        sql, values = code_clause(selection.codes)
        clauses.append(sql)
        params += values
    if selection.sources:
        for source in selection.sources:
            source_text(db, source)
        clauses.append(f"c.source_id IN ({', '.join('?' for _ in selection.sources)})")
        params += selection.sources
    for column, values in (
        ("coder", selection.coders),
        ("status", selection.statuses),
        ("origin", selection.origins),
    ):
        if values:
            clauses.append(f"c.{column} IN ({', '.join('?' for _ in values)})")
            params += values
    if selection.ids:
        clauses.append(f"c.id IN ({', '.join('?' for _ in selection.ids)})")
        params += selection.ids
    if selection.needs_review is not None:
        clauses.append("c.needs_review = ?")
        params.append(int(selection.needs_review))
    for name, values in selection.where:
        expression, expression_params = metadata_expression(db, name)
        clauses.append(
            f"lower({expression}) IN ({', '.join('lower(?)' for _ in values)})"
        )
        params += expression_params + list(values)
    if selection.targets:
        known = {row[0] for row in db.execute("SELECT id FROM targets")}
        for target in selection.targets:
            if target not in known:
                raise NotFoundError(
                    f"Target {target!r} not found.{_suggest(target, sorted(known))}"
                )
        clauses.append(
            "c.id IN (SELECT coding_id FROM quote_links WHERE target_id IN "
            f"({', '.join('?' for _ in selection.targets)}))"
        )
        params += selection.targets
    return (" AND ".join(clauses) or "1"), params


CODING_FROM = "FROM codings c JOIN sources s ON s.id = c.source_id JOIN cases k ON k.id = s.case_id"


def list_codings(
    db: sqlite_utils.Database, selection: CodingFilter | None = None
) -> pd.DataFrame:
    """Return the codings that ``selection`` takes, with case metadata and linked targets."""
    where, params = filter_clause(db, selection)
    return pd.read_sql_query(
        "SELECT c.id, c.source_id, k.province, k.level, c.start_offset, c.end_offset, "
        "c.code_id, c.coder, c.origin, c.status, c.codebook_version, c.needs_review, "
        "(SELECT group_concat(target_id, ',') FROM quote_links l WHERE l.coding_id = c.id) AS targets, "
        f"c.value, c.quote {CODING_FROM} WHERE {where} ORDER BY c.source_id, c.start_offset, c.code_id, c.id",
        db.conn,
        params=params,
    )


def list_segments(
    db: sqlite_utils.Database, source_id: str, unit: str = "sentence"
) -> pd.DataFrame:
    """Return a source's sentences (or turns) with the positions that --segment takes."""
    source_text(db, source_id)
    kinds = ("sentence",) if unit == "sentence" else ("turn", "paragraph")
    text = source_text(db, source_id)
    rows = db.execute(
        f"SELECT position, start_offset, end_offset, speaker FROM segments WHERE source_id = ? "
        f"AND kind IN ({', '.join('?' for _ in kinds)}) ORDER BY position",
        [source_id, *kinds],
    ).fetchall()
    records = [
        {
            "position": p,
            "start_offset": s,
            "end_offset": e,
            "speaker": speaker,
            "text": " ".join(text[s:e].split()),
        }
        for p, s, e, speaker in rows
    ]
    return pd.DataFrame(
        records, columns=["position", "start_offset", "end_offset", "speaker", "text"]
    )


# Writes -----------------------------------------------------------------------


@dataclass
class CodingChange:
    """The result of a write to one coding.

    ``action`` is added, merged, moved, unchanged, accepted, rejected or
    removed. ``absorbed`` lists the codings merged into ``coding_id`` and
    deleted.
    """

    coding_id: int
    action: str
    source_id: str
    code_id: str
    start: int
    end: int
    absorbed: list[int] = field(default_factory=list)
    note: str = ""

    def describe(self) -> str:
        """Return a one-line message for the command's output."""
        text = f"Coding #{self.coding_id} {self.action}: {self.code_id} on {self.source_id} {self.start}:{self.end}"
        if self.absorbed:
            text += f" (merged with {', '.join(f'#{i}' for i in self.absorbed)})"
        if self.note:
            text += f". {self.note}"
        return text + "."


def _own_codings(
    db: sqlite_utils.Database,
    source_id: str,
    code_id: str,
    coder: str,
    start: int,
    end: int,
    exclude: int | None,
) -> list[dict[str, Any]]:
    cursor = db.execute(
        "SELECT * FROM codings WHERE source_id = ? AND code_id = ? AND coder = ? "
        "AND status != 'rejected' AND start_offset < ? AND end_offset > ? AND id IS NOT ?",
        [source_id, code_id, coder, end, start, exclude],
    )
    columns = [d[0] for d in cursor.description]
    return [dict(zip(columns, row)) for row in cursor.fetchall()]


def _overlap_group(
    db: sqlite_utils.Database,
    source_id: str,
    code_id: str,
    coder: str,
    start: int,
    end: int,
    exclude: int | None,
) -> tuple[list[dict[str, Any]], int, int]:
    """Return the coder's codings of the code that overlap the span, and the union span.

    Repeats until the union overlaps nothing new, since codings that broke
    the rule earlier (through a codebook merge) may chain.
    """
    group: dict[int, dict[str, Any]] = {}
    while True:
        found = [
            row
            for row in _own_codings(db, source_id, code_id, coder, start, end, exclude)
            if row["id"] not in group
        ]
        if not found:
            return list(group.values()), start, end
        for row in found:
            group[row["id"]] = row
            start, end = min(start, row["start_offset"]), max(end, row["end_offset"])


def _twin(
    db: sqlite_utils.Database,
    source_id: str,
    start: int,
    end: int,
    code_id: str,
    coder: str,
    exclude: int | None,
) -> dict[str, Any] | None:
    """Return the coding that the UNIQUE key (source, span, code, coder) would collide with."""
    row = db.execute(
        "SELECT id FROM codings WHERE source_id = ? AND start_offset = ? AND end_offset = ? "
        "AND code_id = ? AND coder = ? AND id IS NOT ?",
        [source_id, start, end, code_id, coder, exclude],
    ).fetchone()
    return snapshot(db, "codings", row[0]) if row else None


def _overlap_error(
    coder: str,
    code_id: str,
    source_id: str,
    start: int,
    end: int,
    group: list[dict[str, Any]],
) -> QualkitError:
    spans = ", ".join(
        f"#{row['id']} at {row['start_offset']}:{row['end_offset']}" for row in group
    )
    return QualkitError(
        f"{coder} already coded {code_id} on {source_id} in a span overlapping {start}:{end} ({spans}). "
        "Change that coding with 'qualkit code move', or pass --on-overlap merge to join the spans."
    )


def delete_coding(
    recorder: ChangeRecorder, coding_id: int, *, memos_to: int | None = None
) -> None:
    """Delete a coding with its quote-target links and memos, all through the recorder.

    With ``memos_to``, memos and manual target links move to that coding
    instead of being deleted (used when codings merge).
    """
    db = recorder.db
    for target_id, origin in db.execute(
        "SELECT target_id, origin FROM quote_links WHERE coding_id = ?", [coding_id]
    ).fetchall():
        link = recorder.delete("quote_links", (coding_id, target_id))
        kept_has_it = (
            memos_to is not None
            and snapshot(db, "quote_links", (memos_to, target_id)) is not None
        )
        if memos_to is not None and origin == "manual" and link and not kept_has_it:
            recorder.insert("quote_links", {**link, "coding_id": memos_to})
    for (memo_id,) in db.execute(
        "SELECT id FROM memos WHERE about = 'coding' AND about_id = ?", [str(coding_id)]
    ).fetchall():
        if memos_to is None:
            recorder.delete("memos", memo_id)
        else:
            recorder.update(
                "memos", memo_id, {"about_id": str(memos_to), "updated_at": utc_now()}
            )
    recorder.delete("codings", coding_id)


def settle_coding(
    recorder: ChangeRecorder,
    *,
    source_id: str,
    code_id: str,
    coder: str,
    start: int,
    end: int,
    on_overlap: str = "merge",
    existing: dict[str, Any] | None = None,
    values: dict[str, Any] | None = None,
) -> CodingChange:
    """Place one coding of ``coder`` on a span, keeping the one-coding-per-overlap rule.

    ``existing`` is a coding being moved or taken over (it becomes the
    coder's); without it a new coding is inserted from ``values``. Overlapping
    codings of the coder and code merge into one spanning them all, or raise
    QualkitError when ``on_overlap`` is "error". The coder's rejected coding
    with exactly the final span is taken over by a new coding, or deleted
    when an existing coding moves onto that span.
    """
    db = recorder.db
    text = source_text(db, source_id)
    exclude = existing["id"] if existing else None
    group, union_start, union_end = _overlap_group(
        db, source_id, code_id, coder, start, end, exclude
    )
    if group and on_overlap == "error":
        raise _overlap_error(coder, code_id, source_id, start, end, group)
    keep = existing
    if keep is None and group:
        exact = [
            row
            for row in group
            if (row["start_offset"], row["end_offset"]) == (union_start, union_end)
        ]
        keep = exact[0] if exact else min(group, key=lambda row: row["id"])
    absorbed = [row["id"] for row in group if keep is None or row["id"] != keep["id"]]
    if (
        keep is not None
        and existing is None
        and not absorbed
        and (keep["start_offset"], keep["end_offset"]) == (union_start, union_end)
    ):
        return CodingChange(
            keep["id"],
            "unchanged",
            source_id,
            code_id,
            union_start,
            union_end,
            note=f"{coder} already has this code on a span that covers it",
        )
    target_id = keep["id"] if keep else None
    for coding_id in absorbed:
        delete_coding(recorder, coding_id, memos_to=target_id)
    # Only a rejected coding can have exactly the final span, because a live
    # one would overlap it. A new coding takes it over, a kept one replaces it.
    twin = _twin(db, source_id, union_start, union_end, code_id, coder, target_id)
    note = ""
    now = utc_now()
    placed = {
        "start_offset": union_start,
        "end_offset": union_end,
        "quote": text[union_start:union_end],
        "updated_at": now,
    }
    if keep is None and twin is not None:
        note = "it was rejected before and is now accepted"
        recorder.update(
            "codings",
            twin["id"],
            {**(values or {}), "origin": "manual", "status": "accepted", **placed},
        )
        return CodingChange(
            twin["id"],
            "accepted",
            source_id,
            code_id,
            union_start,
            union_end,
            note=note,
        )
    if twin is not None:
        delete_coding(recorder, twin["id"], memos_to=target_id)
        note = f"it replaces the rejected coding #{twin['id']} of the same span"
    if keep is None:
        row = {
            "source_id": source_id,
            "code_id": code_id,
            "coder": coder,
            "origin": "manual",
            "status": "accepted",
            "created_at": now,
            **(values or {}),
            **placed,
        }
        coding_id = recorder.insert("codings", row)
        action = "added"
    else:
        recorder.update(
            "codings", keep["id"], {**(values or {}), "coder": coder, **placed}
        )
        coding_id = keep["id"]
        action = "merged" if absorbed or existing is None else "moved"
    return CodingChange(
        coding_id, action, source_id, code_id, union_start, union_end, absorbed, note
    )


def add_coding(
    recorder: ChangeRecorder,
    source_id: str,
    code_id: str,
    start: int,
    end: int,
    *,
    on_overlap: str = "merge",
    value: float | None = None,
) -> CodingChange:
    """Add the recorder's coder's manual, accepted coding of ``code_id`` on a span.

    The coding carries the codebook version of its code and, when given,
    a number (``value``, e.g. an intensity rating) for ordinal, interval or
    ratio agreement. The caller opens the transaction.
    """
    db = recorder.db
    code = require_code(db, code_id)
    start, end = check_span(source_text(db, source_id), source_id, start, end)
    values: dict[str, Any] = {"codebook_version": code["codebook_version"]}
    if value is not None:
        if not math.isfinite(value):
            raise InputError(
                f"the coding value {value!r} is not a finite number.",
                fix="Give a number such as 2 or 0.5 with --value.",
            )
        values["value"] = float(value)
    return settle_coding(
        recorder,
        source_id=source_id,
        code_id=code_id,
        coder=recorder.coder,
        start=start,
        end=end,
        on_overlap=on_overlap,
        values=values,
    )


def move_coding(
    recorder: ChangeRecorder,
    coding_id: int,
    start: int,
    end: int,
    *,
    on_overlap: str = "merge",
) -> CodingChange:
    """Give an existing coding a new span of its source; suggestions must be reviewed instead."""
    db = recorder.db
    row = require_coding(db, coding_id)
    if row["status"] == "suggested":
        raise QualkitError(
            f"Coding #{coding_id} is an auto-coding suggestion. Accept it first "
            "('qualkit review'), then move it, or add your own coding with 'qualkit code add'."
        )
    start, end = check_span(
        source_text(db, row["source_id"]), row["source_id"], start, end
    )
    if (start, end) == (row["start_offset"], row["end_offset"]):
        return CodingChange(
            coding_id,
            "unchanged",
            row["source_id"],
            row["code_id"],
            start,
            end,
            note="the span is the same",
        )
    policy = on_overlap if row["status"] != "rejected" else "merge"
    change = settle_coding(
        recorder,
        source_id=row["source_id"],
        code_id=row["code_id"],
        coder=row["coder"],
        start=start,
        end=end,
        on_overlap=policy,
        existing=row,
        values={"needs_review": 0},
    )
    return change


def remove_codings(
    recorder: ChangeRecorder, coding_ids: list[int]
) -> list[CodingChange]:
    """Delete codings with their target links and memos; suggestions must be rejected instead."""
    db = recorder.db
    rows = [require_coding(db, coding_id) for coding_id in coding_ids]
    for row in rows:
        if row["status"] == "suggested":
            raise QualkitError(
                f"Coding #{row['id']} is an auto-coding suggestion, which the next auto-coding "
                f"run would suggest again. Reject it instead: 'qualkit review --reject --id {row['id']}'."
            )
    changes = []
    for row in rows:
        delete_coding(recorder, row["id"])
        changes.append(
            CodingChange(
                row["id"],
                "removed",
                row["source_id"],
                row["code_id"],
                row["start_offset"],
                row["end_offset"],
            )
        )
    return changes
