"""Keep codings on the same words when a transcript's text changes.

Old and new texts are compared with difflib; a coding moves with its words
when every character of its span lies in an unchanged block. Any other coding
keeps its old offsets clipped to the new text and is flagged for review.
"""

from __future__ import annotations

import difflib

import sqlite_utils

from qualkit.store import utc_now


def offset_map(old: str, new: str) -> list[tuple[int, int, int]]:
    """Return the unchanged blocks as (old_start, new_start, length) triples."""
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    return [
        (block.a, block.b, block.size)
        for block in matcher.get_matching_blocks()
        if block.size
    ]


def map_span(blocks: list[tuple[int, int, int]], start: int, end: int) -> tuple[int, int] | None:
    """Return the span's offsets in the new text, or None if any of it changed."""
    for old_start, new_start, size in blocks:
        if old_start <= start and end <= old_start + size:
            shift = new_start - old_start
            return start + shift, end + shift
    return None


def reanchor_codings(db: sqlite_utils.Database, source_id: str, old: str, new: str) -> list[int]:
    """Move the source's codings from ``old`` to ``new``; return flagged coding ids."""
    rows = db.execute(
        "SELECT id, start_offset, end_offset FROM codings WHERE source_id = ?", [source_id]
    ).fetchall()
    if not rows:
        return []
    blocks = offset_map(old, new)
    flagged = []
    now = utc_now()
    for coding_id, start, end in rows:
        mapped = map_span(blocks, start, end)
        if mapped is not None:
            db.execute(
                "UPDATE codings SET start_offset = ?, end_offset = ? WHERE id = ?",
                [mapped[0], mapped[1], coding_id],
            )
            continue
        # The old quote stays in the row so the coder can see what was coded.
        clipped_start = min(start, max(len(new) - 1, 0))
        clipped_end = max(min(end, len(new)), clipped_start + 1)
        db.execute(
            "UPDATE codings SET start_offset = ?, end_offset = ?, needs_review = 1, "
            "updated_at = ? WHERE id = ?",
            [clipped_start, clipped_end, now, coding_id],
        )
        flagged.append(coding_id)
    return flagged
