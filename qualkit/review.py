"""Review of auto-coding suggestions: the queue, the decisions and each coder's place.

A decision makes the suggestion the reviewing coder's: accepting sets its
status to accepted and its coder to the reviewer, rejecting does the same
with status rejected. Auto-coding never re-suggests a span and code that a
coder has decided. Recoding rejects the suggestion and adds the reviewer's
own coding of another code on the same span.

The terminal screen lives in ``qualkit.cli.review``. Everything it does goes
through ``ReviewSession``, which commits each decision in its own transaction
and batch, so ``qualkit undo`` takes back one decision at a time.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from qualkit import store
from qualkit.audit import ChangeRecorder, ensure_history_tables, snapshot
from qualkit.coding import (
    CODING_FROM,
    CodingChange,
    CodingFilter,
    add_coding,
    delete_coding,
    filter_clause,
    require_code,
    require_coding,
    settle_coding,
)
from qualkit.errors import NotFoundError, QualkitError
from qualkit.memos import add_memo
from qualkit.store import utc_now

ORDER = "c.source_id, c.start_offset, c.code_id, c.id"
CONTEXT_CHARACTERS = 240


def suggestion_ids(
    db: sqlite_utils.Database, selection: CodingFilter | None = None
) -> list[int]:
    """Return the ids of the suggestions that ``selection`` takes, in review order."""
    selection = dataclasses.replace(
        selection or CodingFilter(), statuses=("suggested",)
    )
    where, params = filter_clause(db, selection)
    return [
        row[0]
        for row in db.execute(
            f"SELECT c.id {CODING_FROM} WHERE {where} ORDER BY {ORDER}", params
        )
    ]


def sort_key(row: dict[str, Any]) -> list[Any]:
    """Return a coding's place in review order."""
    return [row["source_id"], row["start_offset"], row["code_id"], row["id"]]


def _check_reviewable(row: dict[str, Any], coder: str) -> None:
    if row["status"] != "suggested" and row["coder"] != coder:
        raise QualkitError(
            f"Coding #{row['id']} was decided by {row['coder']!r}, not a suggestion. "
            "Review takes suggestions and your own decisions only."
        )


def accept_suggestion(recorder: ChangeRecorder, coding_id: int) -> CodingChange:
    """Accept a suggestion as the recorder's coder, merging it with the coder's overlapping coding of the code.

    NOTE: when the merge widens the span, no coding keeps the suggested span,
    so the next auto-coding run that re-codes the source suggests it again.
    """
    row = require_coding(recorder.db, coding_id)
    _check_reviewable(row, recorder.coder)
    if row["status"] == "accepted":
        return CodingChange(
            coding_id,
            "unchanged",
            row["source_id"],
            row["code_id"],
            row["start_offset"],
            row["end_offset"],
            note="it is accepted already",
        )
    change = settle_coding(
        recorder,
        source_id=row["source_id"],
        code_id=row["code_id"],
        coder=recorder.coder,
        start=row["start_offset"],
        end=row["end_offset"],
        existing=row,
        values={"status": "accepted", "needs_review": 0},
    )
    change.action = "accepted"
    return change


def reject_suggestion(recorder: ChangeRecorder, coding_id: int) -> CodingChange:
    """Reject a suggestion as the recorder's coder."""
    db = recorder.db
    row = require_coding(db, coding_id)
    _check_reviewable(row, recorder.coder)
    change = CodingChange(
        coding_id,
        "rejected",
        row["source_id"],
        row["code_id"],
        row["start_offset"],
        row["end_offset"],
    )
    twin = db.execute(
        "SELECT id, status FROM codings WHERE source_id = ? AND start_offset = ? AND end_offset = ? "
        "AND code_id = ? AND coder = ? AND id != ?",
        [
            row["source_id"],
            row["start_offset"],
            row["end_offset"],
            row["code_id"],
            recorder.coder,
            coding_id,
        ],
    ).fetchone()
    if twin is not None and twin[1] == "rejected":
        delete_coding(recorder, coding_id, memos_to=twin[0])
        change.coding_id, change.note = twin[0], "you had rejected this span already"
        return change
    if twin is not None:
        raise QualkitError(
            f"You coded this span with {row['code_id']} yourself (coding #{twin[0]}). "
            f"Remove that coding first ('qualkit code remove {twin[0]}') to reject the suggestion."
        )
    recorder.update(
        "codings",
        coding_id,
        {
            "status": "rejected",
            "coder": recorder.coder,
            "needs_review": 0,
            "updated_at": utc_now(),
        },
    )
    return change


