"""``qualkit triangulate`` and ``qualkit code key-quote``: joint displays and key quotes."""

from __future__ import annotations

from typing import Any

import click

from qualkit.cli.coding import code, coder_option, command_name, resolve_coder
from qualkit.cli.common import (
    State,
    echo_frame,
    handle_errors,
    output_option,
    pass_state,
)

STATUS_CHOICES = ["accepted", "suggested"]


@code.command("key-quote")
@click.argument("coding_id", type=int)
@click.option("--off", is_flag=True, help="Clear the flag instead of setting it.")
@coder_option
@pass_state
@handle_errors
def code_key_quote(state: State, coding_id: int, off: bool, coder: str | None) -> None:
    """Flag a coding as a key quote, shown first among its target's quotes.

    \b
    Examples:
      qualkit code key-quote 416
      qualkit code key-quote 416 --off
    """
    from qualkit.triangulation import set_key_quote

    project = state.project()
    coder_name = resolve_coder(project, coder)
    changed = set_key_quote(
        project.db, coding_id, not off, coder=coder_name, command=command_name()
    )
    state_text = "cleared" if off else "set"
    if changed:
        click.echo(f"Key quote flag {state_text} on coding #{coding_id}.")
        click.echo(f"Undo with 'qualkit undo --coder {coder_name}'.", err=True)
    else:
        click.echo(
            f"Coding #{coding_id} already had the key quote flag {state_text}; nothing changed."
        )


@click.command("triangulate")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(STATUS_CHOICES),
    help="Coding status to count; repeat for several. Default: accepted and suggested.",
)
@click.option(
    "--min-bargaining-interviews",
    type=click.IntRange(min=1),
    help="Interviews with a strategy or channel code on the target needed to call it "
    "negotiable. Default: [triangulation] in qualkit.toml, else 2.",
)
@click.option(
    "--min-nonnegotiable-interviews",
    type=click.IntRange(min=1),
    help="Interviews that call the target non-negotiable needed to call it "
    "non-negotiable. Default: [triangulation] in qualkit.toml, else 1.",
)
@click.option(
    "--negotiability-cut",
    type=click.FloatRange(0, 1),
    help="Frequency of rank change at or above which a target is 'more' negotiable. "
    "Default: [triangulation] in qualkit.toml, else the typology level stored by "
    "'qualkit scores'.",
)
@click.option(
    "--redact",
    type=click.Path(exists=True, dir_okay=False),
    help="Redaction list applied to the target names and rules. Default: [report] redact "
    "in qualkit.toml, so that the listing matches the report.",
)
@output_option
@pass_state
@handle_errors
def triangulate(
    state: State,
    statuses: tuple[str, ...],
    min_bargaining_interviews: int | None,
    min_nonnegotiable_interviews: int | None,
    negotiability_cut: float | None,
    redact: str | None,
    output_format: str,
) -> None:
    """List each target's meta-inference and the rule behind it.

    The meta-inference is convergent, divergent, qualitative-only,
    quantitative-only or no-evidence (see docs/triangulation.md).

    \b
    Examples:
      qualkit triangulate
      qualkit triangulate --min-bargaining-interviews 3 --format csv
      qualkit triangulate --status accepted --negotiability-cut 0.5
    """
    from qualkit.config import CONFIG_NAME
    from qualkit.report import load_redactor
    from qualkit.triangulation import (
        TriangulationRules,
        joint_displays,
        triangulation_frame,
    )

    project = state.project()
    settings: dict[str, Any] = {}
    settings_path = None
    if project.config is not None:
        settings = dict(project.config.triangulation)
        settings_path = str(project.config.root / CONFIG_NAME)
    given = {
        "min_bargaining_interviews": min_bargaining_interviews,
        "min_nonnegotiable_interviews": min_nonnegotiable_interviews,
        "negotiability_cut": negotiability_cut,
    }
    settings.update({name: value for name, value in given.items() if value is not None})
    rules = TriangulationRules.from_mapping(settings, path=settings_path)
    if redact is None and project.config is not None:
        redact = project.config.report.get("redact")
    redactor = load_redactor(redact)
    displays = joint_displays(
        project.db,
        statuses=statuses or ("accepted", "suggested"),
        quotes_per_target=0,
        rules=rules,
    )
    echo_frame(triangulation_frame(displays, redactor), output_format)
