"""The top-level ``qualkit`` group and its project commands."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from qualkit import __version__
from qualkit.cli.scores import scores
from qualkit.cli.sources import import_command
from qualkit.cli.common import State, echo_frame, handle_errors, output_option, pass_state, progress_bar

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"]}


@click.group(context_settings=CONTEXT_SETTINGS)
@click.option("--db", envvar="QUALKIT_DB", type=click.Path(dir_okay=False), help="Database file to use (also QUALKIT_DB). Default: the project's.")
@click.option("--project", "project_dir", type=click.Path(file_okay=False), help="Project folder holding qualkit.toml. Default: the current folder.")
@click.option("-v", "--verbose", count=True, help="Log more on stderr (-vv for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Log only errors.")
@click.version_option(__version__, prog_name="qualkit")
@click.pass_context
def cli(ctx: click.Context, db: str | None, project_dir: str | None, verbose: int, quiet: bool) -> None:
    """Code interview transcripts and hold the evidence against panel data."""
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s: %(message)s", stream=sys.stderr)
    for noisy in ("jieba", "pypdf"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    ctx.obj = State(db, project_dir)


@cli.command()
@click.argument("folder", default=".", type=click.Path(file_okay=False))
@click.option("--title", help="Project title shown in reports.")
@handle_errors
def init(folder: str, title: str | None) -> None:
    """Create a project folder.

    Writes a qualkit.toml, an empty targets.yaml and an empty database.
    """
    from qualkit.project import init_project

    path = init_project(folder, title=title)
    click.echo(f"Created {path}. Put transcripts in {Path(folder) / 'transcripts'} and run 'qualkit build {folder}'.")


@cli.command()
@click.argument("folder", default=".", type=click.Path(exists=True, file_okay=False))
@click.option("--no-report", is_flag=True, help="Stop before rendering the report.")
@click.pass_context
@handle_errors
def build(ctx: click.Context, folder: str, no_report: bool) -> None:
    """Run the whole pipeline for a project folder.

    \b
    Imports transcripts, auto-codes them, links quotes to targets, imports
    the panel, computes negotiability and writes the report. Running it
    again on unchanged inputs changes nothing.
    \b
    Example:
      qualkit build interviews_sample
    """
    from qualkit.project import Project

    state: State = ctx.obj
    with Project.open(folder, state.db) as project:
        result = project.build(report=not no_report)
    imported = result.imported
    coded = result.autocoded
    click.echo(f"Transcripts: {len(imported.added)} added, {len(imported.updated)} updated, {len(imported.unchanged)} unchanged.")
    if imported.conflicts:
        click.echo(f"Metadata conflicts: {len(imported.conflicts)} (listed in the report; see 'qualkit conflicts').")
    if imported.flagged_codings:
        click.echo(f"Codings flagged for review after text changes: {len(imported.flagged_codings)}.")
    click.echo(f"Auto-coding: {coded.sources} sources coded, {coded.skipped} unchanged; {coded.added} suggestions added, {coded.removed} removed.")
    click.echo(f"Quote-target links: {result.links}.")
    for path in result.report_files:
        click.echo(f"Wrote {path}")


@cli.command()
@click.option("--codebook", help="Codebook file or bundled name. Default: the project's.")
@click.option("--unit", type=click.Choice(["sentence", "turn", "match"]), help="Span coded around a rule hit.")
@click.option("--include-interviewer", is_flag=True, default=None, help="Also code interviewer turns.")
@click.option("--force", is_flag=True, help="Re-code sources even if nothing changed.")
@pass_state
@handle_errors
def autocode(state: State, codebook: str | None, unit: str | None, include_interviewer: bool | None, force: bool) -> None:
    """Suggest codings from the codebook's rules.

    Rule hits are stored as suggestions for a coder to review.
    """
    from dataclasses import replace

    project = state.project()
    options = project.autocode_options()
    if unit:
        options = replace(options, unit=unit)
    if include_interviewer:
        options = replace(options, include_interviewer=True)
    count = len(project.sources())
    with progress_bar(count, "Auto-coding") as update:
        result = project.autocode(project.codebook(codebook), options, force=force, progress=update)
    click.echo(f"{result.sources} sources coded, {result.skipped} unchanged; {result.added} suggestions added, {result.removed} removed, {result.kept} kept.")


@cli.command()
@click.option("--targets", "targets_file", type=click.Path(exists=True, dir_okay=False), help="Targets YAML file. Default: the project's.")
@click.option("--scope", type=click.Choice(["quote", "sentence", "turn"]), help="Text searched for target names around each coding.")
@pass_state
@handle_errors
def link(state: State, targets_file: str | None, scope: str | None) -> None:
    """Link coded quotes to the targets they name.

    A target is named by any of its English or Chinese aliases.
    """
    project = state.project()
    if targets_file or project.config is not None:
        project.load_targets(targets_file)
    count = project.link(scope=scope)
    click.echo(f"{count} quote-target links.")


@cli.command()
@click.option("--target", help="Only links to this target id.")
@output_option
@pass_state
@handle_errors
def links(state: State, target: str | None, output_format: str) -> None:
    """List quote-target links with their quotes."""
    echo_frame(state.project().links(target), output_format)


@cli.command()
@click.option("--code", help="Code id; its child codes are included.")
@click.option("--source", help="Source (interview) id.")
@click.option("--status", type=click.Choice(["suggested", "accepted", "rejected"]))
@output_option
@pass_state
@handle_errors
def codings(state: State, code: str | None, source: str | None, status: str | None, output_format: str) -> None:
    """List codings with their quotes."""
    echo_frame(state.project().codings(code=code, source=source, status=status), output_format)


@cli.command()
@output_option
@pass_state
@handle_errors
def sources(state: State, output_format: str) -> None:
    """List imported sources with their metadata."""
    echo_frame(state.project().sources(), output_format)


@cli.command()
@output_option
@pass_state
@handle_errors
def conflicts(state: State, output_format: str) -> None:
    """List metadata values that disagree.

    A manifest and a transcript's front matter may give different values.
    """
    echo_frame(state.project().conflicts(), output_format)


def main() -> None:
    """Run the CLI (the ``qualkit`` console script)."""
    cli(prog_name="qualkit")


cli.add_command(scores)
cli.add_command(import_command)

from qualkit.cli.coding import code, log_command, memo, undo  # noqa: E402
from qualkit.cli.review import review  # noqa: E402

cli.add_command(code)
cli.add_command(log_command)
cli.add_command(undo)
cli.add_command(memo)
cli.add_command(review)
from qualkit.cli.codebook import codebook  # noqa: E402

cli.add_command(codebook)
from qualkit.cli.queries import export, query  # noqa: E402

cli.add_command(query)
cli.add_command(export)
from qualkit.cli.triangulation import triangulate  # noqa: E402

cli.add_command(triangulate)
from qualkit.cli.merge import clone, merge  # noqa: E402

cli.add_command(clone)
cli.add_command(merge)

from qualkit.cli.refi import refi  # noqa: E402

cli.add_command(refi)
from qualkit.cli.report import report  # noqa: E402

cli.add_command(report)
from qualkit.cli.agreement import adjudicate, agree, disagreements  # noqa: E402

cli.add_command(agree)
cli.add_command(disagreements)
cli.add_command(adjudicate)
from qualkit.cli.maintenance import backup, check  # noqa: E402

cli.add_command(backup)
cli.add_command(check)
