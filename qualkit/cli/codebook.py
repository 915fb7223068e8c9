"""``qualkit codebook``: show, check, compare and apply codebook versions."""

from __future__ import annotations

from typing import Any

import click
import pandas as pd

from qualkit.cli.coding import coder_option, command_name, resolve_coder
from qualkit.cli.common import (
    State,
    echo_frame,
    handle_errors,
    output_option,
    pass_state,
)


@click.group()
def codebook() -> None:
    """Show, check, compare and apply codebook versions."""


@codebook.command("show")
@click.option(
    "--all",
    "include_inactive",
    is_flag=True,
    help="Also show codes dropped from the current codebook.",
)
@output_option
@pass_state
@handle_errors
def codebook_show(state: State, include_inactive: bool, output_format: str) -> None:
    """Print the stored codes as a tree with their coding counts.

    \b
    Columns: suggested, accepted and rejected codings of the code itself;
    "with children" adds the suggested and accepted codings of all codes
    below it.
    """
    from qualkit.codebook_versions import codebook_tree

    tree = codebook_tree(state.project().db, include_inactive=include_inactive)
    if output_format != "table":
        echo_frame(tree, output_format)
        return
    if tree.empty:
        click.echo(
            "No codebook is stored. Run 'qualkit codebook apply FILE' or 'qualkit autocode'."
        )
        return
    click.echo(render_tree(tree))


def render_tree(tree: pd.DataFrame) -> str:
    """Draw the code tree with box-drawing branches and right-aligned counts."""
    names = []
    depths = list(tree["depth"])
    for index, row in enumerate(tree.itertuples()):
        # A branch continues at a depth while a later sibling follows before the tree climbs above it.
        prefix = ""
        for level in range(1, row.depth):
            prefix += "│  " if _continues(depths, index, level) else "   "
        if row.depth:
            prefix += "├─ " if _continues(depths, index, row.depth) else "└─ "
        name = f"{prefix}{row.code}" + ("" if row.active else " (inactive)")
        names.append(name)
    width = max(len(name) for name in names)
    header = f"{'code':<{width}}  {'sugg':>5} {'acc':>5} {'rej':>5} {'with children':>14}  label"
    lines = [header]
    for name, row in zip(names, tree.itertuples()):
        lines.append(
            f"{name:<{width}}  {row.suggested:>5} {row.accepted:>5} {row.rejected:>5} {row.with_children:>14}  {row.label}"
        )
    return "\n".join(lines)


def _continues(depths: list[int], index: int, level: int) -> bool:
    for depth in depths[index + 1 :]:
        if depth < level:
            return False
        if depth == level:
            return True
    return False


@codebook.command("check")
@click.argument("file", required=False)
@click.option("--strict", is_flag=True, help="Exit with status 1 on warnings too.")
@output_option
@pass_state
@handle_errors
def codebook_check(
    state: State, file: str | None, strict: bool, output_format: str
) -> None:
    """Validate a codebook file and the codings stored under it.

    FILE defaults to the project's codebook. Reports codes that would be
    dropped with their codings, keywords shared by two codes, codings on
    dropped codes and overlapping codings of one coder.
    """
    from qualkit.codebook_versions import check_codebook

    project = state.project()
    loaded = project.codebook(file)
    findings = check_codebook(project.db, loaded)
    if findings.empty:
        click.echo(f"{loaded.path}: {len(loaded.codes)} codes, no problems found.")
        return
    echo_frame(findings, output_format)
    failing = {"error", "warning"} if strict else {"error"}
    if set(findings["level"]) & failing:
        raise click.exceptions.Exit(1)


@codebook.command("diff")
@click.argument("old")
@click.argument("new")
@output_option
@pass_state
@handle_errors
def codebook_diff(state: State, old: str, new: str, output_format: str) -> None:
    """List the codes added, removed, renamed, merged or changed from OLD to NEW.

    OLD and NEW are codebook files or bundled codebook names.
    """
    from pathlib import Path

    from qualkit.codebook import load_codebook, resolve_codebook_path
    from qualkit.codebook_versions import diff_codebooks

    base = Path.cwd()
    older = load_codebook(resolve_codebook_path(old, base=base))
    newer = load_codebook(resolve_codebook_path(new, base=base))
    changes = diff_codebooks(older, newer)
    if changes.empty and output_format == "table":
        click.echo(
            f"No differences in codes between {older.version} and {newer.version}."
        )
        return
    echo_frame(changes, output_format)


@codebook.command("apply")
@click.argument("file", required=False)
@click.option(
    "--force",
    is_flag=True,
    help="Drop codes that still have codings; the codings keep the dropped code.",
)
@click.option(
    "--dry-run", is_flag=True, help="Show what would change and change nothing."
)
@coder_option
@output_option
@pass_state
@handle_errors
def codebook_apply(
    state: State,
    file: str | None,
    force: bool,
    dry_run: bool,
    coder: str | None,
    output_format: str,
) -> None:
    """Store a codebook version, carrying codings of renamed and merged codes.

    \b
    A code that lists old ids under 'replaces:' takes over their codings.
    A code dropped without such an entry must have no codings, unless
    --force is given. FILE defaults to the project's codebook. Afterwards,
    point 'codebook' in qualkit.toml at the new file, or the next build
    stores the old version again.
    """
    from qualkit import store
    from qualkit.audit import ChangeRecorder
    from qualkit.codebook_versions import apply_codebook, plan_codebook

    project = state.project(create=not dry_run)
    loaded = project.codebook(file)
    if dry_run:
        plan = plan_codebook(project.db, loaded)
        echo_frame(plan.frame(), output_format)
        if plan.blocked and not force:
            click.echo(
                "Applying would fail: dropped codes still have codings (see 'codings').",
                err=True,
            )
        return
    who = resolve_coder(project, coder)
    with store.transaction(project.db):
        recorder = ChangeRecorder(project.db, who, command_name())
        plan = apply_codebook(recorder, loaded, force=force)
        if recorder.entries:
            store.touch(project.db)
    frame = plan.frame()
    if not frame.empty:
        echo_frame(frame, output_format)
    carried = sum(plan.carried.values())
    click.echo(
        f"Applied {loaded.id} {loaded.version}: {len(plan.changes)} code changes, {carried} codings carried.",
        err=True,
    )
    _warn_if_config_differs(project, loaded)


def _warn_if_config_differs(project: Any, loaded: Any) -> None:
    if project.config is None:
        return
    configured = project.codebook()
    if configured.content_hash != loaded.content_hash:
        click.echo(
            f"Note: qualkit.toml names codebook {project.config.codebook!r} ({configured.version}); "
            "point it at the applied file so that 'qualkit build' keeps this version.",
            err=True,
        )
