"""``qualkit code``, ``log``, ``undo`` and ``memo``: manual coding and its history."""

from __future__ import annotations

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
from qualkit.errors import QualkitError

CODER_HELP = "Coder name recorded with the change (also QUALKIT_CODER, or coder in qualkit.toml)."


# Options shared by the coding commands ------------------------------------------


class SpanType(click.ParamType):
    """A span written START:END in code point offsets."""

    name = "START:END"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[int, int]:
        if isinstance(value, tuple):
            return value
        start, sep, end = str(value).partition(":")
        try:
            if not sep:
                raise ValueError
            return int(start), int(end)
        except ValueError:
            self.fail(
                f"{value!r} is not START:END with two whole numbers, e.g. 120:188.",
                param,
                ctx,
            )


def coder_option(function: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--coder`` (also QUALKIT_CODER) to a command that writes."""
    return click.option("--coder", envvar="QUALKIT_CODER", help=CODER_HELP)(function)


def resolve_coder(project: Any, coder: str | None) -> str:
    """Return the coder from --coder/QUALKIT_CODER or the project settings, or raise a usage error."""
    from qualkit.audit import check_coder_name

    chosen = coder or (project.config.coder if project.config is not None else None)
    if not chosen:
        raise click.UsageError(
            "No coder given. Pass --coder NAME, set QUALKIT_CODER, or set coder under "
            "[project] in qualkit.toml."
        )
    try:
        return check_coder_name(chosen)
    except QualkitError as error:
        raise click.BadParameter(str(error), param_hint="--coder") from None


def command_name() -> str:
    """Return the running command without the program name, e.g. "code add"."""
    path = click.get_current_context().command_path.split()
    return " ".join(path[1:]) or path[0]


def span_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """Add the three ways of giving a span: --span, --segment (with --unit) and --match."""
    options = [
        click.option(
            "--span",
            type=SpanType(),
            help="Offsets START:END in characters, end exclusive.",
        ),
        click.option(
            "--segment",
            type=click.IntRange(min=0),
            help="Position of a sentence or turn (see 'qualkit code segments').",
        ),
        click.option(
            "--unit",
            type=click.Choice(["sentence", "turn"]),
            default="sentence",
            show_default=True,
            help="What --segment counts.",
        ),
        click.option("--match", "match_text", help="Exact text to code."),
        click.option(
            "--occurrence",
            type=click.IntRange(min=1),
            help="Which occurrence of --match, from 1. Required when the text occurs more than once.",
        ),
        click.option(
            "--on-overlap",
            type=click.Choice(["merge", "error"]),
            default="merge",
            show_default=True,
            help="What to do when you already coded an overlapping span with this code: merge the spans into one coding, or stop with an error.",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def located_span(
    db: Any,
    source_id: str,
    span: Any,
    segment: int | None,
    unit: str,
    match_text: str | None,
    occurrence: int | None,
) -> tuple[int, int]:
    """Return the span the options give, or raise a usage error when not exactly one is given."""
    from qualkit.coding import locate_span

    given = [
        name
        for name, value in (
            ("--span", span),
            ("--segment", segment),
            ("--match", match_text),
        )
        if value is not None
    ]
    if len(given) != 1:
        raise click.UsageError(
            f"Give the span with exactly one of --span, --segment or --match (got {', '.join(given) or 'none'})."
        )
    if occurrence is not None and match_text is None:
        raise click.UsageError("--occurrence goes with --match.")
    return locate_span(
        db,
        source_id,
        span=span,
        segment=segment,
        unit=unit,
        match=match_text,
        occurrence=occurrence,
    )


def filter_options(
    *, coder: bool = True, status: bool = True
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Return a decorator adding the coding filters: code, source, coder, status, origin, metadata, target, id.

    Commands that record a coder of their own leave out the --coder filter,
    and the review, which takes suggestions only, leaves out --status.
    """
    options = [
        click.option(
            "--code",
            "codes",
            multiple=True,
            help="Code id; its child codes are included. Repeatable.",
        ),
        click.option(
            "--source", "sources", multiple=True, help="Source id. Repeatable."
        ),
        click.option(
            "--origin",
            "origins",
            multiple=True,
            type=click.Choice(["manual", "auto"]),
            help="Repeatable.",
        ),
        click.option(
            "--where",
            "where",
            multiple=True,
            metavar="FIELD=VALUE[,VALUE]",
            help="Metadata filter, e.g. province=Sichuan or level=city,county. Repeatable.",
        ),
        click.option(
            "--target",
            "targets",
            multiple=True,
            help="Only codings linked to this target id. Repeatable.",
        ),
        click.option(
            "--id", "ids", multiple=True, type=int, help="Coding id. Repeatable."
        ),
    ]
    if status:
        options.insert(
            2,
            click.option(
                "--status",
                "statuses",
                multiple=True,
                type=click.Choice(["suggested", "accepted", "rejected"]),
                help="Repeatable.",
            ),
        )
    if coder:
        options.insert(
            2,
            click.option(
                "--coder",
                "coders",
                multiple=True,
                help="Coder who made or decided the coding. Repeatable.",
            ),
        )

    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(options):
            function = option(function)
        return function

    return decorate


def build_filter(
    codes: tuple[str, ...] = (),
    sources: tuple[str, ...] = (),
    coders: tuple[str, ...] = (),
    statuses: tuple[str, ...] = (),
    origins: tuple[str, ...] = (),
    where: tuple[str, ...] = (),
    targets: tuple[str, ...] = (),
    ids: tuple[int, ...] = (),
) -> Any:
    """Return the CodingFilter for the values of ``filter_options``."""
    from qualkit.coding import CodingFilter, parse_where

    try:
        parsed = parse_where(where)
    except QualkitError as error:
        raise click.BadParameter(str(error), param_hint="--where") from None
    return CodingFilter(
        codes=codes,
        sources=sources,
        coders=coders,
        statuses=statuses,
        origins=origins,
        where=parsed,
        targets=targets,
        ids=ids,
    )


# qualkit code ---------------------------------------------------------------------


@click.group()
def code() -> None:
    """Add, move, remove and list codings by hand."""


@code.command("add")
@click.argument("source")
@click.option("--code", "code_id", required=True, help="Code id from the codebook.")
@span_options
@click.option(
    "--value",
    type=float,
    help="A number stored with the coding (e.g. an intensity rating), used by ordinal, interval and ratio agreement.",
)
@click.option("--memo", "memo_text", help="Also store this memo about the new coding.")
@coder_option
@pass_state
@handle_errors
def code_add(
    state: State,
    source: str,
    code_id: str,
    span: Any,
    segment: int | None,
    unit: str,
    match_text: str | None,
    occurrence: int | None,
    on_overlap: str,
    value: float | None,
    memo_text: str | None,
    coder: str | None,
) -> None:
    """Code a span of SOURCE.

    \b
    Examples:
      qualkit code add G16S011 --code strategy.reframing --span 1200:1288
      qualkit code add G16S011 --code target.veto --segment 14
      qualkit code add G16S011 --code target.veto --segment 14 --value 3
      qualkit code add G16S011 --code channel.informal.inspection --match "when the leaders go down"
    """
    from qualkit import store
    from qualkit.audit import ChangeRecorder
    from qualkit.coding import add_coding
    from qualkit.memos import add_memo

    project = state.project()
    who = resolve_coder(project, coder)
    db = project.db
    start, end = located_span(db, source, span, segment, unit, match_text, occurrence)
    with store.transaction(db):
        recorder = ChangeRecorder(db, who, command_name())
        change = add_coding(
            recorder, source, code_id, start, end, on_overlap=on_overlap, value=value
        )
        memo_id = (
            add_memo(recorder, "coding", str(change.coding_id), memo_text)
            if memo_text
            else None
        )
        if recorder.entries:
            store.touch(db)
    click.echo(change.describe())
    if memo_id is not None:
        click.echo(f"Memo #{memo_id} saved on coding #{change.coding_id}.")


@code.command("move")
@click.argument("coding_id", type=int)
@span_options
@coder_option
@pass_state
@handle_errors
def code_move(
    state: State,
    coding_id: int,
    span: Any,
    segment: int | None,
    unit: str,
    match_text: str | None,
    occurrence: int | None,
    on_overlap: str,
    coder: str | None,
) -> None:
    """Give coding CODING_ID a new span in its source."""
    from qualkit import store
    from qualkit.audit import ChangeRecorder
    from qualkit.coding import move_coding, require_coding

    project = state.project()
    who = resolve_coder(project, coder)
    db = project.db
    row = require_coding(db, coding_id)
    start, end = located_span(
        db, row["source_id"], span, segment, unit, match_text, occurrence
    )
    with store.transaction(db):
        recorder = ChangeRecorder(db, who, command_name())
        change = move_coding(recorder, coding_id, start, end, on_overlap=on_overlap)
        if recorder.entries:
            store.touch(db)
    click.echo(change.describe())


@code.command("remove")
@click.argument("coding_ids", nargs=-1, required=True, type=int)
@coder_option
@pass_state
@handle_errors
def code_remove(state: State, coding_ids: tuple[int, ...], coder: str | None) -> None:
    """Delete codings with their target links and memos."""
    from qualkit import store
    from qualkit.audit import ChangeRecorder
    from qualkit.coding import remove_codings

    project = state.project()
    who = resolve_coder(project, coder)
    db = project.db
    with store.transaction(db):
        recorder = ChangeRecorder(db, who, command_name())
        changes = remove_codings(recorder, list(dict.fromkeys(coding_ids)))
        store.touch(db)
    for change in changes:
        click.echo(change.describe())
    click.echo(f"Undo with 'qualkit undo --coder {who}'.", err=True)


@code.command("list")
@filter_options()
@click.option(
    "--needs-review",
    is_flag=True,
    help="Only codings flagged after their transcript changed.",
)
@output_option
@pass_state
@handle_errors
def code_list(
    state: State, output_format: str, needs_review: bool, **filters: Any
) -> None:
    """List codings, filtered by code, source, coder, status or metadata."""
    from dataclasses import replace

    from qualkit.coding import list_codings

    selection = build_filter(**filters)
    if needs_review:
        selection = replace(selection, needs_review=True)
    echo_frame(list_codings(state.project().db, selection), output_format)


@code.command("segments")
@click.argument("source")
@click.option(
    "--unit",
    type=click.Choice(["sentence", "turn"]),
    default="sentence",
    show_default=True,
)
@output_option
@pass_state
@handle_errors
def code_segments(state: State, source: str, unit: str, output_format: str) -> None:
    """List the sentences or turns of SOURCE with their positions."""
    from qualkit.coding import list_segments

    echo_frame(list_segments(state.project().db, source, unit), output_format)


# qualkit log and undo -----------------------------------------------------------


@click.command("log")
@click.option("--coder", help="Only changes by this coder.")
@click.option("--batch", help="Only the changes of this batch id.")
@click.option(
    "--table",
    type=click.Choice(["codings", "memos", "quote_links", "codes", "codebooks"]),
    help="Only changes to this table.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=50,
    show_default=True,
    help="Number of entries, newest first; 0 for all.",
)
@output_option
@pass_state
@handle_errors
def log_command(
    state: State,
    coder: str | None,
    batch: str | None,
    table: str | None,
    limit: int,
    output_format: str,
) -> None:
    """Show the audit log of coding changes, newest first."""
    from qualkit.audit import history

    echo_frame(
        history(
            state.project().db,
            coder=coder,
            batch=batch,
            table=table,
            limit=limit or None,
        ),
        output_format,
    )


UNDONE_VERBS = {"insert": "deleted", "update": "restored", "delete": "re-inserted"}


@click.command()
@click.option(
    "--dry-run", is_flag=True, help="Say what would be reverted and change nothing."
)
@coder_option
@pass_state
@handle_errors
def undo(state: State, dry_run: bool, coder: str | None) -> None:
    """Revert your latest change (run again to go further back)."""
    from qualkit import store
    from qualkit.audit import undo_last

    project = state.project()
    who = resolve_coder(project, coder)
    with store.transaction(project.db):
        result = undo_last(project.db, who, dry_run=dry_run)
    lead = "Would undo" if dry_run else "Undid"
    click.echo(
        f"{lead} '{result.command}' by {who} at {result.changed_at} (batch {result.batch_id}):"
    )
    for table, row_id, action in result.reverted:
        click.echo(f"  {table} {row_id}: {UNDONE_VERBS[action]}")


# qualkit memo ---------------------------------------------------------------------


def _memo_text(text: str | None, initial: str = "") -> str | None:
    if text is not None:
        return text
    edited = click.edit(initial, extension=".md", require_save=True)
    return None if edited is None else str(edited)


@click.group()
def memo() -> None:
    """Add, edit and list memos.

    A memo is about the project, a source, a code or a coding.
    """


@memo.command("add")
@click.option("--source", "source_id", help="Memo about this source.")
@click.option("--code", "code_id", help="Memo about this code.")
@click.option("--coding", "coding_id", type=int, help="Memo about this coding.")
@click.option(
    "--text", help="The memo. Without it, the editor named by $VISUAL or $EDITOR opens."
)
@coder_option
@pass_state
@handle_errors
def memo_add(
    state: State,
    source_id: str | None,
    code_id: str | None,
    coding_id: int | None,
    text: str | None,
    coder: str | None,
) -> None:
    """Add a memo (about the project unless --source, --code or --coding)."""
    from qualkit import store
    from qualkit.audit import ChangeRecorder
    from qualkit.memos import add_memo

    subjects = [
        (name, value)
        for name, value in (
            ("source", source_id),
            ("code", code_id),
            ("coding", coding_id),
        )
        if value is not None
    ]
    if len(subjects) > 1:
        raise click.UsageError("Give at most one of --source, --code and --coding.")
    about, about_id = subjects[0] if subjects else ("project", None)
    project = state.project()
    who = resolve_coder(project, coder)
    body = _memo_text(text)
    if body is None:
        raise QualkitError(
            "The editor was closed without saving, so no memo was added."
        )
    with store.transaction(project.db):
        recorder = ChangeRecorder(project.db, who, command_name())
        memo_id = add_memo(
            recorder, about, None if about_id is None else str(about_id), body
        )
        store.touch(project.db)
    click.echo(f"Memo #{memo_id} saved.")


@memo.command("edit")
@click.argument("memo_id", type=int)
@click.option(
    "--text",
    help="The new text. Without it, the editor named by $VISUAL or $EDITOR opens on the memo.",
)
@coder_option
@pass_state
@handle_errors
def memo_edit(state: State, memo_id: int, text: str | None, coder: str | None) -> None:
    """Edit memo MEMO_ID in $EDITOR."""
    from qualkit import store
    from qualkit.audit import ChangeRecorder
    from qualkit.memos import edit_memo, require_memo

    project = state.project()
    who = resolve_coder(project, coder)
    current = require_memo(project.db, memo_id)
    body = _memo_text(text, current["text"] + "\n")
    if body is None:
        click.echo(
            f"Memo #{memo_id} not changed (the editor was closed without saving)."
        )
        return
    with store.transaction(project.db):
        changed = edit_memo(
            ChangeRecorder(project.db, who, command_name()), memo_id, body
        )
        if changed:
            store.touch(project.db)
    click.echo(f"Memo #{memo_id} {'saved' if changed else 'not changed'}.")


@memo.command("remove")
@click.argument("memo_id", type=int)
@coder_option
@pass_state
@handle_errors
def memo_remove(state: State, memo_id: int, coder: str | None) -> None:
    """Delete memo MEMO_ID."""
    from qualkit import store
    from qualkit.audit import ChangeRecorder
    from qualkit.memos import remove_memo

    project = state.project()
    who = resolve_coder(project, coder)
    with store.transaction(project.db):
        remove_memo(ChangeRecorder(project.db, who, command_name()), memo_id)
        store.touch(project.db)
    click.echo(f"Memo #{memo_id} deleted.")


@memo.command("list")
@click.option(
    "--about",
    type=click.Choice(["project", "source", "code", "coding"]),
    help="Only memos about this kind of thing.",
)
@click.option(
    "--id", "about_id", help="Only memos about this source, code or coding id."
)
@click.option("--coder", help="Only memos by this coder.")
@output_option
@pass_state
@handle_errors
def memo_list(
    state: State,
    about: str | None,
    about_id: str | None,
    coder: str | None,
    output_format: str,
) -> None:
    """List memos with what they are about."""
    from qualkit.memos import list_memos

    echo_frame(
        list_memos(state.project().db, about=about, about_id=about_id, coder=coder),
        output_format,
    )
