"""Exceptions raised by qualkit's library code.

The CLI turns every ``QualkitError`` into an error message and exit status 1,
so each message must name the file, line or value at fault and the fix.
"""

from __future__ import annotations

from pathlib import Path


class QualkitError(Exception):
    """Base class for errors a user can act on."""


class InputError(QualkitError):
    """An input file or value is invalid.

    ``path`` and ``line`` locate the problem, and ``fix`` is the change to make.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        fix: str | None = None,
    ) -> None:
        self.message = message
        self.path = str(path) if path is not None else None
        self.line = line
        self.fix = fix
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = ""
        if self.path is not None:
            where = self.path if self.line is None else f"{self.path}, line {self.line}"
            where += ": "
        text = where + self.message
        if self.fix:
            # A multi-line message (a list of rows) gets its fix on a line of its own.
            text += ("\n" if "\n" in self.message else " ") + self.fix
        return text


class CodebookError(InputError):
    """The codebook file is invalid."""


class TranscriptError(InputError):
    """A transcript or its metadata is invalid."""


class PanelError(InputError, ValueError):
    """A panel of target values or its options is invalid."""


class ConfigError(InputError):
    """The project's ``qualkit.toml`` is invalid."""


class StoreError(QualkitError):
    """The database cannot be opened or is not a qualkit database."""


class NotFoundError(QualkitError):
    """A source, code, coding or target named by the user does not exist."""
