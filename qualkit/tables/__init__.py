"""Publication tables: one format-neutral ``Table`` and a renderer per output format.

A ``Table`` contains plain text only. Each renderer escapes every value for its
format (``html``, ``markdown``, ``latex``, ``word``), so callers never
escape anything themselves.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

# C0 and C1 control characters other than tab and line feed. XML 1.0, which Word
# files use, does not allow most C0 characters, and LaTeX and HTML show them as
# garbage, so tables drop them.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SPACES = re.compile(r"[ \t\r\f\v]+")
_BREAKS = re.compile(r" *\n[\s]*")


@dataclass(frozen=True)
class Text:
    """A run of cell text, optionally bold. ``"\\n"`` inside it is a line break."""

    text: str
    bold: bool = False


Cell = tuple[Text, ...]
LINE_BREAK = Text("\n")


def cell(*parts: Any, bold: bool = False) -> Cell:
    """Build a cell from strings, numbers and ``Text`` runs, skipping None.

    Strings and numbers are stripped of surrounding white space. ``Text``
    runs (such as ``LINE_BREAK``) are used unchanged.
    """
    runs = []
    for part in parts:
        if part is None:
            continue
        runs.append(part if isinstance(part, Text) else Text(str(part).strip(), bold))
    return tuple(runs)


def cell_text(value: Cell) -> str:
    """Return the plain text of a cell, without bold marks."""
    return "".join(run.text for run in value)


@dataclass(frozen=True)
class Table:
    """A titled table with one header row, body rows of cells and notes below it.

    ``align`` contains one LaTeX column type per column: ``l``, ``r``, ``c`` or
    ``p`` (a wrapping column, given its share of the line width in
    ``widths``). ``long`` selects a LaTeX ``longtable``, which
    breaks across pages.
    """

    name: str
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    align: tuple[str, ...] = ()
    widths: tuple[float | None, ...] = ()
    notes: tuple[str, ...] = ()
    long: bool = False

    def __post_init__(self) -> None:
        for number, row in enumerate(self.rows, start=1):
            if len(row) != len(self.columns):
                raise ValueError(
                    f"Table {self.name!r} row {number} has {len(row)} cells for {len(self.columns)} columns."
                )
        if not self.align:
            object.__setattr__(self, "align", tuple("l" for _ in self.columns))
        if not self.widths:
            object.__setattr__(self, "widths", tuple(None for _ in self.columns))

    def map_text(self, function: Callable[[str], str]) -> Table:
        """Return a copy with ``function`` applied to the title, headers, notes and every run."""
        rows = tuple(
            tuple(
                tuple(Text(function(run.text), run.bold) for run in value)
                for value in row
            )
            for row in self.rows
        )
        return replace(
            self,
            title=function(self.title),
            columns=tuple(function(column) for column in self.columns),
            notes=tuple(function(note) for note in self.notes),
            rows=rows,
        )

    def plain_rows(self) -> list[list[str]]:
        """Return the body as lists of plain strings, for tests and data exports."""
        return [[cell_text(value) for value in row] for row in self.rows]


def clean_text(text: str) -> str:
    """Drop control characters, collapse runs of spaces and of line breaks.

    Spaces at the ends are kept, because a run such as ", " separates its
    neighbours in a cell.
    """
    text = _CONTROL.sub("", text.replace("\r\n", "\n"))
    text = _SPACES.sub(" ", text)
    return _BREAKS.sub("\n", text)


def join_cells(values: Iterable[Cell], separator: str = ", ") -> Cell:
    """Join cells into one, with ``separator`` between them."""
    runs: list[Text] = []
    for index, value in enumerate(values):
        if index:
            runs.append(Text(separator))
        runs.extend(value)
    return tuple(runs)
