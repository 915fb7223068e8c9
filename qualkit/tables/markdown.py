"""Render a ``Table`` as a GitHub-flavoured Markdown pipe table.

Markdown and inline HTML characters are escaped with a backslash, so a value
renders as its own text. Line breaks inside a cell become ``<br>``.
"""

from __future__ import annotations

import re

from qualkit.tables import Cell, Table

# ASCII punctuation that changes how text inside a table cell renders. CommonMark
# lets a backslash escape each of them. Parentheses and "!" need no escape
# because "[" is escaped, and list markers cannot start a cell.
_SPECIAL = re.compile(r"([\\`*_{}\[\]#|<>&~])")
_ALIGN_RULES = {"r": "---:", "c": ":---:"}


def escape_markdown(text: str) -> str:
    """Escape the characters of ``text`` that Markdown or inline HTML would interpret."""
    return _SPECIAL.sub(r"\\\1", text)


def render_cell(value: Cell) -> str:
    """Return one escaped cell, with ``**`` around bold runs and ``<br>`` for line breaks."""
    pieces = []
    for run in value:
        lines = []
        for line in run.text.split("\n"):
            core = line.strip()
            escaped = escape_markdown(core)
            if run.bold and core:
                escaped = f"**{escaped}**"
            # Keep the spaces around a run, which separate it from its neighbours.
            lead = " " if line[:1] == " " else ""
            trail = " " if line[-1:] == " " and core else ""
            lines.append(lead + escaped + trail)
        pieces.append("<br>".join(lines))
    return "".join(pieces).strip() or " "


def render(table: Table) -> str:
    """Return the title, the pipe table and its notes as a Markdown document."""
    header = (
        "| "
        + " | ".join(escape_markdown(column) or " " for column in table.columns)
        + " |"
    )
    rule = "|" + "|".join(_ALIGN_RULES.get(kind, "---") for kind in table.align) + "|"
    lines = [f"**{escape_markdown(table.title)}**", "", header, rule]
    for row in table.rows:
        lines.append("| " + " | ".join(render_cell(value) for value in row) + " |")
    for note in table.notes:
        lines += ["", escape_markdown(note)]

    return "\n".join(lines) + "\n"
