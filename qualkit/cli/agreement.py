"""``qualkit agree``, ``disagreements`` and ``adjudicate``: inter-coder agreement and consensus."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import click

from qualkit.cli.common import (
    State,
    echo_frame,
    handle_errors,
    output_option,
    pass_state,
)

log = logging.getLogger("qualkit")

# The same limit as qualkit.agreement.MAX_REPLICATES, repeated here so that
# building the CLI does not import numpy and statsmodels.
MAX_REPLICATES = 100_000


def selection_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """Add the options that choose units, coders, codes, sources and counted codings."""
    options = [
        click.option(
            "--unit",
            type=click.Choice(["sentence", "turn", "source", "character"]),
            default="sentence",
            show_default=True,
            help="Unit of analysis: sentences, speaker turns, whole sources (code present or not) or single characters.",
        ),
        click.option(
            "--coder",
            "coders",
            multiple=True,
            help="Coder to compare, matched without regard to case or Unicode normalization form. Repeatable. Default: every coder except autocode and consensus coders.",
        ),
        click.option(
            "--code",
            "codes",
            multiple=True,
            help="Code id. Its child codes that the coders applied are compared too, each on its own. Repeatable. Default: every code the coders applied.",
        ),
        click.option(
            "--source",
            "sources",
            multiple=True,
            help="Source id to compare. Repeatable. Default: every source that a compared coder coded.",
        ),
        click.option(
            "--include-suggestions",
            is_flag=True,
            help="Also count suggested codings (status suggested), not only accepted ones.",
        ),
        click.option(
            "--min-overlap",
            type=click.FloatRange(0, 1),
            default=0.0,
            show_default=True,
            help="Share of a sentence's or turn's characters that a coder's codings must cover to count. 0 means any overlap.",
        ),
        click.option(
            "--assume-coded",
            is_flag=True,
            help="Treat every compared coder as having coded every compared source, so no unit is missing data.",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def build_selection(
    unit: str,
    coders: tuple[str, ...],
    codes: tuple[str, ...],
    sources: tuple[str, ...],
    include_suggestions: bool,
    min_overlap: float,
    assume_coded: bool,
) -> Any:
    """Return the agreement Selection for the values of ``selection_options``."""
    from qualkit.agreement import DEFAULT_STATUSES, Selection

    statuses = DEFAULT_STATUSES + (("suggested",) if include_suggestions else ())
    return Selection(
        unit=unit,
        coders=coders,
        codes=codes,
        sources=sources,
        statuses=statuses,
        min_overlap=min_overlap,
        assume_coded=assume_coded,
    )


@click.command()
@selection_options
@click.option(
    "--coefficient",
    "coefficients",
    multiple=True,
    type=click.Choice(["percent", "cohen", "fleiss", "alpha"]),
    help="Coefficient to report. Repeatable. Default: all, but Cohen's kappa only with exactly two coders.",
)
@click.option(
    "--level",
    "levels",
    multiple=True,
    type=click.Choice(["nominal", "ordinal", "interval", "ratio"]),
    help="Level of measurement of Krippendorff's alpha. Repeatable. Default: nominal, plus ordinal, interval and ratio for codes whose codings carry values.",
)
@click.option(
    "--bootstrap",
    "replicates",
    type=click.IntRange(min=0, max=MAX_REPLICATES),
    default=0,
    show_default=True,
    help="Bootstrap replicates for percentile confidence intervals (units resampled), e.g. 1000, or 0 for no intervals. A 95% interval needs at least 40.",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    help="Seed of the bootstrap (0 or more), so intervals are reproducible. Default: a fixed seed.",
)
@click.option(
    "--confidence",
    type=click.FloatRange(0.5, 0.999),
    default=0.95,
    show_default=True,
    help="Confidence level of the percentile intervals.",
)
@output_option
@pass_state
@handle_errors
def agree(
    state: State,
    coefficients: tuple[str, ...],
    levels: tuple[str, ...],
    replicates: int,
    seed: int | None,
    confidence: float,
    output_format: str,
    **selection_values: Any,
) -> None:
    """Report inter-coder agreement per code and pooled.

    \b
    Percent agreement, Cohen's kappa (two coders), Fleiss' kappa and
    Krippendorff's alpha, with percentile bootstrap confidence intervals.
    A coder who has no coding in a source has missing data there.
    \b
    Examples:
      qualkit agree
      qualkit agree --coder alice --coder bob --unit turn --bootstrap 1000
      qualkit agree --code strategy --unit source --format csv > agreement.csv
    """
    from qualkit.agreement import (
        COEFFICIENTS,
        DEFAULT_SEED,
        BootstrapOptions,
        compute_agreement,
        load_reliability_data,
    )

    selection = build_selection(**selection_values)
    data = load_reliability_data(state.project().db, selection)
    log.info(
        "Comparing %s on %d %s units of %d sources and %d codes.",
        ", ".join(data.coders),
        data.n_units,
        data.unit,
        len(data.sources),
        len(data.codes),
    )
    frame = compute_agreement(
        data,
        coefficients=coefficients or COEFFICIENTS,
        levels=levels or None,
        bootstrap=BootstrapOptions(
            replicates, DEFAULT_SEED if seed is None else seed, confidence
        ),
        explicit=bool(coefficients),
        explicit_codes=bool(selection.codes),
    )
    if output_format == "table":
        frame = frame.round(3)
    echo_frame(frame, output_format)


@click.command()
@selection_options
@click.option(
    "--quote-width",
    type=click.IntRange(min=20),
    default=200,
    show_default=True,
    help="Maximum quote length in characters. Longer quotes keep their start and end.",
)
@output_option
@pass_state
@handle_errors
def disagreements(
    state: State, quote_width: int, output_format: str, **selection_values: Any
) -> None:
    """List the units on which the coders disagree.

    \b
    Each row has the unit's quote and each coder's codes on it. A CSV
    listing, with the decision column filled in, is the decisions file of
    'qualkit adjudicate --decisions'.
    \b
    Examples:
      qualkit disagreements --coder alice --coder bob
      qualkit disagreements --unit turn --format csv > decisions.csv
    """
    from qualkit.agreement import list_disagreements, load_reliability_data

    selection = build_selection(**selection_values)
    data = load_reliability_data(state.project().db, selection)
    echo_frame(list_disagreements(data, quote_width), output_format)


@click.command()
@selection_options
@click.option(
    "--into",
    default="consensus",
    show_default=True,
    help="Coder name the consensus codings are written as.",
)
@click.option(
    "--rule",
    type=click.Choice(["majority", "union", "intersection", "coder"]),
    default="majority",
    show_default=True,
    help="How a disagreement is settled: most coders, any coder, every coder, or the --accept-from coder.",
)
@click.option(
    "--accept-from",
    help="Coder whose judgement settles majority ties, or every disagreement with --rule coder.",
)
@click.option(
    "--decisions",
    "decisions_path",
    type=click.Path(dir_okay=False),
    help="CSV from 'qualkit disagreements --format csv' with the decision column filled in (codes to apply, or none).",
)
@click.option(
    "--dry-run", is_flag=True, help="Show what would be written and change nothing."
)
@click.option(
    "--by",
    envvar="QUALKIT_CODER",
    help="Person recorded in the audit log (also QUALKIT_CODER). Default: the --into name.",
)
@output_option
@pass_state
@handle_errors
def adjudicate(
    state: State,
    into: str,
    rule: str,
    accept_from: str | None,
    decisions_path: str | None,
    dry_run: bool,
    by: str | None,
    output_format: str,
    **selection_values: Any,
) -> None:
    """Settle disagreements into a consensus coder.

    \b
    Codes the coders agree on are copied. Disagreements follow --rule,
    --accept-from and the --decisions file. Ties left open are listed on
    stdout. Every write is one batch that 'qualkit undo' takes back.
    \b
    Examples:
      qualkit adjudicate --into consensus --rule majority --accept-from alice
      qualkit adjudicate --into consensus --decisions decisions.csv
    """
    from qualkit.adjudication import adjudicate as run_adjudication
    from qualkit.audit import check_coder_name
    from qualkit.errors import QualkitError

    project = state.project()
    chosen_by = (
        by or (project.config.coder if project.config is not None else None) or into
    )
    try:
        recorder_name = check_coder_name(chosen_by)
    except QualkitError as error:
        raise click.BadParameter(str(error), param_hint="--by") from None
    result = run_adjudication(
        project.db,
        build_selection(**selection_values),
        into=into,
        by=recorder_name,
        rule=rule,
        accept_from=accept_from,
        decisions_path=decisions_path,
        dry_run=dry_run,
    )
    pieces = len(result.plan.pieces)
    if dry_run:
        click.echo(
            f"Would write {pieces} consensus codings as {result.into} "
            f"(rule {result.rule}, coders {', '.join(result.coders)})."
        )
    else:
        counts = ", ".join(
            f"{n} {action}" for action, n in sorted(result.counts().items())
        )
        click.echo(
            f"Consensus coder {result.into}: {counts or 'nothing changed'} "
            f"(rule {result.rule}, coders {', '.join(result.coders)})."
        )
        if result.batch_id:
            click.echo(
                f"Batch {result.batch_id}. Undo it with 'qualkit undo --coder {recorder_name}'.",
                err=True,
            )
    if result.plan.decided_units:
        click.echo(f"Decisions applied to {result.plan.decided_units} units.")
    unresolved = result.unresolved_frame()
    if not unresolved.empty:
        click.echo(
            f"{len(unresolved)} ties need a person: fill in the decision column of "
            "'qualkit disagreements --format csv' and pass it with --decisions, or use --accept-from.",
            err=True,
        )
        echo_frame(unresolved, output_format)
