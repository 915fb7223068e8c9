"""Keep codings on the same words when a transcript's text changes.

Old and new texts are compared with difflib, first line by line, then word
by word inside changed lines, then character by character inside changed
words. A coding whose every character lies in one unchanged stretch moves
with its words. Any other coding is flagged with ``needs_review = 1``. It
gets the span that took the place of its words (or the sentence there, if
its words were deleted), its quote is updated to that span, and a memo
keeps the words it had. Nothing is dropped.

Every coding keeps ``quote == text[start_offset:end_offset]``.
"""

from __future__ import annotations

import bisect
import difflib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from qualkit.errors import QualkitError
from qualkit.store import utc_now

# The author of the memos written for flagged codings.
MEMO_CODER = "qualkit"

_LINES = re.compile(r"[^\n]*\n|[^\n]+")
_WORDS = re.compile(r"\w+|\s+|[^\w\s]")
# Above this many character pairs a changed stretch is left unmatched
# instead of being compared character by character, which takes time
# proportional to the product of the two lengths.
_MAX_CHARACTER_PAIRS = 4_000_000


@dataclass
class FlaggedCoding:
    """A coding whose words changed, with the words before and after."""

    id: int
    source_id: str
    code_id: str
    coder: str
    status: str
    old_quote: str
    quote: str
    start: int
    end: int
    reason: str  # "changed", or "deleted" when none of its words remain


@dataclass
class Reanchoring:
    """The outcome of re-anchoring one source's codings."""

    moved: int = 0
    flagged: list[FlaggedCoding] = field(default_factory=list)


def matching_blocks(old: str, new: str) -> list[tuple[int, int, int]]:
    """Return the unchanged stretches as (old_start, new_start, length), in order."""
    found: list[tuple[int, int, int]] = []
    _match_tokens(old, new, 0, len(old), 0, len(new), (_LINES, _WORDS), found)
    merged: list[tuple[int, int, int]] = []
    for old_start, new_start, size in sorted(found):
        if merged:
            last_old, last_new, last_size = merged[-1]
            if last_old + last_size == old_start and last_new + last_size == new_start:
                merged[-1] = (last_old, last_new, last_size + size)
                continue
        merged.append((old_start, new_start, size))
    return _slide_gaps(old, new, merged)


