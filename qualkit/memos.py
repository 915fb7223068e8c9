"""Memos: a coder's notes about the project, a source, a code or a coding."""

from __future__ import annotations

from typing import Any

import pandas as pd
import sqlite_utils

from qualkit.audit import ChangeRecorder, snapshot
from qualkit.coding import require_code, require_coding, source_text
from qualkit.errors import InputError, NotFoundError, QualkitError
from qualkit.store import utc_now

SUBJECTS = ("project", "source", "code", "coding")


def _check_subject(
    db: sqlite_utils.Database, about: str, about_id: str | None
) -> str | None:
    if about not in SUBJECTS:
        raise InputError(
            f"unknown memo subject {about!r}.",
            fix=f"Use one of: {', '.join(SUBJECTS)}.",
        )
    if about == "project":
        if about_id:
            raise InputError("a project memo takes no id.")
        return None
    if not about_id:
        raise InputError(f"a memo about a {about} needs the {about}'s id.")
    if about == "source":
        source_text(db, about_id)
    elif about == "code":
        require_code(db, about_id, active=False)
    else:
        if not str(about_id).isdigit():
            raise InputError(f"coding id {about_id!r} is not a number.")
        require_coding(db, int(about_id))
    return str(about_id)


def _check_text(text: str) -> str:
    cleaned = text.strip()
    if not cleaned:
        raise QualkitError("The memo is empty, so nothing was saved.")
    try:
        cleaned.encode("utf-8")
    except UnicodeEncodeError as error:
        # A shell passes bytes that are not UTF-8 as lone surrogates.
        raise QualkitError(
            f"The memo contains a character that is not valid text (position {error.start + 1}), "
            "so nothing was saved. Check the terminal's encoding, or put the text in a "
            "UTF-8 file and pass its contents."
        ) from None
    return cleaned


def add_memo(
    recorder: ChangeRecorder, about: str, about_id: str | None, text: str
) -> int:
    """Store a memo by the recorder's coder and return its id; the caller opens the transaction."""
    subject = _check_subject(recorder.db, about, about_id)
    now = utc_now()
    return recorder.insert(
        "memos",
        {
            "about": about,
            "about_id": subject,
            "coder": recorder.coder,
            "text": _check_text(text),
            "created_at": now,
            "updated_at": now,
        },
    )


def require_memo(db: sqlite_utils.Database, memo_id: int) -> dict[str, Any]:
    """Return the memo with id ``memo_id`` as a dict, or raise NotFoundError."""
    row = snapshot(db, "memos", memo_id)
    if row is None:
        raise NotFoundError(
            f"Memo #{memo_id} not found. Run 'qualkit memo list' for the ids."
        )
    return row


def edit_memo(recorder: ChangeRecorder, memo_id: int, text: str) -> bool:
    """Replace a memo's text; return False if the text is unchanged.

    The memo keeps its author in ``coder``. The audit log records who edited it.
    """
    require_memo(recorder.db, memo_id)
    return recorder.update(
        "memos", memo_id, {"text": _check_text(text), "updated_at": utc_now()}
    )


def remove_memo(recorder: ChangeRecorder, memo_id: int) -> None:
    """Delete a memo; ``qualkit undo`` brings it back."""
    require_memo(recorder.db, memo_id)
    recorder.delete("memos", memo_id)


def list_memos(
    db: sqlite_utils.Database,
    *,
    about: str | None = None,
    about_id: str | None = None,
    coder: str | None = None,
) -> pd.DataFrame:
    """Return memos, oldest first, with the quote of the coding a memo is about."""
    clauses, params = [], []
    for column, value in (
        ("m.about", about),
        ("m.about_id", about_id),
        ("m.coder", coder),
    ):
        if value:
            clauses.append(f"{column} = ?")
            params.append(value)
    where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
    return pd.read_sql_query(
        "SELECT m.id, m.about, m.about_id, m.coder, m.created_at, m.updated_at, m.text, "
        "CASE WHEN m.about = 'coding' THEN (SELECT c.code_id || ': ' || c.quote FROM codings c "
        "WHERE c.id = CAST(m.about_id AS INTEGER)) END AS coding "
        f"FROM memos m {where} ORDER BY m.id",
        db.conn,
        params=params,
    )
