"""``qualkit scores``: panel import, negotiability, spread, typology, regression."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import pandas as pd

from qualkit import store
from qualkit.cli.common import State, echo_frame, handle_errors, output_option, pass_state
from qualkit.errors import NotFoundError, PanelError
from qualkit.negotiability import (
    NegotiabilityOptions,
    coefficient_of_variation,
    explain as explain_target,
    options_from_mapping,
    rank_changes,
    standardize,
    summarize,
    typology,
)
from qualkit.panel import (
    compute_scores,
    import_panel_files,
    load_unit_aliases,
    panel_frames,
    target_settings,
    unit_aliases_from_settings,
)

SCORE_COLUMNS = ["researcher_order", "name", "years", "mean_points", "units_changed", "range_min", "range_max", "observed", "possible", "frequency", "mean_cv", "variation_order", "cell"]
TYPOLOGY_COLUMNS = ["target", "name", "priority", "negotiability", "priority_level", "negotiability_level", "cell", "expected_response"]


def negotiability_flags(function: Callable[..., Any]) -> Callable[..., Any]:
    """Add --ties, --transitions and --missing, which override the project's options."""
    function = click.option("--missing", type=click.Choice(["common", "each_year"]), help="Rank among units present in both years of a transition, or within each year. Default: common.")(function)
    function = click.option("--transitions", type=click.Choice(["consecutive", "adjacent"]), help="Compare consecutive years with data, or calendar-adjacent years only. Default: consecutive.")(function)
    return click.option("--ties", type=click.Choice(["min", "average", "max", "dense", "first"]), help="How tied values are ranked. Default: min.")(function)


def figures_option(function: Callable[..., Any]) -> Callable[..., Any]:
    """Add --figures DIR, the folder the command writes its SVG and PNG figures to."""
    return click.option("--figures", "figures", type=click.Path(file_okay=False, path_type=Path), help="Also write the figures, as SVG and PNG, into this folder.")(function)


@click.group()
def scores() -> None:
    """Panel import, negotiability, spread and regression."""


# Import


@scores.command("import", short_help="Import values, points or evaluation forms.")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--skip-invalid", is_flag=True, help="Store the valid rows of a file that has invalid ones (evaluation forms excepted).")
@click.option("--target", help="Target of wide files that have no target column.")
@click.option("--year", type=int, help="Year of evaluation forms that have no year column.")
@click.option("--sheet", help="Excel sheet to read, by name. Default: the first sheet.")
@click.option("--aliases", type=click.Path(exists=True, dir_okay=False), help="CSV of unit aliases (unit,alias). Default: unit_aliases in [scores] of qualkit.toml.")
@output_option
@pass_state
@handle_errors
def import_values(state: State, files: tuple[str, ...], skip_invalid: bool, target: str | None, year: int | None, sheet: str | None, aliases: str | None, output_format: str) -> None:
    """Import target values, points or evaluation forms from CSV or Excel files.

    Each file's header decides its layout. target,unit,year,value is long
    values, and unit plus one column per year is wide values.
    target,year,points is points. category,item,points is an evaluation
    form, whose points are stored for the items that name a target. Nothing
    is stored while any file has an invalid row, unless --skip-invalid is
    given.
    """
    project = state.project()
    if project.config is not None and project.config.targets:
        project.load_targets()
    unit_aliases = load_unit_aliases(aliases) if aliases else _project_aliases(project)
    with store.transaction(project.db):
        results = import_panel_files(project.db, files, skip_invalid=skip_invalid, aliases=unit_aliases, target=target, year=year, sheet=sheet)
        store.touch(project.db)

    for result in results:
        for problem in result.skipped:
            click.echo(f"{result.path}: skipped {problem}", err=True)
        for item in result.unlinked:
            click.echo(f"{result.path}: no target named by {item}; its points were not stored", err=True)
    summary = pd.DataFrame(
        [
            {"path": r.path, "kind": r.kind, "stored": r.stored, "skipped": len(r.skipped), "unlinked": len(r.unlinked), "checks": "; ".join(r.checks)}
            for r in results
        ]
    )
    echo_frame(summary, output_format)


# Negotiability


