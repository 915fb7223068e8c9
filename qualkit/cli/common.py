"""Helpers shared by every command: the project context, output formats, progress."""

from __future__ import annotations

import functools
import logging
import os
import re
import sqlite3
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
import pandas as pd

from qualkit.config import CONFIG_NAME
from qualkit.errors import QualkitError

log = logging.getLogger("qualkit")

# Quotes are cut to this many characters in table listings; csv and json keep them whole.
TABLE_COLUMN_WIDTH = 80

# C0 and C1 control characters other than tab and line feed. Terminals act
# on some of them (ESC starts sequences that move the cursor, recolor or
# retitle the window), so table output shows them as \xNN escapes.
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


class State:
    """Global options, resolved lazily into an open project."""

    def __init__(self, db: str | None, project_dir: str | None) -> None:
        self.db = db
        self.project_dir = project_dir
        self._project: Any = None

    def project(self, *, create: bool = False) -> Any:
        """Open the project: --project (or a qualkit.toml here), then --db.

        Only commands that add data pass ``create``; a listing on a mistyped
        --db path must fail rather than create an empty database.
        """
        if self._project is None:
            from qualkit.project import Project

            folder = Path(self.project_dir) if self.project_dir else Path.cwd()
            if (folder / CONFIG_NAME).exists():
                self._project = Project.open(folder, self.db, create=create)
            elif self.db:
                self._project = Project(self.db, create=create)
            else:
                raise click.UsageError(
                    f"No {CONFIG_NAME} in {folder} and no database given. Run the command "
                    "in a project folder, or pass --project DIR or --db PATH."
                )
        return self._project


pass_state = click.make_pass_decorator(State)


def handle_errors(function: Callable[..., Any]) -> Callable[..., Any]:
    """Turn library errors into click errors (exit 1) with the library's message."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except QualkitError as error:
            # Messages quote values from input files, which may contain control characters.
            raise click.ClickException(escape_controls(str(error))) from error
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) and "busy" not in str(error):
                raise
            raise click.ClickException(
                f"The database is busy: another qualkit process held its lock for over "
                f"30 seconds ({error}). Nothing was changed; run the command again."
            ) from error

    return wrapper


def output_option(function: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--format table|csv|json`` to a listing command."""
    return click.option(
        "--format",
        "output_format",
        type=click.Choice(["table", "csv", "json"]),
        default="table",
        show_default=True,
        help="Output format of the listing on stdout.",
    )(function)


def echo_frame(frame: pd.DataFrame, output_format: str) -> None:
    """Write a DataFrame to stdout in the chosen format.

    CSV output is opened in spreadsheets, so text cells that a spreadsheet
    would run as a formula get a leading apostrophe, as in exported files.
    Table output writes control characters as ``\\xNN``. JSON keeps the
    text, and JSON's own escapes cover control characters.
    """
    if output_format == "csv":
        from qualkit.quantitize import csv_quoting, neutralize_formulas

        safe = neutralize_formulas(frame)
        click.echo(safe.to_csv(index=False, quoting=csv_quoting(safe)), nl=False)
    elif output_format == "json":
        click.echo(frame.to_json(orient="records", force_ascii=False, indent=2))
    elif frame.empty:
        click.echo("(no rows)")
    else:
        shown = frame.astype(object).where(frame.notna(), "").map(escape_controls)
        click.echo(shown.to_string(index=False, max_colwidth=TABLE_COLUMN_WIDTH))


def escape_controls(value: Any) -> Any:
    """Return text with its control characters written as ``\\xNN``, and other values unchanged."""
    if not isinstance(value, str):
        return value
    return _CONTROL_CHARACTERS.sub(lambda match: f"\\x{ord(match.group()):02x}", value)


@contextmanager
def progress_bar(length: int, label: str) -> Iterator[Callable[[int], None]]:
    """Yield an update function for a progress bar on stderr, silent off a terminal."""
    if not sys.stderr.isatty() or os.environ.get("CI"):
        yield lambda _n: None
        return
    with click.progressbar(length=length, label=label, file=sys.stderr) as bar:
        yield bar.update
