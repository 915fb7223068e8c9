"""Run the CLI as ``python -m qualkit``."""

from qualkit.cli import main

main()
