"""The evidence parts of the report: joint displays, numbered quotes, transcript views.

The joint displays come from ``qualkit.triangulation.joint_displays``. Each
quote gets a number and anchors, and the transcript view of its interview
links back to it. A transcript is cut at every boundary of a coding, a
quote and a redacted span, so overlapping codings become runs of text that
each carry every code covering them.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from itertools import pairwise
from typing import Any

import sqlite_utils

from qualkit.errors import ConfigError, InputError
from qualkit.redaction import Redactor
from qualkit.triangulation import TriangulationRules, joint_displays


def triangulation_rules(values: dict[str, Any] | None) -> TriangulationRules:
    """Build the triangulation rules from the ``[triangulation]`` settings."""
    try:
        return TriangulationRules.from_mapping(values)
    except InputError as error:
        raise ConfigError(
            f"{error.message} (in [triangulation] of qualkit.toml)",
            fix=error.fix,
        ) from None


def displays(
    db: sqlite_utils.Database,
    statuses: tuple[str, ...],
    per_target: int,
    cite: Any,
    rules: TriangulationRules,
) -> list[dict[str, Any]]:
    """Return the joint displays with anchors, the target's note and each quote's coding memos.

    Nothing is redacted here, because the caller redacts the whole tree once.
    """
    found = joint_displays(
        db,
        statuses=statuses,
        quotes_per_target=per_target,
        rules=rules,
        redactor=None,
        citation=cite,
    )
    notes = dict(db.execute("SELECT id, note FROM targets").fetchall())
    memos = _coding_memos(db)
    for index, display in enumerate(found, start=1):
        display["anchor"] = f"target-{index}"
        display["note"] = notes.get(display["target_id"])
        for quote in display["quotes"]:
            quote["memos"] = [memo for coding_id in quote["coding_ids"] for memo in memos.get(coding_id, [])]
    return found


def _coding_memos(db: sqlite_utils.Database) -> dict[int, list[dict[str, Any]]]:
    found: dict[int, list[dict[str, Any]]] = defaultdict(list)
    rows = db.execute(
        "SELECT about_id, coder, text FROM memos WHERE about = 'coding' ORDER BY created_at, id"
    )
    for about_id, coder, text in rows:
        if str(about_id).isdigit():
            found[int(about_id)].append({"coder": coder, "text": text})
    return found


def number_quotes(target_displays: list[dict[str, Any]], *, with_context: bool) -> list[dict[str, Any]]:
    """Number every quote across the displays, give it anchors, and return the quotes in order."""
    quotes = []
    for display in target_displays:
        for quote in display["quotes"]:
            number = len(quotes) + 1
            quote["number"] = number
            quote["anchor"] = f"q{number}"
            quote["context_anchor"] = f"ctx-q{number}" if with_context else None
            quote["target_anchor"] = display["anchor"]
            quotes.append(quote)
    return quotes


# Transcript views -----------------------------------------------------------------------


def transcripts(
    db: sqlite_utils.Database,
    quotes: list[dict[str, Any]],
    statuses: tuple[str, ...],
    cite: Any,
    cases: dict[str, dict[str, Any]],
    redactor: Redactor,
) -> list[dict[str, Any]]:
    """Return one transcript view per quoted source, redacted, in source id order.

    Each view has the source's anchor, citation, memos and ``pieces``: runs
    of text with the codes covering them, the quote numbers they belong to
    and the back-links to quotes that start there.
    """
    by_source: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for quote in quotes:
        by_source[quote["source_id"]].append(quote)
    marks = ",".join("?" for _ in statuses)
    memos = defaultdict(list)
    for about_id, coder, text in db.execute(
        "SELECT about_id, coder, text FROM memos WHERE about = 'source' ORDER BY created_at, id"
    ):
        memos[about_id].append({"coder": redactor.apply(coder), "text": redactor.apply(text)})

    views = []
    for index, source_id in enumerate(sorted(by_source), start=1):
        text, case_id = db.execute("SELECT text, case_id FROM sources WHERE id = ?", [source_id]).fetchone()
        codings = db.execute(
            f"SELECT start_offset, end_offset, code_id FROM codings WHERE source_id = ? AND status IN ({marks}) "
            "ORDER BY start_offset, end_offset, code_id",
            [source_id, *statuses],
        ).fetchall()
        anchor = f"source-{index}"
        source_quotes = by_source[source_id]
        for quote in source_quotes:
            quote["source_anchor"] = anchor
        views.append(
            {
                "anchor": anchor,
                "source_id": redactor.apply(source_id),
                "citation": redactor.apply(cite({**cases.get(case_id, {}), "id": case_id})),
                "memos": memos.get(source_id, []),
                "pieces": transcript_pieces(text, codings, source_quotes, redactor, prefix=f"m{index}-"),
                "characters": len(text),
            }
        )
    return views


def transcript_pieces(
    text: str,
    codings: list[tuple[int, int, str]],
    quotes: list[dict[str, Any]],
    redactor: Redactor,
    *,
    prefix: str = "m",
) -> list[dict[str, Any]]:
    """Cut ``text`` at every coding, quote and redaction boundary into runs of text.

    Each piece is a dict: ``text`` (redacted), ``codes`` (sorted code ids
    covering it), ``quotes`` (numbers of the quotes covering it), ``anchors``
    (quotes that start at it, for back-links) and ``id`` (set on coded
    pieces). A redacted span's replacement goes into its first piece and its
    other pieces are dropped, so no fragment of a redacted term survives a
    cut. Neighbouring pieces with the same codes and quotes are joined.
    """
    redacted = redactor.spans(text)
    cuts = {0, len(text)}
    for start, end, _ in codings:
        cuts.update((start, end))
    for quote in quotes:
        cuts.update((quote["start"], quote["end"]))
    for start, end, _ in redacted:
        cuts.update((start, end))
    points = sorted(cut for cut in cuts if 0 <= cut <= len(text))

    code_cover = _covering(points, [(start, end, code) for start, end, code in codings])
    quote_cover = _covering(points, [(quote["start"], quote["end"], quote["number"]) for quote in quotes])
    starting: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for quote in quotes:
        starting[quote["start"]].append(quote)

    pieces: list[dict[str, Any]] = []
    for index, (start, end) in enumerate(pairwise(points)):
        codes = sorted(set(code_cover[index]))
        covering = sorted(quote_cover[index])
        anchors = starting.get(start, [])
        piece_text = _redacted_text(text, start, end, redacted)
        if not piece_text and not anchors:
            continue
        previous = pieces[-1] if pieces else None
        if previous and not anchors and previous["codes"] == codes and previous["quotes"] == covering:
            previous["text"] += piece_text
            continue
        pieces.append(
            {
                "text": piece_text,
                "codes": codes,
                "quotes": covering,
                "anchors": [
                    {"number": quote["number"], "id": quote["context_anchor"], "href": "#" + quote["anchor"]}
                    for quote in anchors
                ],
            }
        )
    marked = 0
    for piece in pieces:
        piece["id"] = None
        if piece["codes"]:
            marked += 1
            piece["id"] = f"{prefix}{marked}"
    return pieces


def _covering(points: list[int], intervals: list[tuple[int, int, Any]]) -> list[list[Any]]:
    """Return, for each run between neighbouring ``points``, the labels of the intervals covering it.

    Every interval's start and end must be among ``points``. One sweep over
    the sorted points keeps the labels of the intervals open at each run.
    """
    opening: dict[int, list[Any]] = defaultdict(list)
    closing: dict[int, list[Any]] = defaultdict(list)
    for start, end, label in intervals:
        opening[start].append(label)
        closing[end].append(label)
    open_labels: Counter[Any] = Counter()
    covered = []
    for point in points[:-1]:
        open_labels.subtract(closing.get(point, []))
        open_labels.update(opening.get(point, []))
        covered.append([label for label, count in open_labels.items() if count > 0])
    return covered


def _redacted_text(text: str, start: int, end: int, spans: list[tuple[int, int, str]]) -> str:
    for span_start, span_end, replacement in spans:
        if span_start <= start and end <= span_end:
            return replacement if start == span_start else ""
    return text[start:end]


# Markdown of a transcript ---------------------------------------------------------------

# Characters a backslash makes literal in Markdown, HTML's < > & included.
MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]#|<>&~%!$^])")


def escape_markdown_characters(text: str) -> str:
    """Put a backslash before every Markdown special character; keep white space as it is."""
    return MARKDOWN_SPECIAL.sub(r"\\\1", text)


# The start of a paragraph that Markdown would read as a list item, a
# thematic break or a setext underline: "-", "+" or "=" first, or a number
# followed by "." or ")". Escaping the first character (or the "." or ")")
# keeps it text.
_BLOCK_MARKER = re.compile(r"^(?:[-+=]|(?P<number>\d{1,9})(?P<mark>[.)]))")


def escape_block_start(paragraph: str) -> str:
    """Escape a Markdown list, rule or heading marker at the start of an escaped paragraph."""
    match = _BLOCK_MARKER.match(paragraph)
    if not match:
        return paragraph
    if match.group("number"):
        return match.group("number") + "\\" + paragraph[match.end("number") :]
    return "\\" + paragraph


def transcript_markdown(pieces: list[dict[str, Any]]) -> str:
    """Return a transcript view as Markdown: coded text in bold, quote markers as [Qn].

    Every line of the transcript becomes a paragraph, so speaker turns and
    line breaks survive Markdown's joining of lines.
    """
    lines: list[list[tuple[str, bool]]] = [[]]
    for piece in pieces:
        for anchor in piece["anchors"]:
            lines[-1].append((f"\\[Q{anchor['number']}\\] ", False))
        parts = piece["text"].split("\n")
        for number, part in enumerate(parts):
            if number:
                lines.append([])
            if part:
                lines[-1].append((escape_markdown_characters(part), bool(piece["codes"])))
    paragraphs = []
    for line in lines:
        rendered = _markdown_line(line).strip()
        if rendered:
            paragraphs.append(escape_block_start(rendered))
    return "\n\n".join(paragraphs)


def _markdown_line(segments: list[tuple[str, bool]]) -> str:
    """Join a line's segments, wrapping each run of coded text in ``**`` once."""
    runs: list[list[Any]] = []
    for text, coded in segments:
        if runs and runs[-1][1] == coded:
            runs[-1][0] += text
        else:
            runs.append([text, coded])
    output = []
    for text, coded in runs:
        core = text.strip()
        if not coded or not core:
            output.append(text)
            continue
        lead = text[: len(text) - len(text.lstrip())]
        trail = text[len(text.rstrip()) :]
        output.append(f"{lead}**{core}**{trail}")
    return "".join(output)
