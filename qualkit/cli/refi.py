"""``qualkit refi``: exchange codebooks and projects with other QDA programs (REFI-QDA 1.0)."""

from __future__ import annotations

import math
from pathlib import Path

import click

from qualkit.cli.common import (
    State,
    echo_frame,
    handle_errors,
    output_option,
    pass_state,
)

DEFAULT_LIMIT_MB = 200
# The maximum --max-member-mb and --max-total-mb (1 TiB). A finite maximum also rejects inf.
MAX_LIMIT_MB = 1024 * 1024


def _finite_megabytes(
    ctx: click.Context, param: click.Parameter, value: float
) -> float:
    """Reject NaN, which passes FloatRange because every comparison with it is false."""
    if math.isnan(value):
        raise click.BadParameter(
            f"must be a number of megabytes from 0 to {MAX_LIMIT_MB}, not nan."
        )
    return value


@click.group()
def refi() -> None:
    """Exchange codebooks and projects with other QDA programs.

    The files follow the REFI-QDA 1.0 standard: .qdc for a codebook, .qdpx
    for a whole project.

    \b
    Examples:
      qualkit refi export-codebook codebook.qdc
      qualkit refi export project.qdpx
      qualkit refi import from-atlas.qdpx --coder alice --dry-run
    """


@refi.command("export-codebook")
@click.argument("out", type=click.Path(dir_okay=False))
@pass_state
@handle_errors
def export_codebook_command(state: State, out: str) -> None:
    """Write the codes to OUT as a .qdc codebook."""
    from qualkit.refi import export_codebook

    path = export_codebook(state.project().db, out)
    click.echo(f"Wrote {path}")


@refi.command("export")
@click.argument("out", type=click.Path(dir_okay=False))
@click.option(
    "--name",
    help="Project name written into the file. Default: the project title, or the database file name.",
)
@pass_state
@handle_errors
def export_command(state: State, out: str, name: str | None) -> None:
    """Write the whole project to OUT as a .qdpx archive.

    Sources, codes, accepted codings, coders, cases with their metadata and
    memos are exported. Suggestions and rejected codings are not.
    """
    from qualkit.refi import export_project

    project = state.project()
    summary = export_project(project.db, out, name=name or _project_name(project))
    click.echo(
        f"Wrote {summary.path}: {summary.sources} sources, {summary.codes} codes, "
        f"{summary.codings} codings, {summary.cases} cases, {summary.users} users, {summary.notes} notes."
    )
    for status, count in summary.codings_not_exported.items():
        click.echo(
            f"Not exported: {count} {status} codings (the standard has no coding status)."
        )


def _project_name(project: object) -> str:
    """Return the project title from qualkit.toml, or else the database file's stem."""
    config = getattr(project, "config", None)
    if config is not None:
        return config.title
    database_file = project.db.execute("PRAGMA database_list").fetchone()[2]  # type: ignore[attr-defined]
    return Path(database_file).stem or "qualkit project"


@refi.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--coder",
    envvar="QUALKIT_CODER",
    help="Coder recorded in the audit log and given to codings and notes that name no user (also QUALKIT_CODER). Default: refi-import.",
)
@click.option(
    "--skip-invalid",
    is_flag=True,
    help="Skip invalid selections and codings and list them, instead of importing nothing.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Read and check the file and print the report, but store nothing.",
)
@click.option(
    "--max-member-mb",
    type=click.FloatRange(min=0, min_open=True, max=MAX_LIMIT_MB),
    callback=_finite_megabytes,
    default=DEFAULT_LIMIT_MB,
    show_default=True,
    help="Maximum size of one file or zip member that is read, in megabytes.",
)
@click.option(
    "--max-total-mb",
    type=click.FloatRange(min=0, min_open=True, max=MAX_LIMIT_MB),
    callback=_finite_megabytes,
    default=DEFAULT_LIMIT_MB,
    show_default=True,
    help="Maximum total size of all zip members read, in megabytes.",
)
@output_option
@pass_state
@handle_errors
def import_command(
    state: State,
    file: str,
    coder: str | None,
    skip_invalid: bool,
    dry_run: bool,
    max_member_mb: float,
    max_total_mb: float,
    output_format: str,
) -> None:
    """Import a .qdc codebook or a .qdpx project.

    Everything is stored in one transaction. The report lists each element
    that was converted, merged, skipped or not imported, and why.
    """
    from qualkit.audit import check_coder_name
    from qualkit.errors import QualkitError
    from qualkit.refi import ReadLimits, import_refi
    from qualkit.refi.importer import DEFAULT_CODER
    from qualkit.refi.xmlsafe import MEGABYTE

    project = state.project(create=True)
    chosen = (
        coder
        or (project.config.coder if project.config is not None else None)
        or DEFAULT_CODER
    )
    try:
        chosen = check_coder_name(chosen)
    except QualkitError as error:
        raise click.BadParameter(str(error), param_hint="--coder") from None
    limits = ReadLimits(
        max_member_bytes=int(max_member_mb * MEGABYTE),
        max_total_bytes=int(max_total_mb * MEGABYTE),
    )
    report = import_refi(
        project.db,
        file,
        coder=chosen,
        skip_invalid=skip_invalid,
        dry_run=dry_run,
        limits=limits,
        levels=project.levels,
    )
    frame = report.frame()
    if output_format == "table":
        click.echo(report.summary())
        if not frame.empty:
            echo_frame(frame, output_format)
        return
    echo_frame(frame, output_format)
