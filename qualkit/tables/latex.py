"""Render a ``Table`` as a LaTeX file that a paper can ``\\input``.

The output uses booktabs rules, a ``table`` float (or a ``longtable`` for
``Table.long``) and ``>{\\raggedright\\arraybackslash}p{...}`` for wrapping
columns, so the preamble of the including document needs ``\\usepackage{booktabs, longtable,
array}``. Chinese, Japanese and Korean text is left as it is and needs
XeLaTeX or LuaLaTeX with ``xeCJK`` (or ``luatexja``).
"""

from __future__ import annotations

import re

from qualkit.tables import Cell, Table

# Characters with a meaning in LaTeX text mode, and how to print them.
# "[" and "]" are braced because a row that starts with "[" after "\\" or
# \midrule would be read as their optional argument.
_REPLACEMENTS = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "|": r"\textbar{}",
    "[": "{[}",
    "]": "{]}",
}
_SPECIAL = re.compile("|".join(re.escape(character) for character in _REPLACEMENTS))


def escape_latex(text: str) -> str:
    """Escape every character of ``text`` that LaTeX would interpret."""
    return _SPECIAL.sub(lambda found: _REPLACEMENTS[found.group()], text)


def render_cell(value: Cell, *, wrapping: bool) -> str:
    """Return one escaped cell; line breaks become \\newline in wrapping columns, else spaces."""
    pieces = []
    for run in value:
        lines = [escape_latex(line) for line in run.text.split("\n")]
        text = (r"\newline " if wrapping else " ").join(lines)
        if run.bold and text.strip():
            text = rf"\textbf{{{text}}}"
        pieces.append(text)
    text = "".join(pieces)
    # "\\*" is a starred line break, so a cell must not start with "*".
    return "{}" + text if text.startswith("*") else text


def column_spec(table: Table) -> str:
    """Return the tabular column specification, e.g. ``lr>{\\raggedright\\arraybackslash}p{0.4\\linewidth}``."""
    parts = []
    for kind, width in zip(table.align, table.widths):
        if kind == "p":
            share = width if width is not None else 0.2
            parts.append(rf">{{\raggedright\arraybackslash}}p{{{share:.2f}\linewidth}}")
        else:
            parts.append(kind)
    return "".join(parts)


def render(
    table: Table, *, label_prefix: str = "tab:qualkit-", comment: str = ""
) -> str:
    """Return the LaTeX source of the table, its caption, label and notes."""
    wrapping = [kind == "p" for kind in table.align]
    header = " & ".join(escape_latex(column) for column in table.columns) + r" \\"
    body = [
        " & ".join(
            render_cell(value, wrapping=wraps) for value, wraps in zip(row, wrapping)
        )
        + r" \\"
        for row in table.rows
    ]
    notes = [rf"{{\footnotesize {escape_latex(note)}\par}}" for note in table.notes]
    caption = escape_latex(table.title)
    label = label_prefix + table.name.replace("_", "-")
    lines = [f"% {line}" for line in comment.splitlines()]
    if table.long:
        lines += [
            rf"\begin{{longtable}}{{{column_spec(table)}}}",
            rf"\caption{{{caption}}}\label{{{label}}} \\",
            r"\toprule",
            header,
            r"\midrule",
            r"\endfirsthead",
            r"\toprule",
            header,
            r"\midrule",
            r"\endhead",
            r"\bottomrule",
            r"\endfoot",
            *body,
            r"\end{longtable}",
            *notes,
        ]
    else:
        lines += [
            r"\begin{table}[htbp]",
            r"\centering",
            rf"\caption{{{caption}}}",
            rf"\label{{{label}}}",
            rf"\begin{{tabular}}{{{column_spec(table)}}}",
            r"\toprule",
            header,
            r"\midrule",
            *body,
            r"\bottomrule",
            r"\end{tabular}",
        ]
        if notes:
            lines += [r"\par\smallskip", r"\raggedright", *notes]
        lines.append(r"\end{table}")

    return "\n".join(lines) + "\n"