@scores.command(short_help="Compute and store negotiability (Table 1).")
@negotiability_flags
@click.option("--all", "show_all", is_flag=True, help="Also list targets that are not eligible.")
@click.option("--explain", "explain_id", metavar="TARGET", help="Print TARGET's ranking in each year and every counted change instead of the table.")
@figures_option
@output_option
@pass_state
@handle_errors
def negotiability(state: State, ties: str | None, transitions: str | None, missing: str | None, show_all: bool, explain_id: str | None, figures: Path | None, output_format: str) -> None:
    """Compute negotiability per target, store it and print it (Table 1 layout).

    Figures: the typology, the mean coefficient of variation per target, and
    a bump chart of the units' ranks for each target.
    """
    project = state.project()
    options = project.negotiability_options(ties=ties, transitions=transitions, missing=missing)
    if explain_id is not None:
        click.echo(_explanation(project, explain_id, options, {}))
        return
    cuts = _cuts(project, None, None)
    with store.transaction(project.db):
        compute_scores(project.db, options, **cuts)
    table = project.scores()
    if not show_all:
        table = table[table["eligible"] == 1]
    echo_frame(table[[c for c in SCORE_COLUMNS if c in table.columns]], output_format)
    if figures is not None:
        _write_negotiability_figures(project, options, cuts, figures)


@scores.command(short_help="Show a target's rankings and rank changes.")
@click.argument("target")
@negotiability_flags
@pass_state
@handle_errors
def explain(state: State, target: str, ties: str | None, transitions: str | None, missing: str | None) -> None:
    """Print each year's ranking of TARGET and every counted rank change."""
    project = state.project()
    flags = {"ties": ties, "transitions": transitions, "missing": missing}
    click.echo(_explanation(project, target, project.negotiability_options(), flags))


def _explanation(project: Any, target: str, options: NegotiabilityOptions, flags: dict[str, str | None]) -> str:
    """Explain one target under its own options, with ``flags`` overriding both."""
    values, _ = panel_frames(project.db)
    if target not in set(values["target"]):
        raise NotFoundError(f"No values for target {target!r}. See 'qualkit scores negotiability --all' for ids.")
    directions, per_target = target_settings(project.db, options)
    chosen = per_target.get(target, options)
    chosen = options_from_mapping({k: v for k, v in flags.items() if v is not None}, chosen)
    return explain_target(values, target, {target: directions[target]}, chosen)


# Spread


@scores.command(short_help="Coefficient of variation across units.")
@click.option("--target", "targets", multiple=True, help="Target to list; repeat for several. Default: all.")
@click.option("--ddof", type=click.IntRange(min=0), default=1, show_default=True, help="Delta degrees of freedom of the standard deviation (1: sample SD).")
@click.option("--by", type=click.Choice(["year", "target", "unit"]), default="year", show_default=True, help="year: CV per target-year; target: mean CV per target, widest first; unit: standardized value per unit-year.")
@figures_option
@output_option
@pass_state
@handle_errors
def cov(state: State, targets: tuple[str, ...], ddof: int, by: str, figures: Path | None, output_format: str) -> None:
    """Print the coefficient of variation (SD / mean) of target values across units.

    Figure: a bar chart of the mean coefficient of variation per target.
    """
    from qualkit.plots import plot_mean_cv

    project = state.project()
    values, _ = panel_frames(project.db)
    if targets:
        _require_targets(values, targets)
        values = values[values["target"].isin(targets)]
    per_year = coefficient_of_variation(values, ddof=ddof)
    means = per_year.groupby("target", as_index=False)["cv"].mean().rename(columns={"cv": "mean_cv"})
    means = means.sort_values("mean_cv", ascending=False, kind="mergesort")
    if by == "year":
        echo_frame(per_year, output_format)
    elif by == "target":
        echo_frame(means, output_format)
    else:
        echo_frame(standardize(values, ddof=ddof), output_format)
    if figures is not None:
        _report_paths(plot_mean_cv(means, figures, labels=_target_names(project)))


# Typology