def _slide_gaps(old: str, new: str, blocks: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """Move each pure insertion or deletion to the cleanest of its equivalent places.

    Deleting " b." from "a. b. c" can also be read as deleting ". b" (the
    same characters repeat at both ends of the gap), which would cut the
    period off "a." and flag a coding of it. Among the equivalent places,
    the gap goes where its edges fall next to whitespace.
    """
    slid = [list(block) for block in blocks]
    for index in range(len(slid) - 1):
        left, right = slid[index], slid[index + 1]
        old_gap = right[0] - (left[0] + left[2])
        new_gap = right[1] - (left[1] + left[2])
        if old_gap and not new_gap:
            shift = _best_shift(old, left[0] + left[2], right[0], left[2], right[2], new, left[1] + left[2])
        elif new_gap and not old_gap:
            shift = _best_shift(new, left[1] + left[2], right[1], left[2], right[2], old, left[0] + left[2])
        else:
            continue
        left[2] += shift
        right[0] += shift
        right[1] += shift
        right[2] -= shift
    return [tuple(block) for block in slid if block[2] > 0]


def _best_shift(
    text: str, gap_start: int, gap_end: int, room_left: int, room_right: int, other: str, point: int
) -> int:
    """Return how far to move a gap in ``text`` (negative: left) for the cleanest edges.

    The gap may move while the characters it passes repeat at its other
    end, and while each neighboring block keeps at least one character.
    ``point`` is where the gap sits in ``other``, the text without it.
    """
    candidates = [0]
    step = 1
    while step < room_left and text[gap_start - step] == text[gap_end - step]:
        candidates.append(-step)
        step += 1
    step = 0
    while step + 1 < room_right and text[gap_start + step] == text[gap_end + step]:
        candidates.append(step + 1)
        step += 1

    def score(shift: int) -> int:
        return (
            2 * _clean_break(other, point + shift)
            + _clean_break(text, gap_start + shift)
            + _clean_break(text, gap_end + shift)
        )

    return max(sorted(candidates), key=score)


def _clean_break(text: str, position: int) -> bool:
    """Return whether ``position`` falls at an end of ``text`` or next to whitespace."""
    if position <= 0 or position >= len(text):
        return True
    return text[position - 1].isspace() or text[position].isspace()


def _match_tokens(
    old: str,
    new: str,
    old_start: int,
    old_end: int,
    new_start: int,
    new_end: int,
    levels: tuple[re.Pattern[str], ...],
    found: list[tuple[int, int, int]],
) -> None:
    if not levels:
        if (old_end - old_start) * (new_end - new_start) > _MAX_CHARACTER_PAIRS:
            return
        matcher = difflib.SequenceMatcher(
            None, old[old_start:old_end], new[new_start:new_end], autojunk=False
        )
        found.extend(
            (old_start + block.a, new_start + block.b, block.size)
            for block in matcher.get_matching_blocks()
            if block.size
        )
        return
    old_tokens = [m.span() for m in levels[0].finditer(old, old_start, old_end)]
    new_tokens = [m.span() for m in levels[0].finditer(new, new_start, new_end)]
    matcher = difflib.SequenceMatcher(
        None,
        [old[start:end] for start, end in old_tokens],
        [new[start:end] for start, end in new_tokens],
        autojunk=False,
    )
    for tag, first_old, last_old, first_new, last_new in matcher.get_opcodes():
        if tag == "equal":
            start = old_tokens[first_old][0]
            size = old_tokens[last_old - 1][1] - start
            found.append((start, new_tokens[first_new][0], size))
        elif tag == "replace":
            _match_tokens(
                old,
                new,
                old_tokens[first_old][0],
                old_tokens[last_old - 1][1],
                new_tokens[first_new][0],
                new_tokens[last_new - 1][1],
                levels[1:],
                found,
            )


class OffsetMap:
    """Maps offsets in an old text to a new text through their unchanged stretches."""

    def __init__(self, old: str, new: str) -> None:
        self.blocks = matching_blocks(old, new)
        self.new_length = len(new)
        self._starts = [block[0] for block in self.blocks]

    def span(self, start: int, end: int) -> tuple[int, int] | None:
        """Return the span's offsets in the new text, or None if any of it changed."""
        index = bisect.bisect_right(self._starts, start) - 1
        if index < 0:
            return None
        old_start, new_start, size = self.blocks[index]
        if end <= old_start + size:
            return start + new_start - old_start, end + new_start - old_start
        return None

    def start_position(self, start: int) -> int:
        """Return where the character at ``start`` is now, or where its replacement begins."""
        index = bisect.bisect_right(self._starts, start) - 1
        if index < 0:
            return 0
        old_start, new_start, size = self.blocks[index]
        if start < old_start + size:
            return new_start + start - old_start
        return new_start + size

    def end_position(self, end: int) -> int:
        """Return where the character before ``end`` now ends, or where its replacement ends."""
        index = bisect.bisect_right(self._starts, end - 1) - 1
        if index >= 0:
            old_start, new_start, size = self.blocks[index]
            if end - 1 < old_start + size:
                return new_start + end - old_start
        following = index + 1
        return self.blocks[following][1] if following < len(self.blocks) else self.new_length


def reanchor_codings(
    db: sqlite_utils.Database, source_id: str, old: str, new: str, *, origin: str = "re-import"
) -> Reanchoring:
    """Move the source's codings from ``old`` to ``new``, flagging those whose words changed.

    The new text's segments must already be stored: a coding whose words
    were all deleted moves to the sentence where they stood. ``origin``
    names the import in the memos written for flagged codings.
    """
    rows = db.execute(
        "SELECT id, start_offset, end_offset, code_id, coder, status, origin, quote "
        "FROM codings WHERE source_id = ? ORDER BY start_offset, id",
        [source_id],
    ).fetchall()
    result = Reanchoring()
    if not rows:
        return result
    mapping = OffsetMap(old, new)
    targets: dict[int, tuple[int, int]] = {}
    taken: set[tuple[int, int, str, str]] = set()
    changed = []
    for row in rows:
        coding_id, start, end, code_id, coder = row[:5]
        mapped = mapping.span(start, end)
        if mapped is None:
            changed.append(row)
            continue
        targets[coding_id] = mapped
        taken.add((*mapped, code_id, coder))
        result.moved += 1
    for row in changed:
        coding_id, start, end, code_id, coder, status, _, quote = row
        wanted, reason = _estimated_span(db, source_id, new, mapping, start, end)
        span = _free_span(db, source_id, new, wanted, code_id, coder, taken)
        targets[coding_id] = span
        taken.add((*span, code_id, coder))
        result.flagged.append(
            FlaggedCoding(
                coding_id, source_id, code_id, coder, status, quote, new[span[0] : span[1]],
                span[0], span[1], reason,
            )
        )
    _write_spans(db, rows, targets, new, {item.id for item in result.flagged})
    _move_links(db, rows, mapping, targets, new)
    _write_memos(db, rows, result.flagged, origin)
    return result


def _in_word(char: str) -> bool:
    # Chinese has no spaces between words, so widening over ideographs would
    # swallow the whole clause; only alphabetic scripts are widened.
    return char.isalnum() and ord(char) < 0x2E80


def _estimated_span(
    db: sqlite_utils.Database,
    source_id: str,
    new: str,
    mapping: OffsetMap,
    start: int,
    end: int,
) -> tuple[tuple[int, int], str]:
    first = mapping.start_position(start)
    last = mapping.end_position(end)
    # A diff inside a changed word can land mid-word ("provincia|l officials");
    # a flagged span shows whole words.
    while 0 < first < len(new) and _in_word(new[first - 1]) and _in_word(new[first]):
        first -= 1
    while 0 < last < len(new) and _in_word(new[last - 1]) and _in_word(new[last]):
        last += 1
    while first < last and new[first].isspace():
        first += 1
    while last > first and new[last - 1].isspace():
        last -= 1
    if last > first:
        return (first, last), "changed"
    return _sentence_at(db, source_id, new, first), "deleted"


def _sentence_at(db: sqlite_utils.Database, source_id: str, new: str, offset: int) -> tuple[int, int]:
    """Return the sentence that contains ``offset``, or the nearest one, or the whole text."""
    select = (
        "SELECT start_offset, end_offset FROM segments "
        "WHERE source_id = ? AND kind = 'sentence' AND "
    )
    queries = (
        ("start_offset <= ? AND end_offset > ? ORDER BY start_offset LIMIT 1", [offset, offset]),
        ("start_offset >= ? ORDER BY start_offset LIMIT 1", [offset]),
        ("start_offset < ? ORDER BY start_offset DESC LIMIT 1", [offset]),
    )
    for condition, parameters in queries:
        row = db.execute(select + condition, [source_id, *parameters]).fetchone()
        if row is not None:
            return row[0], row[1]
    first, last = 0, len(new)
    while first < last and new[first].isspace():
        first += 1
    while last > first and new[last - 1].isspace():
        last -= 1
    return (first, last) if last > first else (0, max(len(new), 1))


def _free_span(
    db: sqlite_utils.Database,
    source_id: str,
    new: str,
    wanted: tuple[int, int],
    code_id: str,
    coder: str,
    taken: set[tuple[int, int, str, str]],
) -> tuple[int, int]:
    """Return ``wanted``, or the nearest span that no coding of this code and coder has.

    A coder's coding of one code on one span is unique, and two flagged
    codings can land on the same span, for example when both sat in a
    deleted paragraph.
    """
    for span in _spans_near(db, source_id, new, wanted):
        if (*span, code_id, coder) not in taken:
            return span
    raise QualkitError(
        f"Cannot place the codings of {code_id!r} by {coder!r} in source {source_id!r}: "
        "the new text is too short to give each its own span. Restore more of the text."
    )


def _spans_near(
    db: sqlite_utils.Database, source_id: str, new: str, wanted: tuple[int, int]
) -> Iterator[tuple[int, int]]:
    start, end = wanted
    yield wanted
    sentence = _sentence_at(db, source_id, new, start)
    if sentence != wanted:
        yield sentence
    for step in range(1, len(new) + 1):
        if end + step <= len(new):
            yield start, end + step
        if start - step >= 0:
            yield start - step, end
        if end + step > len(new) and start - step < 0:
            return


def _write_spans(
    db: sqlite_utils.Database,
    rows: list[tuple[Any, ...]],
    targets: dict[int, tuple[int, int]],
    new: str,
    flagged: set[int],
) -> None:
    """Store the new spans without passing through a state that breaks uniqueness.

    Codings that move are first parked on spans past the end of any text
    (their start is beyond both texts, their order by id keeps them apart),
    then written to their targets.
    """
    moving = [row for row in rows if targets[row[0]] != (row[1], row[2]) or row[0] in flagged]
    park = max(len(new), max(row[2] for row in rows)) + 1
    for position, row in enumerate(moving):
        db.execute(
            "UPDATE codings SET start_offset = ?, end_offset = ? WHERE id = ?",
            [park + 2 * position, park + 2 * position + 1, row[0]],
        )
    now = utc_now()
    for row in moving:
        start, end = targets[row[0]]
        if row[0] in flagged:
            db.execute(
                "UPDATE codings SET start_offset = ?, end_offset = ?, quote = ?, "
                "needs_review = 1, updated_at = ? WHERE id = ?",
                [start, end, new[start:end], now, row[0]],
            )
        else:
            db.execute(
                "UPDATE codings SET start_offset = ?, end_offset = ?, quote = ? WHERE id = ?",
                [start, end, new[start:end], row[0]],
            )


def _move_links(
    db: sqlite_utils.Database,
    rows: list[tuple[Any, ...]],
    mapping: OffsetMap,
    targets: dict[int, tuple[int, int]],
    new: str,
) -> None:
    """Shift the alias offsets of quote-target links with the text.

    An alias whose words changed loses its automatic link (``qualkit link``
    makes it again where the alias still occurs). A manual link is kept and
    points at the nearest place where the alias still occurs, or else at
    its coding's span.
    """
    ids = [row[0] for row in rows]
    marks = ",".join("?" for _ in ids)
    links = db.execute(
        "SELECT coding_id, target_id, alias, alias_start, alias_end, origin FROM quote_links "
        f"WHERE coding_id IN ({marks})",
        ids,
    ).fetchall()
    for coding_id, target_id, alias, start, end, origin in links:
        key = [coding_id, target_id]
        mapped = mapping.span(start, end)
        if mapped is None and origin != "manual":
            db.execute("DELETE FROM quote_links WHERE coding_id = ? AND target_id = ?", key)
            continue
        if mapped is None:
            # NOTE: a manual link whose alias is gone points at its coding's
            # span, which is flagged for review in most such cases.
            mapped = _nearest(new, alias, mapping.start_position(start)) or targets[coding_id]
        db.execute(
            "UPDATE quote_links SET alias_start = ?, alias_end = ? "
            "WHERE coding_id = ? AND target_id = ?",
            [*mapped, *key],
        )


def _nearest(text: str, word: str, offset: int) -> tuple[int, int] | None:
    if not word:
        return None
    after = text.find(word, offset)
    before = text.rfind(word, 0, offset)
    found = [place for place in (after, before) if place >= 0]
    if not found:
        return None
    place = min(found, key=lambda position: abs(position - offset))
    return place, place + len(word)


def _write_memos(
    db: sqlite_utils.Database,
    rows: list[tuple[Any, ...]],
    flagged: list[FlaggedCoding],
    origin: str,
) -> None:
    """Record the words each flagged coding had, in a memo about the coding.

    Pending auto-coding suggestions get none: the next auto-coding run
    checks them against the new text anyway.
    """
    pending = {row[0] for row in rows if row[6] == "auto" and row[5] == "suggested"}
    now = utc_now()
    memos = [
        {
            "about": "coding",
            "about_id": str(item.id),
            "coder": MEMO_CODER,
            "text": f"The text changed ({origin}); the words of this coding were "
            f"{'deleted' if item.reason == 'deleted' else 'edited'}. "
            f"Coded before: \u00ab{item.old_quote}\u00bb. Now: \u00ab{item.quote}\u00bb.",
            "created_at": now,
            "updated_at": now,
        }
        for item in flagged
        if item.id not in pending
    ]
    if memos:
        db["memos"].insert_all(memos)
