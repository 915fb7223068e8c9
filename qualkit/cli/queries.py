"""``qualkit query`` and ``qualkit export``: questions to the coded data, matrices for regression."""

from __future__ import annotations

import dataclasses
from typing import Any

import click

from qualkit.cli.coding import build_filter, filter_options
from qualkit.cli.common import (
    State,
    echo_frame,
    handle_errors,
    output_option,
    pass_state,
)


def counted(**filters: Any) -> Any:
    """Return the CodingFilter for the options, taking accepted codings when no --status is given."""
    selection = build_filter(**filters)
    if not selection.statuses:
        selection = dataclasses.replace(selection, statuses=("accepted",))
    return selection


def unit_option(function: Any) -> Any:
    """Add ``--unit overlap|sentence|turn``."""
    return click.option(
        "--unit",
        type=click.Choice(["overlap", "sentence", "turn"]),
        default="overlap",
        show_default=True,
        help="Compare codings by overlapping spans, or per sentence or turn.",
    )(function)


def depth_option(function: Any) -> Any:
    """Add ``--depth N`` to roll codes up to their ancestors."""
    return click.option(
        "--depth",
        type=click.IntRange(min=1),
        help="Roll codes up to this level of the tree (1: strategy, 2: strategy.reframing).",
    )(function)


@click.group()
def query() -> None:
    """Query codings: boolean queries, matrices, KWIC.

    KWIC is keyword in context: every hit of a word with the text around it.
    """


@query.command("quotes")
@click.argument("expression")
@unit_option
@filter_options()
@output_option
@pass_state
@handle_errors
def query_quotes_command(
    state: State, expression: str, unit: str, output_format: str, **filters: Any
) -> None:
    """Retrieve quotes where a boolean code expression holds.

    \b
    EXPRESSION combines code ids with AND, OR, NOT and parentheses; a code
    includes its child codes. With --unit overlap (the default) a quote is
    the text where the expression holds; with sentence or turn it is the
    whole segment. Codings count only when accepted, unless --status says
    otherwise.
    \b
    Example:
      qualkit query quotes "strategy.reframing AND target.environment AND NOT channel.formal" --where level=city
    """
    from qualkit.queries import query_quotes

    filters.pop("codes", None)
    echo_frame(
        query_quotes(state.project().db, expression, counted(**filters), unit=unit),
        output_format,
    )


@query.command("cooccurrence")
@unit_option
@depth_option
@filter_options()
@output_option
@pass_state
@handle_errors
def cooccurrence_command(
    state: State, unit: str, depth: int | None, output_format: str, **filters: Any
) -> None:
    """Print the code-by-code co-occurrence matrix.

    \b
    With --unit overlap, a cell counts pairs of overlapping codings and the
    diagonal counts codings. With sentence or turn, a cell counts segments
    that carry both codes and the diagonal counts segments with the code.
    Codings count only when accepted, unless --status says otherwise.
    """
    from qualkit.queries import cooccurrence

    matrix = cooccurrence(
        state.project().db, counted(**filters), unit=unit, depth=depth
    )
    echo_frame(matrix.reset_index(), output_format)


@query.command("attributes")
@click.option(
    "--by",
    "field",
    required=True,
    help="Metadata field for the columns, e.g. province or level.",
)
@click.option(
    "--count",
    type=click.Choice(["codings", "sources", "cases"]),
    default="codings",
    show_default=True,
    help="What a cell counts.",
)
@depth_option
@filter_options()
@output_option
@pass_state
@handle_errors
def attributes_command(
    state: State,
    field: str,
    count: str,
    depth: int | None,
    output_format: str,
    **filters: Any,
) -> None:
    """Print a codes-by-metadata matrix, e.g. codes by province.

    Codings count only when accepted, unless --status says otherwise.
    """
    from qualkit.queries import code_by_attribute

    matrix = code_by_attribute(
        state.project().db, field, counted(**filters), count=count, depth=depth
    )
    echo_frame(matrix.reset_index(), output_format)


@query.command("kwic")
@click.argument("term")
@click.option(
    "--width",
    type=click.IntRange(min=1),
    default=30,
    show_default=True,
    help="Characters of context on each side.",
)
@click.option("--regex", is_flag=True, help="TERM is a Python regular expression.")
@click.option(
    "--role",
    "roles",
    multiple=True,
    type=click.Choice(["interviewer", "respondent"]),
    help="Only hits in turns of this role.",
)
@click.option("--source", "sources", multiple=True, help="Source id. Repeatable.")
@click.option(
    "--where",
    "where",
    multiple=True,
    metavar="FIELD=VALUE[,VALUE]",
    help="Metadata filter. Repeatable.",
)
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(["suggested", "accepted", "rejected"]),
    help="Codings listed with each hit. Default: accepted.",
)
@output_option
@pass_state
@handle_errors
def kwic_command(
    state: State,
    term: str,
    width: int,
    regex: bool,
    roles: tuple[str, ...],
    output_format: str,
    **filters: Any,
) -> None:
    """Show every occurrence of TERM in its context.

    Matching ignores case and full-width forms and works inside Chinese
    words. Each hit lists the codes of the codings around it.
    """
    from qualkit.queries import keyword_in_context

    found = keyword_in_context(
        state.project().db,
        term,
        width=width,
        regex=regex,
        selection=counted(**filters),
        roles=roles,
    )
    echo_frame(found, output_format)


@click.group()
def export() -> None:
    """Export coded data for statistics software."""


@export.command("matrix")
@click.argument("out", type=click.Path(dir_okay=False))
@click.option(
    "--measure",
    "measures",
    multiple=True,
    type=click.Choice(["presence", "count", "share"]),
    help="Value of each cell; repeat for several. Default: count.",
)
@click.option(
    "--attribute",
    "attributes",
    multiple=True,
    help="Front matter field to add as a column. Repeatable.",
)
@click.option(
    "--format",
    "file_format",
    type=click.Choice(["csv", "xlsx", "dta"]),
    help="File format. Default: from the suffix of OUT.",
)
@click.option(
    "--redact",
    type=click.Path(exists=True, dir_okay=False),
    help="Redaction list applied to every text cell. Default: [report] redact in qualkit.toml.",
)
@depth_option
@filter_options()
@pass_state
@handle_errors
def export_matrix_command(
    state: State,
    out: str,
    measures: tuple[str, ...],
    attributes: tuple[str, ...],
    file_format: str | None,
    redact: str | None,
    depth: int | None,
    **filters: Any,
) -> None:
    """Write the case-by-code matrix to CSV, Excel or Stata.

    \b
    One row per interview with its metadata, one column per code and
    measure: presence (0/1), count of codings, or share of the interview's
    characters. Codings count only when accepted, unless --status says
    otherwise.
    \b
    Example:
      qualkit export matrix cases.dta --measure presence --measure share --depth 2
    """
    from qualkit.quantitize import case_code_matrix, export_matrix
    from qualkit.report import load_redactor

    project = state.project()
    if redact is None and project.config is not None:
        redact = project.config.report.get("redact")
    matrix = case_code_matrix(
        project.db,
        counted(**filters),
        measures=measures or ("count",),
        depth=depth,
        attributes=attributes,
    )
    path = export_matrix(matrix, out, file_format, redactor=load_redactor(redact))
    click.echo(
        f"Wrote {path}: {len(matrix.frame)} cases, {len(matrix.frame.columns)} columns."
    )
