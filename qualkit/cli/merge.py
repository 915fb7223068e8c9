"""``qualkit clone`` and ``qualkit merge``: coders' own copies of a project and merging them back."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from qualkit.cli.common import (
    State,
    echo_frame,
    handle_errors,
    output_option,
    pass_state,
)

if TYPE_CHECKING:
    from qualkit.merge import MergeReport

REPORT_PARTS = ("all", "files", "coders", "conflicts")


@click.command()
@click.argument("destination", type=click.Path(dir_okay=False))
@click.option(
    "--coder",
    required=True,
    help="Coder the copy is for. Their own codings and memos stay in it.",
)
@click.option(
    "--blind/--no-blind",
    default=True,
    show_default=True,
    help="Leave out other coders' codings, memos and history, so the coder codes independently.",
)
@click.option("--force", is_flag=True, help="Replace DESTINATION if it exists.")
@pass_state
@handle_errors
def clone(state: State, destination: str, coder: str, blind: bool, force: bool) -> None:
    """Copy the project into DESTINATION for one coder.

    \b
    The copy keeps the sources, segments, cases, codebook, targets, panel and
    auto-coding suggestions. A blind copy (the default) leaves out what other
    coders coded and wrote. Bring the work back with 'qualkit merge'.
    \b
    Example:
      qualkit clone alice.db --coder alice
      qualkit --db alice.db code add E01 --code strategy.reframing --segment 3 --coder alice
      qualkit merge alice.db bob.db
    """
    from qualkit.clone import clone_project

    result = clone_project(
        state.project().db, destination, coder, blind=blind, force=force
    )
    click.echo(
        f"Wrote {result.path} for coder {result.coder!r}: {result.sources} sources, "
        f"{result.codings_kept} codings."
    )
    if result.blind:
        click.echo(
            f"Blind copy: left out {result.codings_left_out} codings and {result.memos_left_out} memos "
            f"of other coders. {result.suggestions_restored} suggestions they had decided are suggestions again."
        )


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option(
    "--into",
    type=click.Path(dir_okay=False),
    help="Database to merge into. Default: the current project (--db or qualkit.toml).",
)
@click.option(
    "--map-coder",
    "map_coder",
    multiple=True,
    metavar="OLD=NEW",
    help="Store coder OLD (case ignored) of the files as NEW. Repeat for several coders.",
)
@click.option(
    "--allow-changed-sources",
    is_flag=True,
    help="Move codings of sources whose text differs onto the target's text, flagging changed ones for review.",
)
@click.option(
    "--add-missing-sources",
    is_flag=True,
    help="Import sources that the target lacks, with their codings.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print the report of the merge without changing the target.",
)
@click.option(
    "--coder",
    envvar="QUALKIT_CODER",
    help="Who runs the merge, recorded in the audit log (also QUALKIT_CODER). Default: qualkit.",
)
@click.option(
    "--show",
    type=click.Choice(REPORT_PARTS),
    default="all",
    show_default=True,
    help="Part of the report to print. CSV output contains one part, so choose files, coders or conflicts.",
)
@output_option
@pass_state
@handle_errors
def merge(
    state: State,
    files: tuple[str, ...],
    into: str | None,
    map_coder: tuple[str, ...],
    allow_changed_sources: bool,
    add_missing_sources: bool,
    dry_run: bool,
    coder: str | None,
    show: str,
    output_format: str,
) -> None:
    """Merge coders' copies into the project in one transaction.

    \b
    Codings, memos, quote-target links and review positions come in with
    their coders' names. Names that differ only in case are one coder, and
    the target's spelling is kept. Nothing in the target is changed or
    deleted. Every coding that cannot be merged unchanged is listed as a
    conflict. Merging the same file again adds nothing.
    \b
    Example:
      qualkit merge alice.db bob.db --dry-run
      qualkit merge alice.db bob.db --map-coder AL=alice
    """
    from qualkit import store
    from qualkit.audit import SYSTEM_CODER, check_coder_name
    from qualkit.merge import MergeOptions, merge_projects, parse_coder_map

    if output_format == "csv" and show == "all":
        raise click.UsageError(
            "--format csv prints one table. Pass --show files, coders or conflicts."
        )
    options = MergeOptions(
        coder_map=parse_coder_map(map_coder),
        allow_changed_sources=allow_changed_sources,
        add_missing_sources=add_missing_sources,
        dry_run=dry_run,
        merged_by=check_coder_name(coder) if coder else SYSTEM_CODER,
    )
    if into:
        if not Path(into).exists():
            raise click.BadParameter(
                f"{into} not found. Merge into an existing project database, or make one with 'qualkit clone'.",
                param_hint="--into",
            )
        db = store.open_database(into, create=False)
        try:
            report = merge_projects(db, files, options)
        finally:
            db.close()
    else:
        report = merge_projects(state.project().db, files, options)
    _print_report(report, show, output_format)


def _print_report(report: MergeReport, show: str, output_format: str) -> None:
    from qualkit.merge import merged_json

    parts = {
        "files": report.files_frame,
        "coders": report.coders_frame,
        "conflicts": report.conflicts_frame,
    }
    if output_format == "json" and show == "all":
        click.echo(merged_json(report))
    elif show != "all":
        echo_frame(parts[show](), output_format)
    else:
        heading = "Dry run, nothing was changed" if report.dry_run else "Merged"
        click.echo(f"{heading}: into {report.target}")
        for name, frame in parts.items():
            click.echo(f"\n{name.capitalize()}:")
            table = frame()
            if name == "files" and output_format == "table" and not table.empty:
                # One column per file reads better than a column for each FileSummary count.
                table = table.set_index("file").T.reset_index(names="count")
            echo_frame(table, output_format)
    conflicts = len(report.conflicts)
    if conflicts:
        click.echo(
            f"{conflicts} conflicts: rows not merged as they stood. List them with --show conflicts.",
            err=True,
        )
