"""``qualkit report``: the evidence report, the appendix tables and the report templates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from qualkit.cli.common import State, handle_errors, pass_state

REPORT_FORMATS = ("html", "md")
APPENDIX_FORMATS = ("html", "md", "tex", "docx")

redact_option = click.option(
    "--redact",
    type=click.Path(exists=True, dir_okay=False),
    help="Redaction list to apply (one term a line). Default: [report] redact in qualkit.toml.",
)


@click.group(invoke_without_command=True, short_help="Evidence report, appendix tables, templates.")
@click.option("--out", type=click.Path(file_okay=False), help="Output folder. Default: the project's report folder.")
@click.option(
    "--format",
    "formats",
    multiple=True,
    type=click.Choice(REPORT_FORMATS),
    help="Format to write; repeat for several. Default: [report] formats, else html and md.",
)
@redact_option
@click.pass_context
@handle_errors
def report(ctx: click.Context, out: str | None, formats: tuple[str, ...], redact: str | None) -> None:
    """Render the evidence report (HTML, Markdown), or run a subcommand.

    \b
    Without a subcommand, writes report.html and report.md: joint displays
    per target, figures, quotes with citations, transcripts of the quoted
    interviews and the details needed to reproduce the report.
    \b
    Examples:
      qualkit report --out report
      qualkit report --redact redact.txt
      qualkit report appendix --format tex --out appendix
      qualkit report templates --copy my_templates
    """
    if ctx.invoked_subcommand is not None:
        if out or formats or redact:
            raise click.UsageError(
                "--out, --format and --redact go after the subcommand, "
                f"e.g. 'qualkit report {ctx.invoked_subcommand} --out DIR'."
            )
        return
    from qualkit.report import render_report

    state: State = ctx.obj
    project = state.project()
    settings = report_settings(project, redact)
    formats = formats or tuple(settings.get("formats", REPORT_FORMATS))
    paths = render_report(
        project.db,
        output_folder(project, out),
        formats=formats,
        settings=settings,
        title=project.config.title if project.config else "qualkit report",
    )
    for path in paths:
        click.echo(f"Wrote {path}")


@report.command("appendix", short_help="Appendix tables as HTML, Markdown, LaTeX, Word.")
@click.option("--out", type=click.Path(file_okay=False), help="Output folder. Default: 'appendix' in the project's report folder.")
@click.option(
    "--format",
    "formats",
    multiple=True,
    type=click.Choice(APPENDIX_FORMATS),
    help="Format to write; repeat for several. Default: all four.",
)
@redact_option
@pass_state
@handle_errors
def appendix_command(state: State, out: str | None, formats: tuple[str, ...], redact: str | None) -> None:
    """Write the appendix tables as separate files, one per table and format.

    \b
    Tables: interviews, negotiability (Table 1 layout), regression (Table 2
    layout, when one was run), typology, codebook, code frequencies. LaTeX
    files use booktabs and can be \\input into a paper.
    \b
    Example:
      qualkit report appendix --format tex --out paper/tables
    """
    from qualkit.appendix import write_appendix
    from qualkit.report import (
        DEFAULT_QUOTES_PER_TARGET,
        DEFAULT_STATUSES,
        load_redactor,
        quoted_interviews,
    )

    project = state.project()
    settings = report_settings(project, redact)
    redactor = load_redactor(settings.get("redact"))
    folder = Path(out) if out else output_folder(project, None) / "appendix"
    paths = write_appendix(
        project.db,
        folder,
        formats=formats or APPENDIX_FORMATS,
        redactor=redactor,
        statuses=tuple(settings.get("statuses", DEFAULT_STATUSES)),
        quoted=quoted_interviews(project.db, settings),
        quotes_per_target=int(settings.get("quotes_per_target", DEFAULT_QUOTES_PER_TARGET)),
    )
    for path in paths:
        click.echo(f"Wrote {path}")


@report.command("templates", short_help="Copy the default templates or show those in use.")
@click.option("--copy", "copy_to", type=click.Path(file_okay=False), help="Folder to copy the default templates into.")
@click.option("--force", is_flag=True, help="Overwrite template files that already exist there.")
@pass_state
@handle_errors
def templates_command(state: State, copy_to: str | None, force: bool) -> None:
    """Copy the default report templates, or show which templates are in use.

    \b
    Edit the copies, then set templates = "DIR" under [report] in
    qualkit.toml. A template missing from DIR falls back to the default.
    \b
    Example:
      qualkit report templates --copy report_templates
    """
    from qualkit.report import TEMPLATE_FILES, copy_templates
    from qualkit.resources import resource_dir

    if copy_to:
        for path in copy_templates(copy_to, force=force):
            click.echo(f"Wrote {path}")
        click.echo(f'Set templates = "{copy_to}" under [report] in qualkit.toml to use them.')
        return
    click.echo(f"Default templates: {resource_dir('templates')} ({', '.join(TEMPLATE_FILES)})")
    configured = _configured_templates(state)
    click.echo(f"Project templates: {configured or 'none ([report] templates is not set)'}")


def _configured_templates(state: State) -> str | None:
    try:
        project = state.project()
    except click.UsageError:
        return None
    if project.config is None:
        return None
    return project.config.report.get("templates")


def report_settings(project: Any, redact: str | None) -> dict[str, Any]:
    """Return the [report] settings with the score cuts, and ``redact`` when given."""
    config = project.config
    settings: dict[str, Any] = {}
    if config is not None:
        settings = {
            "priority_cut": config.scores.get("priority_cut"),
            "negotiability_cut": config.scores.get("negotiability_cut"),
            **config.report,
        }
    if redact:
        settings["redact"] = str(Path(redact).resolve())
    return settings


def output_folder(project: Any, out: str | None) -> Path:
    """Return ``out``, else the project's [report] out folder, else ./report."""
    if out:
        return Path(out)
    if project.config is None:
        return Path.cwd() / "report"
    return project.config.root / project.config.report.get("out", "report")
