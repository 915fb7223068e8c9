"""``qualkit backup`` and ``qualkit check``: copying and checking the project database."""

from __future__ import annotations

import click

from qualkit.cli.common import State, echo_frame, handle_errors, output_option, pass_state


@click.command()
@click.argument("destination", type=click.Path())
@click.option("--force", is_flag=True, help="Replace DESTINATION if it exists.")
@pass_state
@handle_errors
def backup(state: State, destination: str, force: bool) -> None:
    """Copy the project database to DESTINATION and verify the copy.

    \b
    Uses SQLite's online backup API, so other qualkit commands may keep
    writing meanwhile. The copy is the database as of the moment the
    backup started. The copy must pass SQLite's integrity check and contain
    the same rows as the database before it gets its name. A folder as
    DESTINATION gets a file named like the database.
    \b
    Example:
      qualkit backup backups/qualkit-2024-05-01.db
    """
    from qualkit.maintenance import backup_database

    result = backup_database(state.project().db, destination, force=force)
    rows = sum(result.row_counts.values())
    click.echo(f"Wrote {result.path} ({rows} rows in {len(result.row_counts)} tables, verified).")


@click.command()
@click.option(
    "--fix",
    is_flag=True,
    help="First make the safe repairs described above, in one transaction, then check.",
)
@output_option
@pass_state
@handle_errors
def check(state: State, fix: bool, output_format: str) -> None:
    """Check the project database for damage and inconsistent rows.

    \b
    Runs SQLite's integrity and foreign key checks, and looks for rows that
    point at missing rows (memos included), codings whose stored quote no
    longer equals their source text, spans past the end of a text, and
    overlapping segments. Prints one line per problem, and exits with
    status 1 when there is any.
    \b
    --fix sets a mismatched quote from the source text and flags the coding
    for review, and deletes links, auto-coding state and segments whose
    coding, target or source is gone. It never deletes codings or memos.
    'qualkit undo --coder qualkit' reverts the changes to codings and links.
    """
    from qualkit.maintenance import check_database, repair_database
    from qualkit.store import database_path

    db = state.project().db
    if fix:
        repairs = repair_database(db)
        for repair in repairs.itertuples(index=False):
            click.echo(f"Fixed {repair.table} {repair.row_id} ({repair.check}): {repair.action}.", err=True)
        click.echo(f"{len(repairs)} repairs made.", err=True)
    findings = check_database(db)
    echo_frame(findings, output_format)
    if findings.empty:
        click.echo(f"No problems found in {database_path(db)}.", err=True)
        return
    click.echo(f"{len(findings)} problems found in {database_path(db)}.", err=True)
    raise click.exceptions.Exit(1)
