"""``qualkit scores``: panel import and negotiability."""

from __future__ import annotations

import json

import click

from qualkit.cli.common import State, echo_frame, handle_errors, output_option, pass_state

SCORE_COLUMNS = ["researcher_order", "name", "years", "mean_points", "units_changed", "range_min", "range_max", "observed", "possible", "frequency", "mean_cv", "variation_order", "cell"]


@click.group()
def scores() -> None:
    """Import target values and compute negotiability scores."""


@scores.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--skip-invalid", is_flag=True, help="Store the valid rows of a file that has invalid ones.")
@pass_state
@handle_errors
def import_values(state: State, files: tuple[str, ...], skip_invalid: bool) -> None:
    """Import CSV files of target values (target,unit,year,value) or points (target,year,points)."""
    project = state.project()
    if project.config is not None and project.config.targets:
        project.load_targets()
    for result in project.import_panel(files, skip_invalid=skip_invalid):
        click.echo(f"{result.path}: {result.stored} {result.kind} rows stored.")
        for problem in result.skipped:
            click.echo(f"{result.path}: skipped {problem}", err=True)


@scores.command()
@click.option("--ties", type=click.Choice(["min", "average", "max", "dense", "first"]), help="How tied values are ranked. Default: min.")
@click.option("--transitions", type=click.Choice(["consecutive", "adjacent"]), help="Compare consecutive years with data, or calendar-adjacent years only. Default: consecutive.")
@click.option("--missing", type=click.Choice(["common", "each_year"]), help="Rank among units present in both years, or within each year. Default: common.")
@click.option("--all", "show_all", is_flag=True, help="Also list targets that are not eligible.")
@output_option
@pass_state
@handle_errors
def negotiability(state: State, ties: str | None, transitions: str | None, missing: str | None, show_all: bool, output_format: str) -> None:
    """Compute negotiability per target and print the table (Table 1 layout)."""
    project = state.project()
    options = project.negotiability_options(ties=ties, transitions=transitions, missing=missing)
    project.negotiability(options)
    table = project.scores()
    if not show_all:
        table = table[table["eligible"] == 1]
    echo_frame(table[[c for c in SCORE_COLUMNS if c in table.columns]], output_format)


@scores.command()
@click.argument("target")
@click.option("--ties", type=click.Choice(["min", "average", "max", "dense", "first"]))
@click.option("--transitions", type=click.Choice(["consecutive", "adjacent"]))
@click.option("--missing", type=click.Choice(["common", "each_year"]))
@pass_state
@handle_errors
def explain(state: State, target: str, ties: str | None, transitions: str | None, missing: str | None) -> None:
    """Print each year's ranking of TARGET and every counted rank change."""
    from qualkit.errors import NotFoundError
    from qualkit.negotiability import explain as explain_target
    from qualkit.negotiability import options_from_mapping
    from qualkit.panel import panel_frames

    project = state.project()
    values, _ = panel_frames(project.db)
    if target not in set(values["target"]):
        raise NotFoundError(f"No values for target {target!r}. See 'qualkit scores negotiability --all' for ids.")
    row = project.db.execute("SELECT higher_is_harder, options FROM targets WHERE id = ?", [target]).fetchone()
    # The target's own options in targets.yaml override the project's; flags given here override both.
    options = options_from_mapping(json.loads(row[1] or "{}"), project.negotiability_options())
    flags = {"ties": ties, "transitions": transitions, "missing": missing}
    options = options_from_mapping({k: v for k, v in flags.items() if v is not None}, options)
    click.echo(explain_target(values, target, {target: bool(row[0])}, options))
