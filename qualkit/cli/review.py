"""``qualkit review``: walk through auto-coding suggestions on a terminal screen.

The screen is drawn with rich and keys are read one at a time with
``click.getchar``. All decisions go through ``qualkit.review.ReviewSession``.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from qualkit.cli.coding import (
    build_filter,
    coder_option,
    command_name,
    filter_options,
    resolve_coder,
)
from qualkit.cli.common import State, handle_errors, pass_state

KEYS = (
    ("a", "accept"),
    ("r", "reject"),
    ("c", "recode"),
    ("m", "memo"),
    ("s", "skip"),
    ("b", "back"),
    ("q", "quit"),
)
KEY_LINE = "  ".join(f"[{key}] {name}" for key, name in KEYS)


@click.command()
@filter_options(coder=False, status=False)
@click.option(
    "--accept",
    is_flag=True,
    help="Accept every suggestion the filters take, without the screen.",
)
@click.option(
    "--reject",
    is_flag=True,
    help="Reject every suggestion the filters take, without the screen.",
)
@click.option(
    "--all",
    "take_all",
    is_flag=True,
    help="Let --accept or --reject take every suggestion when no filter is given.",
)
@coder_option
@pass_state
@handle_errors
def review(
    state: State,
    accept: bool,
    reject: bool,
    take_all: bool,
    coder: str | None,
    **filters: Any,
) -> None:
    """Accept or reject auto-coding suggestions, one key each.

    \b
    Keys on the screen: a accept, r reject, c recode (another code on the
    same span), m memo, s skip, b back, q quit. The next run starts where
    you stopped. The filters (--code, --source, --where ...) choose the
    suggestions; each filter keeps its own place.
    \b
    Examples:
      qualkit review --code strategy --where province=Sichuan
      qualkit review --reject --code gaming.misreporting --source G16S011
    """
    from qualkit import store
    from qualkit.review import ReviewSession, bulk_decide

    if accept and reject:
        raise click.UsageError("--accept and --reject cannot be used together; pick one.")
    decision = None
    if accept:
        decision = "accept"
    elif reject:
        decision = "reject"
    selection = build_filter(**filters)
    project = state.project()
    who = resolve_coder(project, coder)
    if decision is not None:
        if selection == build_filter() and not take_all:
            raise click.UsageError(
                f"--{decision} without a filter would decide every suggestion. Add a filter "
                "such as --code or --source, or pass --all."
            )
        with store.transaction(project.db):
            batch, changes = bulk_decide(
                project.db, who, decision, selection, command=command_name()
            )
        verb = "accepted" if decision == "accept" else "rejected"
        merged = sum(1 for change in changes if change.absorbed)
        click.echo(f"{len(changes)} suggestions {verb} (batch {batch}).")
        if merged:
            click.echo(
                f"{merged} of them merged with your overlapping codings of the same code."
            )
        return
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise click.UsageError(
            "The review screen needs an interactive terminal. Use --accept or --reject with "
            "filters to decide suggestions without it."
        )
    session = ReviewSession(project.db, who, selection, command=command_name())
    run_screen(session)


def run_screen(session: Any) -> None:
    """Show suggestions and act on keys until the coder quits."""
    from rich.console import Console

    console = Console(highlight=False)
    if session.total == 0:
        console.print("No suggestions to review with these filters.")
        return
    while True:
        if session.finished:
            draw_end(console, session)
        else:
            draw_item(console, session)
        try:
            key = click.getchar()
        except (KeyboardInterrupt, EOFError):
            key = "q"
        if key == "q":
            session.save()
            console.print(
                f"Stopped. {session.decided} decided in this session; the next run starts here."
            )
            return
        handle_key(console, session, key)


def handle_key(console: Any, session: Any, key: str) -> None:
    """Carry out one key press on the suggestion on screen."""
    if key == "b":
        session.back()
        return
    if session.finished:
        session.message = "No more suggestions: press b to go back or q to quit."
        return
    if key == "a":
        session.decide("accept")
    elif key == "r":
        session.decide("reject")
    elif key == "s":
        session.skip()
    elif key == "c":
        code_id = ask(console, "Code id for this span (empty to cancel): ")
        if code_id:
            session.decide("recode", code_id)
        else:
            session.message = "Recode cancelled."
    elif key == "m":
        text = ask(console, "Memo (one line, empty to cancel): ")
        if text:
            session.add_memo(text)
        else:
            session.message = "Memo cancelled."
    else:
        session.message = f"Unknown key {key!r}. Keys: {KEY_LINE}"


def ask(console: Any, prompt: str) -> str:
    """Read one line from the coder; an interrupt counts as empty."""
    try:
        return console.input(prompt).strip()
    except (KeyboardInterrupt, EOFError):
        return ""


def draw_item(console: Any, session: Any) -> None:
    """Draw the suggestion on screen: its context, the code's definition and the keys."""
    from rich.panel import Panel
    from rich.text import Text

    console.clear()
    item = session.item()
    coding_id = session.current_id()
    console.print(
        Text(
            f"Suggestion {session.index + 1} of {session.total}  ·  coding #{coding_id} ",
            style="bold",
        )
    )
    if item is None:
        console.print(
            f"Coding #{coding_id} no longer exists: it was merged into another coding."
        )
        _draw_footer(console, session)
        return
    coding = item.coding
    where = [coding["source_id"]]
    if item.speaker:
        where.append(f"{item.speaker} ({item.role})" if item.role else item.speaker)
    where += [value for value in (item.province, item.level) if value]
    where.append(f"{coding['start_offset']}:{coding['end_offset']}")
    console.print(Text("  ·  ".join(where), style="dim"))
    body = Text()
    body.append(item.before, style="dim")
    quote = Text(item.quote, style="bold")
    if item.highlight:
        quote.stylize("reverse", *item.highlight)
    body.append_text(quote)
    body.append(item.after, style="dim")
    console.print(Panel(body, title="Segment", title_align="left"))
    console.print(_code_text(item, coding))
    if coding["status"] != "suggested":
        console.print(
            Text(f"Decided: {coding['status']} by {coding['coder']}", style="yellow")
        )
    _draw_footer(console, session)


def _code_text(item: Any, coding: dict[str, Any]) -> Any:
    from rich.text import Text

    text = Text()
    code = item.code or {}
    text.append(f"{coding['code_id']}", style="bold cyan")
    if code.get("label"):
        text.append(f"  {code['label']}")
    if coding.get("rule"):
        text.append(f"   (rule: {coding['rule']})", style="dim")
    for label, name in (
        ("Definition", "definition"),
        ("Use when", "when_to_use"),
        ("Do not use when", "when_not_to_use"),
    ):
        if code.get(name):
            text.append(f"\n{label}: ", style="bold")
            text.append(code[name])
    return text


def _draw_footer(console: Any, session: Any) -> None:
    from rich.text import Text

    if session.message:
        console.print(Text(session.message, style="green"))
    console.print(Text(KEY_LINE, style="bold"))


def draw_end(console: Any, session: Any) -> None:
    """Draw the screen shown after the last suggestion."""
    from rich.text import Text

    console.clear()
    console.print(
        Text(
            f"End of the queue: {session.total} suggestions, {session.decided} decided in this session.",
            style="bold",
        )
    )
    if session.message:
        console.print(Text(session.message, style="green"))
    console.print(Text("[b] back  [q] quit", style="bold"))