@scores.command("typology", short_help="Priority x negotiability typology.")
@click.option("--priority-cut", type=float, help="Mean points above which a target has high priority. Default: [scores] priority_cut, else the median.")
@click.option("--negotiability-cut", type=float, help="Frequency of change above which a target is more negotiable. Default: [scores] negotiability_cut, else the median.")
@negotiability_flags
@figures_option
@output_option
@pass_state
@handle_errors
def typology_command(state: State, priority_cut: float | None, negotiability_cut: float | None, ties: str | None, transitions: str | None, missing: str | None, figures: Path | None, output_format: str) -> None:
    """Place eligible targets in the priority x negotiability typology and store it.

    Each cell has its expected bureaucratic response. Figure: priority
    against negotiability with the cut lines.
    """
    from qualkit.plots import plot_typology

    project = state.project()
    options = project.negotiability_options(ties=ties, transitions=transitions, missing=missing)
    cuts = _cuts(project, priority_cut, negotiability_cut)
    with store.transaction(project.db):
        summary = compute_scores(project.db, options, **cuts)
    if summary.empty:
        raise PanelError("no target values are stored.", fix="Run 'qualkit scores import' first.")
    table = typology(summary, **cuts)
    names = _target_names(project)
    table.insert(1, "name", table["target"].map(names))
    echo_frame(table[TYPOLOGY_COLUMNS], output_format)
    if figures is not None and not table.empty:
        used = {"priority_cut": float(table["priority_cut"].iloc[0]), "negotiability_cut": float(table["negotiability_cut"].iloc[0])}
        _report_paths(plot_typology(table, figures, labels=names, **used))


# Regression


@scores.command(short_help="Validation regression (Table 2 layout).")
@click.option("--target", "targets", multiple=True, help="Target to regress; repeat for several. Default: every eligible target.")
@click.option("--covariates", type=click.Path(exists=True, dir_okay=False), help="CSV or Excel file: unit, year, connection, gdp_per_capita, revenue, population. Default: covariates in [scores] of qualkit.toml.")
@click.option("--correlation", type=click.Choice(["independent", "ar1", "psar1"]), default="ar1", show_default=True, help="Within-unit autocorrelation: none, one AR(1) coefficient for all units, or one per unit.")
@click.option("--rhotype", type=click.Choice(["regress", "freg", "tscorr", "dw", "theil", "nagar"]), default="regress", show_default=True, help="How each unit's AR(1) coefficient is estimated from the OLS residuals (Stata's rhotype()).")
@click.option("--pairwise", is_flag=True, help="Estimate each residual covariance from the years two units share, not the years all units share.")
@click.option("--panels", type=click.Choice(["correlated", "hetonly", "independent"]), default="correlated", show_default=True, help="Residual structure across units: full covariance, one variance per unit (Stata's hetonly), or one variance (Stata's independent).")
@click.option("--np1", is_flag=True, help="Weight the units' AR(1) coefficients by their numbers of years, not pairs of years (Stata's np1).")
@click.option("--nmk", is_flag=True, help="Scale the covariance by N / (N - k) (Stata's nmk).")
@click.option("--post-year", type=int, default=2013, show_default=True, help="The post-period dummy is 1 for years after this one.")
@click.option("--layout", type=click.Choice(["table2", "long"]), default="table2", show_default=True, help="table2: one column per target, SE in parentheses, stars; long: one row per target and term.")
@output_option
@pass_state
@handle_errors
def regress(state: State, targets: tuple[str, ...], covariates: str | None, correlation: str, rhotype: str, pairwise: bool, panels: str, np1: bool, nmk: bool, post_year: int, layout: str, output_format: str) -> None:
    """Regress standardized target values on personal connection and lagged controls.

    The model is z ~ connection + log GDP per capita (t-1) + log revenue
    (t-1) + log population (t-1) + post-period dummy, by Prais-Winsten with
    panel-corrected standard errors (Stata: xtpcse ..., correlation(ar1)).
    Stars: * p < .05, ** p < .01, *** p < .001.
    """
    from qualkit.regression import VALIDATION_LABELS, fit_validation, read_covariates, regression_table, validation_data

    project = state.project()
    values, _ = panel_frames(project.db)
    covariate_path = covariates or _setting_path(project, "covariates")
    if covariate_path is None:
        raise click.UsageError("No covariates file. Pass --covariates FILE or set covariates in [scores] of qualkit.toml.")
    covariate_frame = read_covariates(covariate_path, _project_aliases(project))
    chosen = list(targets) or _eligible_targets(project, values)
    if targets:
        _require_targets(values, targets)

    models, rows = {}, []
    for target in chosen:
        data = validation_data(values, covariate_frame, target, post_year=post_year)
        try:
            fit, dropped = fit_validation(data, correlation=correlation, rhotype=rhotype, pairwise=pairwise, panels=panels, np1=np1, nmk=nmk)
        except PanelError as error:
            if targets:
                raise
            click.echo(f"{target}: not estimated: {error}", err=True)
            continue
        if dropped:
            click.echo(f"{target}: left out {', '.join(dropped)} (no variation)", err=True)
        models[target] = fit
        coefficients = fit.coefficients().assign(target=target, rho=fit.rho, r_squared=fit.r_squared, n=fit.nobs)
        rows.append(coefficients)
    if not models:
        raise PanelError("no target could be estimated.", fix="See the reasons above, or pass --target.")
    table2 = regression_table(models, labels=VALIDATION_LABELS)
    # Kept for the appendix's regression table; a later run replaces it.
    from qualkit.appendix import store_regression

    names = {target: name for target, name in _target_names(project).items() if target in models}
    options = {"correlation": correlation, "rhotype": rhotype, "pairwise": pairwise, "panels": panels, "np1": np1, "nmk": nmk, "post_year": post_year}
    store_regression(project.db, table2, names=names, options=options)
    if layout == "table2":
        echo_frame(table2, output_format)
    else:
        echo_frame(pd.concat(rows, ignore_index=True), output_format)