def recode_suggestion(
    recorder: ChangeRecorder, coding_id: int, code_id: str
) -> list[CodingChange]:
    """Reject a suggestion and code its span with ``code_id`` instead."""
    row = require_coding(recorder.db, coding_id)
    require_code(recorder.db, code_id)
    if code_id == row["code_id"]:
        return [accept_suggestion(recorder, coding_id)]
    rejected = reject_suggestion(recorder, coding_id)
    added = add_coding(
        recorder, row["source_id"], code_id, row["start_offset"], row["end_offset"]
    )
    return [rejected, added]


def bulk_decide(
    db: sqlite_utils.Database,
    coder: str,
    decision: str,
    selection: CodingFilter,
    *,
    command: str,
) -> tuple[str, list[CodingChange]]:
    """Accept or reject every suggestion that ``selection`` takes, as one batch.

    Returns the batch id and the changes. The caller opens the transaction.
    Raises NotFoundError, and writes nothing, when no suggestion matches.
    """
    if decision not in ("accept", "reject"):
        raise ValueError(f"decision must be accept or reject, not {decision!r}")
    matched = suggestion_ids(db, selection)
    if not matched:
        raise NotFoundError(
            f"No suggestions match these filters, so nothing was {decision}ed. "
            "Check the filter values against 'qualkit codings --status suggested'."
        )
    recorder = ChangeRecorder(db, coder, command)
    decide = accept_suggestion if decision == "accept" else reject_suggestion
    changes = []
    for coding_id in matched:
        # Accepting one suggestion can merge a later one of the same code away.
        if snapshot(db, "codings", coding_id) is None:
            continue
        changes.append(decide(recorder, coding_id))
    if changes:
        store.touch(db)
    return recorder.batch_id, changes


# The item on screen ----------------------------------------------------------


@dataclass
class ReviewItem:
    """One suggestion as the review screen shows it.

    ``before`` and ``after`` are the text around the coded span within its
    turn. ``highlight`` is the rule's match as offsets into ``quote``.
    """

    coding: dict[str, Any]
    code: dict[str, Any] | None
    before: str
    quote: str
    after: str
    highlight: tuple[int, int] | None
    speaker: str | None
    role: str | None
    province: str | None
    level: str | None


def review_item(
    db: sqlite_utils.Database, coding_id: int, context: int = CONTEXT_CHARACTERS
) -> ReviewItem:
    """Return what the screen shows for one coding; raises NotFoundError if it was deleted."""
    coding = require_coding(db, coding_id)
    source_id = coding["source_id"]
    text = db.execute("SELECT text FROM sources WHERE id = ?", [source_id]).fetchone()[
        0
    ]
    start, end = coding["start_offset"], coding["end_offset"]

    # The context stays inside the turn that the coding starts in, unless
    # the coding itself reaches beyond it.
    turn = db.execute(
        "SELECT start_offset, end_offset, speaker, role FROM segments WHERE source_id = ? "
        "AND kind IN ('turn', 'paragraph') AND start_offset <= ? AND end_offset > ? "
        "ORDER BY position LIMIT 1",
        [source_id, start, start],
    ).fetchone()
    turn_start, turn_end, speaker, role = turn if turn else (0, len(text), None, None)
    first, last = min(turn_start, start), max(turn_end, end)
    left = max(first, start - context)
    right = min(last, end + context)
    before = ("…" if left > first else "") + text[left:start]
    after = text[end:right] + ("…" if right < last else "")

    quote = text[start:end]
    highlight = None
    matched = coding.get("matched_text")
    if matched and matched in quote:
        found = quote.index(matched)
        highlight = (found, found + len(matched))

    case = db.execute(
        "SELECT k.province, k.level FROM sources s JOIN cases k ON k.id = s.case_id "
        "WHERE s.id = ?",
        [source_id],
    ).fetchone()
    province, level = case if case else (None, None)
    return ReviewItem(
        coding=coding,
        code=snapshot(db, "codes", coding["code_id"]),
        before=before,
        quote=quote,
        after=after,
        highlight=highlight,
        speaker=speaker,
        role=role,
        province=province,
        level=level,
    )


# Sessions --------------------------------------------------------------------


def scope_key(selection: CodingFilter) -> str:
    """Return the text that keys a coder's place: each filter keeps its own place."""
    fields = {
        k: v
        for k, v in dataclasses.asdict(selection).items()
        if v not in ((), None) and k != "statuses"
    }
    return json.dumps(fields, ensure_ascii=False, sort_keys=True)


def load_cursor(
    db: sqlite_utils.Database, coder: str, scope: str
) -> dict[str, Any] | None:
    """Return where ``coder`` stopped in this scope: {"key": sort key, "after": bool}, or None."""
    ensure_history_tables(db)
    row = db.execute(
        "SELECT sort_key FROM review_state WHERE coder = ? AND scope = ?",
        [coder, scope],
    ).fetchone()
    return json.loads(row[0]) if row else None


