"""The ``qualkit`` command line: thin commands over ``qualkit.project``."""

from __future__ import annotations

from qualkit.cli.main import cli, main

__all__ = ["cli", "main"]