# Helpers


def _project_aliases(project: Any) -> Any:
    if project.config is None:
        return None
    return unit_aliases_from_settings(project.config.scores, project.config.root)


def _setting_path(project: Any, key: str) -> Path | None:
    if project.config is None or not project.config.scores.get(key):
        return None
    return project.config.root / str(project.config.scores[key])


def _cuts(project: Any, priority_cut: float | None, negotiability_cut: float | None) -> dict[str, float | None]:
    settings = project.config.scores if project.config else {}
    return {
        "priority_cut": priority_cut if priority_cut is not None else settings.get("priority_cut"),
        "negotiability_cut": negotiability_cut if negotiability_cut is not None else settings.get("negotiability_cut"),
    }


def _target_names(project: Any) -> dict[str, str]:
    return dict(project.db.execute("SELECT id, name FROM targets").fetchall())


def _require_targets(values: pd.DataFrame, targets: tuple[str, ...]) -> None:
    missing = sorted(set(targets) - set(values["target"]))
    if missing:
        raise NotFoundError(f"No values for target(s) {', '.join(missing)}. See 'qualkit scores negotiability --all' for ids.")


def _eligible_targets(project: Any, values: pd.DataFrame) -> list[str]:
    _, points = panel_frames(project.db)
    options = project.negotiability_options()
    directions, per_target = target_settings(project.db, options)
    summary = summarize(values, points, directions, options, per_target=per_target)
    eligible = summary[summary["eligible"]].sort_values("variation_order")
    return eligible["target"].tolist()


def _write_negotiability_figures(project: Any, options: NegotiabilityOptions, cuts: dict[str, float | None], folder: Path) -> None:
    from qualkit.plots import plot_mean_cv, plot_rank_changes, plot_typology

    values, points = panel_frames(project.db)
    directions, per_target = target_settings(project.db, options)
    names = _target_names(project)
    summary = summarize(values, points, directions, options, per_target=per_target)
    paths = plot_mean_cv(summary, folder, labels=names)
    cells = typology(summary, **cuts)
    if not cells.empty:
        used = {"priority_cut": float(cells["priority_cut"].iloc[0]), "negotiability_cut": float(cells["negotiability_cut"].iloc[0])}
        paths += plot_typology(cells, folder, labels=names, **used)
    changes = rank_changes(values, directions, options, per_target=per_target)
    for target in sorted(set(changes["target"])):
        paths += plot_rank_changes(changes, target, folder, title=f"Ranks of units: {names.get(target, target)}")
    _report_paths(paths)


def _report_paths(paths: list[Path]) -> None:
    for path in paths:
        click.echo(f"Wrote {path}", err=True)