def save_cursor(
    db: sqlite_utils.Database,
    coder: str,
    scope: str,
    key: list[Any],
    *,
    after: bool = False,
) -> None:
    """Remember the suggestion a coder will see next (``after``: the one following ``key``)."""
    ensure_history_tables(db)
    db["review_state"].upsert(
        {
            "coder": coder,
            "scope": scope,
            "coding_id": key[-1],
            "sort_key": json.dumps({"key": key, "after": after}, ensure_ascii=False),
            "updated_at": utc_now(),
        },
        pk=("coder", "scope"),
    )


def resume_index(keys: list[list[Any]], cursor: dict[str, Any] | None) -> int:
    """Return the queue position to start at: the stored suggestion or the first one after it.

    Starts over from the first suggestion when nothing follows the stored place.
    """
    if cursor is None:
        return 0
    stored = cursor["key"]
    for index, key in enumerate(keys):
        if key > stored or (key == stored and not cursor.get("after")):
            return index
    return 0


class ReviewSession:
    """A coder's walk through the suggestions that a filter takes.

    The queue is fixed when the session starts, so going back reaches
    suggestions decided in this session and their decisions can be changed.
    """

    def __init__(
        self,
        db: sqlite_utils.Database,
        coder: str,
        selection: CodingFilter | None = None,
        *,
        command: str = "review",
    ) -> None:
        ensure_history_tables(db)
        self.db = db
        self.coder = coder
        self.command = command
        selection = selection or CodingFilter()
        self.scope = scope_key(selection)
        self.queue = suggestion_ids(db, selection)
        self.keys = [
            sort_key(require_coding(db, coding_id)) for coding_id in self.queue
        ]
        self.index = resume_index(self.keys, load_cursor(db, coder, self.scope))
        self.decided = 0
        self.message = ""

    @property
    def total(self) -> int:
        """The number of suggestions in the queue."""
        return len(self.queue)

    @property
    def finished(self) -> bool:
        """True when the walk has gone past the last suggestion."""
        return self.index >= len(self.queue)

    def current_id(self) -> int:
        """Return the id of the suggestion on screen."""
        return self.queue[self.index]

    def item(self) -> ReviewItem | None:
        """Return the suggestion on screen, or None if it was merged into another coding."""
        try:
            return review_item(self.db, self.current_id())
        except NotFoundError:
            return None

    def _run(self, action: Any) -> Any:
        with store.transaction(self.db):
            recorder = ChangeRecorder(self.db, self.coder, self.command)
            result = action(recorder)
            if recorder.entries:
                store.touch(self.db)
            return result

    def decide(self, decision: str, code_id: str | None = None) -> str:
        """Accept, reject or recode the suggestion on screen, then move on; return a message."""
        coding_id = self.current_id()
        try:
            if decision == "accept":
                changes = [self._run(lambda r: accept_suggestion(r, coding_id))]
            elif decision == "reject":
                changes = [self._run(lambda r: reject_suggestion(r, coding_id))]
            elif decision == "recode" and code_id:
                changes = self._run(lambda r: recode_suggestion(r, coding_id, code_id))
            else:
                raise ValueError(f"unknown decision {decision!r}")
        except QualkitError as error:
            self.message = str(error)
            return self.message
        self.decided += 1
        self.message = "; ".join(change.describe() for change in changes)
        self.forward()
        return self.message

    def add_memo(self, text: str) -> str:
        """Store a memo about the suggestion on screen; return a message."""
        coding_id = self.current_id()
        try:
            memo_id = self._run(lambda r: add_memo(r, "coding", str(coding_id), text))
        except QualkitError as error:
            self.message = str(error)
        else:
            self.message = f"Memo #{memo_id} saved on coding #{coding_id}."
        return self.message

    def forward(self) -> None:
        """Move to the next suggestion and remember the place."""
        self.index = min(self.index + 1, len(self.queue))
        self.save()

    def skip(self) -> None:
        """Leave the suggestion undecided and move on."""
        self.message = f"Skipped coding #{self.current_id()}."
        self.forward()

    def back(self) -> None:
        """Go back one suggestion (its decision, if any, can be changed)."""
        if self.index == 0:
            self.message = "This is the first suggestion."
            return
        self.index -= 1
        self.message = ""
        self.save()

    def save(self) -> None:
        """Store the coder's place: the suggestion on screen, or past the last one."""
        if not self.queue:
            return
        with store.transaction(self.db):
            if self.finished:
                save_cursor(self.db, self.coder, self.scope, self.keys[-1], after=True)
            else:
                save_cursor(self.db, self.coder, self.scope, self.keys[self.index])
