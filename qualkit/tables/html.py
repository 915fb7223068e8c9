"""Render a ``Table`` as an HTML fragment or a standalone HTML page.

Every value goes through ``html.escape`` (quotes included), so text such as
``<script>`` shows as text and never runs.
"""

from __future__ import annotations

from html import escape

from qualkit.tables import Cell, Table

PAGE_STYLE = (
    "body{font-family:sans-serif;margin:2em}"
    "table{border-collapse:collapse}"
    "caption{font-weight:bold;text-align:left;margin-bottom:.5em}"
    "th,td{padding:.25em .6em;vertical-align:top;text-align:left}"
    "thead th{border-top:2px solid #000;border-bottom:1px solid #000}"
    "tbody tr:last-child td{border-bottom:2px solid #000}"
    ".qualkit-table-note{font-size:.9em}"
)
# Column types from Table.align rendered as a right-aligned or centred cell.
_ALIGN_STYLES = {"r": ' style="text-align:right"', "c": ' style="text-align:center"'}


def render_cell(value: Cell) -> str:
    """Return the escaped HTML of one cell, with <strong> for bold runs and <br> for line breaks."""
    pieces = []
    for run in value:
        text = "<br>".join(escape(line, quote=True) for line in run.text.split("\n"))
        if run.bold and text:
            text = f"<strong>{text}</strong>"
        pieces.append(text)
    return "".join(pieces)


def render_fragment(table: Table) -> str:
    """Return the table, caption and notes as an HTML fragment to paste into a page."""
    styles = [_ALIGN_STYLES.get(kind, "") for kind in table.align]
    lines = [
        f'<table class="qualkit-table" id="qualkit-{escape(table.name, quote=True)}">',
        f"<caption>{escape(table.title, quote=True)}</caption>",
        "<thead>",
        "<tr>"
        + "".join(
            f'<th scope="col"{style}>{escape(column, quote=True)}</th>'
            for column, style in zip(table.columns, styles)
        )
        + "</tr>",
        "</thead>",
        "<tbody>",
    ]
    for row in table.rows:
        cells = "".join(
            f"<td{style}>{render_cell(value)}</td>" for value, style in zip(row, styles)
        )
        lines.append(f"<tr>{cells}</tr>")
    lines += ["</tbody>", "</table>"]
    lines += [
        f'<p class="qualkit-table-note">{escape(note, quote=True)}</p>'
        for note in table.notes
    ]

    return "\n".join(lines) + "\n"


def render_page(table: Table, *, generator: str = "qualkit") -> str:
    """Return a standalone HTML page (no external resources) that shows the table."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta name="generator" content="{escape(generator, quote=True)}">\n'
        f"<title>{escape(table.title, quote=True)}</title>\n"
        f"<style>{PAGE_STYLE}</style>\n"
        "</head>\n<body>\n"
        f"{render_fragment(table)}"
        "</body>\n</html>\n"
    )
