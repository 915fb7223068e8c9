"""Selection positions: line ending normalization and the ways other programs count positions.

The standard counts Unicode code points from 0 in the file's text. qualkit
stores text with ``\\n`` line endings, so positions counted in a text with
CRLF line endings move back by one for each CR dropped before them. Some
programs count positions differently: in the text after normalizing its
line endings, in UTF-16 code units, or with an inclusive end. When a
file's selection names show such a reading, ``choose_reading`` picks it.
"""

from __future__ import annotations

import bisect
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

DEFAULT_READING = "code points in the text as stored in the file"


@dataclass(frozen=True)
class PositionReading:
    """One way to read a selection's positions: a label and the maps onto the normalized text."""

    label: str
    convert: Callable[[int], int]
    convert_end: Callable[[int], int] | None = None

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Return the selection's (start, end) in the normalized text, end exclusive."""
        return self.convert(start), (self.convert_end or self.convert)(end)


def normalize_line_endings(raw: str) -> tuple[str, Callable[[int], int]]:
    """Normalize line endings and return the text and the map from raw to normalized positions.

    A CR before an LF is removed, so a position after it moves back by one.
    A lone CR becomes an LF and keeps its position.
    """
    removed = [
        index
        for index, char in enumerate(raw)
        if char == "\r" and raw[index + 1 : index + 2] == "\n"
    ]
    text = raw.replace("\r\n", "\n").replace("\r", "\n")
    if not removed:
        return text, lambda position: position

    def convert(position: int) -> int:
        return position - bisect.bisect_left(removed, position)

    return text, convert


def _utf16_converter(raw: str, then: Callable[[int], int]) -> Callable[[int], int]:
    """Map UTF-16 code unit positions in ``raw`` to code points, then apply ``then``."""
    units = []
    count = 0
    for char in raw:
        units.append(count)
        count += 2 if ord(char) > 0xFFFF else 1
    units.append(count)

    def convert(position: int) -> int:
        return then(bisect.bisect_left(units, position))

    return convert


def _comparable(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


def quote_matches(text: str, start: int, end: int, name: str) -> bool:
    """Return whether ``name`` is the text at the span, or its start, ignoring Unicode form and spacing.

    Programs that shorten a selection's name end it with "..." or "…".
    """
    if not (0 <= start < end <= len(text)):
        return False
    quote = _comparable(text[start:end])
    expected = _comparable(name).rstrip(".…").rstrip()
    return bool(expected) and (quote == expected or quote.startswith(expected))


def choose_reading(
    raw: str,
    text: str,
    convert: Callable[[int], int],
    named: list[tuple[int, int, str]],
) -> PositionReading:
    """Pick how to read positions: the reading under which most selection names match the text.

    ``named`` contains the raw (start, end, name) of selections that have a
    name, because some programs put the selected text there. The file's own
    reading, code points with an exclusive end, is kept unless another
    reading matches more names.
    """
    readings = [PositionReading(DEFAULT_READING, convert)]
    if "\r\n" in raw:
        readings.append(
            PositionReading("code points in the text with LF line endings", lambda p: p)
        )
    if any(ord(char) > 0xFFFF for char in raw):
        readings.append(
            PositionReading("UTF-16 code units", _utf16_converter(raw, convert))
        )
    readings.append(
        PositionReading(
            "code points with an inclusive endPosition",
            convert,
            lambda p: convert(p + 1),
        )
    )
    if not named:
        return readings[0]
    scores = [
        sum(
            quote_matches(text, *reading.span(start, end), name)
            for start, end, name in named
        )
        for reading in readings
    ]
    best = max(range(len(readings)), key=lambda index: (scores[index], -index))
    return readings[best]
